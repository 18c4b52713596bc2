import { OutcomeMemory } from './outcomes.js';
import type {
  ControllerTick,
  InferenceCompleted,
  InferenceFailed,
  InferenceRequested,
  LogPosition,
  RequestRejected,
  RequestRouted,
  ResultSuperseded,
  SessionState,
  SwitchyardEvent,
  WorkerEvicted,
  WorkerHeartbeat,
} from '../../schemas/generated/events.js';
import { evolve as evolveView, initialRouterState, type RouterState } from '../router/state.js';
import { addInterval, intervalWindow, type IntervalWindow } from './detector.js';
import { modelControlOf, type ControllerPolicy } from './options.js';

/**
 * The controller's state: a pure fold over `control`, `heartbeats`, `requests`, `decisions` and
 * `results`, with each record's position (the controller judges "first" by offsets).
 *
 * - `view` is the router's own fold (services/router/state.ts): membership, lanes, catalog,
 *   rollouts, leadership (epochs) and load. The controller re-dispatches with the router's
 *   `decide` over it, so a re-dispatch is re-derived by `replay verify` like any decision.
 * - `health`: per worker incarnation, its last heartbeat (time, seq, position) and the window of
 *   heartbeat intervals the failure detector learns from. One worker's heartbeats are in one
 *   partition (keyed by worker id), so they fold in order everywhere.
 * - `requests`: every request without a terminal outcome — what was asked (deadline, attempts
 *   allowed), each attempt routed (worker, the control offset its decision had seen) and each
 *   retriable failure. Order-free across partitions: attempts and failures are keyed by attempt,
 *   and the terminal outcome is the one with the lowest offset (a request's results share one
 *   partition, keyed by request id).
 * - `outcomes`: the winning terminal outcome of recently finished requests, per results
 *   partition, bounded by `outcomeMemory` (oldest offset first), so a later terminal outcome of
 *   the same request is recognised as superseded.
 * - `evictions`: per worker, the control offsets of its WorkerEvicted (applied ones): an attempt
 *   whose decision had not seen an eviction of its worker (decision's control clock ≤ that offset)
 *   was lost with the worker.
 *
 * Terminal outcomes: InferenceCompleted, RequestRejected, and InferenceFailed with
 * `retriable: false`. A retriable InferenceFailed is not an outcome: the controller answers it
 * with a retry or with a terminal InferenceFailed of its own.
 *
 * `evolve` mutates in place and returns the state (as the router's does).
 */

export interface WorkerHealth {
  readonly workerId: string;
  /** The incarnation (heartbeat startedAt; -1 when not reported). */
  startedAt: number;
  lane: number;
  seq: number;
  /** occurredAt of the latest heartbeat. */
  lastAt: number;
  position: LogPosition;
  readonly intervals: IntervalWindow;
}

export interface Attempt {
  readonly workerId: string;
  readonly lane: number;
  /** The `control` offset the decision had read up to (its clock): evictions at or after it were unseen. */
  readonly controlOffset: number;
  readonly decisionId: string;
  readonly producer: string;
  readonly at: number;
}

export interface RetriableFailure {
  readonly workerId: string;
  readonly errorCode: string;
  readonly errorMessage: string;
  readonly at: number;
  readonly eventId: string;
}

export interface Requested {
  readonly position: LogPosition;
  readonly eventId: string;
  readonly model: string;
  readonly at: number;
  /** The request's deadline, else requested + the model's maxRequestMs. */
  readonly deadlineAt: number;
  readonly explicitDeadline: boolean;
  readonly maxAttempts: number;
  readonly sessionId: string | null;
  readonly traceId: string | null;
}

export interface RequestTrack {
  readonly requestId: string;
  requested: Requested | null;
  readonly attempts: Map<number, Attempt>;
  maxAttempt: number;
  readonly failures: Map<number, RetriableFailure>;
}

/**
 * A terminal outcome as remembered: flat (its position's fields inline, `positionOf` gives the
 * LogPosition), since `outcomeMemory` of them per results partition live for minutes and each
 * nested object is one more for every old-generation mark.
 */
export interface OutcomeRef {
  readonly requestId: string;
  readonly eventId: string;
  readonly type: 'InferenceCompleted' | 'InferenceFailed' | 'RequestRejected';
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
  readonly workerId: string | null;
  readonly attempt: number;
}

/** Where an outcome is in the log. */
export const positionOf = (o: OutcomeRef): LogPosition => ({ topic: o.topic, partition: o.partition, offset: o.offset });

/** A terminal outcome that lost to an earlier one and has no ResultSuperseded yet. */
export interface Loser {
  readonly loser: OutcomeRef;
  readonly winner: OutcomeRef;
}

export interface TickView {
  readonly lastAt: number;
  readonly seq: number;
  readonly epoch: number | null;
  /** occurredAt of the first tick of the controller's current run: ticks since then were never more than `selfPauseMs` apart. */
  readonly runStartAt: number;
}

/** A session's latest state (the compacted `sessions` topic: latest per key, one partition per key). */
export interface SessionView {
  readonly sessionId: string;
  readonly workerId: string;
  readonly lane: number;
  readonly model: string;
  readonly modelVersion: string;
  readonly modelDigest: string | null;
  readonly context: Buffer;
  readonly contextBytes: number;
  readonly requestCount: number;
  readonly lastRequestId: string;
  readonly reason: string;
}

export interface ControllerState {
  readonly view: RouterState;
  /** Every session's latest state, by session id. */
  readonly sessions: Map<string, SessionView>;
  readonly health: Map<string, WorkerHealth>;
  readonly requests: Map<string, RequestTrack>;
  /**
   * requestId → winning outcome, for finished requests: the last `outcomeMemory` of each results
   * partition in offset order, kept as columns (outcomes.ts).
   */
  readonly outcomes: OutcomeMemory;
  /** eventId of a losing outcome → the loss, until its ResultSuperseded is folded. */
  readonly losers: Map<string, Loser>;
  /** Losing outcomes already recorded (ResultSuperseded folded). */
  readonly superseded: Set<string>;
  readonly evictions: Map<string, number[]>;
  /** Each controller's latest tick. */
  readonly ticks: Map<string, TickView>;
  readonly policy: ControllerPolicy;
  /** Requests ended, by how (for status). */
  readonly finished: { completed: number; failed: number; rejected: number; superseded: number };
}

export function initialControllerState(policy: ControllerPolicy, lanes = 64): ControllerState {
  return {
    view: initialRouterState({ lanes }),
    sessions: new Map(),
    health: new Map(),
    requests: new Map(),
    outcomes: new OutcomeMemory(policy.outcomeMemory),
    losers: new Map(),
    superseded: new Set(),
    evictions: new Map(),
    ticks: new Map(),
    policy,
    finished: { completed: 0, failed: 0, rejected: 0, superseded: 0 },
  };
}

const pos = (p: LogPosition): LogPosition => ({ topic: p.topic, partition: p.partition, offset: p.offset });

/** Fold one event read at `at` (its position in the log). */
export function evolve(state: ControllerState, event: SwitchyardEvent, at: LogPosition): ControllerState {
  switch (event.type) {
    case 'WorkerEvicted':
      onEvicted(state, event, at);
      break;
    case 'WorkerHeartbeat':
      evolveView(state.view, event);
      onHeartbeat(state, event, at);
      break;
    case 'ControllerTick':
      onTick(state, event);
      break;
    case 'InferenceRequested':
      onRequested(state, event, at);
      break;
    case 'RequestRouted':
      evolveView(state.view, event);
      onRouted(state, event);
      break;
    case 'RequestRejected':
    case 'InferenceCompleted':
      evolveView(state.view, event);
      onTerminal(state, event, at);
      break;
    case 'InferenceFailed':
      evolveView(state.view, event);
      if (event.retriable) onRetriable(state, event);
      else onTerminal(state, event, at);
      break;
    case 'ResultSuperseded':
      onSuperseded(state, event);
      break;
    case 'SessionState':
      onSession(state, event);
      break;
    default:
      evolveView(state.view, event);
  }
  return state;
}

function onEvicted(state: ControllerState, e: WorkerEvicted, at: LogPosition): void {
  const before = state.view.staleControlIgnored;
  const wasEvicted = state.view.workers.get(e.workerId)?.evicted === true;
  evolveView(state.view, e);
  // Applied: the view took it (same epoch, the worker's current claim).
  if (state.view.staleControlIgnored !== before || wasEvicted || state.view.workers.get(e.workerId)?.evicted !== true) return;
  let list = state.evictions.get(e.workerId);
  if (list === undefined) state.evictions.set(e.workerId, (list = []));
  list.push(at.offset);
}

function onHeartbeat(state: ControllerState, e: WorkerHeartbeat, at: LogPosition): void {
  const startedAt = e.startedAt ?? -1;
  let h = state.health.get(e.workerId);
  if (h === undefined || startedAt > h.startedAt) {
    h = { workerId: e.workerId, startedAt, lane: e.lane, seq: e.seq, lastAt: e.occurredAt, position: pos(at), intervals: intervalWindow(state.policy.detector.window) };
    state.health.set(e.workerId, h);
    return;
  }
  if (startedAt < h.startedAt || e.seq <= h.seq) return; // an older incarnation, or a duplicate
  addInterval(h.intervals, e.occurredAt - h.lastAt);
  h.seq = e.seq;
  h.lane = e.lane;
  h.lastAt = Math.max(h.lastAt, e.occurredAt);
  h.position = pos(at);
}

function onTick(state: ControllerState, e: ControllerTick): void {
  const t = state.ticks.get(e.controllerId);
  if (t !== undefined && t.seq >= e.seq && t.lastAt >= e.occurredAt) return;
  // A gap longer than selfPauseMs (the controller or its event loop stopped) starts a new run.
  const runStartAt = t === undefined || e.occurredAt - t.lastAt > state.policy.detector.selfPauseMs ? e.occurredAt : t.runStartAt;
  state.ticks.set(e.controllerId, { lastAt: Math.max(e.occurredAt, t?.lastAt ?? 0), seq: Math.max(e.seq, t?.seq ?? -1), epoch: e.epoch, runStartAt });
}

function track(state: ControllerState, requestId: string): RequestTrack | undefined {
  if (state.outcomes.has(requestId)) return undefined; // finished: later halves change nothing
  let t = state.requests.get(requestId);
  if (t === undefined) {
    t = { requestId, requested: null, attempts: new Map(), maxAttempt: 0, failures: new Map() };
    state.requests.set(requestId, t);
  }
  return t;
}

function onRequested(state: ControllerState, e: InferenceRequested, at: LogPosition): void {
  const requestId = e.requestId ?? e.eventId;
  const t = track(state, requestId);
  if (t === undefined || t.requested !== null) return; // a producer's duplicate keeps the first
  const control = modelControlOf(state.policy, e.model);
  t.requested = {
    position: pos(at),
    eventId: e.eventId,
    model: e.model,
    at: e.occurredAt,
    deadlineAt: e.deadlineAt ?? e.occurredAt + control.maxRequestMs,
    explicitDeadline: e.deadlineAt !== null,
    maxAttempts: e.maxAttempts !== null && e.maxAttempts >= 1 ? e.maxAttempts : control.maxAttempts,
    sessionId: e.sessionId,
    traceId: e.traceId,
  };
}

function controlOffsetOf(e: RequestRouted, controlTopic: string | null): number {
  for (const c of e.clock) if (c.partition === 0 && (controlTopic === null ? c.topic.endsWith('control') : c.topic === controlTopic)) return c.offset;
  return 0;
}

function onRouted(state: ControllerState, e: RequestRouted): void {
  if (e.requestId === null) return;
  const t = track(state, e.requestId);
  if (t === undefined || t.attempts.has(e.attempt)) return;
  t.attempts.set(e.attempt, { workerId: e.workerId, lane: e.lane, controlOffset: controlOffsetOf(e, null), decisionId: e.eventId, producer: e.producer, at: e.occurredAt });
  if (e.attempt > t.maxAttempt) t.maxAttempt = e.attempt;
}

function onRetriable(state: ControllerState, e: InferenceFailed): void {
  if (e.requestId === null) return;
  const t = track(state, e.requestId);
  if (t === undefined || t.failures.has(e.attempt)) return;
  t.failures.set(e.attempt, { workerId: e.workerId, errorCode: e.errorCode, errorMessage: e.errorMessage, at: e.occurredAt, eventId: e.eventId });
}

function onTerminal(state: ControllerState, e: InferenceCompleted | InferenceFailed | RequestRejected, at: LogPosition): void {
  if (e.requestId === null) return;
  const ref: OutcomeRef = {
    requestId: e.requestId,
    eventId: e.eventId,
    type: e.type,
    topic: at.topic,
    partition: at.partition,
    offset: at.offset,
    workerId: e.type === 'RequestRejected' ? null : e.workerId,
    attempt: e.attempt,
  };
  const winner = state.outcomes.get(e.requestId);
  if (winner !== undefined) {
    if (winner.eventId !== ref.eventId && !state.superseded.has(ref.eventId)) state.losers.set(ref.eventId, { loser: ref, winner });
    return;
  }
  state.requests.delete(e.requestId);
  // Bounded per partition, oldest first: the same whatever the interleaving of partitions.
  state.outcomes.add(ref);
  if (e.type === 'InferenceCompleted') state.finished.completed++;
  else if (e.type === 'InferenceFailed') state.finished.failed++;
  else state.finished.rejected++;
}

function onSession(state: ControllerState, e: SessionState): void {
  state.sessions.set(e.sessionId, {
    sessionId: e.sessionId,
    workerId: e.workerId,
    lane: e.lane,
    model: e.model,
    modelVersion: e.modelVersion,
    modelDigest: e.modelDigest,
    context: e.context,
    contextBytes: e.contextBytes,
    requestCount: e.requestCount,
    lastRequestId: e.lastRequestId,
    reason: e.reason,
  });
}

function onSuperseded(state: ControllerState, e: ResultSuperseded): void {
  state.superseded.add(e.supersededEventId);
  if (state.losers.delete(e.supersededEventId)) state.finished.superseded++;
}

/** Whether an attempt's worker was evicted after the attempt's decision had read control (the attempt is lost). */
export function attemptLost(state: ControllerState, a: Attempt): boolean {
  const list = state.evictions.get(a.workerId);
  if (list === undefined) return false;
  for (const offset of list) if (offset >= a.controlOffset) return true;
  return false;
}
