/**
 * A realistic stream of events for integration tests and benchmarks: per request an
 * InferenceRequested, a RequestRouted (with candidates and a clock), an InferenceStarted and
 * an InferenceCompleted (every 20th fails), plus a heartbeat per worker every 50 requests.
 * Deterministic for a given `start` and `seed` (event ids from an injected clock and counter).
 */
import { createEventIdFactory } from '../../schemas/event-id.js';
import type { SwitchyardEventInit } from '../../schemas/generated/events.js';

export interface StreamOptions {
  /** Number of requests. */
  requests: number;
  /** occurredAt of the first event, ms. */
  start: number;
  /** Distinguishes the ids of streams made with the same `start`. @default 1 */
  seed?: number;
  /** Workers (and lanes 0..workers-1). @default 8 */
  workers?: number;
}

export interface Stream {
  events: SwitchyardEventInit[];
  /** How many events of each type. */
  counts: Record<string, number>;
}

export function eventStream({ requests, start, seed = 1, workers = 8 }: StreamOptions): Stream {
  let t = start;
  let r = seed;
  // xorshift32: deterministic bytes for the ids' random part.
  const random = () => {
    const out = new Uint8Array(16);
    for (let i = 0; i < 16; i++) {
      r ^= r << 13;
      r ^= r >>> 17;
      r ^= r << 5;
      out[i] = r & 0xff;
    }
    return out;
  };
  const nextId = createEventIdFactory({ now: () => t, random });
  const events: SwitchyardEventInit[] = [];
  const counts: Record<string, number> = {};
  const push = (e: SwitchyardEventInit) => {
    events.push(e);
    counts[e.type] = (counts[e.type] ?? 0) + 1;
  };
  const input = Buffer.from('{"text":"the rollout went smoothly and latency dropped"}');
  const output = Buffer.from('{"label":"positive","score":0.94}');
  for (let i = 0; i < requests; i++) {
    t += 1;
    const requestId = `req-${seed}-${i}`;
    const w = i % workers;
    const workerId = `worker-${w}`;
    const zone = w % 2 === 0 ? 'zone-a' : 'zone-b';
    const version = i % 10 === 0 ? 'v2' : 'v1';
    const requested = nextId();
    push({ type: 'InferenceRequested', eventId: requested, occurredAt: t, requestId, producer: 'gateway-1', model: 'sentiment', input, sessionId: `s-${i % 500}`, priority: 'NORMAL', zone, source: 'GATEWAY' });
    const routed = nextId();
    push({
      type: 'RequestRouted',
      eventId: routed,
      occurredAt: t + 1,
      requestId,
      producer: 'router-1',
      causationId: requested,
      clock: [
        { topic: 'switchyard.control', partition: 0, offset: 12 },
        { topic: 'switchyard.heartbeats', partition: w % 6, offset: i },
      ],
      workerId,
      lane: w,
      zone,
      model: 'sentiment',
      modelVersion: version,
      modelDigest: `digest-${version}`,
      reason: 'LEAST_LOADED',
      candidates: [
        { workerId, lane: w, zone, modelVersion: version, score: 0.2, load: 0.3, inFlight: 2, excluded: null },
        { workerId: `worker-${(w + 1) % workers}`, lane: (w + 1) % workers, zone, modelVersion: version, score: 0.6, load: 0.7, inFlight: 5, excluded: null },
      ],
    });
    const started = nextId();
    push({ type: 'InferenceStarted', eventId: started, occurredAt: t + 3, requestId, producer: workerId, causationId: routed, workerId, lane: w, model: 'sentiment', modelVersion: version, modelDigest: `digest-${version}`, queueMs: 2 });
    const latency = 5 + (i % 50);
    if (i % 20 === 19) {
      push({ type: 'InferenceFailed', eventId: nextId(), occurredAt: t + 1 + latency, requestId, producer: workerId, causationId: started, workerId, lane: w, model: 'sentiment', modelVersion: version, errorCode: 'BACKEND_ERROR', errorMessage: 'backend returned 500', retriable: true, queueMs: 2, computeMs: latency - 2 });
    } else {
      push({ type: 'InferenceCompleted', eventId: nextId(), occurredAt: t + 1 + latency, requestId, producer: workerId, causationId: started, workerId, lane: w, model: 'sentiment', modelVersion: version, modelDigest: `digest-${version}`, output, cacheHit: i % 4 === 0, queueMs: 2, computeMs: latency - 2 });
    }
    if (i % 50 === 0) {
      for (let k = 0; k < workers; k++) {
        push({ type: 'WorkerHeartbeat', eventId: nextId(), occurredAt: t, producer: `worker-${k}`, workerId: `worker-${k}`, lane: k, zone: k % 2 === 0 ? 'zone-a' : 'zone-b', seq: i, load: 0.4, queueDepth: 1, inFlight: 2, capacity: 8, cacheHitRatio: 0.25 });
      }
    }
  }
  return { events, counts };
}
