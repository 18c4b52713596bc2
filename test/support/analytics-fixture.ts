/**
 * A small fleet's day, built from the generated event types, with answers known by hand:
 * the query pack's tests insert it (through the sink's row mapping) and compare every
 * query's output with numbers worked out in `test/contract/analytics-pack.contract.ts`.
 *
 * Window 10:00–12:00 UTC on 2026-01-01, hourly buckets. Models `sentiment` (v1 stable, v2
 * canary since 09:30, promoted at 11:45), `llm` (q4) and `llm-big` (no capacity: served by
 * its fallback, sentiment). Workers w1 (zone a, lane 1), w2 (zone a, lane 2), w3 (zone b,
 * lane 3). controller-1 leads from 09:00:30 (epoch 1); controller-2 takes over at 11:10
 * (epoch 2, LEADER_SILENT), evicts w1 at 11:30 (SUSPECTED_DEAD, with the failure
 * detector's evidence) and r25 is re-dispatched to w2.
 *
 * Requests r1..r20 (sentiment) arrive at 10:0i; r1–r10 NORMAL, r11–r15 HIGH, r16–r20 LOW.
 * r1–r16 are routed (r1–r6 AFFINITY, r7–r11 LEAST_LOADED, r12 ZONE_FAILOVER, r13–r16
 * CANARY); w1 serves r1–r8, w2 r9–r12 (v1), w3 r13–r16 (v2). r17, r18, r20 are SHED and
 * r19 rejected with NO_CAPACITY. ri's latency is 10·i ms (queue i, compute 9i); r5 and r15
 * fail; r2, r4, r6, r10 are cache hits. r21–r24 (llm, CRITICAL) at 11:01–11:04 go to w3 with
 * latencies 500..800. r0 (09:59) and r27 (12:00:00) fall outside the window.
 *
 * Exactly one client-visible outcome per request: two requests get a second terminal outcome
 * that loses, each named by a ResultSuperseded. r24, completed at 11:04:01.8, is rejected
 * again (DEADLINE_EXCEEDED) at 11:04:05 by a second router; w1, presumed dead, completes r25's
 * first attempt at 11:33 (latency 779 s), after w2 answered it at 11:31. The pack counts
 * neither as an outcome; decisions-by-reason counts the rejection as a decision, and
 * control-actions lists both ResultSuperseded.
 *
 * Times: a decision comes 1 s after its request, a result `latency` ms after its decision.
 */
import { InMemoryRegistry } from '../../lib/registry/core.js';
import { EventCodec } from '../../schemas/codec.js';
import type { Priority, SwitchyardEvent, SwitchyardEventInit } from '../../schemas/generated/events.js';

export const at = (h: number, m: number, s = 0, ms = 0): number => Date.UTC(2026, 0, 1, h, m, s, ms);

export const WINDOW = { since: new Date(at(10, 0)), until: new Date(at(12, 0)) };

interface Worker {
  id: string;
  lane: number;
  zone: string;
}
const W1: Worker = { id: 'w1', lane: 1, zone: 'a' };
const W2: Worker = { id: 'w2', lane: 2, zone: 'a' };
const W3: Worker = { id: 'w3', lane: 3, zone: 'b' };

/**
 * The ControllerTick at which controller-2 decided w1's eviction. Ticks are not in the
 * fixture: `ticks` keeps 30 days (TTL), and the fixture's day is long past.
 */
export const EVICTION_TICK_ID = '0194d2a1-0000-7000-8000-0000000ff001';

/** Deterministic UUIDs: the fixture's n-th event id. */
export const fixtureEventId = (n: number): string => `0194d2a1-0000-7000-8000-${n.toString(16).padStart(12, '0')}`;

export function fixtureEventInits(): SwitchyardEventInit[] {
  const out: SwitchyardEventInit[] = [];
  let n = 0;
  const env = (occurredAt: number, requestId: string | null, producer: string) => ({ eventId: fixtureEventId(++n), occurredAt, requestId, producer });
  /** Appends an event and returns its id. */
  const push = (e: SwitchyardEventInit): string => {
    out.push(e);
    return e.eventId;
  };

  const request = (id: string, t: number, model: string, priority: Priority) =>
    out.push({ type: 'InferenceRequested', ...env(t, id, 'gateway-1'), model, input: Buffer.from(`{"id":"${id}"}`), priority, zone: 'a' });
  const routed = (id: string, t: number, model: string, version: string, w: Worker, reason: string, priority: Priority, extra: Partial<SwitchyardEventInit & { type: 'RequestRouted' }> = {}) =>
    push({
      type: 'RequestRouted',
      ...env(t, id, 'router-1'),
      workerId: w.id,
      lane: w.lane,
      zone: w.zone,
      model,
      modelVersion: version,
      modelDigest: `digest-${version}`,
      reason,
      priority,
      candidates: [{ workerId: w.id, lane: w.lane, zone: w.zone, modelVersion: version, score: 0.5, load: 0.25, inFlight: 1, excluded: null }],
      clock: [{ topic: 'switchyard.control', partition: 0, offset: 7 }],
      ...extra,
    });
  const started = (id: string, t: number, model: string, version: string, w: Worker, queueMs: number, attempt = 1) =>
    out.push({ type: 'InferenceStarted', ...env(t, id, w.id), workerId: w.id, lane: w.lane, model, modelVersion: version, modelDigest: `digest-${version}`, queueMs, attempt });
  const completed = (id: string, t: number, model: string, version: string, w: Worker, queueMs: number, computeMs: number, cacheHit: boolean, attempt = 1) =>
    push({
      type: 'InferenceCompleted',
      ...env(t, id, w.id),
      workerId: w.id,
      lane: w.lane,
      model,
      modelVersion: version,
      modelDigest: `digest-${version}`,
      output: Buffer.from('{"label":"ok"}'),
      cacheHit,
      queueMs,
      computeMs,
      attempt,
    });
  const failed = (id: string, t: number, model: string, version: string, w: Worker, queueMs: number, computeMs: number) =>
    out.push({ type: 'InferenceFailed', ...env(t, id, w.id), workerId: w.id, lane: w.lane, model, modelVersion: version, errorCode: 'BACKEND_ERROR', errorMessage: 'boom', retriable: false, queueMs, computeMs });

  // Control before the window.
  out.push({ type: 'ControllerElected', ...env(at(9, 0, 0, 500), null, 'controller-1'), controllerId: 'controller-1', epoch: 1, reason: 'FIRST_LEADER', leaseMs: 2_000 });
  for (const [i, w] of [W1, W2, W3].entries()) {
    out.push({ type: 'WorkerJoined', ...env(at(9, 0, i), null, w.id), workerId: w.id, lane: w.lane, zone: w.zone, capacity: 4, models: ['sentiment', 'llm'] });
  }
  for (const [i, [model, version]] of [['sentiment', 'v1'], ['sentiment', 'v2'], ['llm', 'q4']].entries()) {
    out.push({ type: 'ModelVersionRegistered', ...env(at(9, 1, i), null, 'controller-1'), model: model!, version: version!, digest: `digest-${version}`, sizeBytes: 1024, kind: 'mlp' });
  }
  out.push({
    type: 'RolloutChanged',
    ...env(at(9, 30), null, 'controller-1'),
    model: 'sentiment',
    weights: [{ version: 'v1', weight: 0.75 }, { version: 'v2', weight: 0.25 }],
    stableVersion: 'v1',
    canaryVersion: 'v2',
    canary: true,
    reason: 'CANARY_START',
  });
  out.push({ type: 'RolloutChanged', ...env(at(9, 31), null, 'controller-1'), model: 'llm', weights: [{ version: 'q4', weight: 1 }], stableVersion: 'q4', reason: 'MANUAL' });
  for (const w of [W1, W2, W3]) {
    out.push({ type: 'WorkerHeartbeat', ...env(at(10, 0), null, w.id), workerId: w.id, lane: w.lane, zone: w.zone, seq: 1, load: 0.25, queueDepth: 0, inFlight: 1, capacity: 4, cacheHitRatio: 0.5 });
  }

  // Outside the window, before: r0.
  request('r0', at(9, 59), 'sentiment', 'NORMAL');
  routed('r0', at(9, 59, 1), 'sentiment', 'v1', W1, 'AFFINITY', 'NORMAL');
  completed('r0', at(9, 59, 1) + 999, 'sentiment', 'v1', W1, 0, 999, false);

  // 10:00–11:00: r1..r20, sentiment.
  for (let i = 1; i <= 20; i++) {
    const id = `r${i}`;
    const t = at(10, i);
    const priority: Priority = i <= 10 ? 'NORMAL' : i <= 15 ? 'HIGH' : 'LOW';
    request(id, t, 'sentiment', priority);
    const decidedAt = t + 1000;
    if (i >= 17) {
      out.push({
        type: 'RequestRejected',
        ...env(decidedAt, id, 'router-1'),
        model: 'sentiment',
        priority,
        reason: i === 19 ? 'NO_CAPACITY' : 'SHED',
        retryAfterMs: 500,
      });
      continue;
    }
    const w = i <= 8 ? W1 : i <= 12 ? W2 : W3;
    const version = i <= 12 ? 'v1' : 'v2';
    const reason = i <= 6 ? 'AFFINITY' : i <= 11 ? 'LEAST_LOADED' : i === 12 ? 'ZONE_FAILOVER' : 'CANARY';
    routed(id, decidedAt, 'sentiment', version, w, reason, priority, i === 12 ? { degraded: true } : {});
    const queue = i;
    const compute = 9 * i;
    started(id, decidedAt + queue, 'sentiment', version, w, queue);
    if (i === 5 || i === 15) failed(id, decidedAt + 10 * i, 'sentiment', version, w, queue, compute);
    else completed(id, decidedAt + 10 * i, 'sentiment', version, w, queue, compute, [2, 4, 6, 10].includes(i));
  }

  // 11:00–12:00: llm on w3.
  for (let i = 21; i <= 24; i++) {
    const id = `r${i}`;
    const t = at(11, i - 20);
    const latency = 100 * (i - 16);
    request(id, t, 'llm', 'CRITICAL');
    routed(id, t + 1000, 'llm', 'q4', W3, 'LEAST_LOADED', 'CRITICAL');
    started(id, t + 1000, 'llm', 'q4', W3, 0);
    const outcome = completed(id, t + 1000 + latency, 'llm', 'q4', W3, 0, latency, false);
    if (i === 24) {
      // A second router rejects r24 after it was answered: that rejection is not an outcome.
      const late = push({ type: 'RequestRejected', ...env(at(11, 4, 5), id, 'router-2'), model: 'llm', priority: 'CRITICAL', reason: 'DEADLINE_EXCEEDED', attempt: 1 });
      out.push({
        type: 'ResultSuperseded',
        ...env(at(11, 4, 5, 100), id, 'controller-1'),
        causationId: late,
        supersededEventId: late,
        supersededType: 'RequestRejected',
        supersededPosition: { topic: 'switchyard.results', partition: 3, offset: 501 },
        winnerEventId: outcome,
        winnerType: 'InferenceCompleted',
        winnerPosition: { topic: 'switchyard.results', partition: 3, offset: 500 },
      });
    }
  }
  out.push({
    type: 'ControllerElected',
    ...env(at(11, 10), null, 'controller-2'),
    controllerId: 'controller-2',
    epoch: 2,
    previousControllerId: 'controller-1',
    reason: 'LEADER_SILENT',
    leaderSilenceMs: 2_150,
    leaseMs: 2_000,
  });
  // r25: routed to w1, w1 evicted, re-dispatched to w2.
  request('r25', at(11, 20), 'sentiment', 'NORMAL');
  routed('r25', at(11, 20, 1), 'sentiment', 'v1', W1, 'AFFINITY', 'NORMAL');
  started('r25', at(11, 20, 1) + 2, 'sentiment', 'v1', W1, 2);
  out.push({
    type: 'WorkerEvicted',
    ...env(at(11, 30), null, 'controller-2'),
    causationId: EVICTION_TICK_ID,
    workerId: 'w1',
    lane: 1,
    reason: 'SUSPECTED_DEAD',
    lastHeartbeatAt: at(11, 29, 59, 310),
    lastHeartbeatSeq: 1_234,
    detail: 'no heartbeat for 690 ms (phi 9.2 ≥ 8, at least 500 ms)',
    epoch: 2,
    startedAt: at(9, 0),
    heartbeatPosition: { topic: 'switchyard.heartbeats', partition: 1, offset: 4_711 },
    heartbeatEnd: 4_712,
    silenceMs: 690,
    phi: 9.2,
    phiThreshold: 8,
    minSilenceMs: 500,
    meanIntervalMs: 101.5,
    stdIntervalMs: 25,
    tickId: EVICTION_TICK_ID,
  });
  routed('r25', at(11, 30, 5), 'sentiment', 'v1', W2, 'REDISPATCH', 'NORMAL', { attempt: 2, previousWorkerId: 'w1' });
  started('r25', at(11, 30, 6), 'sentiment', 'v1', W2, 1, 2);
  const answer = completed('r25', at(11, 31), 'sentiment', 'v1', W2, 1, 49, false, 2);
  // w1 was not dead after all: it completes the first attempt after w2 answered. It loses.
  const lateAnswer = completed('r25', at(11, 33), 'sentiment', 'v1', W1, 2, 778_998, false, 1);
  out.push({
    type: 'ResultSuperseded',
    ...env(at(11, 33, 0, 500), 'r25', 'controller-2'),
    causationId: lateAnswer,
    supersededEventId: lateAnswer,
    supersededType: 'InferenceCompleted',
    supersededPosition: { topic: 'switchyard.results', partition: 5, offset: 1_201 },
    supersededWorkerId: 'w1',
    supersededAttempt: 1,
    winnerEventId: answer,
    winnerType: 'InferenceCompleted',
    winnerPosition: { topic: 'switchyard.results', partition: 5, offset: 1_200 },
  });
  // r26: llm-big has no capacity; served by sentiment v1 on w2, from the cache.
  request('r26', at(11, 25), 'llm-big', 'HIGH');
  routed('r26', at(11, 25, 1), 'sentiment', 'v1', W2, 'FALLBACK_MODEL', 'HIGH', { requestedModel: 'llm-big', fallback: true, degraded: true });
  started('r26', at(11, 25, 1) + 2, 'sentiment', 'v1', W2, 2);
  completed('r26', at(11, 25, 1) + 25, 'sentiment', 'v1', W2, 2, 23, true);
  out.push({ type: 'ScaleDecided', ...env(at(11, 40), null, 'controller-2'), pool: 'sentiment', model: 'sentiment', from: 3, to: 2, reason: 'IDLE', epoch: 2 });
  out.push({ type: 'RolloutChanged', ...env(at(11, 45), null, 'controller-2'), model: 'sentiment', weights: [{ version: 'v2', weight: 1 }], stableVersion: 'v2', reason: 'PROMOTE', epoch: 2 });
  out.push({ type: 'WorkerDraining', ...env(at(11, 50), null, 'w3'), workerId: 'w3', lane: 3, reason: 'SCALE_DOWN' });
  out.push({
    type: 'SessionState',
    ...env(at(11, 31), 'r25', 'router-1'),
    sessionId: 's1',
    workerId: 'w2',
    lane: 2,
    model: 'sentiment',
    modelVersion: 'v1',
    lastRequestId: 'r25',
    updatedAt: at(11, 31),
    requestCount: 3,
  });
  out.push({
    type: 'DeadLettered',
    ...env(at(10, 30), null, 'sink-1'),
    originalTopic: 'switchyard.requests',
    originalPartition: 0,
    originalOffset: 99,
    originalValue: Buffer.from([0xff, 0x00, 0x01]),
    errorCode: 'SY_ERR_CODEC_MAGIC',
    errorMessage: 'not the wire format',
    consumerGroup: 'sink',
  });
  // Outside the window, after: r27 arrives exactly at `until` (exclusive).
  request('r27', at(12, 0), 'sentiment', 'NORMAL');
  return out;
}

/** The fixture as consumers see it: encoded and decoded, so every defaulted field is filled in. */
export async function fixtureEvents(): Promise<SwitchyardEvent[]> {
  const codec = await EventCodec.create({ registry: new InMemoryRegistry() });
  return Promise.all(fixtureEventInits().map((e) => codec.decode(codec.encode(e))));
}
