/**
 * One error type for the whole gateway. Every failure that reaches a client carries a stable
 * `code`; engines render it natively (PostgreSQL ErrorResponse, HTTP problem body, Kubernetes
 * Status) through the table below. Messages name the reason and never a secret.
 */

export const ERROR_TABLE = {
  SLUICE_CONFIG_INVALID: { sqlstate: 'F0000', http: 500 },
  SLUICE_TOKEN_MISSING: { sqlstate: '28000', http: 401 },
  SLUICE_TOKEN_INVALID: { sqlstate: '28000', http: 401 },
  SLUICE_TOKEN_EXPIRED: { sqlstate: '28000', http: 401 },
  SLUICE_TOKEN_TOO_LONG_LIVED: { sqlstate: '28000', http: 401 },
  SLUICE_TOKEN_TOO_LARGE: { sqlstate: '28000', http: 401 },
  SLUICE_ISSUER_UNKNOWN: { sqlstate: '28000', http: 401 },
  SLUICE_ISSUER_UNREACHABLE: { sqlstate: '28000', http: 503 },
  SLUICE_ROLE_NOT_GRANTED: { sqlstate: '28000', http: 403 },
  SLUICE_CONNECTION_UNKNOWN: { sqlstate: '3D000', http: 404 },
  SLUICE_POLICY_DENIED: { sqlstate: '42501', http: 403 },
  SLUICE_APPROVAL_REQUIRED: { sqlstate: '42501', http: 403 },
  SLUICE_APPROVAL_DENIED: { sqlstate: '42501', http: 403 },
  SLUICE_APPROVAL_EXPIRED: { sqlstate: '42501', http: 403 },
  SLUICE_APPROVAL_FORBIDDEN: { sqlstate: '42501', http: 403 },
  SLUICE_APPROVAL_NOT_FOUND: { sqlstate: '42704', http: 404 },
  SLUICE_APPROVAL_NOT_PENDING: { sqlstate: '55000', http: 409 },
  SLUICE_AUDIT_FORBIDDEN: { sqlstate: '42501', http: 403 },
  SLUICE_SESSION_NOT_FOUND: { sqlstate: '42704', http: 404 },
  SLUICE_STATEMENT_CANCELED: { sqlstate: '57014', http: 409 },
  SLUICE_IDLE_TIMEOUT: { sqlstate: '57P05', http: 408 },
  SLUICE_SQL_UNPARSEABLE: { sqlstate: '42601', http: 400 },
  SLUICE_PROTOCOL_VIOLATION: { sqlstate: '08P01', http: 400 },
  SLUICE_MESSAGE_TOO_LARGE: { sqlstate: '54000', http: 413 },
  SLUICE_TOO_MANY_CONNECTIONS: { sqlstate: '53300', http: 503 },
  SLUICE_TLS_REQUIRED: { sqlstate: '28000', http: 403 },
  SLUICE_UPSTREAM_UNAVAILABLE: { sqlstate: '08006', http: 502 },
  SLUICE_UPSTREAM_AUTH_FAILED: { sqlstate: '08006', http: 502 },
  SLUICE_AUDIT_UNAVAILABLE: { sqlstate: '58030', http: 503 },
  SLUICE_BAD_REQUEST: { sqlstate: '22023', http: 400 },
  SLUICE_INTERNAL: { sqlstate: 'XX000', http: 500 },
} as const satisfies Record<string, { readonly sqlstate: string; readonly http: number }>;

export type SluiceErrorCode = keyof typeof ERROR_TABLE;

export class SluiceError extends Error {
  readonly code: SluiceErrorCode;
  /** Optional structured details safe to show a client (never secrets). */
  readonly detail: string | undefined;

  constructor(code: SluiceErrorCode, message: string, options?: { cause?: unknown; detail?: string }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'SluiceError';
    this.code = code;
    this.detail = options?.detail;
  }

  get sqlstate(): string {
    return ERROR_TABLE[this.code].sqlstate;
  }

  get httpStatus(): number {
    return ERROR_TABLE[this.code].http;
  }
}

export function isSluiceError(err: unknown): err is SluiceError {
  return err instanceof SluiceError;
}

/** Normalise anything thrown into a SluiceError; unknown failures become SLUICE_INTERNAL without leaking their text. */
export function toSluiceError(err: unknown): SluiceError {
  if (err instanceof SluiceError) return err;
  return new SluiceError('SLUICE_INTERNAL', 'internal gateway error', { cause: err });
}
