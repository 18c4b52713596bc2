/**
 * Authentication and authorization errors, shared by every HTTP service (gateway, registry,
 * blob store, and the admin routes to come). Each service renders them in its own error
 * format; the code and status never change meaning:
 *
 * | code | HTTP | when |
 * |---|---|---|
 * | `SY_ERR_AUTH_REQUIRED` | 401 + `WWW-Authenticate` | no credential was presented, or it is not in a form the route takes |
 * | `SY_ERR_AUTH_INVALID` | 401 + `WWW-Authenticate` | a credential was presented and is not a configured key or token |
 * | `SY_ERR_AUTH_FORBIDDEN` | 403 | the credential is valid but may not do this (a model outside the key's list, an admin route without a token configured off loopback) |
 * | `SY_ERR_AUTH_RATE_LIMITED` | 429 + `Retry-After` | the key is over its rate (`retryAfterMs` says when a request would pass) |
 */
export type AuthErrorCode = 'SY_ERR_AUTH_REQUIRED' | 'SY_ERR_AUTH_INVALID' | 'SY_ERR_AUTH_FORBIDDEN' | 'SY_ERR_AUTH_RATE_LIMITED';

const STATUS: Record<AuthErrorCode, number> = {
  SY_ERR_AUTH_REQUIRED: 401,
  SY_ERR_AUTH_INVALID: 401,
  SY_ERR_AUTH_FORBIDDEN: 403,
  SY_ERR_AUTH_RATE_LIMITED: 429,
};

export interface AuthErrorOptions {
  /** A machine-readable reason within the code, e.g. `MISSING_KEY`, `MODEL_NOT_ALLOWED`. */
  reason: string;
  /** How long until a rate-limited request would pass, ms. */
  retryAfterMs?: number;
  /** The `WWW-Authenticate` scheme of a 401. @default 'Bearer' */
  scheme?: string;
}

/**
 * An authentication or authorization failure: `statusCode` and `headers` are what the HTTP
 * answer carries. Messages never contain the credential presented.
 */
export class AuthError extends Error {
  readonly code: AuthErrorCode;
  readonly statusCode: number;
  readonly reason: string;
  readonly retriable: boolean;
  readonly retryAfterMs: number | undefined;
  readonly headers: Record<string, string>;

  constructor(code: AuthErrorCode, message: string, { reason, retryAfterMs, scheme = 'Bearer' }: AuthErrorOptions) {
    super(message);
    this.name = 'AuthError';
    this.code = code;
    this.statusCode = STATUS[code];
    this.reason = reason;
    this.retriable = code === 'SY_ERR_AUTH_RATE_LIMITED';
    this.retryAfterMs = retryAfterMs;
    this.headers = {};
    if (this.statusCode === 401) this.headers['www-authenticate'] = `${scheme} realm="switchyard"`;
    if (retryAfterMs !== undefined) this.headers['retry-after'] = String(Math.max(1, Math.ceil(retryAfterMs / 1000)));
  }
}

export const isAuthError = (err: unknown): err is AuthError => err instanceof AuthError;
