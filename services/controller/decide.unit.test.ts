import { describe, expect, it } from 'vitest';
import { backoffCeilingMs, backoffDelayMs, backoffSchedule, jitterOf, retryWithBackoff } from '../../lib/backoff.js';
import { SwitchyardError } from '../../lib/errors.js';
import type {
  ControllerElected,
  ControllerTick,
  InferenceCompleted,
  InferenceFailed,
  LogPosition,
  RequestRouted,
  ResultSuperseded,
  SwitchyardEvent,
} from '../../schemas/generated/events.js';
import { heartbeat, joined, NO_EVIDENCE, registered, request, T0 } from '../router/fixtures.js';
import { decideTick, retryDelayMs, sessionHome, type ControllerAction, type Tick } from './decide.js';
import { addInterval, intervalWindow, judge, phiOf } from './detector.js';
import { DEFAULT_CONTROLLER_POLICY, resolveControllerPolicy, type ControllerPolicy } from './options.js';
import { evolve, initialControllerState, type ControllerState } from './state.js';

/**
 * The controller's decider, given / when / then: given events folded with their positions, when
 * a tick comes at `now`, then these actions. Everything is log time; nothing reads a clock.
 */

const CONTROL = 'switchyard.control';
const RESULTS = 'switchyard.results';
const offsets = new Map<string, number>();
const at = (topic: string, partition = 0): LogPosition => {
  const k = `${topic}/${partition}`;
  const offset = offsets.get(k) ?? 0;
  offsets.set(k, offset + 1);
  return { topic, partition, offset };
};
const where: Partial<Record<SwitchyardEvent['type'], string>> = {
  WorkerJoined: CONTROL,
  WorkerEvicted: CONTROL,
  WorkerDraining: CONTROL,
  ControllerElected: CONTROL,
  ModelVersionRegistered: CONTROL,
  WorkerHeartbeat: 'switchyard.heartbeats',
  ControllerTick: 'switchyard.heartbeats',
  InferenceRequested: 'switchyard.requests',
  RequestRouted: 'switchyard.decisions',
};
/** Fold events, each at the next offset of its topic (results of one request share a partition). */
function given(events: SwitchyardEvent[], policy: ControllerPolicy = DEFAULT_CONTROLLER_POLICY): ControllerState {
  const state = initialControllerState(policy, 8);
  offsets.clear();
  for (const e of events) evolve(state, e, at(where[e.type] ?? RESULTS));
  return state;
}

const env = (producer: string, occurredAt: number, requestId: string | null = null) => ({ eventId: `e-${Math.random().toString(16).slice(2)}`, occurredAt, requestId, traceId: null, producer, causationId: null });
const elected = (epoch: number, controllerId = 'c1', occurredAt = T0): ControllerElected => ({
  type: 'ControllerElected',
  ...env(controllerId, occurredAt),
  clock: [],
  controllerId,
  epoch,
  previousControllerId: null,
  reason: 'FIRST_LEADER',
  leaderSilenceMs: null,
  leaseMs: 2000,
});
const tick = (occurredAt: number, seq: number, controllerId = 'c1'): ControllerTick => ({
  type: 'ControllerTick',
  ...env(controllerId, occurredAt),
  clock: [],
  controllerId,
  epoch: 1,
  seq,
  intervalMs: 100,
  startedAt: T0,
  policy: null,
});
/** A worker that joined at T0 and heartbeat every 100 ms until `lastAt`. */
const beating = (workerId: string, lane: number, lastAt: number): SwitchyardEvent[] => {
  const out: SwitchyardEvent[] = [joined(workerId, lane, { startedAt: T0 })];
  for (let t = T0, seq = 0; t <= lastAt; t += 100, seq++) out.push(heartbeat(workerId, lane, { at: t, seq, startedAt: T0 }));
  return out;
};
/** Controller c1 elected at T0 and ticking every 100 ms until `lastAt`. */
const leading = (lastAt: number): SwitchyardEvent[] => {
  const out: SwitchyardEvent[] = [elected(1)];
  for (let t = T0, seq = 0; t <= lastAt; t += 100, seq++) out.push(tick(t, seq));
  return out;
};
const when = (state: ControllerState, now: number, controllerId = 'c1'): ControllerAction[] =>
  decideTick(state, { tickId: 'tick-x', now, controllerId, epoch: state.view.epoch, previousTickAt: state.ticks.get(controllerId)?.lastAt ?? null, runStartAt: state.ticks.get(controllerId)?.runStartAt ?? null } satisfies Tick);

/** An eviction by controller c1 under epoch 1. */
const evict = (workerId: string, lane: number, occurredAt = T0 + 950): SwitchyardEvent => ({
  type: 'WorkerEvicted', ...env('c1', occurredAt), clock: [], workerId, lane, reason: 'SUSPECTED_DEAD', lastHeartbeatAt: null, lastHeartbeatSeq: null, detail: null, ...NO_EVIDENCE, epoch: 1,
});

const routedTo = (requestId: string, workerId: string, lane: number, o: { attempt?: number; controlOffset?: number; at?: number } = {}): RequestRouted => ({
  type: 'RequestRouted',
  ...env('router-1', o.at ?? T0, requestId),
  clock: [{ topic: CONTROL, partition: 0, offset: o.controlOffset ?? 2 }],
  workerId,
  lane,
  zone: 'zone-a',
  model: 'm',
  requestedModel: null,
  modelVersion: 'v1',
  modelDigest: 'd',
  reason: 'LEAST_LOADED',
  degraded: false,
  fallback: false,
  sessionId: null,
  priority: 'NORMAL',
  deadlineAt: null,
  candidates: [],
  pendingDecisions: [],
  policyVersion: 'router/4',
  attempt: o.attempt ?? 1,
  previousWorkerId: null,
  input: Buffer.from('{}'),
  contentType: 'application/json',
  parameters: {},
  cacheable: true,
  request: null,
});
const completed = (requestId: string, workerId: string, o: { attempt?: number; at?: number } = {}): InferenceCompleted => ({
  type: 'InferenceCompleted',
  ...env(workerId, o.at ?? T0, requestId),
  clock: [],
  workerId,
  lane: 0,
  model: 'm',
  modelVersion: 'v1',
  modelDigest: 'd',
  output: Buffer.from('1'),
  contentType: 'application/json',
  outputSha256: null,
  cacheHit: false,
  batchSize: 1,
  queueMs: 1,
  computeMs: 1,
  inputTokens: null,
  outputTokens: null,
  attempt: o.attempt ?? 1,
  metrics: {},
});
const failed = (requestId: string, workerId: string, o: { attempt?: number; at?: number; retriable?: boolean; code?: string } = {}): InferenceFailed => ({
  type: 'InferenceFailed',
  ...env(workerId, o.at ?? T0, requestId),
  clock: [],
  workerId,
  lane: 0,
  model: 'm',
  modelVersion: 'v1',
  modelDigest: 'd',
  errorCode: o.code ?? 'BACKEND_ERROR',
  errorMessage: 'boom',
  retriable: o.retriable ?? true,
  batchSize: 1,
  queueMs: 0,
  computeMs: 0,
  attempt: o.attempt ?? 1,
});

describe('failure detection', () => {
  it('given a worker silent for 700 ms after beating every 100 ms, when the leader ticks, then it is evicted with its evidence', () => {
    const state = given([registered('m', 'v1'), ...leading(T0 + 2_000), ...beating('w0', 0, T0 + 1_300), ...beating('w1', 1, T0 + 2_000)]);
    const actions = when(state, T0 + 2_050);
    expect(actions).toHaveLength(1);
    expect(actions[0]).toMatchObject({ kind: 'evict', workerId: 'w0', lane: 0, lastHeartbeatAt: T0 + 1_300, lastHeartbeatSeq: 13, silenceMs: 750, startedAt: T0 });
    const e = actions[0] as Extract<ControllerAction, { kind: 'evict' }>;
    expect(e.phi).toBeGreaterThanOrEqual(8);
    expect(e.meanIntervalMs).toBe(100);
    expect(e.heartbeatPosition).toMatchObject({ topic: 'switchyard.heartbeats' });
  });

  it('given a silence shorter than the minimum, then no eviction whatever phi says', () => {
    const state = given([...leading(T0 + 2_000), ...beating('w0', 0, T0 + 1_600)]);
    expect(when(state, T0 + 2_050)).toEqual([]);
  });

  it('given a worker whose heartbeats have always been irregular, then it gets a longer silence before eviction (phi learns the spread)', () => {
    const regular = intervalWindow(100);
    const jittery = intervalWindow(100);
    for (let i = 0; i < 50; i++) {
      addInterval(regular, 100);
      addInterval(jittery, i % 2 === 0 ? 20 : 380);
    }
    const p = DEFAULT_CONTROLLER_POLICY.detector;
    expect(judge(650, regular, p).suspected).toBe(true);
    expect(judge(650, jittery, p).suspected).toBe(false);
    expect(phiOf(650, { meanMs: 200, stdMs: 180 }, p)).toBeLessThan(phiOf(650, { meanMs: 100, stdMs: 60 }, p));
  });

  it('given the controller itself paused (its previous tick long ago), then it evicts nobody at this tick', () => {
    const state = given([...leading(T0 + 1_000), ...beating('w0', 0, T0 + 1_000)]);
    expect(when(state, T0 + 3_000)).toEqual([]);
  });

  it('given the controller resumed after a pause, then silence counts only from its resume', () => {
    // Ticks until 1.0 s, a pause, ticks again from 3.0 s; the worker last beat at 1.0 s.
    const events = [...leading(T0 + 1_000), ...beating('w0', 0, T0 + 1_000), tick(T0 + 3_000, 100), tick(T0 + 3_100, 101), tick(T0 + 3_200, 102)];
    expect(when(given(events), T0 + 3_300)).toEqual([]);
    expect(when(given([...events, ...[3_300, 3_400, 3_500, 3_600].map((t, i) => tick(T0 + t, 103 + i))]), T0 + 3_650)).toMatchObject([{ kind: 'evict', workerId: 'w0' }]);
  });

  it('given a worker already evicted, or a draining one that still beats, then no eviction', () => {
    const evicted: SwitchyardEvent = { type: 'WorkerEvicted', ...env('c1', T0 + 1_500), clock: [], workerId: 'w0', lane: 0, reason: 'SUSPECTED_DEAD', lastHeartbeatAt: null, lastHeartbeatSeq: null, detail: null, ...NO_EVIDENCE, epoch: 1 };
    expect(when(given([...leading(T0 + 2_000), ...beating('w0', 0, T0 + 1_000), evicted]), T0 + 2_050)).toEqual([]);
  });

  it('given an eviction written under a deposed epoch, then every fold ignores it', () => {
    const stale: SwitchyardEvent = { type: 'WorkerEvicted', ...env('c1', T0 + 1_500), clock: [], workerId: 'w0', lane: 0, reason: 'SUSPECTED_DEAD', lastHeartbeatAt: null, lastHeartbeatSeq: null, detail: null, ...NO_EVIDENCE, epoch: 1 };
    const state = given([...leading(T0 + 1_000), elected(2, 'c2', T0 + 1_200), ...beating('w0', 0, T0 + 2_000), stale]);
    expect(state.view.epoch).toBe(2);
    expect(state.view.leader).toBe('c2');
    expect(state.view.workers.get('w0')!.evicted).toBe(false);
    expect(state.view.staleControlIgnored).toBe(1);
    expect(state.evictions.size).toBe(0);
  });

  it('given two claims of the same epoch, then the first in control order wins and the second is refused', () => {
    const state = given([elected(1, 'c1'), elected(2, 'c2'), elected(2, 'c3'), elected(4, 'c4')]);
    expect(state.view).toMatchObject({ epoch: 2, leader: 'c2', staleControlIgnored: 2 });
  });
});

describe('re-dispatch', () => {
  const base = (): SwitchyardEvent[] => [registered('m', 'v1'), elected(1), joined('w0', 0, { startedAt: T0 }), joined('w1', 1, { startedAt: T0 })];

  it("given requests routed to a worker that was then evicted, then each is routed again (attempt + 1, REDISPATCH) from its recorded position", () => {
    const r1 = request('r1', { deadlineAt: T0 + 30_000 });
    const r2 = request('r2', { deadlineAt: T0 + 30_000 });
    const state = given([...base(), r1, r2, routedTo('r1', 'w0', 0), routedTo('r2', 'w0', 0), completed('r2', 'w0'), evict('w0', 0, T0 + 800)]);
    const actions = when(state, T0 + 900);
    expect(actions).toEqual([{ kind: 'route', requestId: 'r1', attempt: 2, reason: 'REDISPATCH', previousWorkerId: 'w0', requestPosition: state.requests.get('r1')!.requested!.position }]);
  });

  it('given a decision made after the eviction was in its view (a new incarnation), then it is not lost', () => {
    const state = given([...base(), request('r1', { deadlineAt: T0 + 30_000 }), evict('w0', 0, T0 + 800), joined('w0', 2, { startedAt: T0 + 900 }), routedTo('r1', 'w0', 2, { controlOffset: 10 })]);
    expect(when(state, T0 + 1_000)).toEqual([]);
  });

  it('given the lost attempt was the last one allowed, then the request ends WORKER_LOST', () => {
    const state = given([...base(), request('r1', { deadlineAt: T0 + 30_000 }), routedTo('r1', 'w1', 1), routedTo('r1', 'w0', 0, { attempt: 3 }), evict('w0', 0, T0 + 800)]);
    expect(when(state, T0 + 900)).toMatchObject([{ kind: 'fail', requestId: 'r1', errorCode: 'WORKER_LOST', attempt: 3, workerId: 'w0', model: 'm' }]);
  });

  it('given a request past its deadline (+ grace) without an outcome, then DEADLINE_EXCEEDED, whether or not it was routed', () => {
    const state = given([...base(), request('r1', { deadlineAt: T0 + 500 }), request('r2', { deadlineAt: T0 + 500 }), routedTo('r2', 'w1', 1)]);
    expect(when(state, T0 + 1_400)).toEqual([]);
    expect(when(state, T0 + 1_500)).toMatchObject([
      { kind: 'fail', requestId: 'r1', errorCode: 'DEADLINE_EXCEEDED', workerId: '', attempt: 1 },
      { kind: 'fail', requestId: 'r2', errorCode: 'DEADLINE_EXCEEDED', workerId: 'w1', attempt: 1 },
    ]);
  });

  it("given a request without a deadline, then the model's maximum request time ends it", () => {
    const policy = resolveControllerPolicy({ models: { m: { maxRequestMs: 2_000 } } });
    const state = given([...base(), request('r1')], policy);
    expect(when(state, T0 + 2_999)).toEqual([]);
    expect(when(state, T0 + 3_000)).toMatchObject([{ kind: 'fail', requestId: 'r1', errorCode: 'DEADLINE_EXCEEDED' }]);
  });

  it('given a terminal outcome folded before its decision (another partition), then the same state as the other order', () => {
    const a = given([...base(), request('r1'), routedTo('r1', 'w0', 0), completed('r1', 'w0')]);
    const b = given([...base(), request('r1'), completed('r1', 'w0'), routedTo('r1', 'w0', 0)]);
    expect(a.requests.size).toBe(0);
    expect(b.requests.size).toBe(0);
    expect(a.outcomes.size).toBe(1);
    // The same outcome (each given() makes its own event ids).
    expect({ ...b.outcomes.get('r1'), eventId: '' }).toEqual({ ...a.outcomes.get('r1'), eventId: '' });
  });

  it('given more terminal outcomes on a partition than outcomeMemory, then its oldest are forgotten, each partition on its own, and a remembered one still wins', () => {
    const policy = resolveControllerPolicy({ outcomeMemory: 16 });
    const ids = Array.from({ length: 40 }, (_, i) => `r${i}`);
    const state = given([...base(), ...ids.map((id) => completed(id, 'w0'))], policy);
    evolve(state, completed('p1', 'w0'), at(RESULTS, 1));
    expect([...ids, 'p1'].filter((id) => state.outcomes.has(id))).toEqual([...ids.slice(24), 'p1']);
    expect(state.outcomes.size).toBe(17);
    evolve(state, completed('r40', 'w0'), at(RESULTS, 0));
    expect(state.outcomes.has('r24')).toBe(false);
    expect(state.outcomes.has('p1')).toBe(true);
    expect(state.outcomes.size).toBe(17);
    // r39 is remembered: its second terminal outcome loses to the first; r0 is not: its late outcome is taken as new
    evolve(state, completed('r39', 'w1'), at(RESULTS, 0));
    expect([...state.losers.values()].map((l) => `${l.loser.requestId}:${l.winner.workerId}`)).toEqual(['r39:w0']);
    evolve(state, completed('r0', 'w1'), at(RESULTS, 0));
    expect(state.losers.size).toBe(1);
    expect(state.outcomes.get('r0')?.workerId).toBe('w1');
    expect(state.outcomes.has('r25')).toBe(false);
  });
});

describe('retries', () => {
  const base = (): SwitchyardEvent[] => [registered('m', 'v1'), elected(1), joined('w0', 0, { startedAt: T0 }), joined('w1', 1, { startedAt: T0 })];

  it('given a retriable failure, then a retry (attempt + 1, RETRY, away from the worker) once the backoff has passed, not before', () => {
    const state = given([...base(), request('r1', { deadlineAt: T0 + 30_000 }), routedTo('r1', 'w0', 0), failed('r1', 'w0', { at: T0 + 100 })]);
    const delay = retryDelayMs(state, 'r1', 1);
    expect(delay).toBeLessThan(backoffCeilingMs(state.policy.retry, 1));
    if (delay > 0) expect(when(state, T0 + 100 + delay - 1)).toEqual([]);
    expect(when(state, T0 + 100 + delay)).toMatchObject([{ kind: 'route', requestId: 'r1', attempt: 2, reason: 'RETRY', previousWorkerId: 'w0' }]);
  });

  it('given the attempts are used up, then the request ends with the last error (not retriable)', () => {
    const state = given([...base(), request('r1', { deadlineAt: T0 + 30_000, maxAttempts: 2 }), routedTo('r1', 'w0', 0), failed('r1', 'w0'), routedTo('r1', 'w1', 1, { attempt: 2 }), failed('r1', 'w1', { attempt: 2, code: 'BACKEND_TIMEOUT' })]);
    expect(when(state, T0 + 10_000)).toMatchObject([{ kind: 'fail', requestId: 'r1', attempt: 2, errorCode: 'BACKEND_TIMEOUT', workerId: 'w1' }]);
  });

  it('given the next retry could not start before the deadline, then the request ends now', () => {
    const state = given([...base(), request('r1', { deadlineAt: T0 + 101 }), routedTo('r1', 'w0', 0), failed('r1', 'w0', { at: T0 + 100 })]);
    const delay = retryDelayMs(state, 'r1', 1);
    expect(when(state, T0 + 100)).toMatchObject(delay >= 1 ? [{ kind: 'fail', requestId: 'r1', errorCode: 'BACKEND_ERROR' }] : [{ kind: 'route' }]);
  });

  it('given a non-retriable failure, then it is the outcome: nothing to do', () => {
    const state = given([...base(), request('r1', { deadlineAt: T0 + 30_000 }), routedTo('r1', 'w0', 0), failed('r1', 'w0', { retriable: false })]);
    expect(state.requests.size).toBe(0);
    expect(when(state, T0 + 5_000)).toEqual([]);
  });
});

describe('session migration', () => {
  const session = (sessionId: string, workerId: string, lane: number): SwitchyardEvent => ({
    type: 'SessionState',
    ...env(workerId, T0, null),
    clock: [],
    sessionId,
    workerId,
    lane,
    model: 'm',
    modelVersion: 'v1',
    lastRequestId: `${sessionId}-r1`,
    updatedAt: T0,
    requestCount: 3,
    context: Buffer.from('turn 1\nturn 2\n'),
    contextBytes: 14,
    reason: 'SERVED',
    migratedFrom: null,
    modelDigest: 'digest-m-v1',
    epoch: null,
  });
  const fleetOf = (n: number): SwitchyardEvent[] => {
    const out: SwitchyardEvent[] = [registered('m', 'v1'), elected(1)];
    for (let i = 0; i < n; i++) out.push(joined(`w${i}`, i, { startedAt: T0 }), heartbeat(`w${i}`, i, { at: T0 + 900, seq: 9, startedAt: T0 }));
    return out;
  };
  it("given sessions on an evicted worker, then each moves with its context to the live worker ranked first for it; the others' stay", () => {
    const sessions = Array.from({ length: 12 }, (_, i) => session(`s${i}`, `w${i % 3}`, i % 3));
    const state = given([...fleetOf(3), ...sessions, evict('w0', 0)]);
    const moves = when(state, T0 + 1_000).filter((a): a is Extract<ControllerAction, { kind: 'migrate' }> => a.kind === 'migrate');
    expect(moves.map((m) => m.session.sessionId).sort()).toEqual(['s0', 's3', 's6', 's9']);
    for (const m of moves) {
      expect(m).toMatchObject({ why: 'EVICTED', session: { workerId: 'w0', contextBytes: 14, requestCount: 3 } });
      expect(['w1', 'w2']).toContain(m.toWorkerId);
      expect(m.toWorkerId).toBe(sessionHome(state, m.session, T0 + 1_000)!.workerId);
    }
    // Spread by rendezvous hashing, not all to one worker.
    expect(new Set(moves.map((m) => m.toWorkerId)).size).toBe(2);
  });

  it('given a draining worker, then its sessions move too; once the move is folded, nothing more to do', () => {
    const draining: SwitchyardEvent = { type: 'WorkerDraining', ...env('w1', T0 + 950), clock: [], workerId: 'w1', lane: 1, reason: 'SIGTERM', drainDeadlineAt: null };
    const state = given([...fleetOf(2), session('a', 'w1', 1), draining]);
    const [move] = when(state, T0 + 1_000);
    expect(move).toMatchObject({ kind: 'migrate', why: 'DRAINING', toWorkerId: 'w0', toLane: 0 });
    evolve(state, { ...(session('a', 'w0', 0) as Extract<SwitchyardEvent, { type: 'SessionState' }>), reason: 'MIGRATED', migratedFrom: 'w1', epoch: 1 }, at('switchyard.sessions'));
    expect(when(state, T0 + 1_000)).toEqual([]);
  });
});

describe('exactly one outcome', () => {
  it('given a second terminal outcome (a presumed-dead worker answering after the re-dispatch), then it is superseded, once', () => {
    const first = completed('r1', 'w1', { attempt: 2 });
    const late = completed('r1', 'w0', { attempt: 1 });
    const state = given([elected(1), request('r1'), first, late]);
    const actions = when(state, T0 + 100);
    expect(actions).toMatchObject([{ kind: 'supersede', loss: { loser: { eventId: late.eventId, attempt: 1, workerId: 'w0' }, winner: { eventId: first.eventId, attempt: 2 } } }]);
    const recorded: ResultSuperseded = {
      type: 'ResultSuperseded',
      ...env('c1', T0 + 100, 'r1'),
      clock: [],
      supersededEventId: late.eventId,
      supersededType: 'InferenceCompleted',
      supersededPosition: { topic: RESULTS, partition: 0, offset: 4 },
      supersededWorkerId: 'w0',
      supersededAttempt: 1,
      winnerEventId: first.eventId,
      winnerType: 'InferenceCompleted',
      winnerPosition: { topic: RESULTS, partition: 0, offset: 3 },
    };
    evolve(state, recorded, at(RESULTS));
    expect(when(state, T0 + 200)).toEqual([]);
    expect(state.finished.superseded).toBe(1);
  });
});

describe('the one backoff schedule (lib/backoff.ts)', () => {
  it('grows exponentially to the cap, with full jitter in [0, ceiling)', () => {
    const s = backoffSchedule({ baseMs: 100, factor: 2, capMs: 1_000 });
    expect([1, 2, 3, 4, 5, 6].map((a) => backoffCeilingMs(s, a))).toEqual([100, 200, 400, 800, 1_000, 1_000]);
    expect(backoffDelayMs(s, 3, 0)).toBe(0);
    expect(backoffDelayMs(s, 3, 0.5)).toBe(200);
    expect(backoffDelayMs(s, 3, 0.9999999)).toBeLessThan(400);
    expect(jitterOf(0xffffffff)).toBeLessThan(1);
    expect(() => backoffSchedule({ baseMs: 10, capMs: 5 })).toThrow(/capMs/);
  });

  it('retries retriable errors within the attempts and the deadline, and never a non-retriable one', async () => {
    const waits: number[] = [];
    let calls = 0;
    const flaky = async () => {
      calls++;
      if (calls < 3) throw new SwitchyardError('SY_ERR_LOG_BROKER', 'down', { retriable: true });
      return 'ok';
    };
    await expect(retryWithBackoff(flaky, { random: () => 0.5, sleep: async (ms) => void waits.push(ms) })).resolves.toBe('ok');
    expect(waits).toEqual([25, 50]);
    let n = 0;
    await expect(retryWithBackoff(async () => { n++; throw new SwitchyardError('SY_ERR_CONFIG', 'bad'); }, { sleep: async () => {} })).rejects.toThrow('bad');
    expect(n).toBe(1);
    let m = 0;
    const now = () => 1_000;
    await expect(retryWithBackoff(async () => { m++; throw new SwitchyardError('SY_ERR_LOG_BROKER', 'down', { retriable: true }); }, { now, deadlineAt: 1_010, random: () => 0.99, sleep: async () => {} })).rejects.toThrow('down');
    expect(m).toBe(1);
  });
});
