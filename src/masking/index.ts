/**
 * The masking engine shared by every connector and by the audit recorder: one detector set,
 * applied to DB rows, JSON bodies and free text alike.
 */
export { createMasker, defaultMasker } from './create-masker.js';
export type { ColumnAction, ColumnPlan, ColumnRef, Masker, MaskerOptions } from './create-masker.js';
export { MaskStats } from './stats.js';
export { COLUMN_STYLE_NAMES, DETECTOR_NAMES, GROUPS as DETECTOR_GROUPS, STYLE_NAMES } from './detectors.js';
export type { ColumnStyleName, DetectorName, StyleName } from './detectors.js';
export { VALIDATOR_NAMES } from './validators.js';
export { LineCarry, MAX_HOLD, utf8Boundary } from './line-carry.js';
export { hasDuplicateKey, mayBeJson, NOT_JSON, spliceJson, tryParse } from './json-splice.js';
export { CsvMasker } from './csv.js';
export { findMaskMarker, MARKER_CARRY } from './markers.js';
export { isReadableText } from './base64-text.js';
export type { CarryOut } from './line-carry.js';
