/**
 * Build a masker from a connection's `mask:` config. Everything is validated and compiled here,
 * once: detector bitmask and trigger table, styles, column globs, custom regexes, the HMAC key.
 * Misconfiguration throws SLUICE_CONFIG_INVALID naming the config path, at startup.
 */
import { SluiceError } from '../errors.js';
import { maskSchema, type RawMask } from '../config/schema.js';
import { resolveSecret, type Secret } from '../config/secret.js';
import { COLUMN_STYLE_NAMES, DEFAULT_SET, DETECTORS, DETECTOR_NAMES, GROUPS, STYLE_NAMES, bit, detectorIndex, type ColumnStyleName, type StyleName } from './detectors.js';
import { decodeBase64Text, encodeBase64Like, mayBeBase64Text } from './base64-text.js';
import { decodeHexText, encodeHexLike, mayBeHexText } from './hex-text.js';
import { decodeEntities, type Decoded } from './entities.js';
import { foldText } from './fold.js';
import { mayBeJson, NOT_JSON, spliceJson, tryParse } from './json-splice.js';
import { compileGlob, type CompiledGlob } from './glob.js';
import { Hits, KEY_NONE, Scanner, classifyKey, isSecretKind } from './scan.js';
import { MaskStats } from './stats.js';
import { applyStyle, createHasher, type Hasher, type StyleTarget } from './styles.js';
import { VALIDATOR_NAMES, validatorFor, type ValidatorName } from './validators.js';

export interface ColumnRef {
  readonly schema?: string;
  readonly table?: string;
  readonly column: string;
  /**
   * The table columns this one reads, when its relation is derived from others: a view's or
   * materialized view's column maps to the column it selects (and on, through views of views), an
   * inheritance child's or partition's column to the same column of each ancestor. Column rules
   * and secret-like names of any of them apply here too, as if the table were queried directly.
   */
  readonly origins?: readonly ColumnRef[];
  /**
   * A view's column computed by an expression, in a view whose definition computes on a masked
   * column (`upper(password) AS p`, a filter on it): which output carries the masked value cannot
   * be told, so every such column is replaced (`redact`) unless a rule names the column itself.
   */
  readonly derivedFromMasked?: boolean;
}

/** Shorter values are not decoded as base64 (base64-text.ts decodes from 16 characters). */
const MIN_BASE64_TEXT = 16;

/** Whether bytes could be base64 worth decoding: long enough, and only its alphabet (and line breaks). */
function mayBeBase64(buf: Uint8Array, start: number, end: number): boolean {
  if (end - start < MIN_BASE64_TEXT) return false;
  for (let i = start; i < end; i++) {
    const b = buf[i]!;
    const alpha = (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || (b >= 0x30 && b <= 0x39);
    if (!alpha && b !== 0x2b && b !== 0x2f && b !== 0x3d && b !== 0x2d && b !== 0x5f && b !== 0x0a && b !== 0x0d) return false;
  }
  return true;
}

/** The names column rules match a column by: `schema.table.column`, `table.column`, `column`. */
function columnForms(c: ColumnRef, into: string[]): string[] {
  if (c.schema !== undefined && c.table !== undefined) into.push(`${c.schema}.${c.table}.${c.column}`);
  if (c.table !== undefined) into.push(`${c.table}.${c.column}`);
  into.push(c.column);
  return into;
}

/** A plan cache key for a column, origins included. */
function columnKey(c: ColumnRef): string {
  let key = `${c.schema ?? ''}\u0000${c.table ?? ''}\u0000${c.column}`;
  if (c.derivedFromMasked === true) key += '\u0000!';
  if (c.origins !== undefined) for (const o of c.origins) key += `\u0002${columnKey(o)}`;
  return key;
}

/** What happens to a column: scanned by detectors, replaced by a rule, sent as NULL, or kept. */
export type ColumnAction = 'scan' | 'replace' | 'null' | 'keep';

export interface ColumnPlan {
  /** false → nothing in this result set can change; forward rows untouched. */
  readonly active: boolean;
  readonly actions: readonly ColumnAction[];
  /** Mask one text value of column `index`: the SAME string when unchanged, `null` to send SQL NULL. */
  maskValue(index: number, value: string, stats?: MaskStats): string | null;
  /**
   * Mask the UTF-8 bytes `buf[start, end)` of column `index` without decoding them when no byte
   * can start a detection: `undefined` = forward the original bytes, `null` = send SQL NULL,
   * a Buffer = the replacement (recompute the length).
   */
  maskBytes(index: number, buf: Buffer, start?: number, end?: number, stats?: MaskStats): Buffer | null | undefined;
  /** Binary-format values of non-text types cannot be scanned: pass them, or NULL them (config `binary: null`, or any column rule). */
  binaryAction(index: number): 'pass' | 'null';
}

export interface Masker {
  /** Enabled detector names (built-in and custom). */
  readonly detectors: readonly string[];
  /** Nothing can ever be masked: no detector and no column rule (`detectors: []`). */
  readonly inert: boolean;
  /**
   * Whether a column named `column`, in any of `tables` (as a statement names them) or in an
   * unknown one, has its values masked by name: a column rule other than `keep`, or a secret-like
   * name (password, token, …) while detectors run. Used to refuse computing on such a column.
   */
  protectsColumn(column: string, tables: readonly string[]): boolean;
  /**
   * Whether a column rule other than `keep` names one of `tables` (as a statement names them):
   * `public.customers.email`, `customers.*`, `billing.*.iban`. JSON of a whole row
   * (`row_to_json(c)`) names its fields without their table, so only rules on bare names reach it.
   */
  hasTableRules(tables: readonly string[]): boolean;
  /** Free text (statements, error messages, logs, COPY lines): the same string when nothing matched. */
  maskText(text: string, stats?: MaskStats): string;
  /**
   * A value that may be base64 or hex of text (a ConfigMap's `binaryData`, a file from an API,
   * `encode(…, 'hex')` output): masked inside and encoded again the same way; the same string when
   * it is not such a value or nothing matched. `maskJson` applies this to every string value the
   * detectors left unchanged.
   */
  maskEncodedText(value: string, stats?: MaskStats, column?: string): string;
  /**
   * Parsed JSON (HTTP/Kubernetes bodies): detectors on every string and number; column rules
   * apply to field names (bare key or dotted path); secret-like keys mask their values. Returns
   * the same value when nothing changed, else a copy of the changed branches.
   */
  maskJson(value: unknown, stats?: MaskStats): unknown;
  /**
   * Text that may be a JSON object or array (a WebSocket message, a tool result): its fields masked
   * as `maskJson` masks them, the text kept as written but for the masked values; text that is not
   * JSON, or JSON in which nothing was masked, is masked as text. The same string when nothing matched.
   */
  maskJsonText(text: string, stats?: MaskStats): string;
  /** One plan per result set (RowDescription); plans are cached by column names. */
  planColumns(columns: readonly ColumnRef[]): ColumnPlan;
}

export interface MaskerOptions {
  /** Resolves `hashKey` references (`env:`, `file:`); defaults to resolveSecret with process.env. Pass `config.secret`. */
  readonly secret?: (raw: string, where: string) => Secret;
  /** Config path used in errors, e.g. `connections[0].mask`. */
  readonly where?: string;
}

interface CustomDetector {
  readonly id: number;
  readonly re: RegExp;
  readonly validate: (v: string) => boolean;
}

interface ColumnRule {
  readonly glob: CompiledGlob;
  readonly style: ColumnStyleName;
}

/** Keys that name the setting in a name/value pair, and keys that hold its value. */
const PAIR_NAME_KEYS = ['name', 'Name', 'key', 'Key', 'ParameterKey', 'ParameterName', 'variable'] as const;
const PAIR_VALUE_KEYS = ['value', 'Value', 'ParameterValue', 'SecretValue'] as const;

const COLUMN_TARGET: StyleTarget = { redacted: '[REDACTED]', partial: 'last4', normalise: 'none' };
const PLAN_CACHE_MAX = 512;
const JSON_MAX_DEPTH = 256;
/** JSON inside a string longer than this is masked as text only (a body is at most maxResponseBytes anyway). */
const MAX_EMBEDDED_JSON = 4 * 1024 * 1024;
/** Strings that looked like JSON and did not parse, per maskJson call, before the rest are only text. */
const MAX_EMBEDDED_FAILURES = 16;

// Per-column codes in a plan.
const A_SCAN = 0;
const A_REPLACE = 1;
const A_NULL = 2;
const A_KEEP = 3;
const ACTION_NAMES: readonly ColumnAction[] = ['scan', 'replace', 'null', 'keep'];

function invalid(message: string): never {
  throw new SluiceError('SLUICE_CONFIG_INVALID', message);
}

function partialKind(name: string): StyleTarget['partial'] {
  if (name === 'credit_card') return 'card';
  if (name === 'us_ssn') return 'ssn';
  if (name === 'email') return 'email';
  if (name === 'iban') return 'iban';
  return 'last4';
}

export function createMasker(mask: RawMask | undefined, options: MaskerOptions = {}): Masker {
  const where = options.where ?? 'mask';
  const parsed = maskSchema.safeParse(mask ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const path = issue === undefined ? '' : issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('');
    invalid(`${where}${path}: ${issue?.message ?? 'invalid mask config'}`);
  }
  const cfg = parsed.data;

  // Detectors: names or groups; omitted → the default set (everything except IP addresses).
  let enabled = 0;
  if (cfg.detectors === undefined) enabled = DEFAULT_SET;
  const customNames = new Set((cfg.custom ?? []).map((c) => c.name));
  (cfg.detectors ?? []).forEach((name, i) => {
    const group = GROUPS[name];
    if (group !== undefined) enabled |= group;
    else if (detectorIndex(name) >= 0) enabled |= bit(detectorIndex(name));
    else if (!customNames.has(name)) {
      invalid(`${where}.detectors[${i}]: unknown detector "${name}" (known: ${[...Object.keys(GROUPS), ...DETECTOR_NAMES].join(', ')})`);
    }
  });

  // Styles: defaults per detector, then group overrides, then per-name overrides.
  const names: string[] = [...DETECTOR_NAMES];
  const styles: StyleName[] = DETECTORS.map((d) => d.style);
  const targets: StyleTarget[] = DETECTORS.map((d) => ({ redacted: `[REDACTED:${d.name}]`, partial: partialKind(d.name), normalise: d.normalise }));
  const checkStyle = (style: string, at: string): StyleName => {
    if (!(STYLE_NAMES as readonly string[]).includes(style)) invalid(`${at}: unknown style "${style}" (expected one of ${STYLE_NAMES.join(', ')})`);
    return style as StyleName;
  };

  // Custom detectors get ids after the built-ins.
  const custom: CustomDetector[] = [];
  (cfg.custom ?? []).forEach((c, i) => {
    const at = `${where}.custom[${i}]`;
    if (detectorIndex(c.name) >= 0 || GROUPS[c.name] !== undefined) invalid(`${at}.name: "${c.name}" is a built-in detector or group name`);
    if (names.indexOf(c.name) >= DETECTOR_NAMES.length) invalid(`${at}.name: "${c.name}" is defined twice`);
    let re: RegExp;
    try {
      re = new RegExp(c.pattern, `${c.flags ?? ''}g`);
    } catch (err) {
      invalid(`${at}.pattern: not a valid regular expression (${err instanceof Error ? err.message : String(err)})`);
    }
    const vname = c.validator ?? 'none';
    if (!(VALIDATOR_NAMES as readonly string[]).includes(vname)) invalid(`${at}.validator: unknown validator "${vname}" (expected one of ${VALIDATOR_NAMES.join(', ')})`);
    const id = names.length;
    names.push(c.name);
    styles.push(checkStyle(c.style ?? 'redact', `${at}.style`));
    targets.push({ redacted: `[REDACTED:${c.name}]`, partial: 'last4', normalise: 'none' });
    // Custom detectors run only when listed in `detectors`, or when `detectors` is omitted.
    if (cfg.detectors === undefined || cfg.detectors.includes(c.name)) custom.push({ id, re, validate: validatorFor(vname as ValidatorName) });
  });

  const styleEntries = Object.entries(cfg.styles ?? {});
  for (const [key, style] of styleEntries) {
    const group = GROUPS[key];
    if (group === undefined) continue;
    const st = checkStyle(style, `${where}.styles.${key}`);
    for (let d = 0; d < DETECTORS.length; d++) if (group & bit(d)) styles[d] = st;
  }
  for (const [key, style] of styleEntries) {
    if (GROUPS[key] !== undefined) continue;
    const id = names.indexOf(key);
    if (id < 0) invalid(`${where}.styles.${key}: unknown detector "${key}"`);
    styles[id] = checkStyle(style, `${where}.styles.${key}`);
  }

  const rules: ColumnRule[] = Object.entries(cfg.columns ?? {}).map(([glob, style]) => {
    if (!(COLUMN_STYLE_NAMES as readonly string[]).includes(style)) {
      invalid(`${where}.columns["${glob}"]: unknown style "${style}" (expected one of ${COLUMN_STYLE_NAMES.join(', ')})`);
    }
    return { glob: compileGlob(glob), style: style as ColumnStyleName };
  });

  const usesHash = styles.some((s, id) => s === 'hash' && (id >= DETECTORS.length || (enabled & bit(id)) !== 0)) || rules.some((r) => r.style === 'hash');
  let hasher: Hasher | undefined;
  if (cfg.hashKey !== undefined) {
    const secret = (options.secret ?? ((raw: string, at: string) => resolveSecret(raw, at)))(cfg.hashKey, `${where}.hashKey`);
    const key = secret.reveal();
    if (key.length < 16) invalid(`${where}.hashKey: the key must be at least 16 characters`);
    hasher = createHasher(key);
  } else if (usesHash) {
    invalid(`${where}.hashKey: the hash style needs a key (e.g. hashKey: env:SLUICE_MASK_KEY)`);
  }

  return new MaskerImpl({
    enabled,
    names,
    styles,
    targets,
    custom,
    rules,
    hasher,
    binary: cfg.binary ?? 'pass',
  });
}

let defaultInstance: Masker | undefined;

/** All built-in detectors except IP addresses, default styles; no column rules. */
export function defaultMasker(): Masker {
  defaultInstance ??= createMasker({});
  return defaultInstance;
}

interface Compiled {
  readonly enabled: number;
  readonly names: readonly string[];
  readonly styles: readonly StyleName[];
  readonly targets: readonly StyleTarget[];
  readonly custom: readonly CustomDetector[];
  readonly rules: readonly ColumnRule[];
  readonly hasher: Hasher | undefined;
  readonly binary: 'pass' | 'null';
}

class MaskerImpl implements Masker {
  readonly detectors: readonly string[];
  readonly #c: Compiled;
  readonly #scanner: Scanner;
  readonly #plans = new Map<string, ColumnPlan>();
  readonly #plansByArray = new WeakMap<readonly ColumnRef[], ColumnPlan>();
  readonly #keyKinds = new Map<string, number>();
  /** Strings of the current maskJson call that looked like JSON and did not parse (maskEmbeddedJson). */
  #embeddedFailures = 0;
  readonly #fieldRules = new Map<string, ColumnRule | null>();
  readonly #protects = new Map<string, boolean>();

  constructor(c: Compiled) {
    this.#c = c;
    this.#scanner = new Scanner(c.enabled);
    this.detectors = [...c.names.filter((_, id) => id < DETECTORS.length && (c.enabled & bit(id)) !== 0), ...c.custom.map((d) => c.names[d.id]!)];
  }

  get active(): boolean {
    return this.#c.enabled !== 0 || this.#c.custom.length > 0;
  }

  get inert(): boolean {
    return !this.active && this.#c.rules.length === 0;
  }

  protectsColumn(column: string, tables: readonly string[]): boolean {
    // On the path of every statement: the answer per (column, tables) is cached, bounded.
    const key = tables.length === 0 ? column : `${column}\u0000${tables.join('\u0000')}`;
    let hit = this.#protects.get(key);
    if (hit === undefined) {
      hit = this.#protectsUncached(column, tables);
      if (this.#protects.size >= 4096) this.#protects.clear();
      this.#protects.set(key, hit);
    }
    return hit;
  }

  hasTableRules(tables: readonly string[]): boolean {
    const forms: string[] = [];
    for (const t of tables) forms.push(...(t.includes('.') ? [t, t.slice(t.lastIndexOf('.') + 1)] : [`public.${t}`, t]));
    return this.#c.rules.some((r) => {
      if (r.style === 'keep') return false;
      const source = r.glob.source;
      // A bare name (`password`, `*.ssn`) applies to JSON fields of that name as well.
      if (!(source.startsWith('*.') ? source.slice(2) : source).includes('.')) return false;
      // Rare (a whole row as JSON), so compiled per call: does the part before the column match a table?
      return compileGlob(source.slice(0, source.lastIndexOf('.'))).test(forms);
    });
  }

  /** As a result row would be planned (Plan): the first matching rule decides, else the name. */
  #protectedIn(forms: readonly string[], byName: boolean): boolean {
    const rule = this.ruleFor(forms);
    return rule !== undefined ? rule.style !== 'keep' : byName;
  }

  #protectsUncached(column: string, tables: readonly string[]): boolean {
    const byName = this.active && isSecretKind(this.keyKind(column));
    if (tables.length === 0) return this.#protectedIn([column], byName);
    for (const t of tables) {
      const qualified = t.includes('.') ? [`${t}.${column}`, `${t.slice(t.lastIndexOf('.') + 1)}.${column}`] : [`public.${t}.${column}`, `${t}.${column}`];
      if (this.#protectedIn([...qualified, column], byName)) return true;
    }
    return false;
  }

  get triggers(): Uint8Array {
    return this.#scanner.triggers;
  }

  get hasCustom(): boolean {
    return this.#c.custom.length > 0;
  }

  maskText(text: string, stats?: MaskStats): string {
    return this.maskKeyed(text, KEY_NONE, stats, undefined);
  }

  maskJsonText(text: string, stats?: MaskStats): string {
    this.#embeddedFailures = 0;
    const inner = this.maskEmbeddedJson(text, '', 0, stats);
    return inner !== text ? inner : this.maskKeyed(text, KEY_NONE, stats, undefined);
  }

  /** Scan `text` (as the value of a key of class `keyKind`) and apply styles; same instance if nothing hit. */
  maskKeyed(text: string, keyKind: number, stats: MaskStats | undefined, column: string | undefined): string {
    if (text.length === 0) return text;
    // HTML character references (`&quot;`, `&#61;`, `&#64;`): scanned decoded, replaced in place.
    const decoded = text.indexOf('&') >= 0 ? decodeEntities(text) : undefined;
    if (decoded !== undefined) return this.maskDecoded(text, decoded.text, decoded.map, keyKind, stats, column);
    const hits = keyKind === KEY_NONE ? this.#scanner.scan(text) : this.#scanner.scanKeyed(text, keyKind);
    // Characters that can hide a value (`４１１１ …`, `٤١١١`, zero-width spaces): scanned again folded (fold.ts).
    if (this.#scanner.folds) {
      const folded = foldText(text);
      if (folded !== undefined) return this.maskDecoded(text, folded.text, folded.map, keyKind, stats, column);
    }
    if (this.#c.custom.length > 0) return this.applyWithCustom(text, hits, stats, column);
    if (hits.n === 0) return text;
    // Pieces are joined in batches: on dense text, one array of every piece kept them all alive
    // through young-generation GCs (measured: GC was half the time at a hit every 40 bytes).
    let parts: string[] = [];
    let chunks: string[] | undefined;
    let pos = 0;
    for (let k = 0; k < hits.n; k++) {
      const start = hits.start[k]!;
      const end = hits.end[k]!;
      const id = hits.id[k]!;
      if (start > pos) parts.push(text.slice(pos, start));
      parts.push(this.replace(id, text, start, end));
      pos = end;
      stats?.add(this.#c.names[id]!, column);
      if (parts.length >= 256) {
        (chunks ??= []).push(parts.join(''));
        parts = [];
      }
    }
    if (pos < text.length) parts.push(text.slice(pos));
    if (chunks === undefined) return parts.length === 1 ? parts[0]! : parts.join('');
    chunks.push(parts.join(''));
    return chunks.join('');
  }

  private replace(id: number, text: string, start: number, end: number): string {
    return applyStyle(this.#c.styles[id]!, this.#c.targets[id]!, text, this.#c.hasher, start, end);
  }

  /** Custom detectors run their own regex after the built-in pass; overlapping hits keep the earlier (then longer) one. */
  private applyWithCustom(text: string, hits: Hits, stats: MaskStats | undefined, column: string | undefined): string {
    const all = this.withCustom(text, hits);
    if (all.length === 0) return text;
    let out = '';
    let pos = 0;
    for (const [start, end, id] of all) {
      if (start < pos) continue;
      out += text.slice(pos, start) + this.replace(id, text, start, end);
      pos = end;
      stats?.add(this.#c.names[id]!, column);
    }
    return out + text.slice(pos);
  }

  /** The built-in hits and the custom detectors' matches in `text`, by start (then longest first). */
  private withCustom(text: string, hits: Hits): Array<[number, number, number]> {
    const all: Array<[number, number, number]> = [];
    for (let k = 0; k < hits.n; k++) all.push([hits.start[k]!, hits.end[k]!, hits.id[k]!]);
    for (const d of this.#c.custom) {
      d.re.lastIndex = 0;
      let m: RegExpExecArray | null;
      while ((m = d.re.exec(text)) !== null) {
        if (m[0].length === 0) {
          d.re.lastIndex++;
          continue;
        }
        if (d.validate(m[0])) all.push([m.index, m.index + m[0].length, d.id]);
      }
    }
    if (this.#c.custom.length > 0) all.sort((a, b) => a[0] - b[0] || b[1] - a[1]);
    return all;
  }

  /**
   * Text scanned as another view of it — HTML character references decoded, characters that can
   * hide a value folded (fold.ts), or both; `map`: each view offset's offset in `text`, undefined
   * when they are the same — each replacement, made from the view, written over the original span
   * it came from; the rest keeps its encoding.
   */
  private maskDecoded(text: string, decodedView: string, map: Decoded['map'] | undefined, keyKind: number, stats: MaskStats | undefined, column: string | undefined): string {
    let view = decodedView;
    let hits = keyKind === KEY_NONE ? this.#scanner.scan(view) : this.#scanner.scanKeyed(view, keyKind);
    const folded = this.#scanner.folds ? foldText(view) : undefined;
    if (folded !== undefined) {
      // A folded view of the decoded view: its offsets map through both.
      const inner = folded.map;
      if (inner !== undefined) map = map === undefined ? inner : inner.map((k) => map![k]!);
      view = folded.text;
      hits = keyKind === KEY_NONE ? this.#scanner.scan(view) : this.#scanner.scanKeyed(view, keyKind);
    }
    const all = this.withCustom(view, hits);
    if (all.length === 0) return text;
    const at = (i: number): number => (map === undefined ? i : map[i]!);
    let out = '';
    let pos = 0;
    let last = 0;
    for (const [start, end, id] of all) {
      if (start < last) continue;
      out += text.slice(pos, at(start)) + this.replace(id, view, start, end);
      pos = at(end);
      last = end;
      stats?.add(this.#c.names[id]!, column);
    }
    return out + text.slice(pos);
  }

  /** A column-rule replacement of a whole value. */
  applyRule(style: ColumnStyleName, value: string): string | null {
    switch (style) {
      case 'null':
        return null;
      case 'keep':
        return value;
      default:
        return applyStyle(style, COLUMN_TARGET, value, this.#c.hasher);
    }
  }

  ruleFor(forms: readonly string[]): ColumnRule | undefined {
    for (const r of this.#c.rules) if (r.glob.test(forms)) return r;
    return undefined;
  }

  keyKind(key: string): number {
    let k = this.#keyKinds.get(key);
    if (k === undefined) {
      k = classifyKey(key);
      if (this.#keyKinds.size > 4096) this.#keyKinds.clear();
      this.#keyKinds.set(key, k);
    }
    return k;
  }

  maskJson(value: unknown, stats?: MaskStats): unknown {
    this.#embeddedFailures = 0;
    return this.walk(value, KEY_NONE, '', 0, stats);
  }

  private walk(v: unknown, keyKind: number, path: string, depth: number, stats: MaskStats | undefined): unknown {
    switch (typeof v) {
      case 'string': {
        // JSON inside a string (an MCP tool result's `text`, a logged request body, a double-encoded
        // column) is masked as a body is, by its fields and values. When that changed nothing it is
        // scanned as text, as before (a second pass over masked output would mask `***-**-6789`
        // again as the value of `"ssn":`).
        if (keyKind === KEY_NONE) {
          const inner = this.maskEmbeddedJson(v, path, depth, stats);
          if (inner !== v) return inner;
        }
        const out = this.maskKeyed(v, keyKind, stats, path === '' ? undefined : path);
        return out === v ? this.maskEncodedText(v, stats, path === '' ? undefined : path) : out;
      }
      case 'number':
      case 'bigint': {
        if (typeof v === 'number' && !Number.isFinite(v)) return v;
        const str = String(v);
        const out = this.maskKeyed(str, keyKind, stats, path === '' ? undefined : path);
        return out === str ? v : out;
      }
      case 'object':
        break;
      default:
        return v;
    }
    if (v === null) return v;
    if (depth >= JSON_MAX_DEPTH) {
      // Deeper than any real body; fail closed rather than recurse without bound.
      stats?.add('depth_limit', path === '' ? undefined : path);
      return '[REDACTED:depth_limit]';
    }
    if (Array.isArray(v)) {
      let copy: unknown[] | undefined;
      // An argument vector (`["--db-password", "hunter2"]`): a flag named like a secret keys the next item.
      let flag = KEY_NONE;
      for (let i = 0; i < v.length; i++) {
        const item: unknown = v[i];
        const kind = flag !== KEY_NONE && typeof item === 'string' && !item.startsWith('-') ? flag : keyKind;
        flag = typeof item === 'string' ? this.flagKind(item) : KEY_NONE;
        const out = this.walk(item, kind, path, depth + 1, stats);
        if (out !== item) {
          copy ??= v.slice();
          copy[i] = out;
        }
      }
      return copy ?? v;
    }
    const proto: unknown = Object.getPrototypeOf(v);
    if (proto !== Object.prototype && proto !== null) return v;
    const obj = v as Record<string, unknown>;
    let copy: Record<string, unknown> | undefined;
    const hasRules = this.#c.rules.length > 0;
    const named = this.namedPair(obj, hasRules);
    for (const key of Object.keys(obj)) {
      const item = obj[key];
      const childPath = path === '' ? key : `${path}.${key}`;
      let out: unknown;
      const pair = named !== undefined && key === named.valueKey;
      const rule = hasRules ? (this.fieldRule(childPath, key) ?? (pair ? this.fieldRule(named.name, named.name) : undefined)) : undefined;
      if (rule !== undefined) {
        out = this.applyFieldRule(rule, item);
        if (out !== item) stats?.add('column_rule', childPath);
      } else {
        out = this.walk(item, pair ? named.kind : this.keyKind(key), childPath, depth + 1, stats);
      }
      if (out !== item) {
        copy ??= { ...obj };
        copy[key] = out;
      }
    }
    return copy ?? v;
  }

  /**
   * A string that is a JSON object or array, with its fields masked by the same rules (field rules
   * on bare names and on the dotted path continued from the string's own, secret-like keys,
   * name/value pairs), written back as it was written but for the masked values; `v` itself when
   * it is not JSON or nothing in it changed. One level of nesting counts as one level of depth.
   */
  private maskEmbeddedJson(v: string, path: string, depth: number, stats: MaskStats | undefined): string {
    if (v.length < 2 || v.length > MAX_EMBEDDED_JSON || depth + 1 >= JSON_MAX_DEPTH || !mayBeJson(v, true)) return v;
    // A failed JSON.parse costs an exception (tens of µs): a body of many near-JSON strings
    // would cost that each, so after a few failures in one body the rest are text.
    if (this.#embeddedFailures >= MAX_EMBEDDED_FAILURES) return v;
    const parsed = tryParse(v);
    if (parsed === NOT_JSON) {
      this.#embeddedFailures++;
      return v;
    }
    const masked = this.walk(parsed, KEY_NONE, path, depth + 1, stats);
    // Spliced even when unchanged: a repeated key's earlier value, which the walk never saw, is dropped.
    return spliceJson(v, parsed, masked, (digits) => this.maskText(digits, stats));
  }

  /**
   * A name/value pair (`{"name": "DB_PASSWORD", "value": "…"}`: Kubernetes and ECS env, AWS
   * parameter lists, CI variables): the value is masked as if keyed by the name, by its secret-like
   * name or a rule on it.
   */
  private namedPair(obj: Record<string, unknown>, hasRules: boolean): { valueKey: string; name: string; kind: number } | undefined {
    for (const nk of PAIR_NAME_KEYS) {
      const name = obj[nk];
      if (typeof name !== 'string' || name.length === 0 || name.length > 128) continue;
      const kind = this.keyKind(name);
      if (kind === KEY_NONE && !(hasRules && this.ruleFor([name]) !== undefined)) return undefined;
      for (const vk of PAIR_VALUE_KEYS) if (vk in obj) return { valueKey: vk, name, kind };
      return undefined;
    }
    return undefined;
  }

  /** `--db-password`, `-password`: the secret-like kind of a command-line flag, else KEY_NONE. */
  private flagKind(item: string): number {
    if (item.length < 4 || item.length > 64 || item.charCodeAt(0) !== 0x2d) return KEY_NONE;
    const name = item.charCodeAt(1) === 0x2d ? item.slice(2) : item.slice(1);
    return /^[A-Za-z][\w.-]*$/.test(name) ? this.keyKind(name) : KEY_NONE;
  }

  maskEncodedText(v: string, stats?: MaskStats, column?: string): string {
    const b64 = decodeBase64Text(v);
    if (b64 !== undefined) {
      const masked = this.maskKeyed(b64.text, KEY_NONE, stats, column);
      return masked === b64.text ? v : encodeBase64Like(masked, b64, v);
    }
    const hex = decodeHexText(v);
    if (hex === undefined) return v;
    const masked = this.maskKeyed(hex.text, KEY_NONE, stats, column);
    return masked === hex.text ? v : encodeHexLike(masked, hex);
  }

  private fieldRule(path: string, key: string): ColumnRule | undefined {
    const cacheKey = `${path}\u0000${key}`;
    let r = this.#fieldRules.get(cacheKey);
    if (r === undefined) {
      r = this.ruleFor(path === key ? [key] : [path, key]) ?? null;
      if (this.#fieldRules.size > 4096) this.#fieldRules.clear();
      this.#fieldRules.set(cacheKey, r);
    }
    return r ?? undefined;
  }

  private applyFieldRule(rule: ColumnRule, item: unknown): unknown {
    if (rule.style === 'keep' || item === null || item === undefined) return item;
    if (rule.style === 'null') return null;
    if (typeof item === 'string' || typeof item === 'number' || typeof item === 'bigint' || typeof item === 'boolean') {
      return this.applyRule(rule.style, String(item));
    }
    // Objects and arrays under a rule cannot be partially shown; replace the whole branch.
    return COLUMN_TARGET.redacted;
  }

  planColumns(columns: readonly ColumnRef[]): ColumnPlan {
    // The same array (a connection's cached RowDescription) → its plan without building a key.
    const known = this.#plansByArray.get(columns);
    if (known !== undefined) return known;
    let key = '';
    for (const c of columns) key += `${columnKey(c)}\u0001`;
    let plan = this.#plans.get(key);
    if (plan === undefined) {
      plan = new Plan(this, columns, this.#c.binary);
      if (this.#plans.size >= PLAN_CACHE_MAX) this.#plans.clear();
      this.#plans.set(key, plan);
    }
    this.#plansByArray.set(columns, plan);
    return plan;
  }
}

class Plan implements ColumnPlan {
  readonly active: boolean;
  readonly actions: readonly ColumnAction[];
  readonly #m: MaskerImpl;
  readonly #codes: Uint8Array;
  readonly #styles: Array<ColumnStyleName | undefined>;
  readonly #keyKinds: Uint8Array;
  readonly #labels: string[];
  readonly #binaryNull: boolean;
  readonly #triggers: Uint8Array;
  readonly #prefilter: boolean;

  constructor(m: MaskerImpl, columns: readonly ColumnRef[], binary: 'pass' | 'null') {
    this.#m = m;
    const n = columns.length;
    this.#codes = new Uint8Array(n);
    this.#keyKinds = new Uint8Array(n);
    this.#styles = new Array<ColumnStyleName | undefined>(n);
    this.#labels = new Array<string>(n);
    let active = false;
    columns.forEach((c, i) => {
      const forms = columnForms(c, []);
      this.#labels[i] = forms[0]!;
      if (c.origins !== undefined) for (const o of c.origins) columnForms(o, forms);
      const rule = m.ruleFor(forms);
      if (rule !== undefined) {
        this.#styles[i] = rule.style;
        this.#codes[i] = rule.style === 'null' ? A_NULL : rule.style === 'keep' ? A_KEEP : A_REPLACE;
      } else if (c.derivedFromMasked === true) {
        this.#styles[i] = 'redact';
        this.#codes[i] = A_REPLACE;
      } else {
        this.#codes[i] = m.active ? A_SCAN : A_KEEP;
        let kind = m.keyKind(c.column);
        // `password AS pw` in a view: the secret-like name is the origin's.
        if (kind === KEY_NONE && c.origins !== undefined) for (const o of c.origins) if ((kind = m.keyKind(o.column)) !== KEY_NONE) break;
        this.#keyKinds[i] = kind;
      }
      if (this.#codes[i] !== A_KEEP) active = true;
    });
    this.active = active;
    this.actions = Array.from(this.#codes, (code) => ACTION_NAMES[code]!);
    this.#binaryNull = binary === 'null';
    this.#triggers = m.triggers;
    this.#prefilter = !m.hasCustom;
  }

  maskValue(index: number, value: string, stats?: MaskStats): string | null {
    switch (this.#codes[index]) {
      case A_SCAN: {
        const out = this.#m.maskKeyed(value, this.#keyKinds[index]!, stats, this.#labels[index]);
        // Text stored as base64 or hex (an encoded .env, a basic-auth pair, `encode(…, 'hex')`): masked inside its encoding.
        return out === value && (mayBeBase64Text(value) || mayBeHexText(value)) ? this.#m.maskEncodedText(value, stats, this.#labels[index]) : out;
      }
      case A_REPLACE: {
        const out = this.#m.applyRule(this.#styles[index]!, value);
        if (out !== value) stats?.add('column_rule', this.#labels[index]);
        return out;
      }
      case A_NULL:
        stats?.add('column_rule', this.#labels[index]);
        return null;
      case A_KEEP:
        return value;
      default:
        // An index outside the plan is a caller bug; never let an unplanned value through.
        throw new SluiceError('SLUICE_INTERNAL', `masking plan has no column ${index}`);
    }
  }

  maskBytes(index: number, buf: Buffer, start = 0, end = buf.length, stats?: MaskStats): Buffer | null | undefined {
    const code = this.#codes[index];
    if (code === A_KEEP) return undefined;
    if (
      code === A_SCAN &&
      this.#prefilter &&
      this.#keyKinds[index] === KEY_NONE &&
      !Scanner.hasTrigger(this.#triggers, buf, start, end) &&
      !mayBeBase64(buf, start, end)
    ) {
      return undefined;
    }
    const value = buf.toString('utf8', start, end);
    const out = this.maskValue(index, value, stats);
    if (out === value) return undefined;
    return out === null ? null : Buffer.from(out, 'utf8');
  }

  binaryAction(index: number): 'pass' | 'null' {
    const code = this.#codes[index];
    if (code === A_KEEP) return 'pass';
    if (code === A_REPLACE || code === A_NULL || code === undefined) return 'null';
    return this.#binaryNull ? 'null' : 'pass';
  }
}
