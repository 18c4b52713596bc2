import { describe, expect, it } from 'vitest';
import type { ControllerElected, ControllerTick, RequestRejected, ResultSuperseded, SwitchyardEvent, WorkerEvicted } from '../../schemas/generated/events.js';
import { completed, digestOf, evicted, failed, heartbeat, joined, registered, rollout, routed, T0 } from '../router/fixtures.js';
import { DEFAULT_ROUTER_POLICY } from '../router/policies/options.js';
import { evolveStatus, initialStatusState, latencyBin, latencyBinUpperMs, statusDocument, type StatusModelOptions, type StatusState } from './model.js';

/** Given these events (in this order), the status state. */
const given = (events: readonly SwitchyardEvent[], o: StatusModelOptions = {}): StatusState => events.reduce((s, e) => evolveStatus(s, e), initialStatusState({ lanes: 8, ...o }));

let n = 0;
const envelope = (producer: string, at: number, requestId: string | null = null) => ({ eventId: `status-${++n}`, occurredAt: at, requestId, traceId: null, producer, causationId: null, clock: [] });

const elected = (controllerId: string, epoch: number, at: number): ControllerElected => ({
  type: 'ControllerElected',
  ...envelope(controllerId, at),
  controllerId,
  epoch,
  previousControllerId: null,
  reason: 'FIRST_LEADER',
  leaderSilenceMs: null,
  leaseMs: 2000,
});
const tick = (controllerId: string, epoch: number | null, seq: number, at: number): ControllerTick => ({
  type: 'ControllerTick',
  ...envelope(controllerId, at),
  controllerId,
  epoch,
  seq,
  intervalMs: 100,
  startedAt: T0,
  policy: null,
});
const evictedBy = (workerId: string, lane: number, epoch: number, at: number): WorkerEvicted => ({ ...evicted(workerId, lane, at), epoch, silenceMs: 640, phi: 9.5 });
const shed = (requestId: string, at: number): RequestRejected => ({
  type: 'RequestRejected',
  ...envelope('router-1', at, requestId),
  reason: 'SHED',
  model: 'm',
  priority: 'LOW',
  detail: 'every worker queued ≥ 500 ms',
  retryAfterMs: 1000,
  sessionId: null,
  candidates: [],
  pendingDecisions: [],
  policyVersion: 'router/4',
  attempt: 1,
});
const superseded = (requestId: string, at: number): ResultSuperseded => ({
  type: 'ResultSuperseded',
  ...envelope('controller-1', at, requestId),
  supersededEventId: 'late',
  supersededType: 'InferenceCompleted',
  supersededPosition: { topic: 'results', partition: 0, offset: 9 },
  supersededWorkerId: 'w1',
  supersededAttempt: 1,
  winnerEventId: 'first',
  winnerType: 'InferenceCompleted',
  winnerPosition: { topic: 'results', partition: 0, offset: 7 },
});

/** Two workers on lanes 0 and 1 heartbeating at T0. */
const fleet = (): SwitchyardEvent[] => [joined('w1', 0, { zone: 'zone-a' }), joined('w2', 1, { zone: 'zone-b' }), heartbeat('w1', 0, { at: T0, load: 0.25, queueDepth: 3, inFlight: 2, queueDelayMs: 40 }), heartbeat('w2', 1, { zone: 'zone-b', at: T0 })];

describe('status model: members', () => {
  it('lists each member with its lane, zone, heartbeat age, load and queue, judged healthy or stale by the policy', () => {
    const state = given(fleet());
    const doc = statusDocument(state, { now: T0 + 300 });
    expect(doc.members.map((m) => [m.workerId, m.lane, m.zone, m.status, m.health, m.heartbeatAgeMs])).toEqual([
      ['w1', 0, 'zone-a', 'live', 'ok', 300],
      ['w2', 1, 'zone-b', 'live', 'ok', 300],
    ]);
    expect(doc.members[0]).toMatchObject({ load: 0.25, queueDepth: 3, inFlight: 2, queueDelayMs: 40 });
    expect(doc.summary).toMatchObject({ members: 2, live: 2, healthy: 2, queueDepth: 3, inFlight: 2 });

    const later = statusDocument(state, { now: T0 + DEFAULT_ROUTER_POLICY.staleHeartbeatMs + 1 });
    expect(later.members.map((m) => m.health)).toEqual(['stale', 'stale']);
    expect(later.summary.healthy).toBe(0);
  });

  it('an eviction under the epoch in force marks the member evicted, frees its lane and is listed with its evidence; one from a deposed epoch changes nothing', () => {
    const state = given([...fleet(), elected('controller-1', 1, T0 + 10), elected('controller-2', 2, T0 + 20), evictedBy('w2', 1, 1, T0 + 30), evictedBy('w1', 0, 2, T0 + 40)]);
    const doc = statusDocument(state, { now: T0 + 100 });
    expect(doc.members.find((m) => m.workerId === 'w1')).toMatchObject({ status: 'evicted', evicted: { at: T0 + 40, reason: 'SUSPECTED_DEAD' } });
    expect(doc.members.find((m) => m.workerId === 'w2')).toMatchObject({ status: 'live', evicted: null });
    expect(doc.lanes).toMatchObject({ total: 8, held: 1, free: 7, holders: [{ lane: 1, workerId: 'w2', status: 'live' }] });
    const evictions = doc.actions.filter((a) => a.kind === 'evicted');
    expect(evictions).toHaveLength(1);
    expect(evictions[0]).toMatchObject({ subject: 'w1', at: T0 + 40 });
    expect(evictions[0]!.detail).toContain('silent 640 ms, phi 9.5');
    expect(doc.recent.evictions).toBe(1);
    expect(doc.series.evictions.at(-1)).toBe(1);
  });

  it("a worker's own release of its lane after draining is a departure: listed as left, not counted as an eviction", () => {
    const release: WorkerEvicted = { ...evicted('w1', 0, T0 + 50), producer: 'w1', reason: 'DRAINED', detail: 'w1 released lane 0 after draining' };
    const doc = statusDocument(given([...fleet(), release]), { now: T0 + 100 });
    expect(doc.members.find((m) => m.workerId === 'w1')).toMatchObject({ status: 'left', evicted: { at: T0 + 50, reason: 'DRAINED' } });
    expect(doc.summary).toMatchObject({ left: 1, evicted: 0, live: 1 });
    expect(doc.actions.map((a) => [a.kind, a.subject])).toEqual([['left', 'w1'], ['joined', 'w2'], ['joined', 'w1']]);
    expect(doc.recent.evictions).toBe(0);
    expect(doc.lanes.held).toBe(1);
  });
});

describe('status model: controller', () => {
  it('names the leader and epoch of the latest accepted election, each controller with the age of its latest tick', () => {
    const state = given([elected('controller-1', 1, T0), tick('controller-1', 1, 7, T0 + 700), tick('controller-1', 1, 5, T0 + 500), tick('controller-2', null, 3, T0 + 650)]);
    const doc = statusDocument(state, { now: T0 + 1000 });
    expect(doc.controller).toMatchObject({ epoch: 1, leader: 'controller-1', electedAt: T0, leaderTickAgeMs: 300 });
    expect(doc.controller.controllers).toEqual([
      { controllerId: 'controller-1', role: 'leader', epoch: 1, lastTickAgeMs: 300, seq: 7 },
      { controllerId: 'controller-2', role: 'standby', epoch: null, lastTickAgeMs: 350, seq: 3 },
    ]);
    expect(doc.actions.map((a) => [a.kind, a.subject])).toEqual([['elected', 'controller-1']]);
  });

  it('before any election: epoch 0, no leader', () => {
    const doc = statusDocument(given([]), { now: T0 });
    expect(doc.controller).toMatchObject({ epoch: 0, leader: null, electedAt: null, leaderTickAgeMs: null, controllers: [] });
  });
});

describe('status model: models and rollouts', () => {
  it('lists versions in registration order with how many live members loaded each, and the rollout split in percent', () => {
    const state = given([
      registered('m', 'v1'),
      registered('m', 'v2'),
      rollout('m', [{ version: 'v2', weight: 1 }, { version: 'v1', weight: 3 }], { stable: 'v1', canary: 'v2' }),
      joined('w1', 0),
      heartbeat('w1', 0, { loadedModels: [digestOf('m', 'v1'), digestOf('m', 'v2')] }),
      joined('w2', 1),
      heartbeat('w2', 1, { loadedModels: [digestOf('m', 'v1')] }),
    ]);
    const [m] = statusDocument(state, { now: T0 }).models;
    expect(m!.versions).toEqual([
      { version: 'v1', digest: digestOf('m', 'v1'), loadedBy: 2 },
      { version: 'v2', digest: digestOf('m', 'v2'), loadedBy: 1 },
    ]);
    expect(m!.latest).toBe('v2');
    expect(m!.rollout).toEqual({
      weights: [
        { version: 'v1', weight: 3, percent: 75 },
        { version: 'v2', weight: 1, percent: 25 },
      ],
      stableVersion: 'v1',
      canaryVersion: 'v2',
    });
  });
});

describe('status model: per-second series', () => {
  const now = T0 + 60_000 + 500; // half-way through a second
  /** 5 completions a second for the 10 s before `now`, 20 ms each, and one 400 ms completion. */
  const traffic = (): SwitchyardEvent[] => {
    const out: SwitchyardEvent[] = [...fleet()];
    for (let s = 1; s <= 10; s++) {
      for (let i = 0; i < 5; i++) {
        const at = now - s * 1000 + i * 10;
        out.push(routed(`r${s}-${i}`, 'w1', 0, { at: at - 5 }), completed(`r${s}-${i}`, 'w1', 0, { at, latencyMs: 20 }));
      }
    }
    out.push(completed('slow', 'w1', 0, { at: now - 1000, latencyMs: 400 }));
    return out;
  };

  it('counts completions per second, averages whole seconds into rates, and takes latency percentiles from the histogram', () => {
    const doc = statusDocument(given(traffic()), { now, rateSeconds: 10 });
    expect(doc.series.completed).toHaveLength(300);
    expect(doc.series.from).toBe(Math.floor(now / 1000) * 1000 - 299_000);
    expect(doc.series.completed.slice(-11)).toEqual([5, 5, 5, 5, 5, 5, 5, 5, 5, 6, 0]);
    expect(doc.rates.completedPerSec).toBe(5.1);
    expect(doc.rates.routedPerSec).toBeCloseTo(5, 5);
    // 20 ms falls in the bin (2^(34/8), 2^(35/8)] = (19.0, 20.7]; 400 ms is the single slowest of 51.
    expect(doc.rates.p50Ms).toBe(Math.round(latencyBinUpperMs(latencyBin(20)) * 10) / 10);
    expect(latencyBinUpperMs(latencyBin(20))).toBeGreaterThanOrEqual(20);
    expect(latencyBinUpperMs(latencyBin(20))).toBeLessThan(20 * 1.1);
    expect(doc.rates.p99Ms).toBeGreaterThanOrEqual(400);
    expect(doc.rates.p99Ms).toBeLessThan(440);
    expect(doc.series.p50Ms.at(-1)).toBeNull();
    expect(doc.recent.completed).toBe(51);
  });

  it('is the same whatever order the partitions were folded in', () => {
    const events = traffic();
    const shuffled = [...events.slice(0, 4), ...events.slice(4).reverse()];
    expect(statusDocument(given(shuffled), { now })).toEqual(statusDocument(given(events), { now }));
  });

  it('forgets seconds older than the window, and a slot re-used by a newer second starts from zero', () => {
    const state = given([...fleet(), completed('old', 'w1', 0, { at: now - 20_000 })], { seriesSeconds: 10 });
    expect(statusDocument(state, { now }).recent.completed).toBe(0);
    // The same slot (20 s = 2 × 10 s ago), now re-used by a newer second: the old count is gone.
    evolveStatus(state, completed('new', 'w1', 0, { at: now }));
    expect(statusDocument(state, { now }).series.completed.at(-1)).toBe(1);
    // An event older than what its slot holds is outside any window and is not counted.
    evolveStatus(state, completed('older', 'w1', 0, { at: now - 10_000 }));
    expect(statusDocument(state, { now }).recent.completed).toBe(1);
  });

  it('counts a failure only when it is an outcome (a retriable one is retried or ended by the controller)', () => {
    const state = given([...fleet(), failed('a', 'w1', 0, { at: now - 1000 }), { ...failed('b', 'w1', 0, { at: now - 1000 }), retriable: false }]);
    expect(statusDocument(state, { now }).series.failed.at(-2)).toBe(1);
  });
});

describe('status model: recent actions', () => {
  const now = T0 + 10_000;

  it('lists re-dispatches, sheds and superseded outcomes with their request ids, newest first, and counts them over the window', () => {
    const state = given([
      ...fleet(),
      routed('r1', 'w1', 0, { at: now - 3000 }),
      { ...routed('r1', 'w2', 1, { at: now - 2000, attempt: 2 }), reason: 'REDISPATCH', previousWorkerId: 'w1' },
      shed('r2', now - 1500),
      superseded('r3', now - 1000),
    ]);
    const doc = statusDocument(state, { now });
    expect(doc.requestActions.map((a) => [a.kind, a.requestId])).toEqual([
      ['superseded', 'r3'],
      ['shed', 'r2'],
      ['redispatched', 'r1'],
    ]);
    expect(doc.requestActions[2]!.detail).toBe('attempt 2 · REDISPATCH · from w1 to w2');
    expect(doc.recent).toMatchObject({ redispatches: 1, sheds: 1, rejected: 1, superseded: 1 });
    expect(doc.rates.routedPerSec).toBe(0.1); // the first attempt only, over 10 s
  });

  it('keeps the newest of each list: a burst of sheds never pushes an eviction off', () => {
    const events: SwitchyardEvent[] = [...fleet(), elected('controller-1', 1, T0), evictedBy('w2', 1, 1, now - 5000)];
    for (let i = 0; i < 50; i++) events.push(shed(`s${i}`, now - 4000 + i));
    const doc = statusDocument(given(events, { recentActions: 10 }), { now });
    expect(doc.requestActions).toHaveLength(10);
    expect(doc.requestActions.map((a) => a.requestId)).toEqual(Array.from({ length: 10 }, (_, i) => `s${49 - i}`));
    expect(doc.actions.map((a) => a.kind)).toContain('evicted');
    expect(doc.recent.sheds).toBe(50);
  });

  it('a duplicate record (same event id) is listed once', () => {
    const s = shed('dup', now - 100);
    const doc = statusDocument(given([s, s]), { now });
    expect(doc.requestActions).toHaveLength(1);
  });
});
