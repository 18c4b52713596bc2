/**
 * Errors with stable codes. Every Switchyard error carries a `code` (`SY_ERR_…`), says
 * whether retrying can help (`retriable`), and keeps its `cause`.
 */
export type ErrorCode =
  | 'SY_ERR_CONFIG'
  | 'SY_ERR_LOG_CLOSED'
  | 'SY_ERR_LOG_UNKNOWN_TOPIC'
  | 'SY_ERR_LOG_BAD_PARTITION'
  | 'SY_ERR_LOG_OFFSET_OUT_OF_RANGE'
  | 'SY_ERR_LOG_CORRUPT'
  | 'SY_ERR_LOG_IO'
  | 'SY_ERR_LOG_LOCKED'
  | 'SY_ERR_LOG_BAD_TOPIC'
  | 'SY_ERR_LOG_BAD_RECORD'
  | 'SY_ERR_LOG_BROKER'
  | 'SY_ERR_LOG_AUTH'
  | 'SY_ERR_GROUP_REBALANCE'
  | 'SY_ERR_CODEC_MAGIC'
  | 'SY_ERR_CODEC_UNKNOWN_SCHEMA'
  | 'SY_ERR_CODEC_DECODE'
  | 'SY_ERR_CODEC_TOO_LARGE'
  | 'SY_ERR_CODEC_ENCODE'
  | 'SY_ERR_SCHEMA_NOT_FOUND'
  | 'SY_ERR_SCHEMA_INVALID'
  | 'SY_ERR_SCHEMA_INCOMPATIBLE'
  | 'SY_ERR_REGISTRY_UNAVAILABLE'
  | 'SY_ERR_ANALYTICS'
  | 'SY_ERR_ANALYTICS_UNAVAILABLE'
  | 'SY_ERR_SERVICES'
  | 'SY_ERR_BLOB_BAD_DIGEST'
  | 'SY_ERR_BLOB_NOT_FOUND'
  | 'SY_ERR_BLOB_DIGEST_MISMATCH'
  | 'SY_ERR_BLOB_UNAVAILABLE'
  | 'SY_ERR_MODEL_FORMAT'
  | 'SY_ERR_MODEL_INPUT'
  | 'SY_ERR_BACKEND'
  | 'SY_ERR_BACKEND_UNAVAILABLE'
  | 'SY_ERR_WORKER_NO_LANE'
  | 'SY_ERR_WORKER_STOPPED';

export interface SwitchyardErrorOptions {
  /** Whether the same operation may succeed if tried again. @default false */
  retriable?: boolean;
  cause?: unknown;
  /** Structured detail for logs and API responses. */
  detail?: Record<string, unknown>;
}

export class SwitchyardError extends Error {
  readonly code: ErrorCode;
  readonly retriable: boolean;
  readonly detail: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, { retriable = false, cause, detail = {} }: SwitchyardErrorOptions = {}) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'SwitchyardError';
    this.code = code;
    this.retriable = retriable;
    this.detail = detail;
  }
}

export const isRetriable = (err: unknown): boolean =>
  err instanceof SwitchyardError ? err.retriable : Boolean((err as { retriable?: boolean } | null)?.retriable);

export const errorMessage = (err: unknown): string => (err instanceof Error ? err.message : String(err));
