import { backoffDelayMs, jitterOf } from '../../lib/backoff.js';
import type { LogPosition } from '../../schemas/generated/events.js';
import { hash32 } from '../router/hash.js';
import { judge } from './detector.js';
import { attemptLost, type ControllerState, type Loser, type RequestTrack, type SessionView } from './state.js';
import { hashPair } from '../router/hash.js';
import type { WorkerRecord } from '../router/state.js';

/**
 * The controller's decider: at each tick, from the state alone (a fold of the log prefix named by
 * the tick's clock) and the tick itself, what to do. Pure: time is `tick.now`, randomness is a
 * hash of ids. The shell turns each action into an event caused by the tick (causationId = the
 * tick's eventId) carrying the same clock, so `replay verify` folds to that clock, decides again
 * and compares.
 *
 * Actions, in this order:
 * 1. **Evict** each worker holding a lane whose heartbeat silence (log time: the tick's `now`
 *    minus its last heartbeat's occurredAt, or its claim's when it never beat) makes it suspect
 *    (detector.ts: phi ≥ threshold and silence ≥ minSilenceMs). Not while the controller itself
 *    was paused (its previous tick more than `selfPauseMs` ago, or none yet): that silence is
 *    the controller's, not the worker's.
 * 2. **Supersede**: record every terminal outcome that lost to an earlier one (ResultSuperseded).
 * 3. For each request without a terminal outcome, by its latest attempt `a`:
 *    - past its deadline + grace → **fail** DEADLINE_EXCEEDED (terminal);
 *    - `a` was routed to a worker evicted since (the attempt is lost) → **route** attempt a+1,
 *      reason REDISPATCH, if a < maxAttempts, else **fail** WORKER_LOST;
 *    - `a` failed retriably → once `failedAt + backoff(a)` (full jitter from a hash of the request
 *      id and attempt) has come, **route** attempt a+1, reason RETRY, away from that worker when
 *      another can take it; if a ≥ maxAttempts, or the retry could not start before the deadline,
 *      **fail** with the last error (terminal, retriable false).
 *    A worker evicted at this tick has its work re-dispatched at a later one, once the eviction is
 *    in the fold (the routing view then excludes it, and the eviction's control offset dates
 *    which attempts it took with it).
 */

export interface Tick {
  /** eventId of the ControllerTick. */
  readonly tickId: string;
  /** Log time of the tick (its occurredAt). */
  readonly now: number;
  readonly controllerId: string;
  readonly epoch: number;
  /** occurredAt of this controller's previous tick, from the state (null: none folded). */
  readonly previousTickAt: number | null;
  /** When the controller's current run of ticks began (state: its ticks never more than selfPauseMs apart since). */
  readonly runStartAt: number | null;
}

export interface EvictAction {
  readonly kind: 'evict';
  readonly workerId: string;
  readonly lane: number;
  readonly startedAt: number | null;
  readonly lastHeartbeatAt: number | null;
  readonly lastHeartbeatSeq: number | null;
  readonly heartbeatPosition: LogPosition | null;
  readonly silenceMs: number;
  readonly phi: number;
  readonly meanIntervalMs: number;
  readonly stdIntervalMs: number;
}

export interface RouteAction {
  readonly kind: 'route';
  readonly requestId: string;
  readonly attempt: number;
  readonly reason: 'REDISPATCH' | 'RETRY';
  readonly previousWorkerId: string;
  /** Where the InferenceRequested is: the shell reads it and routes it with the router's decide. */
  readonly requestPosition: LogPosition;
}

export interface FailAction {
  readonly kind: 'fail';
  readonly requestId: string;
  readonly attempt: number;
  readonly errorCode: string;
  readonly errorMessage: string;
  /** The worker of the last attempt (empty when never routed). */
  readonly workerId: string;
  readonly lane: number;
  readonly model: string;
  readonly traceId: string | null;
}

export interface SupersedeAction {
  readonly kind: 'supersede';
  readonly loss: Loser;
}

/** Move a session off an evicted or draining worker to the one the affinity rule picks now. */
export interface MigrateAction {
  readonly kind: 'migrate';
  readonly session: SessionView;
  readonly toWorkerId: string;
  readonly toLane: number;
  readonly why: 'EVICTED' | 'DRAINING';
}

export type ControllerAction = EvictAction | RouteAction | FailAction | SupersedeAction | MigrateAction;

/** Migrations decided at one tick, at most (the rest follow at the next ticks). */
export const MAX_MIGRATIONS_PER_TICK = 500;

/** Terminal codes the controller writes. */
export const CONTROLLER_FAILURE = {
  DEADLINE_EXCEEDED: 'DEADLINE_EXCEEDED',
  WORKER_LOST: 'WORKER_LOST',
  RETRIES_EXHAUSTED: 'RETRIES_EXHAUSTED',
} as const;

/** The delay before retry number `attempt` of a request: the backoff schedule with a jitter hashed from the ids. */
export function retryDelayMs(state: ControllerState, requestId: string, attempt: number): number {
  return backoffDelayMs(state.policy.retry, attempt, jitterOf(hash32(`${requestId}#${attempt}`)));
}

export function decideTick(state: ControllerState, tick: Tick): ControllerAction[] {
  const actions: ControllerAction[] = [];
  detect(state, tick, actions);
  // Sorted by event id so the order does not depend on map insertion (the fold's interleaving).
  for (const loss of [...state.losers.values()].sort((a, b) => (a.loser.eventId < b.loser.eventId ? -1 : 1))) actions.push({ kind: 'supersede', loss });
  const ids = [...state.requests.keys()].sort();
  for (const id of ids) decideRequest(state, tick, state.requests.get(id)!, actions);
  migrate(state, tick, actions);
  return actions;
}

/**
 * Session migration: every session whose worker is evicted or draining moves to the worker the
 * routers' affinity rule ranks first for it now — the highest rendezvous weight
 * hashPair(hash32(sessionId), hash32(workerId)) among the workers that can serve its model (a
 * lane held, not draining, a heartbeat of this claim no older than the routing policy's
 * staleHeartbeatMs, the model allowed). Routers rank sessions the same way, so the session's next
 * request lands on the worker that already has its context and model, unless the bounded-load
 * rule spills it (then that worker's own SessionState takes over).
 */
function migrate(state: ControllerState, tick: Tick, actions: ControllerAction[]): void {
  const view = state.view;
  let moved = 0;
  const ids = [...state.sessions.keys()].sort();
  for (const id of ids) {
    if (moved >= MAX_MIGRATIONS_PER_TICK) return;
    const s = state.sessions.get(id)!;
    const rec = view.workers.get(s.workerId);
    let why: MigrateAction['why'] | null = null;
    if (rec === undefined || rec.evicted || rec.claim === null || rec.claim.lane !== s.lane) why = 'EVICTED';
    else if (rec.draining || rec.heartbeat?.draining === true) why = 'DRAINING';
    if (why === null) continue;
    const to = sessionHome(state, s, tick.now);
    if (to === null || to.workerId === s.workerId) continue;
    actions.push({ kind: 'migrate', session: s, toWorkerId: to.workerId, toLane: to.claim!.lane, why });
    moved++;
  }
}

/** The worker the affinity rule ranks first for a session among those that can take it now. */
export function sessionHome(state: ControllerState, s: SessionView, now: number): WorkerRecord | null {
  const staleMs = state.policy.staleHeartbeatMs;
  const sessionHash = hash32(s.sessionId);
  let best: WorkerRecord | null = null;
  let bestWeight = -1;
  for (const rec of state.view.candidates) {
    const claim = rec.claim!;
    const hb = rec.heartbeat;
    if (rec.evicted || rec.draining || hb === null || hb.draining || hb.lane !== claim.lane) continue;
    if (claim.startedAt !== null && hb.startedAt !== null && hb.startedAt < claim.startedAt) continue;
    if (now - hb.at > staleMs) continue;
    if (claim.models.length > 0 && !claim.models.includes(s.model)) continue;
    const w = hashPair(sessionHash, rec.hash);
    if (w > bestWeight || (w === bestWeight && best !== null && claim.lane < best.claim!.lane)) {
      best = rec;
      bestWeight = w;
    }
  }
  return best;
}

function detect(state: ControllerState, tick: Tick, actions: ControllerAction[]): void {
  const p = state.policy.detector;
  if (tick.previousTickAt === null || tick.runStartAt === null || tick.now - tick.previousTickAt > p.selfPauseMs) return;
  // The controller has watched without a pause since then (and led since its election).
  const since = Math.max(tick.runStartAt, state.view.electedAt);
  for (const rec of state.view.candidates) {
    const claim = rec.claim;
    if (claim === null || rec.evicted) continue;
    const h = state.health.get(rec.workerId);
    // A heartbeat counts when it is from this claim: its lane, and not an older incarnation.
    const own = h !== undefined && h.lane === claim.lane && (claim.startedAt === null || h.startedAt < 0 || h.startedAt >= claim.startedAt) ? h : undefined;
    const lastAt = own?.lastAt ?? claim.joinedAt;
    // Silence from the later of the last heartbeat and the moment this controller could see (election, or its own resume).
    const silence = tick.now - Math.max(lastAt, since);
    if (silence < p.minSilenceMs) continue;
    const verdict = judge(tick.now - lastAt, own?.intervals ?? { ring: new Float64Array(0), count: 0, next: 0, sum: 0, sumSquares: 0 }, p);
    if (!verdict.suspected) continue;
    actions.push({
      kind: 'evict',
      workerId: rec.workerId,
      lane: claim.lane,
      startedAt: claim.startedAt,
      lastHeartbeatAt: own?.lastAt ?? null,
      lastHeartbeatSeq: own?.seq ?? null,
      heartbeatPosition: own?.position ?? null,
      silenceMs: tick.now - lastAt,
      phi: verdict.phi,
      meanIntervalMs: Math.round(verdict.stats.meanMs * 1000) / 1000,
      stdIntervalMs: Math.round(verdict.stats.stdMs * 1000) / 1000,
    });
  }
}

function decideRequest(state: ControllerState, tick: Tick, t: RequestTrack, actions: ControllerAction[]): void {
  const req = t.requested;
  if (req === null) return; // its request is not in the prefix (yet, or beyond retention): nothing to act on
  const a = t.maxAttempt;
  const last = a > 0 ? t.attempts.get(a) : undefined;
  const base = { requestId: t.requestId, model: req.model, traceId: req.traceId, workerId: last?.workerId ?? '', lane: last?.lane ?? -1 };
  if (tick.now >= req.deadlineAt + state.policy.deadlineGraceMs) {
    const what = req.explicitDeadline ? 'its deadline' : `the model's maximum request time (${req.deadlineAt - req.at} ms)`;
    actions.push({ kind: 'fail', ...base, attempt: Math.max(1, a), errorCode: CONTROLLER_FAILURE.DEADLINE_EXCEEDED, errorMessage: `no outcome ${tick.now - req.deadlineAt} ms after ${what}${a === 0 ? '; never routed' : `; ${a} attempt(s)`}` });
    return;
  }
  if (last === undefined) return; // not routed yet: the routers' work
  const failure = t.failures.get(a);
  if (failure === undefined) {
    if (!attemptLost(state, last)) return; // in flight
    if (a >= req.maxAttempts) {
      actions.push({ kind: 'fail', ...base, attempt: a, errorCode: CONTROLLER_FAILURE.WORKER_LOST, errorMessage: `worker ${last.workerId} was lost with attempt ${a} of ${req.maxAttempts}; no attempts left` });
      return;
    }
    actions.push({ kind: 'route', requestId: t.requestId, attempt: a + 1, reason: 'REDISPATCH', previousWorkerId: last.workerId, requestPosition: req.position });
    return;
  }
  if (a >= req.maxAttempts) {
    actions.push({ kind: 'fail', ...base, attempt: a, errorCode: failure.errorCode, errorMessage: `${failure.errorMessage} (attempt ${a} of ${req.maxAttempts}; ${CONTROLLER_FAILURE.RETRIES_EXHAUSTED})` });
    return;
  }
  const retryAt = failure.at + retryDelayMs(state, t.requestId, a);
  if (retryAt >= req.deadlineAt) {
    actions.push({ kind: 'fail', ...base, attempt: a, errorCode: failure.errorCode, errorMessage: `${failure.errorMessage} (attempt ${a}; the next retry at +${retryAt - failure.at} ms would start after the deadline)` });
    return;
  }
  if (tick.now < retryAt) return;
  actions.push({ kind: 'route', requestId: t.requestId, attempt: a + 1, reason: 'RETRY', previousWorkerId: last.workerId, requestPosition: req.position });
}
