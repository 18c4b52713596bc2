import type {
  ClockEntry,
  InferenceRequested,
  LogPosition,
  PendingDecision,
  RequestRejected,
  RequestRouted,
  RoutingCandidate,
} from '../../schemas/generated/events.js';
import { DEFAULT_REQUEST_LIMITS, checkInferenceRequest, describeProblems, rejectionReasonFor } from '../../schemas/request-rules.js';
import { fmix32, hash32, hashPair } from './hash.js';
import type { EjectionMark } from './policies/ejection.js';
import { outliers } from './policies/ejection.js';
import type { RouterPolicy } from './policies/options.js';
import { DEFAULT_ROUTER_POLICY, policyFromVersion } from './policies/options.js';
import type { VersionChoice } from './policies/rollout.js';
import { chooseVersion } from './policies/rollout.js';
import type { ModelVersionView, ModelView, RouterState, WorkerRecord } from './state.js';

/**
 * The router's decider: `decide(command, state)` → one RequestRouted or RequestRejected.
 *
 * Pure and re-runnable: everything a decision depends on is either the state (a fold of the log
 * prefix named by `command.clock`) or in the command, and everything in the command is recorded in
 * the event (`routeCommandFromDecision` takes it back out), so `replay verify` gets the identical
 * event by rebuilding the state at the clock and deciding again.
 *
 * Policies, in order:
 * 1-2. The request rules of the public API (schemas/request-rules.ts, the same the gateway
 *    applies before it produces): a request a Kafka client wrote that breaks them is rejected
 *    INVALID_REQUEST with every problem in `detail`, or DEADLINE_EXCEEDED when the deadline
 *    (`deadlineAt ≤ now`) is its only problem. Inputs the gateway produced were JSON-checked
 *    there, so only other sources' JSON inputs are parsed here.
 * 3. Model version (policies/rollout.ts): the pin, else the rollout weights by a hash of
 *    (sessionId or requestId), else the latest registered version. Unknown model or pinned version
 *    → reject UNKNOWN_MODEL.
 * 4. Candidates: every worker holding a lane (or evicted from one not re-claimed), in lane order,
 *    each with its score or the first exclusion that applies:
 *    EVICTED; DRAINING (WorkerDraining, or its heartbeat says so); NO_MODEL (the worker declared
 *    model names at join and this is not one); UNHEALTHY (no heartbeat from this claim: none yet,
 *    another lane, or an older incarnation); STALE_HEARTBEAT (older than `staleHeartbeatMs` at
 *    `now`); EJECTED (latency/error outlier,
 *    policies/ejection.ts; half-open workers take one probe at a time); PREVIOUS_ATTEMPT (the
 *    worker of the failed attempt when re-dispatching).
 *    The digests a heartbeat lists as loaded exclude nothing: workers load weights on demand
 *    (verified by digest), so a version no worker has loaded yet — a new canary — still routes.
 * 5. Fallback: no eligible candidate for the version, the request allows fallback and the model
 *    names a fallback model → the same on the fallback model (version by rollout/latest, never
 *    pinned; one level, no chains): fallback = degraded = true, reason FALLBACK_MODEL,
 *    requestedModel set; both candidate sets are recorded (each candidate names its modelVersion).
 *    Still nothing: the panic rule (as Envoy's outlier detection has) — the workers excluded only
 *    as relative outliers (EJECTED for LATENCY or ERROR_RATE, half-open ones included) are routed
 *    to after all, the requested version's if it has any, else the fallback's; degraded = true.
 *    Being worse than one's peers means nothing when no peer is eligible: after a broker outage the
 *    one live worker can look like a latency outlier while the others have not heartbeated yet.
 *    The absolute compute-time breaker (COMPUTE_TIME) never gives way. Still nothing → reject
 *    NO_CAPACITY.
 * 6. Load shedding on real queueing: a first attempt is rejected SHED (with `retryAfterMs`) when
 *    every eligible candidate has had queued work waiting at least `shedAtQueueDelayMs[priority]`
 *    (the queue delay of its latest heartbeat, plus the heartbeat's age while it reported a
 *    queue). Routed-but-unfinished counts and pending decisions are not queueing and shed nothing:
 *    a burst or a takeover's backlog is routed while any worker is idle. Lowest classes have the
 *    lowest thresholds (BACKGROUND, then LOW, …; CRITICAL is never shed by default); retries and
 *    re-dispatches (attempt > 1) were admitted already and are never shed.
 * 7. Zone: with a preferred zone, only its candidates are used (the others: ZONE) unless it has
 *    none, or all of them have load ≥ `zoneSpillLoad` while another zone has one below (they become
 *    OVERLOADED): then cross-zone failover to the other zones, degraded, reason ZONE_FAILOVER.
 * 8. Worker: a request with a session goes to the first worker in rendezvous order (highest
 *    hashPair(hash32(sessionId), hash32(workerId))) whose load stays within the bound
 *    (or below the floor `outstanding + 1 ≤ ⌊affinityFloor·capacity⌋`, where affinity always holds)
 *    `outstanding + 1 ≤ ⌈(1+ε)·(M+1)·capacity/C⌉` (M, C: Σ outstanding, Σ capacity of the
 *    candidates in scope — "(1+ε)·average", counting this request); workers passed over are
 *    OVERLOADED and the decision degraded. Reason AFFINITY. Without a session: power of two choices
 *    — two distinct candidates picked by hashes of the requestId, the lower score wins, a tie goes
 *    by another bit of that hash (or, with P2C off, the least score, ties by hash). Reason
 *    LEAST_LOADED.
 *    Reason precedence: FALLBACK_MODEL > ZONE_FAILOVER > RETRY / REDISPATCH (attempt > 1) > AFFINITY /
 *    LEAST_LOADED. How the version was chosen (pin, canary) is not a reason: the event's
 *    modelVersion and the rollout at its clock say it.
 *
 * Load: outstanding = max(requests routed to it and not finished in the fold, the heartbeat's
 *   inFlight + queueDepth)
 *   + this router's pendingDecisions for the worker; score = load = outstanding / capacity
 *   (capacity from the latest heartbeat, else the lane claim). The fold's count and the heartbeat
 *   see the same work from two sides (the fold also sees work still in the lane, the heartbeat sees
 *   work the fold has not read yet), so the larger is taken rather than their sum; pending
 *   decisions are in neither. A candidate's `score` is this load (lower is better); note that
 *   affinity and P2C do not always pick the globally lowest score. Its `load` is the heartbeat's
 *   own figure and `inFlight` the router's count (fold + pending), as the schema defines them.
 */

/** Everything a decision depends on besides the state. Every field is recorded in the event. */
export interface RouteCommand {
  /** eventId of the decision (a UUIDv7 the shell made). */
  readonly eventId: string;
  /** Decision time, ms since the epoch → occurredAt. */
  readonly now: number;
  /** This router instance → producer. */
  readonly routerId: string;
  /** The request, as read from `requests` (its eventId → causationId). */
  readonly request: InferenceRequested;
  /** The log prefix the state was folded from. The event takes this array as is. */
  readonly clock: ClockEntry[];
  /** This router's decisions not yet read back into the state; they count as load. The event takes this array as is. @default [] */
  readonly pendingDecisions?: PendingDecision[];
  /** The resolved policy. @default DEFAULT_ROUTER_POLICY */
  readonly policy?: RouterPolicy;
  /** 1 for a first routing, more when re-dispatching. @default 1 */
  readonly attempt?: number;
  /** The worker of the previous attempt (excluded). @default null */
  readonly previousWorkerId?: string | null;
  /** A retry after a retriable failure (reason RETRY) rather than a re-dispatch after a lost worker (REDISPATCH); attempt > 1 only. @default false */
  readonly retry?: boolean;
  /** Where the request was read (RequestRouted.request); null when it came from elsewhere. @default null */
  readonly requestPosition?: LogPosition | null;
}

export type RouterDecision = RequestRouted | RequestRejected;

/** Candidate exclusion reasons (RoutingCandidate.excluded). */
export const EXCLUDED = {
  EVICTED: 'EVICTED',
  DRAINING: 'DRAINING',
  NO_MODEL: 'NO_MODEL',
  UNHEALTHY: 'UNHEALTHY',
  STALE_HEARTBEAT: 'STALE_HEARTBEAT',
  EJECTED: 'EJECTED',
  PREVIOUS_ATTEMPT: 'PREVIOUS_ATTEMPT',
  ZONE: 'ZONE',
  OVERLOADED: 'OVERLOADED',
} as const;

/** RequestRouted.reason values. */
export const ROUTED = {
  AFFINITY: 'AFFINITY',
  LEAST_LOADED: 'LEAST_LOADED',
  ZONE_FAILOVER: 'ZONE_FAILOVER',
  FALLBACK_MODEL: 'FALLBACK_MODEL',
  REDISPATCH: 'REDISPATCH',
  RETRY: 'RETRY',
} as const;

/** RequestRejected.reason values. */
export const REJECTED = {
  INVALID_REQUEST: 'INVALID_REQUEST',
  DEADLINE_EXCEEDED: 'DEADLINE_EXCEEDED',
  UNKNOWN_MODEL: 'UNKNOWN_MODEL',
  NO_CAPACITY: 'NO_CAPACITY',
  SHED: 'SHED',
} as const;

const NO_PENDING: PendingDecision[] = [];

interface Context {
  readonly state: RouterState;
  readonly policy: RouterPolicy;
  readonly now: number;
  readonly pending: Map<string, number> | null;
  readonly marks: ReadonlyMap<string, EjectionMark>;
  readonly previousWorkerId: string | null;
}

/**
 * The eligible candidates of the assessment in use, as parallel arrays, and the indices of those
 * in scope. Module-level scratch reused by every call (decide is synchronous and never re-entered)
 * so that a decision allocates little beyond the event it returns; nothing here outlives a call.
 */
const pool = {
  n: 0,
  recs: [] as WorkerRecord[],
  cands: [] as RoutingCandidate[],
  outstanding: [] as number[],
  capacity: [] as number[],
  /** How long queued work has waited on the worker (heartbeat's queue delay + the heartbeat's age), ms; 0 when nothing is queued. */
  queueDelay: [] as number[],
};
let scope = new Int32Array(256);
let other = new Int32Array(256);
let weights = new Float64Array(256);

function ensureScratch(n: number): void {
  if (scope.length >= n) return;
  const size = Math.max(n, scope.length * 2);
  scope = new Int32Array(size);
  other = new Int32Array(size);
  weights = new Float64Array(size);
}

/** A candidate excluded only as a relative outlier (LATENCY, ERROR_RATE): the panic rule may take it back. */
interface Held {
  readonly rec: WorkerRecord;
  readonly cand: RoutingCandidate;
  readonly outstanding: number;
  readonly capacity: number;
  readonly queueDelay: number;
}

/**
 * Candidates of one model version, in lane order, each with its score or exclusion; the eligible
 * ones go to `pool`. Returns the relative outliers it excluded (null when none), for the panic rule.
 */
function assess(ctx: Context, model: string, version: ModelVersionView, all: RoutingCandidate[]): Held[] | null {
  const { state, policy, now, pending, marks, previousWorkerId } = ctx;
  const staleMs = policy.staleHeartbeatMs;
  const checkMarks = marks.size > 0;
  const list = state.candidates;
  pool.n = 0;
  let held: Held[] | null = null;
  for (let i = 0; i < list.length; i++) {
    const rec = list[i]!;
    const claim = rec.claim!;
    let hb = rec.heartbeat;
    let excluded: string | null = null;
    if (hb !== null && (hb.lane !== claim.lane || (claim.startedAt !== null && hb.startedAt !== null && hb.startedAt < claim.startedAt))) {
      hb = null; // not from this claim
    }
    const capacity = Math.max(1, hb !== null ? hb.capacity : claim.capacity);
    const counted = rec.inFlight > 0 ? rec.inFlight : 0;
    const reported = hb !== null ? hb.inFlight + hb.queueDepth : 0;
    const mine = pending === null ? 0 : (pending.get(rec.workerId) ?? 0);
    const outstanding = (counted > reported ? counted : reported) + mine;
    if (rec.evicted) excluded = EXCLUDED.EVICTED;
    else if (rec.draining || (hb !== null && hb.draining)) excluded = EXCLUDED.DRAINING;
    else if (claim.models.length > 0 && !claim.models.includes(model)) excluded = EXCLUDED.NO_MODEL;
    else if (hb === null) excluded = EXCLUDED.UNHEALTHY;
    else if (now - hb.at > staleMs) excluded = EXCLUDED.STALE_HEARTBEAT;
    else if (checkMarks && isEjected(marks.get(rec.workerId), state.logTime, policy, outstanding)) excluded = EXCLUDED.EJECTED;
    else if (rec.workerId === previousWorkerId) excluded = EXCLUDED.PREVIOUS_ATTEMPT;
    // A relative outlier (not the compute-time breaker) may be taken back by the panic rule; the
    // failed attempt's worker never is, and its exclusion says so (replay reads previousWorkerId
    // of a rejection back from that label).
    let relative = excluded === EXCLUDED.EJECTED && marks.get(rec.workerId)!.cause !== 'COMPUTE_TIME';
    if (relative && rec.workerId === previousWorkerId) {
      excluded = EXCLUDED.PREVIOUS_ATTEMPT;
      relative = false;
    }
    const cand: RoutingCandidate = {
      workerId: rec.workerId,
      lane: claim.lane,
      zone: claim.zone,
      modelVersion: version.version,
      score: outstanding / capacity,
      load: hb !== null ? hb.load : 0,
      inFlight: counted + mine,
      excluded,
    };
    all.push(cand);
    if (excluded === null || relative) {
      const queueDelay = hb!.queueDepth > 0 ? hb!.queueDelayMs + Math.max(0, now - hb!.at) : 0;
      if (excluded === null) admit(rec, cand, outstanding, capacity, queueDelay);
      else (held ??= []).push({ rec, cand, outstanding, capacity, queueDelay });
    }
  }
  return held;
}

function admit(rec: WorkerRecord, cand: RoutingCandidate, outstanding: number, capacity: number, queueDelay: number): void {
  const k = pool.n++;
  pool.recs[k] = rec;
  pool.cands[k] = cand;
  pool.outstanding[k] = outstanding;
  pool.capacity[k] = capacity;
  pool.queueDelay[k] = queueDelay;
}

/** The panic rule: relative outliers routed to, as the only workers left (their exclusion cleared). */
function panic(held: Held[]): void {
  pool.n = 0;
  for (const h of held) {
    h.cand.excluded = null;
    admit(h.rec, h.cand, h.outstanding, h.capacity, h.queueDelay);
  }
}

function isEjected(mark: EjectionMark | undefined, logTime: number, policy: RouterPolicy, outstanding: number): boolean {
  if (mark === undefined) return false;
  if (logTime < mark.tripAt + policy.ejection.cooldownMs) return true;
  return outstanding > 0; // half-open: one probe at a time
}

function reject(c: RouteCommand, policy: RouterPolicy, reason: string, detail: string, candidates: RoutingCandidate[], retryAfterMs: number | null): RequestRejected {
  const req = c.request;
  return {
    type: 'RequestRejected',
    eventId: c.eventId,
    occurredAt: c.now,
    requestId: req.requestId,
    traceId: req.traceId,
    producer: c.routerId,
    causationId: req.eventId,
    clock: c.clock,
    reason,
    model: req.model,
    priority: req.priority,
    detail,
    retryAfterMs,
    sessionId: req.sessionId,
    candidates,
    pendingDecisions: c.pendingDecisions ?? NO_PENDING,
    policyVersion: policy.version,
    attempt: c.attempt ?? 1,
  };
}

/**
 * Rendezvous order with bounded load over scope[0..m): returns the pool index chosen; the ones
 * passed over (above the bound) are marked OVERLOADED. `passed` reports how many.
 */
function affinity(m: number, sessionHash: number, epsilon: number, floor: number, passed: { count: number }): number {
  let total = 0;
  let cap = 0;
  for (let s = 0; s < m; s++) {
    const k = scope[s]!;
    total += pool.outstanding[k]!;
    cap += pool.capacity[k]!;
    weights[s] = hashPair(sessionHash, pool.recs[k]!.hash);
  }
  for (let round = 0; round < m; round++) {
    let best = -1;
    for (let s = 0; s < m; s++) {
      const w = weights[s]!;
      if (w < 0) continue; // tried
      // Equal weights (rare): lower lane first, so the order is total.
      if (best < 0 || w > weights[best]! || (w === weights[best]! && pool.cands[scope[s]!]!.lane < pool.cands[scope[best]!]!.lane)) best = s;
    }
    const k = scope[best]!;
    const bound = Math.max(Math.ceil(((1 + epsilon) * (total + 1) * pool.capacity[k]!) / cap), Math.floor(floor * pool.capacity[k]!));
    if (pool.outstanding[k]! + 1 <= bound) return k;
    pool.cands[k]!.excluded = EXCLUDED.OVERLOADED;
    passed.count++;
    weights[best] = -1;
  }
  // Not reached: the least loaded candidate is at or below the average, so within the bound.
  // Should rounding ever disagree, route to the least loaded rather than fail the request.
  const k = leastLoaded(m, sessionHash);
  pool.cands[k]!.excluded = null;
  return k;
}

/** Least score over scope[0..m), ties by hashPair(request, worker), then workerId. */
function leastLoaded(m: number, requestHash: number): number {
  let best = scope[0]!;
  let bestTie = hashPair(requestHash, pool.recs[best]!.hash);
  for (let s = 1; s < m; s++) {
    const k = scope[s]!;
    const score = pool.cands[k]!.score;
    const bestScore = pool.cands[best]!.score;
    if (score > bestScore) continue;
    const tie = hashPair(requestHash, pool.recs[k]!.hash);
    if (score < bestScore || tie < bestTie || (tie === bestTie && pool.recs[k]!.workerId < pool.recs[best]!.workerId)) {
      best = k;
      bestTie = tie;
    }
  }
  return best;
}

/** Two distinct candidates of scope[0..m) picked by hashes of the request id; the lower score wins, a tie by another hash bit. */
function powerOfTwo(m: number, requestHash: number): number {
  if (m === 1) return scope[0]!;
  const i = requestHash % m;
  const h2 = fmix32((requestHash ^ 0x5bd1e995) >>> 0);
  let j = h2 % (m - 1);
  if (j >= i) j++;
  const a = scope[i]!;
  const b = scope[j]!;
  const sa = pool.cands[a]!.score;
  const sb = pool.cands[b]!.score;
  if (sa !== sb) return sa < sb ? a : b;
  return (fmix32(h2) & 1) === 0 ? a : b;
}

/** Route one request. */
export function decide(command: RouteCommand, state: RouterState): RouterDecision {
  const policy = command.policy ?? DEFAULT_ROUTER_POLICY;
  const req = command.request;
  const problems = checkInferenceRequest(req, command.now, DEFAULT_REQUEST_LIMITS, { parseJsonInput: req.source !== 'GATEWAY' });
  const invalid = rejectionReasonFor(problems);
  if (invalid !== null) return reject(command, policy, REJECTED[invalid], describeProblems(problems), [], null);
  const requestId = req.requestId!;
  const model = state.models.get(req.model);
  const stickyKey = req.sessionId ?? requestId;
  const choice: VersionChoice = model ? chooseVersion(model, req.modelVersion, stickyKey) : { ok: false, detail: `model "${req.model}" is not registered` };
  if (!choice.ok) return reject(command, policy, REJECTED.UNKNOWN_MODEL, choice.detail, [], null);

  let pending: Map<string, number> | null = null;
  const pd = command.pendingDecisions;
  if (pd !== undefined && pd.length > 0) {
    pending = new Map();
    for (const p of pd) pending.set(p.workerId, (pending.get(p.workerId) ?? 0) + p.count);
  }
  const ctx: Context = {
    state,
    policy,
    now: command.now,
    pending,
    marks: outliers(state, policy.ejection),
    previousWorkerId: command.previousWorkerId ?? null,
  };
  ensureScratch(state.candidates.length);

  let servedModel: ModelView = model!;
  let version = choice.version;
  const candidates: RoutingCandidate[] = [];
  const held = assess(ctx, servedModel.name, version, candidates);
  let fallback = false;
  let panicked = false;
  if (pool.n === 0) {
    const fbModel = req.allowFallback && servedModel.fallbackModel !== null ? state.models.get(servedModel.fallbackModel) : undefined;
    const fbChoice = fbModel ? chooseVersion(fbModel, null, stickyKey) : undefined;
    let fbHeld: Held[] | null = null;
    if (fbModel && fbChoice?.ok) {
      fbHeld = assess(ctx, fbModel.name, fbChoice.version, candidates);
      if (pool.n > 0) {
        fallback = true;
        servedModel = fbModel;
        version = fbChoice.version;
      }
    }
    if (!fallback && held !== null) {
      panic(held);
      panicked = true;
    } else if (!fallback && fbHeld !== null && fbModel && fbChoice?.ok) {
      panic(fbHeld);
      panicked = true;
      fallback = true;
      servedModel = fbModel;
      version = fbChoice.version;
    }
    if (!fallback && !panicked) {
      return reject(command, policy, REJECTED.NO_CAPACITY, `no eligible worker for ${req.model}@${choice.version.version}${fbModel ? ` or fallback ${fbModel.name}` : ''}`, candidates, policy.shedRetryAfterMs);
    }
  }

  const n = pool.n;
  const attempt = command.attempt ?? 1;
  // Shedding on real queueing: only when every eligible worker has had work waiting this long.
  let leastDelay = Infinity;
  for (let k = 0; k < n; k++) if (pool.queueDelay[k]! < leastDelay) leastDelay = pool.queueDelay[k]!;
  const shedAt = policy.shedAtQueueDelayMs[req.priority] ?? policy.shedAtQueueDelayMs.NORMAL;
  if (attempt === 1 && leastDelay >= shedAt) {
    return reject(command, policy, REJECTED.SHED, `every eligible worker of ${servedModel.name}@${version.version} has queued work waiting ≥ ${Math.round(leastDelay)} ms (shed at ${shedAt} ms for ${req.priority})`, candidates, policy.shedRetryAfterMs);
  }

  // Zone: scope[0..m) are the pool indices the worker is chosen among.
  let m = 0;
  let failover = false;
  if (req.zone === null) {
    for (let k = 0; k < n; k++) scope[m++] = k;
  } else {
    const spill = policy.zoneSpillLoad;
    let o = 0;
    let inZoneBelowSpill = false;
    let otherBelowSpill = false;
    for (let k = 0; k < n; k++) {
      const c = pool.cands[k]!;
      if (c.zone === req.zone) {
        scope[m++] = k;
        if (c.score < spill) inZoneBelowSpill = true;
      } else {
        other[o++] = k;
        if (c.score < spill) otherBelowSpill = true;
      }
    }
    if (m === 0 || (!inZoneBelowSpill && otherBelowSpill)) {
      for (let s = 0; s < m; s++) pool.cands[scope[s]!]!.excluded = EXCLUDED.OVERLOADED;
      scope.set(other.subarray(0, o));
      m = o;
      failover = true;
    } else {
      for (let s = 0; s < o; s++) pool.cands[other[s]!]!.excluded = EXCLUDED.ZONE;
    }
  }

  let chosen: number;
  let degraded = fallback || failover || panicked;
  let reason: string;
  if (req.sessionId !== null) {
    const passed = { count: 0 };
    chosen = affinity(m, hash32(req.sessionId), policy.affinityEpsilon, policy.affinityFloor, passed);
    if (passed.count > 0) degraded = true;
    reason = ROUTED.AFFINITY;
  } else {
    const h = hash32(requestId);
    chosen = policy.powerOfTwoChoices ? powerOfTwo(m, h) : leastLoaded(m, h);
    reason = ROUTED.LEAST_LOADED;
  }
  if (fallback) reason = ROUTED.FALLBACK_MODEL;
  else if (failover) reason = ROUTED.ZONE_FAILOVER;
  else if (attempt > 1) reason = command.retry === true ? ROUTED.RETRY : ROUTED.REDISPATCH;

  const worker = pool.cands[chosen]!;
  return {
    type: 'RequestRouted',
    eventId: command.eventId,
    occurredAt: command.now,
    requestId,
    traceId: req.traceId,
    producer: command.routerId,
    causationId: req.eventId,
    clock: command.clock,
    workerId: worker.workerId,
    lane: worker.lane,
    zone: worker.zone,
    model: servedModel.name,
    requestedModel: fallback ? req.model : null,
    modelVersion: version.version,
    modelDigest: version.digest,
    reason,
    degraded,
    fallback,
    sessionId: req.sessionId,
    priority: req.priority,
    deadlineAt: req.deadlineAt,
    candidates,
    pendingDecisions: command.pendingDecisions ?? NO_PENDING,
    policyVersion: policy.version,
    attempt,
    previousWorkerId: command.previousWorkerId ?? null,
    // The decision is the dispatch: the worker reads the request from it.
    input: req.input,
    contentType: req.contentType,
    parameters: req.parameters,
    cacheable: req.cacheable,
    request: command.requestPosition ?? null,
  };
}

/** What `routeCommandFromDecision` reads of a decision (replay decodes no more of it to re-derive it). */
export type DecisionCommandFields =
  | Pick<RequestRouted, 'type' | 'eventId' | 'occurredAt' | 'producer' | 'clock' | 'pendingDecisions' | 'policyVersion' | 'attempt' | 'previousWorkerId' | 'request' | 'reason'>
  | Pick<RequestRejected, 'type' | 'eventId' | 'occurredAt' | 'producer' | 'clock' | 'pendingDecisions' | 'policyVersion' | 'attempt' | 'candidates'>;

/**
 * The command a recorded decision was made from, given the request it names (causationId):
 * what `replay verify` feeds back into `decide` with the state rebuilt at `decision.clock`.
 * RequestRejected has no previousWorkerId field; the worker a re-dispatch excluded is recovered
 * from its PREVIOUS_ATTEMPT candidate (when it was excluded for another reason first, it did not
 * matter to the decision).
 */
export function routeCommandFromDecision(decision: DecisionCommandFields, request: InferenceRequested): RouteCommand {
  const previousWorkerId =
    decision.type === 'RequestRouted'
      ? decision.previousWorkerId
      : (decision.candidates.find((c) => c.excluded === EXCLUDED.PREVIOUS_ATTEMPT)?.workerId ?? null);
  return {
    eventId: decision.eventId,
    now: decision.occurredAt,
    routerId: decision.producer,
    request,
    clock: decision.clock,
    pendingDecisions: decision.pendingDecisions,
    policy: policyFromVersion(decision.policyVersion),
    attempt: decision.attempt,
    previousWorkerId,
    retry: decision.type === 'RequestRouted' && decision.reason === ROUTED.RETRY,
    requestPosition: decision.type === 'RequestRouted' ? decision.request : null,
  };
}
