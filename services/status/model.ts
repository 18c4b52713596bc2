import type { SwitchyardEvent, WorkerEvicted } from '../../schemas/generated/events.js';
import { outliers } from '../router/policies/ejection.js';
import { DEFAULT_ROUTER_POLICY, type RouterPolicy } from '../router/policies/options.js';
import { evolve as evolveRouter, initialRouterState, windowStats, type RouterState } from '../router/state.js';

/**
 * The status page's model: a pure fold of recent events into what an operator looks at, and the
 * status document read off it at a given time.
 *
 * - Membership, lanes, models, rollouts and leadership are the router's own fold
 *   (`services/router/state.ts`), so the page shows the cluster exactly as the routers decide on
 *   it: the same lane claims, the same epoch fencing, the same latest heartbeat per worker, the
 *   same health and ejection rules (`describeMembers` reads them as `replay at` does).
 * - Controllers: the latest `ControllerTick` of each controller (its liveness; the leader's ticks
 *   are what standbys watch).
 * - Per-second series, a ring of `seriesSeconds` slots keyed by the second of each event's
 *   `occurredAt`: outcomes (InferenceCompleted, InferenceFailed, RequestRejected — SHED counted
 *   apart), routings (first attempts and re-dispatches), cache hits, evictions, and a latency
 *   histogram of completions (queue + compute, as the worker measured it from routing). A slot
 *   keeps the newest second that maps to it, so the fold is order-free across partitions.
 * - Recent actions, two lists of the newest `recentActions` by time each: control actions
 *   (evictions, joins, drains, elections, rollouts, model versions, scale decisions — only those
 *   the fold applied, so a deposed leader's late eviction is not listed) and request-level ones
 *   (re-dispatches: RequestRouted with attempt > 1; sheds: RequestRejected SHED; superseded
 *   outcomes), kept apart so a burst of sheds never pushes an eviction off the page.
 *
 * Pure: time arrives in events and, for the document, as an argument. `evolveStatus` updates the
 * state in place (as the router's fold does) and returns it.
 */

/** Options of the status fold. */
export interface StatusModelOptions {
  /** Lanes (partitions of `decisions`). @default 64 */
  lanes?: number;
  /** Seconds of per-second series kept. @default 300 */
  seriesSeconds?: number;
  /** Most recent actions kept. @default 100 */
  recentActions?: number;
}

/** Latency histogram: bin 0 holds [0, 1) ms; bin b ≥ 1 holds [2^((b-1)/8), 2^(b/8)) ms (eighth-octaves, ±4.5 %). */
export const LATENCY_BINS = 168;
const BINS_PER_OCTAVE = 8;

/** Per second: the counters below, then LATENCY_BINS latency bins. */
const COMPLETED = 0;
const FAILED = 1;
const REJECTED = 2;
const SHED = 3;
const ROUTED = 4;
const REDISPATCHED = 5;
const CACHE_HITS = 6;
const EVICTIONS = 7;
const SUPERSEDED = 8;
const COUNTERS = 9;
const SLOT = COUNTERS + LATENCY_BINS;

export type ActionKind = 'evicted' | 'left' | 'joined' | 'draining' | 'elected' | 'rollout' | 'model-version' | 'scale' | 'redispatched' | 'shed' | 'superseded';

/** One recent action, for people. */
export interface StatusAction {
  /** The event's occurredAt. */
  at: number;
  kind: ActionKind;
  /** What it is about: a worker, a model, a controller. */
  subject: string;
  /** The request it concerns (re-dispatches, sheds, superseded outcomes). */
  requestId: string | null;
  /** One line: reason and evidence. */
  detail: string;
  /** Who wrote it. */
  producer: string;
  eventId: string;
}

export interface ControllerTickView {
  readonly controllerId: string;
  readonly lastAt: number;
  readonly seq: number;
  readonly epoch: number | null;
  readonly startedAt: number;
  readonly intervalMs: number;
}

export interface StatusState {
  readonly router: RouterState;
  readonly ticks: Map<string, ControllerTickView>;
  readonly seriesSeconds: number;
  /** Second (occurredAt / 1000) held by each slot, -1 when empty. */
  readonly seconds: Float64Array;
  readonly cells: Uint32Array;
  readonly recentActions: number;
  /** Control actions (evictions, joins, drains, elections, rollouts, model versions, scale decisions), newest first. */
  readonly actions: StatusAction[];
  /** Request-level actions (re-dispatches, sheds, superseded outcomes), newest first: kept apart so a burst of them never hides an eviction. */
  readonly requestActions: StatusAction[];
  /** Per worker, its latest applied eviction (time, reason, whether it was its own release after draining). */
  readonly evictions: Map<string, { at: number; reason: string; left: boolean }>;
  /** Events folded. */
  folded: number;
  /** Largest occurredAt folded. */
  newestAt: number;
}

export function initialStatusState({ lanes = 64, seriesSeconds = 300, recentActions = 100 }: StatusModelOptions = {}): StatusState {
  if (!Number.isInteger(seriesSeconds) || seriesSeconds < 10 || seriesSeconds > 86_400) throw new RangeError(`seriesSeconds must be an integer in 10..86400, got ${seriesSeconds}`);
  if (!Number.isInteger(recentActions) || recentActions < 1) throw new RangeError(`recentActions must be a positive integer, got ${recentActions}`);
  return {
    router: initialRouterState({ lanes }),
    ticks: new Map(),
    seriesSeconds,
    seconds: new Float64Array(seriesSeconds).fill(-1),
    cells: new Uint32Array(seriesSeconds * SLOT),
    recentActions,
    actions: [],
    requestActions: [],
    evictions: new Map(),
    folded: 0,
    newestAt: 0,
  };
}

/** Latency histogram bin of a duration in ms. */
export function latencyBin(ms: number): number {
  if (!(ms >= 1)) return 0;
  const b = 1 + Math.floor(BINS_PER_OCTAVE * Math.log2(ms));
  return b < LATENCY_BINS ? b : LATENCY_BINS - 1;
}

/** Upper edge of a latency bin, ms: what a percentile falling in it is reported as. */
export function latencyBinUpperMs(bin: number): number {
  return bin === 0 ? 1 : 2 ** (bin / BINS_PER_OCTAVE);
}

/** The slot's cell offset for the second of `at`, or -1 when an older second than the slot holds. */
function slotFor(state: StatusState, at: number): number {
  const second = Math.floor(at / 1000);
  const n = state.seriesSeconds;
  const slot = ((second % n) + n) % n;
  const held = state.seconds[slot]!;
  if (second < held) return -1;
  const base = slot * SLOT;
  if (second > held) {
    state.cells.fill(0, base, base + SLOT);
    state.seconds[slot] = second;
  }
  return base;
}

function count(state: StatusState, at: number, cell: number, latencyMs?: number): void {
  const base = slotFor(state, at);
  if (base < 0) return;
  state.cells[base + cell]!++;
  if (latencyMs !== undefined) state.cells[base + COUNTERS + latencyBin(latencyMs)]!++;
}

function addAction(state: StatusState, a: StatusAction): void {
  const list = a.requestId === null ? state.actions : state.requestActions;
  if (list.length >= state.recentActions && a.at <= list[list.length - 1]!.at) return;
  if (list.some((x) => x.eventId === a.eventId)) return; // a duplicate record
  // Newest first; among equal times, the later-folded first.
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (list[mid]!.at > a.at) lo = mid + 1;
    else hi = mid;
  }
  list.splice(lo, 0, a);
  if (list.length > state.recentActions) list.length = state.recentActions;
}

const action = (e: SwitchyardEvent, kind: ActionKind, subject: string, detail: string, requestId: string | null = null): StatusAction => ({
  at: e.occurredAt,
  kind,
  subject,
  requestId,
  detail,
  producer: e.producer,
  eventId: e.eventId,
});

const fmt = (v: number | null, unit = ''): string => (v === null ? '—' : `${Number.isInteger(v) ? v : v.toFixed(1)}${unit}`);

/** Fold one event into the status state (in place; returns the same state). */
export function evolveStatus(state: StatusState, e: SwitchyardEvent): StatusState {
  const r = state.router;
  state.folded++;
  if (e.occurredAt > state.newestAt) state.newestAt = e.occurredAt;
  switch (e.type) {
    case 'WorkerEvicted': {
      const before = r.workers.get(e.workerId)?.evicted ?? false;
      evolveRouter(r, e);
      if (!before && r.workers.get(e.workerId)?.evicted === true) {
        // A worker's own release of its lane after draining is a departure, not an eviction.
        const left = isRelease(e);
        state.evictions.set(e.workerId, { at: e.occurredAt, reason: e.reason, left });
        if (!left) count(state, e.occurredAt, EVICTIONS);
        const evidence = e.silenceMs === null ? '' : ` · silent ${fmt(e.silenceMs, ' ms')}${e.phi === null ? '' : `, phi ${fmt(e.phi)}`}`;
        addAction(state, action(e, left ? 'left' : 'evicted', e.workerId, `lane ${e.lane} · ${e.reason}${evidence}${e.detail ? ` · ${e.detail}` : ''}`));
      }
      break;
    }
    case 'WorkerJoined': {
      evolveRouter(r, e);
      if (r.laneHolders.get(e.lane) === e.workerId) addAction(state, action(e, 'joined', e.workerId, `lane ${e.lane} · ${e.zone} · capacity ${e.capacity}`));
      break;
    }
    case 'WorkerDraining': {
      const before = r.workers.get(e.workerId)?.draining ?? false;
      evolveRouter(r, e);
      if (!before && r.workers.get(e.workerId)?.draining === true) addAction(state, action(e, 'draining', e.workerId, `lane ${e.lane} · ${e.reason}`));
      break;
    }
    case 'ControllerElected': {
      const epoch = r.epoch;
      evolveRouter(r, e);
      if (r.epoch !== epoch) {
        const why = e.leaderSilenceMs === null ? e.reason : `${e.reason} (leader silent ${e.leaderSilenceMs} ms)`;
        addAction(state, action(e, 'elected', e.controllerId, `epoch ${e.epoch} · ${why}${e.previousControllerId ? ` · replaces ${e.previousControllerId}` : ''}`));
      }
      break;
    }
    case 'RolloutChanged': {
      const ignored = r.staleControlIgnored;
      evolveRouter(r, e);
      if (r.staleControlIgnored === ignored) {
        const split = e.weights.map((w) => `${w.version} ${w.weight}`).join(' / ');
        addAction(state, action(e, 'rollout', e.model, `${e.reason} · ${split}${e.detail ? ` · ${e.detail}` : ''}`));
      }
      break;
    }
    case 'ModelVersionRegistered': {
      const known = r.models.get(e.model)?.versions.has(e.version) ?? false;
      evolveRouter(r, e);
      if (!known) addAction(state, action(e, 'model-version', e.model, `${e.version} · ${e.kind} · ${e.digest.slice(0, 12)}`));
      break;
    }
    case 'ScaleDecided':
      addAction(state, action(e, 'scale', e.pool, `${e.from} → ${e.to} · ${e.reason}`));
      break;
    case 'ControllerTick': {
      const known = state.ticks.get(e.controllerId);
      if (known === undefined || e.startedAt > known.startedAt || (e.startedAt === known.startedAt && e.seq > known.seq)) {
        state.ticks.set(e.controllerId, { controllerId: e.controllerId, lastAt: e.occurredAt, seq: e.seq, epoch: e.epoch, startedAt: e.startedAt, intervalMs: e.intervalMs });
      }
      break;
    }
    case 'WorkerHeartbeat':
      evolveRouter(r, e);
      break;
    case 'RequestRouted':
      evolveRouter(r, e);
      if (e.attempt > 1) {
        count(state, e.occurredAt, REDISPATCHED);
        addAction(state, action(e, 'redispatched', e.workerId, `attempt ${e.attempt} · ${e.reason} · from ${e.previousWorkerId ?? '—'} to ${e.workerId}`, e.requestId));
      } else count(state, e.occurredAt, ROUTED);
      break;
    case 'RequestRejected':
      evolveRouter(r, e);
      count(state, e.occurredAt, REJECTED);
      if (e.reason === 'SHED') {
        count(state, e.occurredAt, SHED);
        addAction(state, action(e, 'shed', e.model, `${e.priority}${e.detail ? ` · ${e.detail}` : ''}`, e.requestId));
      }
      break;
    case 'InferenceCompleted':
      evolveRouter(r, e);
      count(state, e.occurredAt, COMPLETED, e.queueMs + e.computeMs);
      if (e.cacheHit) count(state, e.occurredAt, CACHE_HITS);
      break;
    case 'InferenceFailed':
      evolveRouter(r, e);
      // A retriable failure is not an outcome: the controller retries or ends the request.
      if (!e.retriable) count(state, e.occurredAt, FAILED);
      break;
    case 'ResultSuperseded':
      count(state, e.occurredAt, SUPERSEDED);
      addAction(state, action(e, 'superseded', e.supersededWorkerId ?? '—', `${e.supersededType} (attempt ${e.supersededAttempt}) lost to ${e.winnerType}`, e.requestId));
      break;
    case 'InferenceRequested':
    case 'InferenceStarted':
    case 'SessionState':
    case 'DeadLettered':
      break;
    default:
      assertNever(e);
  }
  return state;
}

/** A WorkerEvicted the worker wrote itself when it released its lane after draining (no controller's epoch). */
const isRelease = (e: WorkerEvicted): boolean => e.reason === 'DRAINED' && e.epoch === null;

function assertNever(e: never): never {
  throw new TypeError(`status: unhandled event ${JSON.stringify((e as { type?: unknown }).type)}`);
}

// -- the document -------------------------------------------------------------------------

export interface MemberRow {
  workerId: string;
  lane: number | null;
  zone: string | null;
  /** `left`: it released its lane after draining; `evicted`: the controller (or an operator) took it. */
  status: 'live' | 'draining' | 'evicted' | 'left' | 'no lane';
  health: 'ok' | 'stale' | 'no heartbeat';
  /** Age of its latest heartbeat at the document's time, ms. */
  heartbeatAgeMs: number | null;
  load: number | null;
  queueDepth: number | null;
  /** How long its oldest queued job had waited, ms (from its heartbeat). */
  queueDelayMs: number | null;
  /** In flight as it reported. */
  inFlight: number | null;
  /** Routed to it and not finished, as the routers count it (within the look-back). */
  routedUnfinished: number;
  capacity: number | null;
  /** Model digests it has loaded (short). */
  loadedModels: string[];
  /** Its results in the ejection window: results, errors, latency percentile. */
  window: { results: number; errors: number; latencyMs: number | null } | null;
  ejection: { state: 'ejected' | 'half-open'; cause: string } | null;
  /** When and why it lost its lane (evicted or left). */
  evicted: { at: number; reason: string } | null;
}

export interface ControllerRow {
  controllerId: string;
  role: 'leader' | 'standby';
  epoch: number | null;
  lastTickAgeMs: number;
  seq: number;
}

export interface ModelStatus {
  model: string;
  versions: { version: string; digest: string; loadedBy: number }[];
  latest: string | null;
  fallbackModel: string | null;
  rollout: { weights: { version: string; weight: number; percent: number }[]; stableVersion: string; canaryVersion: string | null } | null;
}

export interface Series {
  /** Start of the first second, ms since the epoch. */
  from: number;
  stepMs: 1000;
  completed: number[];
  failed: number[];
  rejected: number[];
  shed: number[];
  routed: number[];
  redispatched: number[];
  cacheHits: number[];
  evictions: number[];
  superseded: number[];
  /** Latency (routing → completed, as the worker measured it) percentiles per second, ms; null for a second without completions. */
  p50Ms: (number | null)[];
  p99Ms: (number | null)[];
}

export interface StatusDocument {
  /** The time the document is of. */
  at: number;
  /** Newest occurredAt folded (0 when nothing). */
  newestEventAt: number;
  eventsFolded: number;
  policyVersion: string;
  controller: {
    epoch: number;
    leader: string | null;
    electedAt: number | null;
    /** Age of the leader's latest tick, ms; null when none was seen. */
    leaderTickAgeMs: number | null;
    controllers: ControllerRow[];
  };
  members: MemberRow[];
  summary: { members: number; live: number; healthy: number; draining: number; evicted: number; left: number; capacity: number; inFlight: number; queueDepth: number };
  lanes: { total: number; held: number; free: number; holders: { lane: number; workerId: string; zone: string | null; status: MemberRow['status']; health: MemberRow['health'] }[]; claimsRefused: number };
  models: ModelStatus[];
  /** Over the last `rateSeconds` whole seconds (per second) and the last `latencySeconds` (percentiles). */
  rates: {
    seconds: number;
    completedPerSec: number;
    failedPerSec: number;
    rejectedPerSec: number;
    routedPerSec: number;
    cacheHitRatio: number | null;
    latencySeconds: number;
    p50Ms: number | null;
    p95Ms: number | null;
    p99Ms: number | null;
  };
  /** Totals over the series window. */
  recent: { seconds: number; evictions: number; redispatches: number; sheds: number; rejected: number; failed: number; completed: number; superseded: number };
  /** Control actions, newest first. */
  actions: StatusAction[];
  /** Re-dispatches, sheds and superseded outcomes, newest first. */
  requestActions: StatusAction[];
  series: Series;
}

export interface DocumentOptions {
  /** The document's time (heartbeat ages, the series' last second). */
  now: number;
  /** Judge health and ejections with this policy. @default DEFAULT_ROUTER_POLICY */
  policy?: RouterPolicy;
  /** Seconds of series in the document (≤ the state's). @default the state's seriesSeconds */
  seconds?: number;
  /** Whole seconds the rates are averaged over. @default 10 */
  rateSeconds?: number;
  /** Seconds the latency percentiles cover. @default 60 */
  latencySeconds?: number;
}

/** Members as `decide` reads them: lane claim, drain/eviction, the latest heartbeat and its age, load, ejection. */
export function describeMembers(state: StatusState, now: number, policy: RouterPolicy = DEFAULT_ROUTER_POLICY): MemberRow[] {
  const r = state.router;
  const marks = outliers(r, policy.ejection);
  const rows: MemberRow[] = [];
  const workers = [...r.workers.values()].sort((a, b) => (a.claim?.lane ?? 1e9) - (b.claim?.lane ?? 1e9) || (a.workerId < b.workerId ? -1 : a.workerId > b.workerId ? 1 : 0));
  for (const rec of workers) {
    const hb = rec.heartbeat;
    const claim = rec.claim;
    // A heartbeat counts for the current claim only (an older incarnation's says nothing of this one).
    const fromClaim = hb !== null && claim !== null && hb.lane === claim.lane && !(claim.startedAt !== null && hb.startedAt !== null && hb.startedAt < claim.startedAt);
    const age = hb === null ? null : now - hb.at;
    const mark = marks.get(rec.workerId);
    const w = rec.results === null ? null : windowStats(rec.results, policy.ejection.windowMs, policy.ejection.latencyPercentile);
    const lost = rec.evicted ? (state.evictions.get(rec.workerId) ?? null) : null;
    rows.push({
      workerId: rec.workerId,
      lane: claim?.lane ?? null,
      zone: claim?.zone ?? hb?.zone ?? null,
      status: rec.evicted ? (lost?.left === true ? 'left' : 'evicted') : claim === null ? 'no lane' : rec.draining || (hb?.draining ?? false) ? 'draining' : 'live',
      health: hb === null || !fromClaim ? 'no heartbeat' : age! > policy.staleHeartbeatMs ? 'stale' : 'ok',
      heartbeatAgeMs: age,
      load: hb?.load ?? null,
      queueDepth: hb?.queueDepth ?? null,
      queueDelayMs: hb?.queueDelayMs ?? null,
      inFlight: hb?.inFlight ?? null,
      routedUnfinished: rec.inFlight,
      capacity: hb?.capacity ?? claim?.capacity ?? null,
      loadedModels: (hb?.loadedModels ?? []).map((d) => d.slice(0, 12)),
      window: w === null ? null : { results: w.results, errors: w.errors, latencyMs: w.latencyMs },
      ejection: mark === undefined ? null : { state: r.logTime < mark.tripAt + policy.ejection.cooldownMs ? 'ejected' : 'half-open', cause: mark.cause },
      evicted: lost === null ? null : { at: lost.at, reason: lost.reason },
    });
  }
  return rows;
}

/** The percentile (upper bin edge, ms) of a merged histogram, null when empty. */
function percentile(hist: Float64Array, total: number, p: number): number | null {
  if (total === 0) return null;
  const rank = Math.max(1, Math.ceil(p * total));
  let seen = 0;
  for (let b = 0; b < LATENCY_BINS; b++) {
    seen += hist[b]!;
    if (seen >= rank) return latencyBinUpperMs(b);
  }
  return latencyBinUpperMs(LATENCY_BINS - 1);
}

/** The status document at `now`. */
export function statusDocument(state: StatusState, o: DocumentOptions): StatusDocument {
  const { now } = o;
  const policy = o.policy ?? DEFAULT_ROUTER_POLICY;
  const seconds = Math.min(o.seconds ?? state.seriesSeconds, state.seriesSeconds);
  const rateSeconds = Math.min(o.rateSeconds ?? 10, seconds - 1);
  const latencySeconds = Math.min(o.latencySeconds ?? 60, seconds);
  const r = state.router;

  // Series: `seconds` slots ending with the current (partial) second.
  const last = Math.floor(now / 1000);
  const first = last - seconds + 1;
  const counters = () => new Array<number>(seconds).fill(0);
  const series: Series = {
    from: first * 1000,
    stepMs: 1000,
    completed: counters(),
    failed: counters(),
    rejected: counters(),
    shed: counters(),
    routed: counters(),
    redispatched: counters(),
    cacheHits: counters(),
    evictions: counters(),
    superseded: counters(),
    p50Ms: new Array<number | null>(seconds).fill(null),
    p99Ms: new Array<number | null>(seconds).fill(null),
  };
  const latencyHist = new Float64Array(LATENCY_BINS);
  let latencyTotal = 0;
  const hist = new Float64Array(LATENCY_BINS);
  const n = state.seriesSeconds;
  for (let i = 0; i < seconds; i++) {
    const second = first + i;
    const slot = ((second % n) + n) % n;
    if (state.seconds[slot] !== second) continue;
    const base = slot * SLOT;
    const c = state.cells;
    series.completed[i] = c[base + COMPLETED]!;
    series.failed[i] = c[base + FAILED]!;
    series.rejected[i] = c[base + REJECTED]!;
    series.shed[i] = c[base + SHED]!;
    series.routed[i] = c[base + ROUTED]!;
    series.redispatched[i] = c[base + REDISPATCHED]!;
    series.cacheHits[i] = c[base + CACHE_HITS]!;
    series.evictions[i] = c[base + EVICTIONS]!;
    series.superseded[i] = c[base + SUPERSEDED]!;
    const completed = c[base + COMPLETED]!;
    if (completed === 0) continue;
    for (let b = 0; b < LATENCY_BINS; b++) hist[b] = c[base + COUNTERS + b]!;
    series.p50Ms[i] = percentile(hist, completed, 0.5);
    series.p99Ms[i] = percentile(hist, completed, 0.99);
    if (i >= seconds - latencySeconds) {
      for (let b = 0; b < LATENCY_BINS; b++) latencyHist[b]! += hist[b]!;
      latencyTotal += completed;
    }
  }
  // Rates over the last whole seconds (the current one is still filling).
  const sum = (xs: number[], from: number, to: number) => xs.slice(from, to).reduce((a, b) => a + b, 0);
  const rateFrom = seconds - 1 - rateSeconds;
  const per = (xs: number[]) => round(sum(xs, rateFrom, seconds - 1) / rateSeconds);
  const completedRecent = sum(series.completed, rateFrom, seconds - 1);
  const hitsRecent = sum(series.cacheHits, rateFrom, seconds - 1);

  const members = describeMembers(state, now, policy);
  const leaderTick = r.leader === null ? undefined : state.ticks.get(r.leader);
  const controllers: ControllerRow[] = [...state.ticks.values()]
    .sort((a, b) => (a.controllerId < b.controllerId ? -1 : 1))
    .map((t) => ({ controllerId: t.controllerId, role: t.controllerId === r.leader && t.epoch === r.epoch && r.epoch > 0 ? 'leader' : 'standby', epoch: t.epoch, lastTickAgeMs: now - t.lastAt, seq: t.seq }));

  const loaded = new Map<string, number>();
  for (const rec of r.workers.values()) {
    if (rec.evicted || rec.claim === null || rec.heartbeat === null) continue;
    for (const d of rec.heartbeat.loadedModels) loaded.set(d, (loaded.get(d) ?? 0) + 1);
  }
  const models: ModelStatus[] = [...r.models.values()]
    .sort((a, b) => (a.name < b.name ? -1 : 1))
    .map((m) => {
      const total = m.rollout?.weights.reduce((a, w) => a + w.weight, 0) ?? 0;
      return {
        model: m.name,
        versions: [...m.versions.values()].sort((a, b) => a.seq - b.seq).map((v) => ({ version: v.version, digest: v.digest, loadedBy: loaded.get(v.digest) ?? 0 })),
        latest: m.latest,
        fallbackModel: m.fallbackModel,
        rollout:
          m.rollout === null
            ? null
            : {
                weights: m.rollout.weights.map((w) => ({ version: w.version, weight: w.weight, percent: total > 0 ? round((100 * w.weight) / total) : 0 })),
                stableVersion: m.rollout.stableVersion,
                canaryVersion: m.rollout.canaryVersion,
              },
      };
    });

  const holders: StatusDocument['lanes']['holders'] = [];
  for (const [lane, workerId] of [...r.laneHolders].sort((a, b) => a[0] - b[0])) {
    const row = members.find((m) => m.workerId === workerId);
    holders.push({ lane, workerId, zone: row?.zone ?? null, status: row?.status ?? 'live', health: row?.health ?? 'no heartbeat' });
  }
  const live = members.filter((m) => m.status === 'live' || m.status === 'draining');
  return {
    at: now,
    newestEventAt: state.newestAt,
    eventsFolded: state.folded,
    policyVersion: policy.version,
    controller: {
      epoch: r.epoch,
      leader: r.leader,
      electedAt: r.epoch > 0 ? r.electedAt : null,
      leaderTickAgeMs: leaderTick === undefined ? null : now - leaderTick.lastAt,
      controllers,
    },
    members,
    summary: {
      members: members.length,
      live: members.filter((m) => m.status === 'live').length,
      healthy: members.filter((m) => m.status === 'live' && m.health === 'ok').length,
      draining: members.filter((m) => m.status === 'draining').length,
      evicted: members.filter((m) => m.status === 'evicted').length,
      left: members.filter((m) => m.status === 'left').length,
      capacity: members.filter((m) => m.status === 'live' && m.health === 'ok').reduce((a, m) => a + (m.capacity ?? 0), 0),
      inFlight: live.reduce((a, m) => a + (m.inFlight ?? 0), 0),
      queueDepth: live.reduce((a, m) => a + (m.queueDepth ?? 0), 0),
    },
    lanes: { total: r.lanes, held: r.laneHolders.size, free: r.lanes - r.laneHolders.size, holders, claimsRefused: r.claimsRefused },
    models,
    rates: {
      seconds: rateSeconds,
      completedPerSec: per(series.completed),
      failedPerSec: per(series.failed),
      rejectedPerSec: per(series.rejected),
      routedPerSec: per(series.routed),
      cacheHitRatio: completedRecent === 0 ? null : round(hitsRecent / completedRecent, 3),
      latencySeconds,
      p50Ms: percentileRounded(latencyHist, latencyTotal, 0.5),
      p95Ms: percentileRounded(latencyHist, latencyTotal, 0.95),
      p99Ms: percentileRounded(latencyHist, latencyTotal, 0.99),
    },
    recent: {
      seconds,
      evictions: sum(series.evictions, 0, seconds),
      redispatches: sum(series.redispatched, 0, seconds),
      sheds: sum(series.shed, 0, seconds),
      rejected: sum(series.rejected, 0, seconds),
      failed: sum(series.failed, 0, seconds),
      completed: sum(series.completed, 0, seconds),
      superseded: sum(series.superseded, 0, seconds),
    },
    actions: state.actions.map((a) => ({ ...a })),
    requestActions: state.requestActions.map((a) => ({ ...a })),
    series: { ...series, p50Ms: series.p50Ms.map((v) => (v === null ? null : round(v))), p99Ms: series.p99Ms.map((v) => (v === null ? null : round(v))) },
  };
}

const round = (v: number, digits = 1): number => {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
};

const percentileRounded = (hist: Float64Array, total: number, p: number): number | null => {
  const v = percentile(hist, total, p);
  return v === null ? null : round(v);
};
