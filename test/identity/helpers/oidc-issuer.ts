/**
 * A real OpenID Provider (panva/oidc-provider) in-process on 127.0.0.1, issuing RS256 JWT access
 * tokens through the client_credentials grant (RFC 6749 §4.4) with a resource indicator (RFC 8707)
 * so they carry an audience. Tests shape claims through the provider's own hooks
 * (`extraTokenClaims`, the JWT format customizer), so every token here is signed by the provider.
 */
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export const TEST_AUDIENCE = 'sluice';
export const ACCESS_TOKEN_TTL_S = 600;
const CLIENT_ID = 'ci-agent';
const CLIENT_SECRET = randomUUID();

type Handler = (req: IncomingMessage, res: ServerResponse) => void;
interface ProviderInstance {
  callback(): Handler;
}
type ProviderCtor = new (issuer: string, configuration: Record<string, unknown>) => ProviderInstance;

export interface RsaSigningKey {
  readonly kid: string;
  /** Private JWK, for the few tests that must sign a token the provider would never issue. */
  readonly privateJwk: Record<string, unknown>;
  readonly publicJwk: Record<string, unknown>;
}

export interface TokenOptions {
  /** Extra claims, added through the provider's `extraTokenClaims`. */
  readonly claims?: Record<string, unknown>;
  /** Last-moment edit of the payload through the provider's JWT customizer (e.g. nbf, exp, sub). */
  readonly customize?: (payload: Record<string, unknown>) => void;
}

export interface TestIssuer {
  readonly issuer: string;
  /** The key the provider signs with now. */
  readonly signingKey: RsaSigningKey;
  /** Requests seen, by path — to prove caching and cooldown. */
  readonly hits: Map<string, number>;
  /** Obtain an access token through the real token endpoint. */
  token(options?: TokenOptions): Promise<string>;
  /** Start signing with a fresh key; the JWKS publishes [new, old], as a real rotation does. */
  rotateKeys(): Promise<void>;
  close(): Promise<void>;
}

export function generateRsaKey(): RsaSigningKey {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const kid = randomUUID();
  const privateJwk = { ...privateKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' };
  const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, ...publicJwk } = privateJwk as Record<string, unknown>;
  return { kid, privateJwk, publicJwk };
}

export async function startTestIssuer(): Promise<TestIssuer> {
  // A string specifier keeps tsc from demanding type declarations oidc-provider does not ship.
  const specifier = 'oidc-provider';
  const { default: Provider } = (await import(specifier)) as { default: ProviderCtor };

  let handler: Handler = (_req, res) => res.writeHead(503).end();
  const hits = new Map<string, number>();
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0] ?? '';
    hits.set(path, (hits.get(path) ?? 0) + 1);
    handler(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const issuer = `http://127.0.0.1:${port}`;

  let pending: TokenOptions = {};
  let keys: RsaSigningKey[] = [generateRsaKey()];

  const build = (): void => {
    const provider = new Provider(issuer, {
      clients: [
        {
          client_id: CLIENT_ID,
          client_secret: CLIENT_SECRET,
          grant_types: ['client_credentials'],
          redirect_uris: [],
          response_types: [],
          token_endpoint_auth_method: 'client_secret_basic',
        },
      ],
      jwks: { keys: keys.map((k) => k.privateJwk) },
      ttl: { ClientCredentials: ACCESS_TOKEN_TTL_S },
      features: {
        devInteractions: { enabled: false },
        clientCredentials: { enabled: true },
        resourceIndicators: {
          enabled: true,
          defaultResource: () => 'https://sluice.test',
          useGrantedResource: () => true,
          getResourceServerInfo: () => ({
            scope: 'db:read',
            audience: TEST_AUDIENCE,
            accessTokenTTL: ACCESS_TOKEN_TTL_S,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: 'RS256' } },
          }),
        },
      },
      extraTokenClaims: () => pending.claims,
      formats: {
        customizers: {
          jwt: (_ctx: unknown, _token: unknown, jwt: { payload: Record<string, unknown> }) => {
            pending.customize?.(jwt.payload);
          },
        },
      },
    });
    handler = provider.callback();
  };
  build();

  return {
    issuer,
    hits,
    get signingKey() {
      return keys[0] as RsaSigningKey;
    },
    async token(options = {}) {
      pending = options;
      try {
        const res = await fetch(`${issuer}/token`, {
          method: 'POST',
          headers: {
            authorization: `Basic ${Buffer.from(`${CLIENT_ID}:${CLIENT_SECRET}`).toString('base64')}`,
            'content-type': 'application/x-www-form-urlencoded',
          },
          body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'db:read' }),
        });
        const body = (await res.json()) as { access_token?: string; error?: string; error_description?: string };
        if (res.status !== 200 || typeof body.access_token !== 'string') {
          throw new Error(`token endpoint answered ${res.status}: ${body.error ?? ''} ${body.error_description ?? ''}`);
        }
        return body.access_token;
      } finally {
        pending = {};
      }
    },
    async rotateKeys() {
      keys = [generateRsaKey(), ...keys];
      build();
    },
    close() {
      return new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((err) => (err ? reject(err) : resolve()));
      });
    },
  };
}

/** A loopback port with nothing listening: bind, note the port, close. */
export async function unusedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
