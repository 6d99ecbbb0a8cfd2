/**
 * CEL conditions, compiled once at startup. Used by claim→role mapping and policy rules.
 * A condition that fails to evaluate (a missing claim or field, a type mismatch, a value that is
 * not a boolean) does not hold: a role is not granted and a rule does not apply, as OPA and Cedar
 * treat an undefined or erroring rule. The failure is returned, not thrown, so a decision can say
 * which rule could not be checked and why.
 */
import { parse } from '@marcbachmann/cel-js';
import { SluiceError } from '../errors.js';

/** Why a condition could not be evaluated (CEL's message: `No such key: environment`). */
export class ConditionFailure {
  constructor(readonly message: string) {}
}

/** True or false, or why it could not be evaluated; only `true` holds. */
export type Condition = (context: Readonly<Record<string, unknown>>) => boolean | ConditionFailure;

/** Largest condition text accepted from config; CEL is cheap but config is still input. */
const MAX_CONDITION_LENGTH = 4096;

/**
 * Compile `source` into a predicate. Throws SLUICE_CONFIG_INVALID naming `where` (a config path)
 * when the expression does not parse, so misconfiguration stops startup, not a request.
 */
export function compileCondition(source: string, where: string): Condition {
  if (source.length > MAX_CONDITION_LENGTH) {
    throw new SluiceError('SLUICE_CONFIG_INVALID', `${where}: CEL condition is longer than ${MAX_CONDITION_LENGTH} characters`);
  }
  let evaluate: (ctx: Record<string, unknown>) => unknown;
  try {
    evaluate = parse(source) as unknown as (ctx: Record<string, unknown>) => unknown;
  } catch (err) {
    const first = err instanceof Error ? err.message.split('\n')[0] : String(err);
    throw new SluiceError('SLUICE_CONFIG_INVALID', `${where}: invalid CEL condition: ${first}`);
  }
  return (context) => {
    let value: unknown;
    try {
      value = evaluate(context as Record<string, unknown>);
    } catch (err) {
      return new ConditionFailure((err instanceof Error ? err.message : String(err)).split('\n')[0] as string);
    }
    return typeof value === 'boolean' ? value : new ConditionFailure(`the condition gave ${typeof value === 'string' ? 'a string' : typeof value}, not true or false`);
  };
}

/** Convert values into the shapes CEL handles: plain objects, arrays, strings, numbers, booleans. */
export function toCelValue(value: unknown, depth = 0): unknown {
  if (depth > 16) return null;
  if (value === null || value === undefined) return null;
  if (Array.isArray(value)) return value.map((v) => toCelValue(v, depth + 1));
  if (typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      if (v !== undefined) out[k] = toCelValue(v, depth + 1);
    }
    return out;
  }
  return value;
}
