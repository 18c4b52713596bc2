import type { ClockEntry } from '../schemas/generated/events.js';
import { outliers } from '../services/router/policies/ejection.js';
import { DEFAULT_ROUTER_POLICY, policyFromVersion, type RouterPolicy } from '../services/router/policies/options.js';
import { windowStats, type RouterState } from '../services/router/state.js';
import { ClockFold } from './fold.js';
import { sourceOffsetForTime, type ProgressFn } from './scan.js';
import type { LogSource } from './source.js';

/**
 * `replay at <time>`: the cluster as a router saw it — the router's own fold (`evolve`) of
 * `control`, `heartbeats`, `decisions` and `results` up to a point, then read the way `decide`
 * reads it: lane claims, drains and evictions, the latest heartbeat of each worker (its age at
 * that time against the policy's `staleHeartbeatMs`), load, requests routed and not finished,
 * outlier ejections (the policy's ejection rule over the result windows), model versions and
 * rollouts.
 *
 * The prefix is either every record with a log timestamp at or before the time (what a router
 * that was caught up had folded), or exactly a decision's clock (what the router that made it
 * had folded: `clusterAtClock`).
 */

export interface WorkerRow {
  workerId: string;
  lane: number | null;
  zone: string | null;
  status: 'live' | 'draining' | 'evicted' | 'no lane';
  health: 'ok' | 'stale' | 'no heartbeat';
  heartbeatAgeMs: number | null;
  heartbeatSeq: number | null;
  load: number | null;
  queueDepth: number | null;
  /** In flight as the worker reported it. */
  inFlightReported: number | null;
  /** Routed and not finished, as the router counted it. */
  routedUnfinished: number;
  capacity: number | null;
  loadedModels: string[];
  declaredModels: string[];
  /** Results in the ejection window. */
  window: { results: number; errors: number; latencyMs: number | null } | null;
  ejection: { state: 'ejected' | 'half-open'; cause: string; severity: number; untilLogTime: number } | null;
}

export interface ModelRow {
  model: string;
  versions: { version: string; digest: string }[];
  latest: string | null;
  fallbackModel: string | null;
  rollout: { weights: { version: string; weight: number }[]; stableVersion: string; canaryVersion: string | null } | null;
}

export interface ZoneRow {
  zone: string;
  workers: number;
  live: number;
  capacity: number;
  routedUnfinished: number;
}

export interface ClusterView {
  /** The time the view is of (heartbeat ages are measured at it). */
  at: number;
  /** The prefix folded. */
  clock: ClockEntry[];
  foldedRecords: number;
  undecodableRecords: number;
  /** Partitions whose start was removed by retention. */
  truncated: string[];
  policyVersion: string;
  lanes: { total: number; held: number; free: number[] };
  workers: WorkerRow[];
  zones: ZoneRow[];
  models: ModelRow[];
  /** Requests routed or finished whose other half was not folded. */
  ledgerEntries: number;
  claimsRefused: number;
  /** Largest result occurredAt folded (ejection cool-downs run on it). */
  logTime: number;
}

export interface ClusterAtOptions {
  /** Judge health and ejections with this policy version (a decision's `policyVersion`). @default the default policy */
  policyVersion?: string | undefined;
  onProgress?: ProgressFn | undefined;
}

const VIEW = ['control', 'heartbeats', 'decisions', 'results'] as const;

/** The prefix of the view topics whose records were appended at or before `at` (log time). */
export async function clockAt(source: LogSource, at: number): Promise<ClockEntry[]> {
  const clock: ClockEntry[] = [];
  for (const t of VIEW) {
    const spec = source.topics[t];
    if (spec.partitions === 0) continue;
    const starts = await source.log.startOffsets(spec.name);
    const ends = await source.log.endOffsets(spec.name);
    for (let p = 0; p < spec.partitions; p++) {
      const end = await sourceOffsetForTime(source, spec.name, p, at + 1, starts[p] ?? 0, ends[p] ?? 0);
      if (end > 0) clock.push({ topic: spec.name, partition: p, offset: end });
    }
  }
  return clock;
}

/** The cluster at a time: the fold of every view record appended at or before it. */
export async function clusterAt(source: LogSource, at: number, o: ClusterAtOptions = {}): Promise<ClusterView> {
  return clusterAtClock(source, await clockAt(source, at), at, o);
}

/** The cluster as folded from exactly `clock`, with heartbeat ages measured at `at`. */
export async function clusterAtClock(source: LogSource, clock: ClockEntry[], at: number, o: ClusterAtOptions = {}): Promise<ClusterView> {
  const policy: RouterPolicy = o.policyVersion ? policyFromVersion(o.policyVersion) : DEFAULT_ROUTER_POLICY;
  const fold = new ClockFold(source, source.foldDecoder());
  const total = clock.reduce((a, c) => a + c.offset, 0);
  o.onProgress?.({ phase: 'fold', done: 0, total });
  let done = 0;
  for (const entry of clock) {
    await fold.advanceTo([entry]);
    done += entry.offset;
    o.onProgress?.({ phase: 'fold', done, total });
  }
  return describe(fold.state, { at, clock, policy, folded: fold.records, undecodable: fold.undecodable, truncated: [...fold.truncated] });
}

/** Read a router state the way `decide` reads it. */
export function describe(state: RouterState, m: { at: number; clock: ClockEntry[]; policy: RouterPolicy; folded: number; undecodable: number; truncated: string[] }): ClusterView {
  const { at, policy } = m;
  const marks = outliers(state, policy.ejection);
  const workers: WorkerRow[] = [];
  for (const rec of [...state.workers.values()].sort((a, b) => (a.claim?.lane ?? 1e9) - (b.claim?.lane ?? 1e9) || (a.workerId < b.workerId ? -1 : 1))) {
    const hb = rec.heartbeat;
    const claim = rec.claim;
    const fromClaim = hb !== null && claim !== null && hb.lane === claim.lane && !(claim.startedAt !== null && hb.startedAt !== null && hb.startedAt < claim.startedAt);
    const age = hb === null ? null : at - hb.at;
    const mark = marks.get(rec.workerId);
    const w = rec.results === null ? null : windowStats(rec.results, policy.ejection.windowMs, policy.ejection.latencyPercentile);
    workers.push({
      workerId: rec.workerId,
      lane: claim?.lane ?? null,
      zone: claim?.zone ?? hb?.zone ?? null,
      status: rec.evicted ? 'evicted' : claim === null ? 'no lane' : rec.draining || (hb?.draining ?? false) ? 'draining' : 'live',
      health: hb === null || !fromClaim ? 'no heartbeat' : age! > policy.staleHeartbeatMs ? 'stale' : 'ok',
      heartbeatAgeMs: age,
      heartbeatSeq: hb?.seq ?? null,
      load: hb?.load ?? null,
      queueDepth: hb?.queueDepth ?? null,
      inFlightReported: hb?.inFlight ?? null,
      routedUnfinished: rec.inFlight,
      capacity: hb?.capacity ?? claim?.capacity ?? null,
      loadedModels: [...(hb?.loadedModels ?? [])],
      declaredModels: [...(claim?.models ?? [])],
      window: w === null ? null : { results: w.results, errors: w.errors, latencyMs: w.latencyMs },
      ejection:
        mark === undefined
          ? null
          : { state: state.logTime < mark.tripAt + policy.ejection.cooldownMs ? 'ejected' : 'half-open', cause: mark.cause, severity: mark.severity, untilLogTime: mark.tripAt + policy.ejection.cooldownMs },
    });
  }
  const zones = new Map<string, ZoneRow>();
  for (const w of workers) {
    if (w.zone === null) continue;
    const z = zones.get(w.zone) ?? { zone: w.zone, workers: 0, live: 0, capacity: 0, routedUnfinished: 0 };
    z.workers++;
    if (w.status === 'live' && w.health === 'ok') {
      z.live++;
      z.capacity += w.capacity ?? 0;
    }
    z.routedUnfinished += w.routedUnfinished;
    zones.set(w.zone, z);
  }
  const free: number[] = [];
  for (let lane = 0; lane < state.lanes; lane++) if (!state.laneHolders.has(lane)) free.push(lane);
  return {
    at,
    clock: m.clock,
    foldedRecords: m.folded,
    undecodableRecords: m.undecodable,
    truncated: m.truncated,
    policyVersion: policy.version,
    lanes: { total: state.lanes, held: state.laneHolders.size, free },
    workers,
    zones: [...zones.values()].sort((a, b) => (a.zone < b.zone ? -1 : 1)),
    models: [...state.models.values()]
      .sort((a, b) => (a.name < b.name ? -1 : 1))
      .map((mv) => ({
        model: mv.name,
        versions: [...mv.versions.values()].sort((a, b) => a.seq - b.seq).map((v) => ({ version: v.version, digest: v.digest })),
        latest: mv.latest,
        fallbackModel: mv.fallbackModel,
        rollout: mv.rollout === null ? null : { weights: mv.rollout.weights.map((w) => ({ ...w })), stableVersion: mv.rollout.stableVersion, canaryVersion: mv.rollout.canaryVersion },
      })),
    ledgerEntries: state.ledger.size,
    claimsRefused: state.claimsRefused,
    logTime: state.logTime,
  };
}
