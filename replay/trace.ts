import type { RecordPosition } from '../lib/log/port.js';
import type {
  ClockEntry,
  InferenceRequested,
  PendingDecision,
  RequestRejected,
  RequestRouted,
  RoutingCandidate,
  SwitchyardEvent,
} from '../schemas/generated/events.js';
import type { FoundEvent } from './lookup.js';
import type { Undecodable } from './source.js';

/**
 * The path of one request, made from its records (lookup.ts): a list of hops in log order with
 * the time spent between them, and the stages people ask about (waiting to be routed, waiting in
 * the worker, computing, end to end). Pure: the renderers (render-text.ts, render-html.ts) and
 * `--json` all print this model.
 */

export type HopKind = 'received' | 'duplicate' | 'routed' | 'rerouted' | 'rejected' | 'started' | 'completed' | 'failed' | 'deadlettered' | 'session';

export interface Hop {
  kind: HopKind;
  /** The event's occurredAt (the producer's clock). */
  at: number;
  /** The record's timestamp (the log's clock). */
  logTime: number;
  /** ms since the previous hop (by occurredAt); null for the first. */
  sincePreviousMs: number | null;
  /** ms since the request was received; null when it was not found. */
  sinceReceivedMs: number | null;
  position: RecordPosition;
  topic: string;
  producer: string;
  attempt: number | null;
  /** One line for people. */
  summary: string;
  /** Label/value pairs for people. */
  details: [string, string][];
  /** For routed/rejected hops: the candidates the router considered. */
  candidates?: RoutingCandidate[];
  /** For routed/rejected hops. */
  clock?: ClockEntry[];
  pendingDecisions?: PendingDecision[];
  /** For routed hops: the chosen worker. */
  chosen?: string;
  event: SwitchyardEvent;
}

export type Outcome = 'completed' | 'failed' | 'rejected' | 'in flight' | 'not found';

export interface Stage {
  name: string;
  ms: number;
}

export interface RequestTrace {
  requestId: string;
  outcome: Outcome;
  /** received → completed/failed/rejected (last terminal event), ms. */
  totalMs: number | null;
  /** Routings of the request (re-dispatches included). */
  attempts: number;
  /** Cache hit or miss of the completion; null when not completed. */
  cache: 'hit' | 'miss' | null;
  request: InferenceRequested | null;
  sessionId: string | null;
  /** Where each stage's time went (present when both ends were seen). */
  stages: Stage[];
  hops: Hop[];
  undecodable: Undecodable[];
}

const pos = (p: RecordPosition): string => `${p.topic}/${p.partition}@${p.offset}`;
const bytes = (n: number): string => (n < 1024 ? `${n} B` : n < 1024 * 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / 1024 / 1024).toFixed(1)} MiB`);
const short = (digest: string | null | undefined): string => (digest ? (digest.length > 16 ? `${digest.slice(0, 12)}…` : digest) : '—');
const orDash = (v: unknown): string => (v === null || v === undefined || v === '' ? '—' : String(v));

/** Summarize a clock: partitions per topic and the sum of their offsets. */
export function clockSummary(clock: readonly ClockEntry[]): string {
  const topics = new Map<string, { partitions: number; records: number }>();
  for (const c of clock) {
    const t = topics.get(c.topic) ?? { partitions: 0, records: 0 };
    t.partitions++;
    t.records += c.offset;
    topics.set(c.topic, t);
  }
  const parts = [...topics].map(([t, v]) => `${t.replace(/^.*\./, '')} ${v.records} in ${v.partitions}p`);
  return `${clock.length} partitions: ${parts.join(', ') || 'empty'}`;
}

function hopOf(f: FoundEvent, receivedAt: number | null): Omit<Hop, 'sincePreviousMs'> {
  const e = f.event;
  const base = {
    at: e.occurredAt,
    logTime: f.timestamp,
    sinceReceivedMs: receivedAt === null ? null : e.occurredAt - receivedAt,
    position: f.position,
    topic: f.topic,
    producer: e.producer,
    event: e,
  };
  switch (e.type) {
    case 'InferenceRequested':
      return {
        ...base,
        kind: 'received',
        attempt: null,
        summary: `received from ${e.producer} (${e.source}) at ${pos(f.position)}`,
        details: [
          ['model', `${e.model}${e.modelVersion ? ` pinned to ${e.modelVersion}` : ''}`],
          ['input', `${bytes(e.input.length)} ${e.contentType}`],
          ['session', orDash(e.sessionId)],
          ['priority', e.priority],
          ['deadline', e.deadlineAt === null ? '—' : `${new Date(e.deadlineAt).toISOString()} (${e.deadlineAt - e.occurredAt} ms after sending)`],
          ['zone', orDash(e.zone)],
          ['tenant', orDash(e.tenant)],
          ['idempotency key', orDash(e.idempotencyKey)],
          ['trace', orDash(e.traceId)],
          ['cacheable', String(e.cacheable)],
          ...Object.entries(e.attributes).map(([k, v]): [string, string] => [`attribute ${k}`, v]),
        ],
      };
    case 'RequestRouted': {
      const redispatch = e.attempt > 1;
      return {
        ...base,
        kind: redispatch ? 'rerouted' : 'routed',
        attempt: e.attempt,
        summary: `${redispatch ? `re-routed (attempt ${e.attempt}, previous worker ${orDash(e.previousWorkerId)})` : 'routed'} by ${e.producer} to ${e.workerId} (lane ${e.lane}, ${orDash(e.zone)}) · ${e.reason}${e.degraded ? ' · degraded' : ''}`,
        details: [
          ['model', `${e.model}@${e.modelVersion}${e.fallback ? ` (fallback for ${orDash(e.requestedModel)})` : ''}`],
          ['model digest', e.modelDigest],
          ['reason', e.reason],
          ['policy', e.policyVersion || '—'],
          ['clock', clockSummary(e.clock)],
          ['pending decisions', e.pendingDecisions.length === 0 ? 'none' : e.pendingDecisions.map((p) => `${p.workerId}×${p.count}`).join(', ')],
          ['request position', e.request === null ? '—' : pos(e.request)],
        ],
        candidates: e.candidates,
        clock: e.clock,
        pendingDecisions: e.pendingDecisions,
        chosen: e.workerId,
      };
    }
    case 'RequestRejected':
      return {
        ...base,
        kind: 'rejected',
        attempt: e.attempt,
        summary: `rejected by ${e.producer}: ${e.reason}${e.detail ? ` — ${e.detail}` : ''}`,
        details: [
          ['reason', e.reason],
          ['detail', orDash(e.detail)],
          ['retry after', e.retryAfterMs === null ? '—' : `${e.retryAfterMs} ms`],
          ['policy', e.policyVersion || '—'],
          ['clock', clockSummary(e.clock)],
        ],
        candidates: e.candidates,
        clock: e.clock,
        pendingDecisions: e.pendingDecisions,
      };
    case 'InferenceStarted':
      return {
        ...base,
        kind: 'started',
        attempt: e.attempt,
        summary: `started on ${e.workerId} (lane ${e.lane}) · batch of ${e.batchSize} · waited ${e.queueMs} ms in the worker`,
        details: [
          ['model', `${e.model}@${e.modelVersion}`],
          ['model digest', e.modelDigest],
          ['batch', `${e.batchSize}${e.batchId ? ` (${e.batchId})` : ''}`],
          ['worker queue', `${e.queueMs} ms`],
        ],
      };
    case 'InferenceCompleted':
      return {
        ...base,
        kind: 'completed',
        attempt: e.attempt,
        summary: `completed on ${e.workerId} · cache ${e.cacheHit ? 'HIT' : 'miss'} · compute ${e.computeMs} ms · output ${bytes(e.output.length)}`,
        details: [
          ['model', `${e.model}@${e.modelVersion}`],
          ['model digest', e.modelDigest],
          ['cache', e.cacheHit ? 'hit' : 'miss'],
          ['worker queue', `${e.queueMs} ms`],
          ['compute', `${e.computeMs} ms`],
          ['batch', String(e.batchSize)],
          ['output', `${bytes(e.output.length)} ${e.contentType}`],
          ['output sha256', orDash(e.outputSha256)],
          ['tokens', e.inputTokens === null && e.outputTokens === null ? '—' : `${orDash(e.inputTokens)} in / ${orDash(e.outputTokens)} out`],
          ...Object.entries(e.metrics).map(([k, v]): [string, string] => [k, String(v)]),
        ],
      };
    case 'InferenceFailed':
      return {
        ...base,
        kind: 'failed',
        attempt: e.attempt,
        summary: `failed on ${e.workerId}: ${e.errorCode}${e.retriable ? ' (retriable)' : ''} — ${e.errorMessage}`,
        details: [
          ['error', e.errorCode],
          ['message', e.errorMessage],
          ['retriable', String(e.retriable)],
          ['model digest', short(e.modelDigest)],
          ['worker queue', `${e.queueMs} ms`],
          ['compute', `${e.computeMs} ms`],
        ],
      };
    case 'DeadLettered':
      return {
        ...base,
        kind: 'deadlettered',
        attempt: null,
        summary: `a record of this request was dead-lettered by ${e.consumerGroup}: ${e.errorCode} (${e.originalTopic}/${e.originalPartition}@${e.originalOffset})`,
        details: [
          ['error', `${e.errorCode}: ${e.errorMessage}`],
          ['original', `${e.originalTopic}/${e.originalPartition}@${e.originalOffset}`],
        ],
      };
    case 'SessionState':
      return {
        ...base,
        kind: 'session',
        attempt: null,
        summary: `session ${e.sessionId} now on ${e.workerId} (lane ${e.lane}), ${e.modelVersion}`,
        details: [],
      };
    default:
      return { ...base, kind: 'session', attempt: null, summary: `${e.type} by ${e.producer}`, details: [] };
  }
}

/** The trace of one request from its records (any order). */
export function buildTrace(requestId: string, found: readonly FoundEvent[], undecodable: Undecodable[] = []): RequestTrace {
  const requests = found.filter((f) => f.event.type === 'InferenceRequested');
  const first = requests[0];
  const request = (first?.event as InferenceRequested | undefined) ?? null;
  const receivedAt = request?.occurredAt ?? null;
  const hops: Hop[] = [];
  let previous: number | null = null;
  for (const f of found) {
    const h = hopOf(f, receivedAt);
    if (f.event.type === 'InferenceRequested' && f !== first) {
      h.kind = 'duplicate';
      h.summary = `sent again by ${f.event.producer} (same request id) at ${pos(f.position)}: decided once`;
    }
    hops.push({ ...h, sincePreviousMs: previous === null ? null : h.at - previous });
    previous = h.at;
  }
  const events = found.map((f) => f.event);
  const completed = events.filter((e) => e.type === 'InferenceCompleted');
  const rejected = events.filter((e): e is RequestRejected => e.type === 'RequestRejected');
  const failed = events.filter((e) => e.type === 'InferenceFailed');
  const routed = events.filter((e): e is RequestRouted => e.type === 'RequestRouted');
  const last = <T>(xs: T[]): T | undefined => xs[xs.length - 1];
  let outcome: Outcome;
  let end: SwitchyardEvent | undefined;
  if (completed.length > 0) {
    outcome = 'completed';
    end = last(completed);
  } else if (rejected.length > 0 && (routed.length === 0 || last(rejected)!.attempt >= last(routed)!.attempt)) {
    outcome = 'rejected';
    end = last(rejected);
  } else if (failed.length > 0 && (routed.length === 0 || (last(failed) as { attempt: number }).attempt >= last(routed)!.attempt)) {
    outcome = 'failed';
    end = last(failed);
  } else outcome = found.length === 0 ? 'not found' : 'in flight';

  const stages: Stage[] = [];
  const firstRouted = routed[0];
  const lastRouted = last(routed);
  const started = events.filter((e) => e.type === 'InferenceStarted' && e.attempt === (lastRouted?.attempt ?? 1));
  if (request && (firstRouted ?? rejected[0])) stages.push({ name: 'waiting to be routed (received → decided)', ms: (firstRouted ?? rejected[0])!.occurredAt - request.occurredAt });
  if (lastRouted && started[0]) stages.push({ name: 'dispatch to the worker (routed → started)', ms: started[0].occurredAt - lastRouted.occurredAt });
  const done = completed[0] ?? failed[failed.length - 1];
  if (started[0] && done) stages.push({ name: 'in the worker (started → finished)', ms: done.occurredAt - started[0].occurredAt });
  if (routed.length > 1 && firstRouted && lastRouted) stages.push({ name: `re-dispatch (attempt 1 → ${lastRouted.attempt})`, ms: lastRouted.occurredAt - firstRouted.occurredAt });
  const totalMs = request && end ? end.occurredAt - request.occurredAt : null;
  if (totalMs !== null) stages.push({ name: 'end to end (received → answered)', ms: totalMs });

  const sessionEvent = events.find((e) => 'sessionId' in e && typeof (e as { sessionId?: unknown }).sessionId === 'string') as { sessionId: string } | undefined;
  const done1 = completed[0];
  return {
    requestId,
    outcome,
    totalMs,
    attempts: routed.length,
    cache: done1 === undefined ? null : done1.type === 'InferenceCompleted' && done1.cacheHit ? 'hit' : 'miss',
    request,
    sessionId: request?.sessionId ?? sessionEvent?.sessionId ?? null,
    stages,
    hops,
    undecodable,
  };
}

/** JSON-safe copy of a value: Buffers become UTF-8 text when they are printable, else `base64:…`. */
export function jsonSafe(value: unknown): unknown {
  if (Buffer.isBuffer(value)) {
    const text = value.toString('utf8');
    return /^[\x20-\x7e\t\r\n\u00a0-\uffff]*$/.test(text) && !text.includes('\ufffd') ? text : `base64:${value.toString('base64')}`;
  }
  if (Array.isArray(value)) return value.map(jsonSafe);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = jsonSafe(v);
    return out;
  }
  if (typeof value === 'number' && !Number.isFinite(value)) return String(value);
  return value;
}
