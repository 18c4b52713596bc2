import type {
  ControllerElected,
  InferenceCompleted,
  InferenceFailed,
  ModelVersionRegistered,
  RequestRouted,
  RolloutChanged,
  SwitchyardEvent,
  VersionWeight,
  WorkerDraining,
  WorkerEvicted,
  WorkerHeartbeat,
  WorkerJoined,
} from '../../schemas/generated/events.js';
import { hash32 } from './hash.js';

/**
 * The router's view of the cluster: a fold over `control`, `heartbeats`, `decisions` and
 * `results`. Pure: time arrives in events (their `occurredAt`) and, at decide time, in the command.
 *
 * Interleaving independence (DESIGN.md "Deciders"). Two routers that consumed the same log prefix
 * (the same clock) hold the same state, however their consumers interleaved the partitions:
 * - `control` is one partition, so its events are folded in one total order everywhere; lane
 *   claims, drains, evictions, model versions and rollouts may therefore depend on that order.
 * - everything else is kept as an order-free aggregate: the latest heartbeat per worker by
 *   (startedAt, seq); per worker, the requests routed and not yet finished, from a ledger keyed
 *   by (requestId, attempt) that holds whichever half was folded first, so a result folded before
 *   its decision still cancels it; per-worker result counts in 1 s buckets of the results'
 *   occurredAt (a ring keeps the newest bucket per slot, the same whichever order the results
 *   came in); log time as a max.
 * Exceptions, both rare and documented:
 * - decisions/results of an evicted worker are dropped and its counters cleared on eviction, so a
 *   pre-eviction decision read only after the same workerId re-joins counts for the new
 *   incarnation on one router and not on another. Worker ids are expected to be per incarnation;
 *   a field naming the incarnation in RequestRouted (schema v2) would close the gap.
 * - the ledger forgets a pair once both halves are folded (to stay bounded), so an exact
 *   duplicate of a decision read after that counts again (a duplicate result is harmless).
 *
 * `evolve` updates the state in place and returns it: the fold runs at heartbeat and result rates,
 * and copying maps per event would dominate. Treat a state as owned by one fold; never share one
 * between a fold and another reader that expects it frozen. Everything read by `decide` is a pure
 * function of the events folded.
 */

/** Width of a result bucket, ms of log time. */
export const RESULT_BUCKET_MS = 1000;
/** Buckets kept per worker: the longest ejection window is RESULT_RING_SIZE × RESULT_BUCKET_MS. */
export const RESULT_RING_SIZE = 64;
/** Latency histogram bins per bucket: half-octaves of ms (bin b ≥ 1 holds [2^((b-1)/2), 2^(b/2)) ms). */
export const LATENCY_BINS = 40;
/** Per bucket: [results, errors, ...latency bins (queue + compute), ...compute-time bins]. */
const SLOT_WIDTH = 2 + 2 * LATENCY_BINS;

/**
 * InferenceFailed codes that say nothing about the worker's health (the client's deadline passed,
 * bad input, cancelled). Such failures close the request's in-flight count but are not results for
 * outlier ejection.
 */
export const CLIENT_ERROR_CODES: ReadonlySet<string> = new Set(['DEADLINE_EXCEEDED', 'INVALID_INPUT', 'INVALID_REQUEST', 'CANCELLED', 'WORKER_DRAINING']);

/** A worker's accepted lane claim (WorkerJoined). */
export interface LaneClaim {
  readonly lane: number;
  readonly zone: string;
  readonly capacity: number;
  /** Model names the worker declared; empty = any. */
  readonly models: readonly string[];
  readonly joinedAt: number;
  readonly startedAt: number | null;
}

/** The latest heartbeat of a worker (by startedAt, then seq). */
export interface HeartbeatView {
  readonly seq: number;
  readonly startedAt: number | null;
  /** The heartbeat's occurredAt. */
  readonly at: number;
  readonly lane: number;
  readonly zone: string;
  readonly load: number;
  readonly queueDepth: number;
  readonly inFlight: number;
  readonly capacity: number;
  /** sha256 digests loaded; empty = not reported. */
  readonly loadedModels: readonly string[];
  readonly draining: boolean;
  /** How long the oldest queued job had waited when the heartbeat was made, ms (0: nothing queued). */
  readonly queueDelayMs: number;
}

/** Results of one worker in 1 s buckets of occurredAt, a ring of RESULT_RING_SIZE. */
export interface ResultWindow {
  /** Largest occurredAt of the worker's results. */
  lastResultAt: number;
  /** Bumped on every result folded (cache key for derived stats). */
  version: number;
  /** Bucket number (occurredAt / RESULT_BUCKET_MS) held by each slot, -1 when empty. */
  readonly bucketIds: Float64Array;
  /** RESULT_RING_SIZE slots of [results, errors, ...LATENCY_BINS of latency, ...LATENCY_BINS of compute time]. */
  readonly cells: Uint32Array;
}

export interface WorkerRecord {
  readonly workerId: string;
  /** hash32(workerId), for rendezvous hashing. */
  readonly hash: number;
  /** The accepted lane claim; null before joining or once an evicted worker's lane is re-claimed. */
  claim: LaneClaim | null;
  evicted: boolean;
  /** WorkerDraining seen for the current claim. */
  draining: boolean;
  heartbeat: HeartbeatView | null;
  /**
   * Requests routed to the worker whose result has not been folded (ledger entries routed to it).
   * A result folded before its decision is never counted (the pair nets out when the decision
   * comes), so results whose decisions lie outside the fold (retention) cannot drive it negative.
   */
  inFlight: number;
  results: ResultWindow | null;
}

export interface ModelVersionView {
  readonly version: string;
  readonly digest: string;
  /** Registration order within the model. */
  readonly seq: number;
}

export interface RolloutView {
  /** Weighted versions in split order: stable first, canary last, so raising the canary's weight only moves sessions from stable to canary. */
  readonly weights: readonly VersionWeight[];
  readonly stableVersion: string;
  readonly canaryVersion: string | null;
}

export interface ModelView {
  readonly name: string;
  readonly versions: Map<string, ModelVersionView>;
  /** The version registered last. */
  latest: string | null;
  /** From the latest registration of any version. */
  fallbackModel: string | null;
  rollout: RolloutView | null;
}

/** One (requestId, attempt): the half folded so far. */
export interface LedgerEntry {
  routedTo: string | null;
  finishedBy: string | null;
}

export interface RouterState {
  /** Lanes (partitions of `decisions`); a claim outside 0..lanes-1 is invalid. */
  readonly lanes: number;
  readonly workers: Map<string, WorkerRecord>;
  /** lane → workerId of the live holder. */
  readonly laneHolders: Map<number, string>;
  /** Workers that hold a lane, or were evicted from one not yet re-claimed, ordered by lane: the candidates of every decision. */
  candidates: readonly WorkerRecord[];
  readonly models: Map<string, ModelView>;
  /** (requestId#attempt) → the half seen so far; deleted once decision and result are both folded. */
  readonly ledger: Map<string, LedgerEntry>;
  /** Log time: the largest occurredAt of any result folded (ejection cool-downs are measured in it). */
  logTime: number;
  /** Bumped on every result folded into a window. */
  resultsVersion: number;
  /** Bumped on every control change that alters workers. */
  controlVersion: number;
  /** Lane claims refused (lane held by another worker, or invalid). */
  claimsRefused: number;
  /** The controller epoch in force: the latest accepted ControllerElected (0 before the first). */
  epoch: number;
  /** The controller that leads `epoch`; null before the first election. */
  leader: string | null;
  /** occurredAt of the election of `epoch` (0 before the first). */
  electedAt: number;
  /** Controller events ignored because they carried an epoch other than the one in force (a deposed leader's late writes), and refused election claims. */
  staleControlIgnored: number;
}

export interface RouterStateOptions {
  /** Number of lanes. @default 64 */
  lanes?: number;
}

export function initialRouterState({ lanes = 64 }: RouterStateOptions = {}): RouterState {
  if (!Number.isInteger(lanes) || lanes < 1) throw new RangeError(`lanes must be a positive integer, got ${lanes}`);
  return {
    lanes,
    workers: new Map(),
    laneHolders: new Map(),
    candidates: [],
    models: new Map(),
    ledger: new Map(),
    logTime: 0,
    resultsVersion: 0,
    controlVersion: 0,
    claimsRefused: 0,
    epoch: 0,
    leader: null,
    electedAt: 0,
    staleControlIgnored: 0,
  };
}

/** Fold one event into the state (in place; returns the same state). */
export function evolve(state: RouterState, event: SwitchyardEvent): RouterState {
  switch (event.type) {
    case 'WorkerJoined':
      onJoined(state, event);
      break;
    case 'WorkerDraining':
      onDraining(state, event);
      break;
    case 'WorkerEvicted':
      if (fromCurrentEpoch(state, event.epoch)) onEvicted(state, event);
      break;
    case 'ControllerElected':
      onElected(state, event);
      break;
    case 'WorkerHeartbeat':
      onHeartbeat(state, event);
      break;
    case 'ModelVersionRegistered':
      onModelVersion(state, event);
      break;
    case 'RolloutChanged':
      if (fromCurrentEpoch(state, event.epoch)) onRollout(state, event);
      break;
    case 'RequestRouted':
      onRouted(state, event);
      break;
    case 'InferenceCompleted':
    case 'InferenceFailed':
      onResult(state, event);
      break;
    // Nothing the router decides with.
    case 'RequestRejected':
    case 'InferenceRequested':
    case 'InferenceStarted':
    case 'ScaleDecided':
    case 'SessionState':
    case 'DeadLettered':
    case 'ControllerTick':
    case 'ResultSuperseded':
      break;
    default:
      assertNever(event);
  }
  return state;
}

function assertNever(e: never): never {
  throw new TypeError(`router state: unhandled event ${JSON.stringify((e as { type?: unknown }).type)}`);
}

/**
 * Leadership fencing, in `control` order: a control event a controller wrote under an epoch is
 * applied only while that epoch is in force. A leader that was paused past its lease and wrote
 * after its successor's ControllerElected is ignored here, by every fold (routers, workers,
 * controllers, replay) alike. Events without an epoch (null: a worker's own lane release, the
 * CLI) are not a controller's and always apply.
 */
function fromCurrentEpoch(state: RouterState, epoch: number | null): boolean {
  if (epoch === null || epoch === state.epoch) return true;
  state.staleControlIgnored++;
  return false;
}

/** Election: the first claim of epoch = current + 1 in control order wins; any other claim is refused. */
function onElected(state: RouterState, e: ControllerElected): void {
  if (e.epoch !== state.epoch + 1 || e.controllerId === '') {
    state.staleControlIgnored++;
    return;
  }
  state.epoch = e.epoch;
  state.leader = e.controllerId;
  state.electedAt = e.occurredAt;
  state.controlVersion++;
}

function workerRecord(state: RouterState, workerId: string): WorkerRecord {
  let rec = state.workers.get(workerId);
  if (rec === undefined) {
    rec = { workerId, hash: hash32(workerId), claim: null, evicted: false, draining: false, heartbeat: null, inFlight: 0, results: null };
    state.workers.set(workerId, rec);
  }
  return rec;
}

function refreshCandidates(state: RouterState): void {
  const list: WorkerRecord[] = [];
  for (const rec of state.workers.values()) if (rec.claim !== null) list.push(rec);
  list.sort((a, b) => a.claim!.lane - b.claim!.lane || (a.workerId < b.workerId ? -1 : a.workerId > b.workerId ? 1 : 0));
  state.candidates = list;
  state.controlVersion++;
}

/** Lane claim: the first valid claim of a free lane in (control) log order wins. */
function onJoined(state: RouterState, e: WorkerJoined): void {
  const { workerId, lane } = e;
  const valid = workerId !== '' && Number.isInteger(lane) && lane >= 0 && lane < state.lanes && Number.isInteger(e.capacity) && e.capacity >= 1;
  const holder = state.laneHolders.get(lane);
  if (!valid || (holder !== undefined && holder !== workerId)) {
    state.claimsRefused++;
    return;
  }
  const rec = workerRecord(state, workerId);
  // A live worker claiming another lane moves: its old lane is freed.
  if (rec.claim !== null && !rec.evicted && rec.claim.lane !== lane && state.laneHolders.get(rec.claim.lane) === workerId) {
    state.laneHolders.delete(rec.claim.lane);
  }
  // An evicted worker still listed on this lane leaves the candidate list.
  for (const other of state.workers.values()) {
    if (other !== rec && other.evicted && other.claim?.lane === lane) other.claim = null;
  }
  state.laneHolders.set(lane, workerId);
  rec.claim = { lane, zone: e.zone, capacity: e.capacity, models: e.models, joinedAt: e.occurredAt, startedAt: e.startedAt };
  rec.evicted = false;
  rec.draining = false;
  refreshCandidates(state);
}

function onDraining(state: RouterState, e: WorkerDraining): void {
  const rec = state.workers.get(e.workerId);
  if (rec?.claim == null || rec.evicted || rec.claim.lane !== e.lane) return;
  rec.draining = true;
  state.controlVersion++;
}

function onEvicted(state: RouterState, e: WorkerEvicted): void {
  const rec = state.workers.get(e.workerId);
  if (rec?.claim == null || rec.evicted || rec.claim.lane !== e.lane) return;
  rec.evicted = true;
  rec.draining = false;
  if (state.laneHolders.get(e.lane) === e.workerId) state.laneHolders.delete(e.lane);
  // Its unfinished work is re-dispatched by the controller (new attempts); forget its counters.
  rec.inFlight = 0;
  rec.results = null;
  for (const [key, entry] of state.ledger) {
    if (entry.routedTo === e.workerId || entry.finishedBy === e.workerId) state.ledger.delete(key);
  }
  refreshCandidates(state);
}

function onHeartbeat(state: RouterState, e: WorkerHeartbeat): void {
  const rec = workerRecord(state, e.workerId);
  const hb = rec.heartbeat;
  if (hb !== null) {
    const a = e.startedAt ?? -1;
    const b = hb.startedAt ?? -1;
    if (a < b || (a === b && e.seq <= hb.seq)) return;
  }
  rec.heartbeat = {
    seq: e.seq,
    startedAt: e.startedAt,
    at: e.occurredAt,
    lane: e.lane,
    zone: e.zone,
    load: e.load,
    queueDepth: e.queueDepth,
    inFlight: e.inFlight,
    capacity: e.capacity,
    loadedModels: e.loadedModels,
    draining: e.draining,
    queueDelayMs: e.queueDelayMs,
  };
}

function modelView(state: RouterState, name: string): ModelView {
  let m = state.models.get(name);
  if (m === undefined) {
    m = { name, versions: new Map(), latest: null, fallbackModel: null, rollout: null };
    state.models.set(name, m);
  }
  return m;
}

function onModelVersion(state: RouterState, e: ModelVersionRegistered): void {
  const m = modelView(state, e.model);
  // Versions are immutable: the first registration of a version fixes its digest.
  if (!m.versions.has(e.version)) {
    m.versions.set(e.version, { version: e.version, digest: e.digest, seq: m.versions.size });
    m.latest = e.version;
  }
  m.fallbackModel = e.fallbackModel === e.model ? null : e.fallbackModel;
}

function onRollout(state: RouterState, e: RolloutChanged): void {
  const m = modelView(state, e.model);
  const canary = e.canaryVersion;
  const rank = (v: string) => (v === e.stableVersion ? 0 : v === canary ? 2 : 1);
  // Stable sort: versions that are neither stable nor canary keep their listed order.
  const weights = e.weights
    .filter((w) => Number.isFinite(w.weight) && w.weight > 0)
    .map((w, i) => ({ w, i }))
    .sort((a, b) => rank(a.w.version) - rank(b.w.version) || a.i - b.i)
    .map(({ w }) => ({ version: w.version, weight: w.weight }));
  m.rollout = { weights, stableVersion: e.stableVersion, canaryVersion: canary };
}

function ledgerKey(requestId: string, attempt: number): string {
  return `${requestId}#${attempt}`;
}

function onRouted(state: RouterState, e: RequestRouted): void {
  if (e.requestId === null) return;
  const rec = workerRecord(state, e.workerId);
  if (rec.evicted) return;
  const key = ledgerKey(e.requestId, e.attempt);
  const entry = state.ledger.get(key);
  if (entry === undefined) {
    state.ledger.set(key, { routedTo: e.workerId, finishedBy: null });
    rec.inFlight++;
  } else if (entry.routedTo === null) {
    state.ledger.delete(key); // its result came first: nothing was ever counted
  } // else: a duplicate decision
}

function onResult(state: RouterState, e: InferenceCompleted | InferenceFailed): void {
  if (e.occurredAt > state.logTime) state.logTime = e.occurredAt;
  const rec = workerRecord(state, e.workerId);
  if (rec.evicted) return;
  if (e.requestId !== null) {
    const key = ledgerKey(e.requestId, e.attempt);
    const entry = state.ledger.get(key);
    if (entry === undefined) {
      state.ledger.set(key, { routedTo: null, finishedBy: e.workerId });
    } else if (entry.finishedBy !== null) {
      return; // a duplicate result
    } else {
      state.ledger.delete(key);
      if (entry.routedTo !== null) {
        const routedTo = state.workers.get(entry.routedTo);
        if (routedTo !== undefined) routedTo.inFlight--;
      }
    }
  }
  if (e.type === 'InferenceFailed') {
    if (!CLIENT_ERROR_CODES.has(e.errorCode)) recordResult(state, rec, e.occurredAt, true, 0, 0);
  } else {
    recordResult(state, rec, e.occurredAt, false, e.queueMs + e.computeMs, e.computeMs);
  }
}

/** Latency histogram bin of a duration in ms. */
export function latencyBin(ms: number): number {
  if (!(ms >= 1)) return 0;
  const b = 1 + Math.floor(2 * Math.log2(ms));
  return b < LATENCY_BINS ? b : LATENCY_BINS - 1;
}

/** Upper edge of a latency bin, ms (the value a percentile in that bin is reported as). */
export function latencyBinUpperMs(bin: number): number {
  return bin === 0 ? 1 : 2 ** (bin / 2);
}

function recordResult(state: RouterState, rec: WorkerRecord, at: number, error: boolean, latencyMs: number, computeMs: number): void {
  let w = rec.results;
  if (w === null) {
    w = { lastResultAt: at, version: 0, bucketIds: new Float64Array(RESULT_RING_SIZE).fill(-1), cells: new Uint32Array(RESULT_RING_SIZE * SLOT_WIDTH) };
    rec.results = w;
  }
  if (at > w.lastResultAt) w.lastResultAt = at;
  w.version++;
  state.resultsVersion++;
  const bucket = Math.floor(at / RESULT_BUCKET_MS);
  const slot = ((bucket % RESULT_RING_SIZE) + RESULT_RING_SIZE) % RESULT_RING_SIZE;
  const held = w.bucketIds[slot]!;
  if (bucket < held) return; // older than what this slot already holds: outside any window
  const base = slot * SLOT_WIDTH;
  if (bucket > held) {
    w.cells.fill(0, base, base + SLOT_WIDTH);
    w.bucketIds[slot] = bucket;
  }
  w.cells[base]!++;
  if (error) w.cells[base + 1]!++;
  else {
    w.cells[base + 2 + latencyBin(latencyMs)]!++;
    w.cells[base + 2 + LATENCY_BINS + latencyBin(computeMs)]!++;
  }
}

/** Results, errors and the latency percentile of a worker over its judging window (`windowMs` before its newest result). */
export interface WindowStats {
  readonly results: number;
  readonly errors: number;
  /** Latency percentile (bin upper edge, ms) of its successful results; null when it had none. */
  readonly latencyMs: number | null;
  /** The same percentile of their compute time alone (the worker's own, without queue or log transit); null when not asked for or none. */
  readonly computeMs: number | null;
}

/** Scratch for windowStats: the cell offsets of the buckets in the window (synchronous, never re-entered). */
const windowSlots = new Int32Array(RESULT_RING_SIZE);

export function windowStats(w: ResultWindow, windowMs: number, percentile: number, withCompute = false): WindowStats {
  const newest = Math.floor(w.lastResultAt / RESULT_BUCKET_MS);
  const span = Math.min(RESULT_RING_SIZE, Math.ceil(windowMs / RESULT_BUCKET_MS));
  const cells = w.cells;
  let results = 0;
  let errors = 0;
  let slots = 0;
  for (let bucket = newest - span + 1; bucket <= newest; bucket++) {
    const slot = ((bucket % RESULT_RING_SIZE) + RESULT_RING_SIZE) % RESULT_RING_SIZE;
    if (w.bucketIds[slot] !== bucket) continue;
    const base = slot * SLOT_WIDTH;
    const n = cells[base]!;
    if (n === 0) continue;
    results += n;
    errors += cells[base + 1]!;
    windowSlots[slots++] = base + 2;
  }
  const ok = results - errors;
  const latencyMs = ok > 0 ? binPercentile(cells, slots, 0, Math.max(1, Math.ceil(percentile * ok))) : null;
  const computeMs = withCompute && ok > 0 ? binPercentile(cells, slots, LATENCY_BINS, Math.max(1, Math.ceil(percentile * ok))) : null;
  return { results, errors, latencyMs, computeMs };
}

/** The bin (of the histogram at `offset` in each slot) where the cumulative count over the window's slots reaches the rank, as its upper edge. */
function binPercentile(cells: Uint32Array, slots: number, offset: number, rank: number): number | null {
  let seen = 0;
  for (let b = 0; b < LATENCY_BINS; b++) {
    for (let k = 0; k < slots; k++) seen += cells[windowSlots[k]! + offset + b]!;
    if (seen >= rank) return latencyBinUpperMs(b);
  }
  return null;
}
