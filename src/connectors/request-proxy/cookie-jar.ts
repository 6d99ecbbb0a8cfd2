/**
 * Cookies the upstream sets on a Sluice session. The upstream issues them to the credential
 * Sluice injected: a session cookie is that credential in another form, usable against the
 * upstream directly, for as long as the upstream keeps the session. With `cookies: hold` (the
 * default) Sluice keeps them in a jar per agent session, sends them on that session's later
 * requests, and never shows them to the agent. One upstream origin per connection, so cookies are
 * matched by name and path only (RFC 6265 §5.1.4), and expire by Max-Age or Expires.
 */

/** Cookies kept per session, and the longest cookie line kept; an upstream past these loses the rest. */
const MAX_COOKIES = 50;
const MAX_COOKIE_BYTES = 4096;

interface Stored {
  readonly value: string;
  readonly path: string;
  /** ms since epoch; Infinity for a session cookie (kept while the Sluice session lives). */
  readonly expiresAt: number;
}

export class CookieJar {
  readonly #cookies = new Map<string, Stored>();

  /** Take the upstream's `Set-Cookie` lines (RFC 6265 §5.2); `requestPath` gives the default path. */
  store(lines: readonly string[], requestPath: string, now: number): void {
    for (const line of lines) {
      if (line.length > MAX_COOKIE_BYTES) continue;
      const [pair = '', ...attrs] = line.split(';');
      const eq = pair.indexOf('=');
      if (eq <= 0) continue;
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      if (name === '' || /[\s,;=]/.test(name)) continue;
      let path = defaultPath(requestPath);
      let expiresAt = Number.POSITIVE_INFINITY;
      let maxAgeSeen = false;
      for (const attr of attrs) {
        const aeq = attr.indexOf('=');
        const key = (aeq < 0 ? attr : attr.slice(0, aeq)).trim().toLowerCase();
        const val = aeq < 0 ? '' : attr.slice(aeq + 1).trim();
        if (key === 'path' && val.startsWith('/')) path = val;
        else if (key === 'max-age' && /^-?\d+$/.test(val)) {
          maxAgeSeen = true;
          expiresAt = Number(val) <= 0 ? 0 : now + Number(val) * 1000;
        } else if (key === 'expires' && !maxAgeSeen) {
          const t = Date.parse(val);
          if (!Number.isNaN(t)) expiresAt = t;
        }
      }
      if (expiresAt <= now) {
        this.#cookies.delete(name);
        continue;
      }
      if (!this.#cookies.has(name) && this.#cookies.size >= MAX_COOKIES) continue;
      this.#cookies.set(name, { value, path, expiresAt });
    }
  }

  /**
   * The Cookie header for a request to `path`: the agent's own cookies (`agent`), less any name
   * the jar holds, then the jar's.
   */
  header(agent: string | undefined, path: string, now: number): string | undefined {
    const held: string[] = [];
    for (const [name, c] of this.#cookies) {
      if (c.expiresAt <= now) {
        this.#cookies.delete(name);
        continue;
      }
      if (pathMatches(path, c.path)) held.push(`${name}=${c.value}`);
    }
    const own = (agent ?? '')
      .split(';')
      .map((p) => p.trim())
      .filter((p) => p !== '' && !this.#cookies.has(cookieName(p)));
    const all = [...own, ...held];
    return all.length === 0 ? undefined : all.join('; ');
  }
}

/** The name of one `name=value` pair of a Cookie header. */
function cookieName(pair: string): string {
  const eq = pair.indexOf('=');
  return (eq < 0 ? pair : pair.slice(0, eq)).trim();
}

/** RFC 6265 §5.1.4: the directory of the request path. */
function defaultPath(requestPath: string): string {
  const path = requestPath.split('?')[0] ?? '/';
  if (!path.startsWith('/')) return '/';
  const last = path.lastIndexOf('/');
  return last <= 0 ? '/' : path.slice(0, last);
}

function pathMatches(requestPath: string, cookiePath: string): boolean {
  if (requestPath === cookiePath) return true;
  if (!requestPath.startsWith(cookiePath)) return false;
  return cookiePath.endsWith('/') || requestPath.charAt(cookiePath.length) === '/';
}
