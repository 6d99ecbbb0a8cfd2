export { initSqlParser, isSqlParserReady, fingerprintSql } from './parser.js';
export { analyzeSql, extractSqlFacts, clearSqlCache } from './facts.js';
export type { StatementFacts, SqlAnalysis, CopyFormat } from './facts.js';
export { SQL_VERBS, isSqlVerb } from './verbs.js';
export type { SqlVerb } from './verbs.js';
export { isSafeFunction } from './safe-functions.js';
