/**
 * Built-in functions known to be read-only and free of effects outside the statement. Any
 * function not listed here is treated as potentially side-effecting: `nextval`, `set_config`,
 * `pg_terminate_backend`, `lo_import`, `dblink_exec`, `query_to_xml('delete …')` and every
 * user-defined function fall out of this list by construction, so a new dangerous built-in in a
 * future PostgreSQL release is denied until someone reviews it and adds it here.
 *
 * Names match only unqualified or `pg_catalog.`-qualified calls: `myschema.lower()` is a user
 * function and may do anything.
 *
 * Deliberately absent although they look harmless: `txid_current`/`pg_current_xact_id` (assign a
 * transaction id, i.e. write), `setseed` (changes session state), `pg_sleep*` (holds a backend),
 * `ts_stat`/`ts_rewrite`/`*_to_xml*`/`query_to_xml` (execute SQL text given as a string),
 * `pg_read_file`/`pg_ls_dir`/`pg_stat_file` (server filesystem), `pg_advisory_lock*`,
 * `pg_notify`, `currval`/`lastval` (harmless, but only useful next to `nextval`).
 * `pg_advisory_unlock_all` is listed: it only releases locks this session holds, and drivers
 * send it when they reset a pooled connection (asyncpg).
 */
const SAFE = new Set<string>([
  // aggregates
  'count', 'sum', 'avg', 'min', 'max', 'array_agg', 'string_agg', 'bool_and', 'bool_or', 'every',
  'bit_and', 'bit_or', 'bit_xor', 'json_agg', 'jsonb_agg', 'json_object_agg', 'jsonb_object_agg',
  'json_agg_strict', 'jsonb_agg_strict', 'json_objectagg', 'json_arrayagg', 'xmlagg', 'any_value',
  'stddev', 'stddev_pop', 'stddev_samp', 'variance', 'var_pop', 'var_samp', 'corr', 'covar_pop',
  'covar_samp', 'regr_avgx', 'regr_avgy', 'regr_count', 'regr_intercept', 'regr_r2', 'regr_slope',
  'regr_sxx', 'regr_sxy', 'regr_syy', 'percentile_cont', 'percentile_disc', 'mode', 'range_agg',
  'range_intersect_agg',
  // window functions
  'row_number', 'rank', 'dense_rank', 'percent_rank', 'cume_dist', 'ntile', 'lag', 'lead',
  'first_value', 'last_value', 'nth_value',
  // strings
  'lower', 'upper', 'initcap', 'length', 'char_length', 'character_length', 'octet_length',
  'bit_length', 'substring', 'substr', 'position', 'strpos', 'overlay', 'trim', 'btrim', 'ltrim',
  'rtrim', 'lpad', 'rpad', 'left', 'right', 'repeat', 'replace', 'reverse', 'translate',
  'split_part', 'starts_with', 'concat', 'concat_ws', 'format', 'ascii', 'chr', 'to_hex',
  'quote_ident', 'quote_literal', 'quote_nullable', 'regexp_replace', 'regexp_match',
  'regexp_matches', 'regexp_split_to_array', 'regexp_split_to_table', 'regexp_like',
  'regexp_count', 'regexp_instr', 'regexp_substr', 'string_to_array', 'string_to_table',
  'array_to_string', 'md5', 'sha224', 'sha256', 'sha384', 'sha512', 'encode', 'decode',
  'convert_from', 'convert_to', 'normalize', 'unistr', 'casefold', 'like_escape', 'similar_escape',
  'to_ascii', 'crc32', 'crc32c',
  // numbers
  'abs', 'ceil', 'ceiling', 'floor', 'round', 'trunc', 'sign', 'sqrt', 'cbrt', 'power', 'pow',
  'exp', 'ln', 'log', 'log10', 'mod', 'div', 'gcd', 'lcm', 'pi', 'degrees', 'radians', 'sin',
  'cos', 'tan', 'asin', 'acos', 'atan', 'atan2', 'width_bucket', 'scale', 'min_scale',
  'trim_scale', 'factorial', 'random', 'random_normal', 'numeric', 'int4', 'int8', 'float8',
  'text', 'to_number',
  // dates and times
  'now', 'clock_timestamp', 'statement_timestamp', 'transaction_timestamp', 'timeofday',
  'date_trunc', 'date_part', 'date_bin', 'extract', 'age', 'to_char', 'to_date', 'to_timestamp',
  'make_date', 'make_time', 'make_timestamp', 'make_timestamptz', 'make_interval',
  'justify_days', 'justify_hours', 'justify_interval', 'isfinite', 'timezone', 'overlaps',
  'date_add', 'date_subtract',
  // json / jsonb
  'to_json', 'to_jsonb', 'row_to_json', 'array_to_json', 'json_build_object',
  'jsonb_build_object', 'json_build_array', 'jsonb_build_array', 'json_object', 'jsonb_object',
  'json_array_length', 'jsonb_array_length', 'json_each', 'jsonb_each', 'json_each_text',
  'jsonb_each_text', 'json_extract_path', 'jsonb_extract_path', 'json_extract_path_text',
  'jsonb_extract_path_text', 'json_object_keys', 'jsonb_object_keys', 'json_array_elements',
  'jsonb_array_elements', 'json_array_elements_text', 'jsonb_array_elements_text', 'json_typeof',
  'jsonb_typeof', 'json_strip_nulls', 'jsonb_strip_nulls', 'jsonb_pretty', 'jsonb_set',
  'jsonb_set_lax', 'jsonb_insert', 'jsonb_concat', 'jsonb_path_exists', 'jsonb_path_match',
  'jsonb_path_query', 'jsonb_path_query_array', 'jsonb_path_query_first', 'json_populate_record',
  'jsonb_populate_record', 'json_populate_recordset', 'jsonb_populate_recordset',
  'json_to_record', 'jsonb_to_record', 'json_to_recordset', 'jsonb_to_recordset',
  'jsonb_contains', 'jsonb_exists', 'json_scalar', 'json_serialize',
  // arrays and ranges
  'array_length', 'array_upper', 'array_lower', 'array_dims', 'array_ndims', 'cardinality',
  'array_append', 'array_prepend', 'array_cat', 'array_position', 'array_positions',
  'array_remove', 'array_replace', 'array_fill', 'array_reverse', 'array_sort', 'array_shuffle',
  'array_sample', 'trim_array', 'unnest', 'generate_series', 'generate_subscripts', 'lower_inc',
  'upper_inc', 'lower_inf', 'upper_inf', 'isempty', 'range_merge', 'multirange',
  // misc pure
  'coalesce', 'nullif', 'greatest', 'least', 'num_nulls', 'num_nonnulls', 'gen_random_uuid',
  'uuidv4', 'uuidv7', 'uuid_extract_timestamp', 'uuid_extract_version', 'host', 'masklen',
  'network', 'family', 'abbrev', 'broadcast', 'netmask', 'inet_same_family', 'xpath',
  'xpath_exists', 'xml_is_well_formed', 'xml_is_well_formed_document',
  'xml_is_well_formed_content', 'xmlcomment', 'xmlconcat', 'xmltext', 'to_tsvector',
  'to_tsquery', 'plainto_tsquery', 'phraseto_tsquery', 'websearch_to_tsquery', 'ts_rank',
  'ts_rank_cd', 'ts_headline', 'setweight', 'strip', 'numnode', 'querytree', 'tsvector_to_array',
  'array_to_tsvector', 'get_bit', 'get_byte', 'set_bit', 'set_byte', 'bit_count',
  // session and catalog information (read-only)
  'current_database', 'current_catalog', 'current_schema', 'current_schemas', 'current_user',
  'current_role', 'session_user', 'user', 'current_setting', 'version', 'pg_backend_pid',
  'inet_client_addr', 'inet_client_port', 'inet_server_addr', 'inet_server_port', 'pg_advisory_unlock_all',
  'pg_postmaster_start_time', 'pg_conf_load_time', 'pg_is_in_recovery', 'pg_typeof',
  'pg_column_size', 'pg_column_compression', 'pg_relation_size', 'pg_total_relation_size',
  'pg_table_size', 'pg_indexes_size', 'pg_database_size', 'pg_size_pretty', 'pg_size_bytes',
  'pg_relation_filenode', 'pg_encoding_to_char', 'pg_char_to_encoding', 'pg_table_is_visible',
  'pg_type_is_visible', 'pg_function_is_visible', 'pg_get_viewdef', 'pg_get_indexdef',
  'pg_get_constraintdef', 'pg_get_expr', 'pg_get_userbyid', 'pg_get_functiondef',
  'pg_get_function_arguments', 'pg_get_function_identity_arguments', 'pg_get_function_result',
  'pg_get_triggerdef', 'pg_get_ruledef', 'pg_get_serial_sequence', 'pg_get_statisticsobjdef',
  'pg_get_statisticsobjdef_columns', 'pg_get_partkeydef', 'pg_get_partition_constraintdef',
  // catalog readers psql's \d family and GUI clients call (describe a table, its partitions, publications)
  'pg_get_statisticsobjdef_expressions', 'pg_get_function_sqlbody', 'pg_partition_ancestors',
  'pg_partition_root', 'pg_partition_tree', 'pg_relation_is_publishable', 'pg_get_publication_tables',
  'pg_statistics_obj_is_visible', 'pg_conversion_is_visible', 'pg_column_is_updatable',
  'pg_relation_is_updatable', 'pg_describe_object', 'pg_identify_object', 'pg_identify_object_as_address',
  'pg_get_object_address', 'pg_sequence_parameters', 'pg_sequence_last_value', 'pg_show_all_settings',
  'pg_settings_get_flags', 'pg_available_extensions', 'pg_available_extension_versions',
  'pg_opfamily_is_visible', 'pg_ts_dict_is_visible', 'pg_ts_parser_is_visible', 'pg_ts_template_is_visible',
  'ts_token_type', 'ts_parse', 'ts_debug', 'getdatabaseencoding', 'pg_client_encoding',
  // what pg_dump reads the catalogs with
  'acldefault', 'aclexplode', 'makeaclitem', 'pg_current_snapshot', 'txid_current_snapshot',
  'pg_snapshot_xmin', 'pg_snapshot_xmax', 'pg_snapshot_xip', 'txid_snapshot_xmin', 'txid_snapshot_xmax',
  'txid_snapshot_xip',
  'pg_get_keywords', 'pg_get_replica_identity_index', 'pg_my_temp_schema', 'pg_is_other_temp_schema',
  'pg_current_xact_id_if_assigned', 'pg_has_role', 'has_table_privilege', 'has_column_privilege',
  'has_any_column_privilege', 'has_database_privilege', 'has_schema_privilege',
  'has_sequence_privilege', 'has_function_privilege', 'has_type_privilege',
  'has_tablespace_privilege', 'has_foreign_data_wrapper_privilege', 'has_server_privilege',
  'has_language_privilege', 'has_parameter_privilege', 'row_security_active', 'format_type',
  'obj_description', 'col_description', 'shobj_description', 'to_regclass', 'to_regtype',
  'to_regtypemod', 'to_regproc', 'to_regprocedure', 'to_regoper', 'to_regoperator',
  'to_regnamespace', 'to_regrole', 'to_regcollation', 'pg_index_column_has_property',
  'pg_index_has_property', 'pg_indexam_has_property', 'pg_options_to_table',
  'pg_tablespace_location', 'pg_collation_is_visible', 'pg_opclass_is_visible',
  'pg_operator_is_visible', 'pg_ts_config_is_visible',
  'pg_input_is_valid', 'pg_input_error_info',
  // TABLESAMPLE methods shipped with PostgreSQL (recorded as `tablesample:<method>`)
  'tablesample:system', 'tablesample:bernoulli',
]);

/**
 * Whether a call to the function named by `parts` (the parser's name list, already folded the
 * way PostgreSQL folds unquoted identifiers) is known to be read-only.
 */
export function isSafeFunction(parts: readonly string[]): boolean {
  if (parts.length === 1) return SAFE.has(parts[0] as string);
  if (parts.length === 2 && parts[0] === 'pg_catalog') return SAFE.has(parts[1] as string);
  if (parts.length === 2 && parts[0] === 'information_schema') return INFORMATION_SCHEMA_SAFE.has(parts[1] as string);
  return false;
}

/**
 * The information schema's own helper functions (plain SQL over the catalogs), which JDBC's
 * DatabaseMetaData calls (`getPrimaryKeys`, `getIndexInfo`): safe only schema-qualified, since
 * `information_schema` belongs to the bootstrap superuser and no one else can add to it.
 */
const INFORMATION_SCHEMA_SAFE = new Set<string>([
  '_pg_expandarray', '_pg_index_position', '_pg_truetypid', '_pg_truetypmod', '_pg_char_max_length',
  '_pg_char_octet_length', '_pg_numeric_precision', '_pg_numeric_precision_radix', '_pg_numeric_scale',
  '_pg_datetime_precision', '_pg_interval_type',
]);
