import type { InferenceCompleted, InferenceFailed, InferenceStarted, RequestRejected } from '../../schemas/generated/events.js';
import { identifiers } from '../../lib/intern.js';

/**
 * What the gateway knows about one request: a fold of the request's events on `results`
 * (InferenceStarted/Completed/Failed, and RequestRejected, which the router writes there so
 * clients wait on one topic). Pure: `evolveStatus(state, event)` → state.
 *
 * `RequestRouted` is on `decisions` (one partition per worker lane), which the gateway does not
 * read, so there is no `routed` status: a request is `accepted` until a worker starts it or the
 * router rejects it.
 */
/** `retrying`: an attempt failed retriably and the controller will retry it or end the request; not an outcome yet. */
export type RequestStatusName = 'accepted' | 'started' | 'retrying' | 'completed' | 'failed' | 'rejected';

export type ResultEvent = InferenceStarted | InferenceCompleted | InferenceFailed | RequestRejected;

export const RESULT_EVENT_TYPES: ReadonlySet<string> = new Set<ResultEvent['type']>(['InferenceStarted', 'InferenceCompleted', 'InferenceFailed', 'RequestRejected']);

export const isResultEvent = (event: { type: string }): event is ResultEvent => RESULT_EVENT_TYPES.has(event.type);

export interface RequestResult {
  output: Uint8Array;
  contentType: string;
  modelDigest: string;
  cacheHit: boolean;
  batchSize: number;
  queueMs: number;
  computeMs: number;
}

export interface RequestError {
  /** `failed` (a worker's InferenceFailed) or `rejected` (the router's RequestRejected). */
  kind: 'failed' | 'rejected';
  /** The worker's errorCode or the router's rejection reason, as written. */
  reason: string;
  message: string;
  retriable: boolean;
  /** The router's hint for when to retry, when it gave one. */
  retryAfterMs: number | null;
}

export interface RequestStatus {
  requestId: string;
  status: RequestStatusName;
  /** Routing attempt the status belongs to (1, or more after a re-dispatch). */
  attempt: number;
  model: string | null;
  /** The model the client asked for (known to the gateway that accepted it); `model` is the one that answered. */
  requestedModel: string | null;
  modelVersion: string | null;
  workerId: string | null;
  /** When this gateway accepted the request (null when it knows the request only from `results`). */
  acceptedAt: number | null;
  /** occurredAt of the last event folded in, or acceptedAt. */
  updatedAt: number;
  result: RequestResult | null;
  error: RequestError | null;
  /** Identity of the HTTP body, for Idempotency-Key checks; only for requests accepted here. */
  fingerprint: string | null;
}

/** Rejections a later retry may get past (overload, no capacity right now). */
const RETRIABLE_REJECTIONS: ReadonlySet<string> = new Set(['SHED', 'SHED_OVERLOAD', 'NO_CAPACITY']);

export const isTerminal = (status: RequestStatusName): boolean => status === 'completed' || status === 'failed' || status === 'rejected';

/** The status of a request this gateway has just produced. */
export function acceptedStatus(requestId: string, requested: string, now: number, fingerprint: string | null): RequestStatus {
  const model = identifiers.intern(requested); // kept for minutes: one shared copy of the name
  return { requestId, status: 'accepted', attempt: 1, model, requestedModel: model, modelVersion: null, workerId: null, acceptedAt: now, updatedAt: now, result: null, error: null, fingerprint };
}

/**
 * Folds one result event into a request's status. The events of a request share a partition
 * (key requestId), so they arrive in log order; the fold still has to be safe against
 * redelivery (at-least-once) and against the stale tail of an earlier attempt:
 * - an event of an earlier attempt than the status's is ignored;
 * - the first terminal outcome in log order is final (exactly one client-visible outcome per
 *   request id): a later one — a presumed-dead worker answering after the re-dispatch, or two
 *   attempts both finishing — is superseded (the controller records it with ResultSuperseded);
 * - a retriable InferenceFailed is not an outcome: the controller retries the request or ends it
 *   with a terminal InferenceFailed of its own, so the status is `retrying` meanwhile;
 * - a RequestRejected DUPLICATE (a re-sent request the router had already decided) never
 *   overrides what is known.
 */
export function evolveStatus(state: RequestStatus | undefined, event: ResultEvent): RequestStatus {
  const requestId = event.requestId ?? '';
  const base: RequestStatus = state ?? {
    requestId,
    status: 'accepted',
    attempt: event.attempt,
    model: null,
    requestedModel: null,
    modelVersion: null,
    workerId: null,
    acceptedAt: null,
    updatedAt: event.occurredAt,
    result: null,
    error: null,
    fingerprint: null,
  };
  if (state !== undefined) {
    if (isTerminal(state.status)) return state;
    if (event.attempt < state.attempt) return state;
    if (event.type === 'RequestRejected' && event.reason === 'DUPLICATE') return state;
  }
  const next: RequestStatus = { ...base, attempt: event.attempt, updatedAt: Math.max(base.updatedAt, event.occurredAt) };
  switch (event.type) {
    case 'InferenceStarted':
      return { ...next, status: 'started', model: event.model, modelVersion: event.modelVersion, workerId: event.workerId, result: null, error: null };
    case 'InferenceCompleted':
      return {
        ...next,
        status: 'completed',
        model: event.model,
        modelVersion: event.modelVersion,
        workerId: event.workerId,
        result: {
          output: event.output,
          contentType: event.contentType,
          modelDigest: event.modelDigest,
          cacheHit: event.cacheHit,
          batchSize: event.batchSize,
          queueMs: event.queueMs,
          computeMs: event.computeMs,
        },
        error: null,
      };
    case 'InferenceFailed':
      return {
        ...next,
        status: event.retriable ? 'retrying' : 'failed',
        model: event.model,
        modelVersion: event.modelVersion,
        workerId: event.workerId,
        result: null,
        error: { kind: 'failed', reason: event.errorCode, message: event.errorMessage, retriable: event.retriable, retryAfterMs: null },
      };
    case 'RequestRejected':
      return {
        ...next,
        status: 'rejected',
        model: event.model,
        workerId: null,
        result: null,
        error: {
          kind: 'rejected',
          reason: event.reason,
          message: event.detail ?? `rejected: ${event.reason}`,
          retriable: RETRIABLE_REJECTIONS.has(event.reason) || event.retryAfterMs !== null,
          retryAfterMs: event.retryAfterMs,
        },
      };
  }
}

