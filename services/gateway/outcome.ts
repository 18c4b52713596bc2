import { GatewayError, type ErrorBody, type GatewayErrorCode } from './errors.js';
import { decodeOutput } from './payload.js';
import type { RequestError, RequestStatus, RequestStatusName } from './state.js';

/**
 * From a request's status to HTTP (pure). The table (also in docs/ARCHITECTURE.md):
 *
 * | outcome | HTTP | code |
 * |---|---|---|
 * | InferenceCompleted | 200 | — (output decoded per contentType) |
 * | RequestRejected SHED / SHED_OVERLOAD | 429 + Retry-After | SY_ERR_REJECTED_OVERLOAD |
 * | RequestRejected NO_CAPACITY | 503 (+ Retry-After when the router gave one) | SY_ERR_REJECTED_NO_CAPACITY |
 * | RequestRejected DEADLINE_EXCEEDED | 504 | SY_ERR_REJECTED_DEADLINE_EXCEEDED |
 * | RequestRejected UNKNOWN_MODEL | 404 | SY_ERR_REJECTED_UNKNOWN_MODEL |
 * | RequestRejected INVALID_REQUEST | 400 | SY_ERR_REJECTED_INVALID_REQUEST |
 * | RequestRejected DUPLICATE | 409 | SY_ERR_REJECTED_DUPLICATE |
 * | RequestRejected, other reason | 503 | SY_ERR_REJECTED |
 * | InferenceFailed DEADLINE_EXCEEDED | 504 | SY_ERR_INFERENCE_DEADLINE_EXCEEDED |
 * | InferenceFailed BACKEND_TIMEOUT | 504 | SY_ERR_INFERENCE_TIMEOUT |
 * | InferenceFailed INVALID_INPUT (the model refused the input) | 422 | SY_ERR_INFERENCE_INVALID_INPUT |
 * | InferenceFailed, retriable, or a backend / lost-worker code after the controller's retries | 502 | SY_ERR_INFERENCE_FAILED |
 * | InferenceFailed, not retriable | 500 | SY_ERR_INFERENCE_FAILED |
 *
 * `error.reason` carries the router's reason or the worker's errorCode as written.
 */

export const locationOf = (requestId: string): string => `/v1/requests/${encodeURIComponent(requestId)}`;

/** Retry-After when the router gave no hint for an overload rejection, ms. */
const DEFAULT_RETRY_AFTER_MS = 1_000;

interface Mapping {
  status: number;
  code: GatewayErrorCode;
  /** Send Retry-After (with the router's hint or the default). */
  retryAfter: 'always' | 'when-hinted' | 'never';
}

const REJECTIONS: Record<string, Mapping> = {
  SHED: { status: 429, code: 'SY_ERR_REJECTED_OVERLOAD', retryAfter: 'always' },
  SHED_OVERLOAD: { status: 429, code: 'SY_ERR_REJECTED_OVERLOAD', retryAfter: 'always' },
  NO_CAPACITY: { status: 503, code: 'SY_ERR_REJECTED_NO_CAPACITY', retryAfter: 'when-hinted' },
  DEADLINE_EXCEEDED: { status: 504, code: 'SY_ERR_REJECTED_DEADLINE_EXCEEDED', retryAfter: 'never' },
  UNKNOWN_MODEL: { status: 404, code: 'SY_ERR_REJECTED_UNKNOWN_MODEL', retryAfter: 'never' },
  INVALID_REQUEST: { status: 400, code: 'SY_ERR_REJECTED_INVALID_REQUEST', retryAfter: 'never' },
  DUPLICATE: { status: 409, code: 'SY_ERR_REJECTED_DUPLICATE', retryAfter: 'never' },
};
const OTHER_REJECTION: Mapping = { status: 503, code: 'SY_ERR_REJECTED', retryAfter: 'when-hinted' };

function failureMapping(error: RequestError): Mapping {
  if (error.reason === 'DEADLINE_EXCEEDED') return { status: 504, code: 'SY_ERR_INFERENCE_DEADLINE_EXCEEDED', retryAfter: 'never' };
  if (error.reason === 'BACKEND_TIMEOUT') return { status: 504, code: 'SY_ERR_INFERENCE_TIMEOUT', retryAfter: 'never' };
  // The client's input is at fault, not the worker: a 4xx, so clients do not retry it.
  if (error.reason === 'INVALID_INPUT') return { status: 422, code: 'SY_ERR_INFERENCE_INVALID_INPUT', retryAfter: 'never' };
  return { status: error.retriable || UPSTREAM_FAILURES.has(error.reason) ? 502 : 500, code: 'SY_ERR_INFERENCE_FAILED', retryAfter: 'never' };
}

/**
 * Failures of what stands behind the gateway (a backend, a lost worker): 502 even when the
 * controller, having retried, ended the request with a terminal (non-retriable) InferenceFailed.
 */
const UPSTREAM_FAILURES: ReadonlySet<string> = new Set(['BACKEND_ERROR', 'BACKEND_UNAVAILABLE', 'BLOB_STORE_UNAVAILABLE', 'WORKER_LOST', 'WORKER_DRAINING']);

const mappingOf = (error: RequestError): Mapping =>
  error.kind === 'rejected' ? (REJECTIONS[error.reason] ?? OTHER_REJECTION) : failureMapping(error);

/** The error body of a failed or rejected request (what GET shows and the sync path answers). */
export function errorOf(requestId: string, error: RequestError): ErrorBody['error'] {
  const m = mappingOf(error);
  const retryAfterMs = error.retryAfterMs ?? (m.retryAfter === 'always' ? DEFAULT_RETRY_AFTER_MS : undefined);
  return {
    code: m.code,
    message: error.message,
    requestId,
    reason: error.reason,
    retriable: error.retriable,
    ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
  };
}

/** The HTTP error for a failed or rejected request, or null when it did not fail. */
export function outcomeError(state: RequestStatus): GatewayError | null {
  if (state.error === null || (state.status !== 'failed' && state.status !== 'rejected')) return null;
  const m = mappingOf(state.error);
  const body = errorOf(state.requestId, state.error);
  const headers: Record<string, string> = { location: locationOf(state.requestId) };
  if (m.retryAfter !== 'never' && body.retryAfterMs !== undefined) headers['retry-after'] = String(Math.max(1, Math.ceil(body.retryAfterMs / 1000)));
  return new GatewayError(m.status, m.code, body.message, {
    requestId: state.requestId,
    reason: state.error.reason,
    retriable: body.retriable,
    ...(body.retryAfterMs !== undefined ? { retryAfterMs: body.retryAfterMs } : {}),
    headers,
  });
}

export interface ResultView {
  contentType: string;
  /** How `output` carries the bytes: `json` (the value), `text` (a string), `base64`. */
  outputEncoding: 'json' | 'text' | 'base64';
  output: unknown;
  modelDigest: string;
  cacheHit: boolean;
  batchSize: number;
  queueMs: number;
  computeMs: number;
}

/** A request's status as the API shows it (GET /v1/requests/:id, and 200 of POST /v1/infer). */
export interface StatusView {
  requestId: string;
  status: RequestStatusName;
  attempt: number;
  model: string | null;
  modelVersion: string | null;
  workerId: string | null;
  /** Another model than the one asked for answered (its fallback). */
  degraded: boolean;
  acceptedAt: number | null;
  updatedAt: number;
  result?: ResultView;
  error?: ErrorBody['error'];
}

export function statusView(state: RequestStatus): StatusView {
  const view: StatusView = {
    requestId: state.requestId,
    status: state.status,
    attempt: state.attempt,
    model: state.model,
    modelVersion: state.modelVersion,
    workerId: state.workerId,
    degraded: state.requestedModel !== null && state.model !== null && state.status === 'completed' && state.model !== state.requestedModel,
    acceptedAt: state.acceptedAt,
    updatedAt: state.updatedAt,
  };
  if (state.result !== null) {
    // Field by field: a rest and a spread here cost more than the rest of the view (every 200 builds one).
    const r = state.result;
    const decoded = decodeOutput(r.output, r.contentType);
    view.result = { contentType: r.contentType, outputEncoding: decoded.encoding, output: decoded.value, modelDigest: r.modelDigest, cacheHit: r.cacheHit, batchSize: r.batchSize, queueMs: r.queueMs, computeMs: r.computeMs };
  }
  if (state.error !== null) view.error = errorOf(state.requestId, state.error);
  return view;
}
