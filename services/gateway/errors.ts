import type { AuthErrorCode } from '../../lib/auth/errors.js';

/**
 * The gateway's stable error codes. Every error response has the body
 * `{ error: { code, message, requestId?, reason?, retriable, retryAfterMs?, details? } }`;
 * `code` never changes meaning, `reason` carries the router's rejection reason or the
 * worker's error code as written in the log.
 */
export type GatewayErrorCode =
  // the gateway's own
  | 'SY_ERR_GATEWAY_INVALID_REQUEST'
  | 'SY_ERR_GATEWAY_NOT_FOUND'
  | 'SY_ERR_GATEWAY_PAYLOAD_TOO_LARGE'
  | 'SY_ERR_GATEWAY_UNSUPPORTED_MEDIA_TYPE'
  | 'SY_ERR_GATEWAY_IDEMPOTENCY_MISMATCH'
  | 'SY_ERR_GATEWAY_BUSY'
  | 'SY_ERR_GATEWAY_LOG_UNAVAILABLE'
  | 'SY_ERR_GATEWAY_TIMEOUT'
  | 'SY_ERR_GATEWAY_INTERNAL'
  | 'SY_ERR_GATEWAY_URI_TOO_LONG'
  | 'SY_ERR_GATEWAY_HEADERS_TOO_LARGE'
  | 'SY_ERR_GATEWAY_REQUEST_TIMEOUT'
  | 'SY_ERR_GATEWAY_EXPECTATION_FAILED'
  | 'SY_ERR_GATEWAY_SHUTTING_DOWN'
  // authentication (lib/auth/errors.ts): no or unknown key (401), model not allowed (403), over rate (429)
  | AuthErrorCode
  // the router refused the request (RequestRejected)
  | 'SY_ERR_REJECTED_OVERLOAD'
  | 'SY_ERR_REJECTED_NO_CAPACITY'
  | 'SY_ERR_REJECTED_DEADLINE_EXCEEDED'
  | 'SY_ERR_REJECTED_UNKNOWN_MODEL'
  | 'SY_ERR_REJECTED_INVALID_REQUEST'
  | 'SY_ERR_REJECTED_DUPLICATE'
  | 'SY_ERR_REJECTED'
  // a worker could not complete it (InferenceFailed)
  | 'SY_ERR_INFERENCE_DEADLINE_EXCEEDED'
  | 'SY_ERR_INFERENCE_TIMEOUT'
  | 'SY_ERR_INFERENCE_INVALID_INPUT'
  | 'SY_ERR_INFERENCE_FAILED';

/** One reason a request failed validation. */
export interface ValidationDetail {
  /** Where: `body`, `headers`, `params`. */
  in: string;
  /** JSON pointer into it, e.g. `/deadlineMs`; empty for the whole. */
  path: string;
  message: string;
}

export interface ErrorBody {
  error: {
    code: GatewayErrorCode;
    message: string;
    requestId?: string;
    reason?: string;
    retriable: boolean;
    retryAfterMs?: number;
    details?: ValidationDetail[];
  };
}

export interface GatewayErrorOptions {
  requestId?: string;
  reason?: string;
  retriable?: boolean;
  retryAfterMs?: number;
  details?: ValidationDetail[];
  /** Extra response headers (Location, Retry-After). */
  headers?: Record<string, string>;
  cause?: unknown;
}

/** An error that becomes an HTTP response with a stable code. */
export class GatewayError extends Error {
  readonly code: GatewayErrorCode;
  readonly statusCode: number;
  readonly retriable: boolean;
  readonly requestId: string | undefined;
  readonly reason: string | undefined;
  readonly retryAfterMs: number | undefined;
  readonly details: ValidationDetail[] | undefined;
  readonly headers: Record<string, string>;

  constructor(statusCode: number, code: GatewayErrorCode, message: string, options: GatewayErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'GatewayError';
    this.statusCode = statusCode;
    this.code = code;
    this.retriable = options.retriable ?? false;
    this.requestId = options.requestId;
    this.reason = options.reason;
    this.retryAfterMs = options.retryAfterMs;
    this.details = options.details;
    this.headers = options.headers ?? {};
  }

  toBody(): ErrorBody {
    return {
      error: {
        code: this.code,
        message: this.message,
        ...(this.requestId !== undefined ? { requestId: this.requestId } : {}),
        ...(this.reason !== undefined ? { reason: this.reason } : {}),
        retriable: this.retriable,
        ...(this.retryAfterMs !== undefined ? { retryAfterMs: this.retryAfterMs } : {}),
        ...(this.details !== undefined ? { details: this.details } : {}),
      },
    };
  }
}
