import { describe, expect, it } from 'vitest';
import { decide, nextDispatchAt, type WorkerCommand } from './decide.js';
import { evolve, hitRatio, initialWorkerState, isIdle, loadOf, type DecisionView, type WorkerEvent, type WorkerLimits, type WorkerState } from './state.js';

/**
 * The worker decider, given/when/then: given the worker's past events (folded into a state),
 * when a command arrives, then these events. Time is passed in; nothing here waits.
 */
const W = 'worker-1';
const T0 = 1_735_689_600_000;

const decision = (requestId: string, o: Partial<DecisionView> = {}): DecisionView => ({
  decisionId: `d-${requestId}`,
  requestId,
  workerId: W,
  lane: 3,
  modelDigest: 'a'.repeat(64),
  priority: 'NORMAL',
  deadlineAt: null,
  routedAt: T0,
  cacheable: true,
  attempt: 1,
  controlOffset: 10,
  ...o,
});

function given(events: (state: WorkerState) => WorkerEvent[] = () => [], limits: Partial<WorkerLimits> = {}): WorkerState {
  const state = initialWorkerState(W, 3, { capacity: 4, maxBatchSize: 4, maxBatchDelayMs: 0, ...limits });
  for (const e of events(state)) evolve(state, e);
  return state;
}
/** Runs commands in order against the state (folding their events); returns the last command's events. */
function when(state: WorkerState, ...commands: WorkerCommand[]): WorkerEvent[] {
  let events: WorkerEvent[] = [];
  for (const c of commands) {
    events = decide(c, state);
    for (const e of events) evolve(state, e);
  }
  return events;
}
const receive = (d: DecisionView, now = T0, cached = false): WorkerCommand => ({ type: 'Receive', now, decision: d, cached });
const dispatch = (now = T0): WorkerCommand => ({ type: 'Dispatch', now });
const types = (events: WorkerEvent[]) => events.map((e) => e.type);
const batches = (events: WorkerEvent[]) => events.flatMap((e) => (e.type === 'BatchStarted' ? [e.jobs.map((j) => j.requestId)] : []));

describe('worker decider: accept or drop', () => {
  it('queues a decision addressed to this worker', () => {
    const state = given();
    const events = when(state, receive(decision('r1')));
    expect(events).toMatchObject([{ type: 'JobQueued', job: { requestId: 'r1', receivedAt: T0, seq: 0 }, cacheMiss: true }]);
    expect(state.queued).toBe(1);
  });

  it('skips a decision addressed to another worker (a previous owner of the lane)', () => {
    const events = when(given(), receive(decision('r1', { workerId: 'previous-owner' })));
    expect(events).toMatchObject([{ type: 'DecisionSkipped', reason: 'OTHER_WORKER' }]);
  });

  it('skips a redelivered decision that is still queued or computing', () => {
    const state = given();
    when(state, receive(decision('r1')));
    expect(when(state, receive(decision('r1')))).toMatchObject([{ type: 'DecisionSkipped', reason: 'DUPLICATE' }]);
    when(state, dispatch());
    expect(when(state, receive(decision('r1')))).toMatchObject([{ type: 'DecisionSkipped', reason: 'DUPLICATE' }]);
  });

  it('drops a decision whose deadline passed before it arrived: DEADLINE_EXCEEDED with the reason', () => {
    const events = when(given(), receive(decision('late', { deadlineAt: T0 - 5 }), T0));
    expect(events).toEqual([expect.objectContaining({ type: 'DecisionRefused', code: 'DEADLINE_EXCEEDED', retriable: false })]);
    expect((events[0] as { message: string }).message).toMatch(/deadline passed 5 ms before the worker received/);
  });

  it('drops queued work whose deadline passes before it starts, and starts the rest', () => {
    const state = given(() => [], { capacity: 1, maxBatchSize: 1 });
    when(state, receive(decision('busy')), dispatch(T0));
    when(state, receive(decision('short', { deadlineAt: T0 + 10 }), T0 + 1), receive(decision('long', { deadlineAt: T0 + 1000 }), T0 + 2));
    const batch = [...state.batches.keys()][0]!;
    const events = when(state, { type: 'Finish', now: T0 + 20, batchId: batch, completed: 1, failed: 0 }, dispatch(T0 + 20));
    expect(events).toMatchObject([{ type: 'DecisionRefused', code: 'DEADLINE_EXCEEDED', job: { requestId: 'short' } }, { type: 'BatchStarted' }]);
    expect(batches(events)).toEqual([['long']]);
    expect(state.queued).toBe(0);
  });
});

describe('worker decider: result cache', () => {
  it('answers a cacheable decision from the cache without queueing it', () => {
    const state = given();
    expect(when(state, receive(decision('r1'), T0, true))).toMatchObject([{ type: 'CacheHit', job: { requestId: 'r1' } }]);
    expect(state.queued).toBe(0);
    expect(state.counters).toMatchObject({ cacheHits: 1, cacheMisses: 0, completed: 1 });
  });

  it('computes a non-cacheable decision even when the cache holds an answer, and does not count it as a miss', () => {
    const state = given();
    expect(when(state, receive(decision('r1', { cacheable: false }), T0, true))).toMatchObject([{ type: 'JobQueued', cacheMiss: false }]);
    expect(state.counters.cacheMisses).toBe(0);
  });

  it('reports the hit ratio of cacheable lookups', () => {
    const state = given();
    when(state, receive(decision('a'), T0, true), receive(decision('b'), T0, false), receive(decision('c'), T0, true), receive(decision('d'), T0, true));
    expect(hitRatio(state.counters.cacheHits, state.counters.cacheMisses)).toBe(0.75);
    expect(hitRatio(0, 0)).toBe(0);
  });
});

describe('worker decider: dynamic batching', () => {
  it('with no delay, starts a batch as soon as there is capacity', () => {
    const state = given();
    const events = when(state, receive(decision('r1')), dispatch());
    expect(batches(events)).toEqual([['r1']]);
    expect(events[0]).toMatchObject({ type: 'BatchStarted', batchId: `${W}/b0`, at: T0 });
  });

  it('waits up to the max queue delay to fill a batch, then starts what it has', () => {
    const state = given(() => [], { maxBatchDelayMs: 5 });
    expect(when(state, receive(decision('r1'), T0), dispatch(T0))).toEqual([]);
    expect(nextDispatchAt(state)).toBe(T0 + 5);
    expect(when(state, receive(decision('r2'), T0 + 2), dispatch(T0 + 2))).toEqual([]);
    expect(batches(when(state, dispatch(T0 + 5)))).toEqual([['r1', 'r2']]);
    expect(nextDispatchAt(state)).toBeNull();
  });

  it('starts a full batch at once, without waiting for the delay', () => {
    const state = given(() => [], { maxBatchDelayMs: 1000, maxBatchSize: 3, capacity: 8 });
    when(state, receive(decision('r1')), receive(decision('r2')));
    expect(when(state, dispatch())).toEqual([]);
    expect(batches(when(state, receive(decision('r3')), dispatch()))).toEqual([['r1', 'r2', 'r3']]);
  });

  it('splits by max batch size and batches only requests of the same model', () => {
    const state = given(() => [], { capacity: 8, maxBatchSize: 2 });
    const b = 'b'.repeat(64);
    when(state, receive(decision('a1')), receive(decision('b1', { modelDigest: b })), receive(decision('a2')), receive(decision('a3')));
    const events = when(state, dispatch());
    expect(batches(events)).toEqual([['a1', 'a2'], ['a3'], ['b1']]);
    expect(events.map((e) => (e.type === 'BatchStarted' ? e.batchId : ''))).toEqual([`${W}/b0`, `${W}/b1`, `${W}/b2`]);
  });

  it('serves higher priority classes first, across and within models', () => {
    const state = given(() => [], { capacity: 2, maxBatchSize: 1 });
    when(state, receive(decision('low', { priority: 'LOW' })), receive(decision('normal')), receive(decision('critical', { priority: 'CRITICAL', modelDigest: 'c'.repeat(64) })));
    expect(batches(when(state, dispatch()))).toEqual([['critical'], ['normal']]);
  });
});

describe('worker decider: concurrency limit', () => {
  it('never computes more requests at once than its capacity', () => {
    const state = given(() => [], { capacity: 3, maxBatchSize: 2 });
    for (const r of ['r1', 'r2', 'r3', 'r4', 'r5']) when(state, receive(decision(r)));
    expect(batches(when(state, dispatch()))).toEqual([['r1', 'r2'], ['r3']]);
    expect(state.inFlight).toBe(3);
    expect(loadOf(state)).toBe(1);
    expect(when(state, dispatch())).toEqual([]);
    expect(nextDispatchAt(state)).toBeNull();
  });

  it('forms batches from what queued while every execution was busy (not one batch per freed request slot)', () => {
    const state = given(() => [], { capacity: 4, maxBatchSize: 4 });
    when(state, receive(decision('first')), dispatch());
    for (const r of ['r1', 'r2', 'r3']) when(state, receive(decision(r)), dispatch());
    expect(state.batches.size).toBe(1);
    expect(state.queued).toBe(3);
    const events = when(state, { type: 'Finish', now: T0 + 5, batchId: `${W}/b0`, completed: 1, failed: 0 }, dispatch(T0 + 5));
    expect(batches(events)).toEqual([['r1', 'r2', 'r3']]);
  });

  it('runs several batches at once when allowed', () => {
    const state = given(() => [], { capacity: 4, maxBatchSize: 4, maxConcurrentBatches: 2 });
    when(state, receive(decision('first')), dispatch());
    expect(batches(when(state, receive(decision('second')), dispatch()))).toEqual([['second']]);
  });

  it('starts queued work when a batch finishes', () => {
    const state = given(() => [], { capacity: 2, maxBatchSize: 2 });
    for (const r of ['r1', 'r2', 'r3']) when(state, receive(decision(r)));
    when(state, dispatch());
    const events = when(state, { type: 'Finish', now: T0 + 9, batchId: `${W}/b0`, completed: 1, failed: 1 }, dispatch(T0 + 9));
    expect(batches(events)).toEqual([['r3']]);
    expect(state.counters).toMatchObject({ completed: 1, failed: 1, batches: 2 });
  });

  it('ignores a Finish for a batch it does not know', () => {
    expect(when(given(), { type: 'Finish', now: T0, batchId: 'nope', completed: 1, failed: 0 })).toEqual([]);
  });
});

describe('worker decider: draining', () => {
  it('starts draining once', () => {
    const state = given();
    expect(when(state, { type: 'Drain', now: T0, drainOffset: 42 })).toEqual([{ type: 'DrainStarted', at: T0, drainOffset: 42 }]);
    expect(when(state, { type: 'Drain', now: T0 + 1, drainOffset: 43 })).toEqual([]);
    expect(state.drainOffset).toBe(42);
  });

  it('still executes decisions made before the router could have seen the drain', () => {
    const state = given((s) => decide({ type: 'Drain', now: T0, drainOffset: 42 }, s));
    expect(types(when(state, receive(decision('before', { controlOffset: 42 }))))).toEqual(['JobQueued']);
    expect(types(when(state, receive(decision('unknown-clock', { controlOffset: null }))))).toEqual(['JobQueued']);
  });

  it('refuses (retriable) a decision made after the router read the WorkerDraining', () => {
    const state = given((s) => decide({ type: 'Drain', now: T0, drainOffset: 42 }, s));
    expect(when(state, receive(decision('after', { controlOffset: 43 })))).toMatchObject([{ type: 'DecisionRefused', code: 'WORKER_DRAINING', retriable: true }]);
  });

  it('stops waiting to fill batches: a draining worker flushes its queue', () => {
    const state = given(() => [], { maxBatchDelayMs: 10_000, maxBatchSize: 8 });
    when(state, receive(decision('r1')));
    expect(when(state, dispatch())).toEqual([]);
    expect(batches(when(state, { type: 'Drain', now: T0, drainOffset: 1 }, dispatch()))).toEqual([['r1']]);
  });

  it('abandons queued jobs that have not started when it stops, and is then idle once batches finish', () => {
    const state = given(() => [], { capacity: 1, maxBatchSize: 1 });
    when(state, receive(decision('r1')), receive(decision('r2')), receive(decision('r3')), dispatch());
    const events = when(state, { type: 'Abandon', now: T0, reason: 'drain timeout' });
    expect(events.map((e) => (e.type === 'JobAbandoned' ? e.job.requestId : ''))).toEqual(['r2', 'r3']);
    expect(isIdle(state)).toBe(false);
    when(state, { type: 'Finish', now: T0, batchId: `${W}/b0`, completed: 1, failed: 0 });
    expect(isIdle(state)).toBe(true);
    expect(state.counters.abandoned).toBe(2);
  });
});
