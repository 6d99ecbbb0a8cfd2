/**
 * Column and field globs: `*` is any run of characters (dots included), `?` one character,
 * case-insensitive. A leading `*.` may also match nothing, so `*.ssn` covers a bare `ssn` column
 * whose table is unknown (an expression or a view) — failing closed on names we cannot place.
 */
export interface CompiledGlob {
  readonly source: string;
  test(forms: readonly string[]): boolean;
}

export function compileGlob(glob: string): CompiledGlob {
  const re = toRegExp(glob);
  const bare = glob.startsWith('*.') ? toRegExp(glob.slice(2)) : undefined;
  return {
    source: glob,
    test(forms) {
      for (const f of forms) if (re.test(f) || (bare !== undefined && bare.test(f))) return true;
      return false;
    },
  };
}

function toRegExp(glob: string): RegExp {
  let src = '';
  for (const ch of glob) {
    if (ch === '*') src += '.*';
    else if (ch === '?') src += '.';
    else src += ch.replace(/[\\^$.+()[\]{}|/]/g, '\\$&');
  }
  return new RegExp(`^${src}$`, 'is');
}
