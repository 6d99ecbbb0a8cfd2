/**
 * Masking for Kubernetes API bodies. Secrets are masked structurally wherever they appear — a
 * get, every item of a list, each watch event, the rows of `as=Table` output — including the
 * `kubectl.kubernetes.io/last-applied-configuration` annotation, which embeds the whole Secret as
 * it was applied. Detectors run where credentials and personal data end up in practice: ConfigMap
 * values, container `env` values, `command` and `args` (`--db-password=…`, probe commands),
 * annotation values and `message` fields; a string field named like a secret anywhere (a custom
 * resource's `spec.password`) is masked as its value. Other fields are left alone so
 * resourceVersions, uids and specs reach kubectl intact.
 *
 * Masked `data` values stay valid base64 (of `[REDACTED]`), so typed clients (`kubectl describe`)
 * still decode the object.
 */
import { spliceJson, type Masker, type MaskStats } from '../../masking/index.js';

export const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration';
export const SECRET_MARK = '[REDACTED]';
export const SECRET_MARK_B64 = Buffer.from(SECRET_MARK).toString('base64');
const MAX_DEPTH = 64;
/** Field names whose values are URLs or connection strings, where credentials are inlined. */
const DETECTOR_KEYS = /(?:url|uri|dsn|connection_?string|endpoint)$/i;

export interface K8sMaskOptions {
  readonly masker: Masker;
  /** The request addressed `secrets`: objects with data/stringData are Secrets even if untyped (Table rows). */
  readonly secretsRequest: boolean;
  /** The matching rule has `reveal: true`. */
  readonly reveal: boolean;
}

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Masked copy of `value` (the same instance when nothing changed). */
export function maskKubernetesValue(value: unknown, o: K8sMaskOptions, stats: MaskStats): unknown {
  return walk(value, o, stats, 0, '');
}

function walk(v: unknown, o: K8sMaskOptions, stats: MaskStats, depth: number, key: string): unknown {
  if (depth > MAX_DEPTH) return v;
  if ((key === 'command' || key === 'args') && Array.isArray(v)) {
    // An argument vector: detectors on each item, and `--db-password`, `hunter2` as a pair.
    return o.masker.maskJson(v, stats);
  }
  if (Array.isArray(v)) {
    let copy: unknown[] | undefined;
    for (let i = 0; i < v.length; i++) {
      const item: unknown = v[i];
      const out = key === 'env' && isObj(item) ? maskEnv(item, o, stats) : walk(item, o, stats, depth + 1, '');
      if (out !== item) (copy ??= v.slice())[i] = out;
    }
    return copy ?? v;
  }
  if (!isObj(v)) return v;
  let copy: Obj | undefined;
  const set = (k: string, val: unknown): void => {
    copy ??= { ...v };
    copy[k] = val;
  };
  const secret = v.kind === 'Secret' || (o.secretsRequest && isObj(v.metadata) && ('data' in v || 'stringData' in v));
  for (const k of Object.keys(v)) {
    const item = v[k];
    if (secret && !o.reveal && (k === 'data' || k === 'stringData') && isObj(item)) {
      const masked: Obj = {};
      for (const [dk, dv] of Object.entries(item)) {
        masked[dk] = typeof dv === 'string' ? (k === 'data' ? SECRET_MARK_B64 : SECRET_MARK) : dv;
        stats.add('k8s_secret', `${k}.${dk}`);
      }
      set(k, masked);
      continue;
    }
    // `reveal: true`: the Secret's values go out as they are, keys named like secrets included.
    if (secret && o.reveal && (k === 'data' || k === 'stringData')) continue;
    if (v.kind === 'ConfigMap' && (k === 'data' || k === 'binaryData') && isObj(item)) {
      let changed: Obj | undefined;
      for (const [dk, dv] of Object.entries(item)) {
        if (typeof dv !== 'string') continue;
        // binaryData is base64: text in it (a config file, an .env) is masked inside the encoding.
        // A data key named like a secret (`password: hunter2`) keys its value, as in any JSON.
        const m = k === 'data' ? maskUnder(o, dk, dv, stats) : o.masker.maskEncodedText(dv, stats, `binaryData.${dk}`);
        if (m !== dv) (changed ??= { ...item })[dk] = m;
      }
      if (changed !== undefined) set(k, changed);
      continue;
    }
    if (k === 'metadata' && isObj(item)) {
      const m = maskMetadata(item, o, stats, secret);
      if (m !== item) set(k, m);
      continue;
    }
    if (typeof item === 'string' && item !== '') {
      // A field named like a secret anywhere (a custom resource's `spec.password`, an `apiToken`)
      // is masked as its value; `message` fields (status, conditions, events) and URLs and connection
      // strings (`postgres://app:pw@db`) get the detectors.
      if (o.masker.protectsColumn(k, [])) {
        const m = maskUnder(o, k, item, stats);
        if (m !== item) set(k, m);
        continue;
      }
      if (k === 'message' || DETECTOR_KEYS.test(k)) {
        const m = o.masker.maskText(item, stats);
        if (m !== item) set(k, m);
        continue;
      }
    }
    const out = walk(item, o, stats, depth + 1, k);
    if (out !== item) set(k, out);
  }
  return copy ?? v;
}

/** A string as the value of field `key` (its secret-like name, a rule on it, the detectors), as maskJson reads any field. */
function maskUnder(o: K8sMaskOptions, key: string, value: string, stats: MaskStats): unknown {
  return (o.masker.maskJson({ [key]: value }, stats) as Obj)[key];
}

/** An env entry: its value by detectors, and as the value of its name (`DB_PASSWORD`) when that is secret-like. */
function maskEnv(item: Obj, o: K8sMaskOptions, stats: MaskStats): Obj {
  const value = item.value;
  if (typeof value !== 'string') return item;
  const m = (o.masker.maskJson({ name: item.name, value }, stats) as Obj).value;
  return m === value ? item : { ...item, value: m };
}

function maskMetadata(meta: Obj, o: K8sMaskOptions, stats: MaskStats, secret: boolean): Obj {
  const ann = meta.annotations;
  if (!isObj(ann)) return meta;
  let changed: Obj | undefined;
  for (const [k, v] of Object.entries(ann)) {
    if (typeof v !== 'string') continue;
    const m = k === LAST_APPLIED ? maskLastApplied(v, o, stats, secret) : o.masker.maskText(v, stats);
    if (m !== v) (changed ??= { ...ann })[k] = m;
  }
  return changed === undefined ? meta : { ...meta, annotations: changed };
}

/** The annotation embeds the object as applied: mask it as that object, Secret values included. */
function maskLastApplied(raw: string, o: K8sMaskOptions, stats: MaskStats, secret: boolean): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    if (!secret || o.reveal) return o.masker.maskText(raw, stats);
    stats.add('k8s_secret', `metadata.annotations.${LAST_APPLIED}`);
    return SECRET_MARK;
  }
  const masked = walk(parsed, { ...o, secretsRequest: o.secretsRequest || secret }, stats, 1, '');
  return spliceJson(raw, parsed, masked, (digits) => o.masker.maskText(digits, stats));
}
