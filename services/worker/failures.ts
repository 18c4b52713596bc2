import { SwitchyardError, errorMessage } from '../../lib/errors.js';

/**
 * The `InferenceFailed` codes a worker writes. Stable strings (the router's breaker ignores
 * the client-side ones: DEADLINE_EXCEEDED, INVALID_INPUT).
 */
export const FAILURE = {
  /** The request's deadline passed before it started. */
  DEADLINE_EXCEEDED: 'DEADLINE_EXCEEDED',
  /** The worker was draining when the decision was made after it said so. */
  WORKER_DRAINING: 'WORKER_DRAINING',
  /** The input is wrong for the model. */
  INVALID_INPUT: 'INVALID_INPUT',
  /** The weights' blob is not in the blob store. */
  MODEL_NOT_FOUND: 'MODEL_NOT_FOUND',
  /** The weights' bytes do not hash to the digest the decision named: refused. */
  DIGEST_MISMATCH: 'DIGEST_MISMATCH',
  /** The blob is not a model file this worker can read. */
  MODEL_FORMAT: 'MODEL_FORMAT',
  /** No backend on this worker runs the model's kind. */
  UNSUPPORTED_MODEL: 'UNSUPPORTED_MODEL',
  BACKEND_TIMEOUT: 'BACKEND_TIMEOUT',
  BACKEND_UNAVAILABLE: 'BACKEND_UNAVAILABLE',
  BACKEND_ERROR: 'BACKEND_ERROR',
  /** The blob store could not be reached. */
  BLOB_STORE_UNAVAILABLE: 'BLOB_STORE_UNAVAILABLE',
} as const;
export type FailureCode = (typeof FAILURE)[keyof typeof FAILURE];

export interface Failure {
  errorCode: string;
  errorMessage: string;
  retriable: boolean;
}

const BY_ERROR: Partial<Record<string, FailureCode>> = {
  SY_ERR_BLOB_NOT_FOUND: FAILURE.MODEL_NOT_FOUND,
  SY_ERR_BLOB_DIGEST_MISMATCH: FAILURE.DIGEST_MISMATCH,
  SY_ERR_BLOB_BAD_DIGEST: FAILURE.MODEL_NOT_FOUND,
  SY_ERR_BLOB_UNAVAILABLE: FAILURE.BLOB_STORE_UNAVAILABLE,
  SY_ERR_MODEL_FORMAT: FAILURE.MODEL_FORMAT,
  SY_ERR_MODEL_INPUT: FAILURE.INVALID_INPUT,
  SY_ERR_BACKEND: FAILURE.BACKEND_ERROR,
  SY_ERR_BACKEND_UNAVAILABLE: FAILURE.BACKEND_UNAVAILABLE,
};

/**
 * What to write in InferenceFailed for an error: a backend's own verdict (`detail.resultCode`)
 * first, then the error's code. Retriable means routing the request again (to another worker)
 * may succeed: a missing blob may be pushed, a server may come back; refused weights and bad
 * input will not change.
 */
export function failureOf(err: unknown): Failure {
  if (err instanceof SwitchyardError) {
    const own = err.detail['resultCode'];
    const errorCode = typeof own === 'string' ? own : (BY_ERROR[err.code] ?? FAILURE.BACKEND_ERROR);
    const retriable = errorCode === FAILURE.MODEL_NOT_FOUND ? true : err.retriable;
    return { errorCode, errorMessage: `${err.message} [${err.code}]`, retriable };
  }
  return { errorCode: FAILURE.BACKEND_ERROR, errorMessage: errorMessage(err), retriable: false };
}
