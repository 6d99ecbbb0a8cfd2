export { createPolicyEngine, sqlAction, decisionErrorCode, BUILTIN_RULES, REVEAL_PROFILE } from './engine.js';
export type { PolicyEngine, PolicyConfig, SqlDecisions, SqlStatementDecision } from './engine.js';
export { RULE_ALIASES, READ_ONLY_VERBS, expandRuleList } from './vocabulary.js';
export { readOnlyViolation } from './read-only-guard.js';
export { parserSafetyViolation, unsafeServerSetting, isSupportedClientEncoding, shadowsCatalog, clip } from './sql/parser-safety.js';
export { maskedColumnViolation, starOrderingViolation, type DescribedColumn } from './sql/masked-columns.js';
export type { ProtectsColumn, HasTableRules, RelationColumns } from './sql/masked-columns.js';
export { initSqlParser, isSqlParserReady, fingerprintSql, analyzeSql, extractSqlFacts, clearSqlCache, SQL_VERBS, isSqlVerb, isSafeFunction } from './sql/index.js';
export type { StatementFacts, SqlAnalysis, SqlVerb, CopyFormat } from './sql/index.js';
