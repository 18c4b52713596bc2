import { describe, expect, it } from 'vitest';
import type { InferenceRequested } from '../../schemas/generated/events.js';
import { canonicalJson, fingerprint, idempotentRequestId } from './idempotency.js';
import { outcomeError, statusView } from './outcome.js';
import { decodeOutput, encodeInput, payloadKind } from './payload.js';
import { acceptedStatus, evolveStatus, type RequestStatus, type ResultEvent } from './state.js';
import { checkInferenceRequest, describeProblems, rejectionReasonFor } from '../../schemas/request-rules.js';

const NOW = 1_700_000_000_000;

const request = (overrides: Partial<InferenceRequested> = {}): InferenceRequested => ({
  type: 'InferenceRequested',
  eventId: 'e-1',
  occurredAt: NOW,
  requestId: 'r-1',
  traceId: null,
  producer: 'kafka-client-1',
  causationId: null,
  clock: [],
  model: 'sentiment-small',
  modelVersion: null,
  input: Buffer.from('{"text":"hi"}'),
  contentType: 'application/json',
  parameters: {},
  sessionId: null,
  priority: 'NORMAL',
  deadlineAt: null,
  zone: null,
  idempotencyKey: null,
  tenant: null,
  source: 'KAFKA_CLIENT',
  replyTopic: null,
  allowFallback: true,
  cacheable: true,
  attributes: {},
  maxAttempts: null,
  ...overrides,
});

describe('request rules (validate.ts, shared with the router)', () => {
  it('accepts a well-formed request', () => {
    expect(checkInferenceRequest(request({ deadlineAt: NOW + 1, modelVersion: '2024-06-01', zone: 'eu-west-1a', tenant: 'acme', sessionId: 's:1' }), NOW)).toEqual([]);
    expect(checkInferenceRequest(request({ model: 'meta-llama/Llama-3.1-8B', contentType: 'text/plain; charset=utf-8', input: Buffer.from('not json') }), NOW)).toEqual([]);
  });

  it('rejects a passed deadline as DEADLINE_EXCEEDED, anything else as INVALID_REQUEST', () => {
    const late = checkInferenceRequest(request({ deadlineAt: NOW }), NOW);
    expect(late).toEqual([{ field: 'deadlineAt', rule: 'DEADLINE_PASSED', message: `deadline ${NOW} had passed at ${NOW}` }]);
    expect(rejectionReasonFor(late)).toBe('DEADLINE_EXCEEDED');
    const both = checkInferenceRequest(request({ deadlineAt: NOW - 1, model: '' }), NOW);
    expect(rejectionReasonFor(both)).toBe('INVALID_REQUEST');
    expect(rejectionReasonFor([])).toBeNull();
  });

  it('names every broken rule at once', () => {
    const problems = checkInferenceRequest(
      request({
        requestId: null,
        model: 'bad model',
        priority: 'URGENT' as never,
        contentType: 'json',
        deadlineAt: -5,
        sessionId: 'x'.repeat(300),
        parameters: { '': 'a', long: 'v'.repeat(5000) },
      }),
      NOW,
    );
    expect(problems.map((p) => `${p.field}:${p.rule}`).sort()).toEqual([
      'contentType:FORMAT',
      'deadlineAt:FORMAT',
      'model:FORMAT',
      'parameters.long:TOO_LONG',
      'parameters:FORMAT',
      'priority:UNKNOWN_PRIORITY',
      'requestId:REQUIRED',
      'sessionId:TOO_LONG',
    ]);
    expect(describeProblems(problems)).toContain('requestId: requestId is required [REQUIRED]');
  });

  it('requires JSON input to parse as UTF-8 JSON, and bounds its size', () => {
    expect(checkInferenceRequest(request({ input: Buffer.from('{oops') }), NOW)).toMatchObject([{ field: 'input', rule: 'NOT_JSON' }]);
    expect(checkInferenceRequest(request({ input: Buffer.from([0xff, 0x22, 0x22]) }), NOW)).toMatchObject([{ field: 'input', rule: 'NOT_JSON' }]);
    expect(checkInferenceRequest(request({ contentType: 'application/octet-stream', input: Buffer.alloc(11) }), NOW, { ...limits(), maxInputBytes: 10 })).toMatchObject([
      { field: 'input', rule: 'TOO_LARGE' },
    ]);
    expect(checkInferenceRequest(request({ parameters: Object.fromEntries(Array.from({ length: 3 }, (_, i) => [`p${i}`, 'v'])) }), NOW, { ...limits(), maxParameters: 2 })).toMatchObject([
      { field: 'parameters', rule: 'TOO_MANY' },
    ]);
  });
});

const limits = () => ({ maxIdLength: 256, maxModelLength: 256, maxInputBytes: 1024, maxParameters: 64, maxParameterKeyLength: 128, maxParameterValueLength: 4096 });

describe('payloads by content type', () => {
  it('classifies media types', () => {
    expect(payloadKind('application/json')).toBe('json');
    expect(payloadKind('Application/Problem+JSON; charset=utf-8')).toBe('json');
    expect(payloadKind('text/plain')).toBe('text');
    expect(payloadKind('application/octet-stream')).toBe('binary');
    expect(payloadKind('application/x-ndjson')).toBe('binary');
  });

  it('encodes inputs and decodes outputs, falling back to base64 for bytes that do not match', () => {
    expect(encodeInput({ a: [1, 'x'] }, 'application/json')).toEqual({ ok: true, bytes: Buffer.from('{"a":[1,"x"]}') });
    expect(encodeInput('plain', 'application/json')).toEqual({ ok: true, bytes: Buffer.from('"plain"') });
    expect(encodeInput('AAEC', 'image/png')).toEqual({ ok: true, bytes: Buffer.from([0, 1, 2]) });
    expect(encodeInput('AAE', 'image/png').ok).toBe(false);
    expect(decodeOutput(Buffer.from('[1,2]'), 'application/json')).toEqual({ encoding: 'json', value: [1, 2] });
    expect(decodeOutput(Buffer.from('ok'), 'text/plain')).toEqual({ encoding: 'text', value: 'ok' });
    expect(decodeOutput(Buffer.from('not json'), 'application/json')).toEqual({ encoding: 'base64', value: Buffer.from('not json').toString('base64') });
    expect(decodeOutput(Buffer.from([0xff]), 'text/plain')).toEqual({ encoding: 'base64', value: '/w==' });
  });
});

describe('idempotency', () => {
  it('derives the same request id from (tenant, key) everywhere, distinct per tenant', () => {
    const id = idempotentRequestId(null, 'k');
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(idempotentRequestId(undefined, 'k')).toBe(id);
    expect(idempotentRequestId('acme', 'k')).not.toBe(id);
    expect(idempotentRequestId('acme', 'k')).toBe(idempotentRequestId('acme', 'k'));
  });

  it('fingerprints bodies independent of key order', () => {
    expect(canonicalJson({ b: 1, a: { d: [2, { z: 1, y: null }], c: 'x' } })).toBe('{"a":{"c":"x","d":[2,{"y":null,"z":1}]},"b":1}');
    expect(fingerprint({ model: 'm', input: 1 })).toBe(fingerprint({ input: 1, model: 'm' }));
    expect(fingerprint({ model: 'm', input: 1 })).not.toBe(fingerprint({ model: 'm', input: 2 }));
  });
});

const env = (type: ResultEvent['type'], attempt = 1, occurredAt = NOW) => ({ type, eventId: `${type}-${attempt}`, occurredAt, requestId: 'r-1', traceId: null, producer: 'w', causationId: null, clock: [], attempt });
const startedEv = (attempt = 1): ResultEvent => ({ ...env('InferenceStarted', attempt), workerId: 'w1', lane: 0, model: 'm', modelVersion: 'v1', modelDigest: 'd', batchSize: 1, batchId: null, queueMs: 0 }) as ResultEvent;
const completedEv = (attempt = 1): ResultEvent =>
  ({ ...env('InferenceCompleted', attempt, NOW + 5), workerId: 'w1', lane: 0, model: 'm', modelVersion: 'v1', modelDigest: 'd', output: Buffer.from('1'), contentType: 'application/json', outputSha256: null, cacheHit: true, batchSize: 1, queueMs: 1, computeMs: 2, inputTokens: null, outputTokens: null, metrics: {} }) as ResultEvent;
const failedEv = (attempt = 1, errorCode = 'BACKEND_ERROR', retriable = true): ResultEvent =>
  ({ ...env('InferenceFailed', attempt), workerId: 'w1', lane: 0, model: 'm', modelVersion: null, modelDigest: null, errorCode, errorMessage: 'boom', retriable, batchSize: 1, queueMs: 0, computeMs: 0 }) as ResultEvent;
const rejectedEv = (reason: string, retryAfterMs: number | null = null, attempt = 1): ResultEvent =>
  ({ ...env('RequestRejected', attempt), reason, model: 'm', priority: 'LOW', detail: null, retryAfterMs, sessionId: null, candidates: [], pendingDecisions: [], policyVersion: '', attempt }) as ResultEvent;

const fold = (events: ResultEvent[], from?: RequestStatus) => events.reduce<RequestStatus | undefined>((s, e) => evolveStatus(s, e), from)!;

describe('request status fold (state.ts)', () => {
  it('given accepted, when started then completed, then completed with the result', () => {
    const s = fold([startedEv(), completedEv()], acceptedStatus('r-1', 'm', NOW - 10, 'fp'));
    expect(s).toMatchObject({ status: 'completed', workerId: 'w1', modelVersion: 'v1', acceptedAt: NOW - 10, updatedAt: NOW + 5, fingerprint: 'fp', error: null });
    expect(s.result).toMatchObject({ cacheHit: true, queueMs: 1, computeMs: 2 });
  });

  it('is safe against redelivery and late events of the same attempt', () => {
    const done = fold([startedEv(), completedEv()]);
    expect(fold([startedEv(), completedEv(), startedEv(), failedEv()])).toEqual(done);
    expect(fold([failedEv(1, 'BACKEND_ERROR', false), startedEv()]).status).toBe('failed');
  });

  it('treats a retriable failure as no outcome (retrying): the next attempt decides, and the stale tail of an earlier attempt is ignored', () => {
    expect(fold([failedEv(1)]).status).toBe('retrying');
    expect(fold([failedEv(1), startedEv(2), completedEv(2)])).toMatchObject({ status: 'completed', attempt: 2 });
    expect(fold([startedEv(2), failedEv(1)]).status).toBe('started');
  });

  it('keeps the first terminal outcome: a later one (a presumed-dead worker, a second attempt) is superseded', () => {
    expect(fold([completedEv(1), startedEv(2), failedEv(2, 'DEADLINE_EXCEEDED', false)])).toMatchObject({ status: 'completed', attempt: 1 });
    expect(fold([failedEv(2, 'WORKER_LOST', false), completedEv(1)])).toMatchObject({ status: 'failed', attempt: 2 });
  });

  it('never lets a DUPLICATE rejection override what is known', () => {
    expect(fold([completedEv(), rejectedEv('DUPLICATE')]).status).toBe('completed');
    expect(fold([rejectedEv('DUPLICATE')]).status).toBe('rejected');
  });
});

describe('outcome mapping (outcome.ts)', () => {
  const http = (s: RequestStatus) => {
    const e = outcomeError(s);
    return e && { status: e.statusCode, code: e.code, retryAfter: e.headers['retry-after'] ?? null, retriable: e.retriable };
  };
  it.each([
    ['SHED', 2_100, { status: 429, code: 'SY_ERR_REJECTED_OVERLOAD', retryAfter: '3', retriable: true }],
    ['SHED', null, { status: 429, code: 'SY_ERR_REJECTED_OVERLOAD', retryAfter: '1', retriable: true }],
    ['SHED_OVERLOAD', 500, { status: 429, code: 'SY_ERR_REJECTED_OVERLOAD', retryAfter: '1', retriable: true }],
    ['NO_CAPACITY', null, { status: 503, code: 'SY_ERR_REJECTED_NO_CAPACITY', retryAfter: null, retriable: true }],
    ['NO_CAPACITY', 4_000, { status: 503, code: 'SY_ERR_REJECTED_NO_CAPACITY', retryAfter: '4', retriable: true }],
    ['DEADLINE_EXCEEDED', null, { status: 504, code: 'SY_ERR_REJECTED_DEADLINE_EXCEEDED', retryAfter: null, retriable: false }],
    ['UNKNOWN_MODEL', null, { status: 404, code: 'SY_ERR_REJECTED_UNKNOWN_MODEL', retryAfter: null, retriable: false }],
    ['INVALID_REQUEST', null, { status: 400, code: 'SY_ERR_REJECTED_INVALID_REQUEST', retryAfter: null, retriable: false }],
    ['SOMETHING_NEW', null, { status: 503, code: 'SY_ERR_REJECTED', retryAfter: null, retriable: false }],
  ] as const)('RequestRejected %s (retryAfterMs %s) → %o', (reason, retryAfterMs, expected) => {
    expect(http(fold([rejectedEv(reason, retryAfterMs)]))).toEqual(expected);
  });

  it.each([
    ['DEADLINE_EXCEEDED', false, 504, 'SY_ERR_INFERENCE_DEADLINE_EXCEEDED'],
    ['BACKEND_TIMEOUT', false, 504, 'SY_ERR_INFERENCE_TIMEOUT'],
    ['BACKEND_ERROR', false, 502, 'SY_ERR_INFERENCE_FAILED'],
    ['DIGEST_MISMATCH', false, 500, 'SY_ERR_INFERENCE_FAILED'],
  ] as const)('InferenceFailed %s (retriable %s) → %i %s', (errorCode, retriable, status, code) => {
    expect(http(fold([failedEv(1, errorCode, retriable)]))).toMatchObject({ status, code, retriable });
  });

  it('has no error for a completed request, whose view carries the decoded output', () => {
    const s = fold([completedEv()]);
    expect(outcomeError(s)).toBeNull();
    expect(statusView(s)).toMatchObject({ status: 'completed', result: { outputEncoding: 'json', output: 1 } });
    expect(statusView(s).error).toBeUndefined();
  });
});
