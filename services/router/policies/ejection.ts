import type { ResultWindow, RouterState, WindowStats } from '../state.js';
import { RESULT_BUCKET_MS, windowStats } from '../state.js';
import type { EjectionPolicy } from './options.js';

/**
 * Outlier ejection (circuit breaker) derived from `results` in the log, so every router with the
 * same log prefix agrees.
 *
 * Each worker is judged on its results in the `windowMs` of log time before its own newest
 * result (1 s buckets), once it has at least `minRequests` of them:
 * - error outlier: its error rate is at least `errorRateMargin` above the median error rate of
 *   its peers (no peers: above 0);
 * - latency outlier: its `latencyPercentile` latency is at least `latencyFactor` × the median of
 *   its peers' and at least `minLatencyMs`.
 * Peers are the other non-evicted workers judged the same way whose newest result is within
 * `windowMs` of the log time (the newest result folded). At most `maxEjectedFraction` of the
 * live workers are ejected, the most severe first (ties by workerId).
 *
 * - absolute (a breaker on the objective, not relative to peers): its `latencyPercentile` of
 *   compute time — the worker's own computeMs, without queue or log transit — is at least
 *   `maxComputeMs`. These are not capped by `maxEjectedFraction`: when the whole fleet is over the
 *   objective the router falls back to the model's fallback (degraded) rather than keep routing.
 *
 * An outlier is EJECTED until `cooldownMs` of log time after its newest result, then HALF_OPEN:
 * it may take a request only while nothing is outstanding on it (one probe at a time). A probe's
 * result moves its window forward: if the window still shows an outlier it is ejected for another
 * cool-down; once the bad results have left the window (or too few remain to judge) it is back.
 */

/** An outlier: ejected until `tripAt + cooldownMs` of log time, half-open after. */
export interface EjectionMark {
  /** Newest result of the worker (log time the judgement was made at). */
  readonly tripAt: number;
  readonly cause: 'ERROR_RATE' | 'LATENCY' | 'COMPUTE_TIME';
  readonly severity: number;
}

interface Memo {
  resultsVersion: number;
  controlVersion: number;
  logBucket: number;
  policy: EjectionPolicy;
  marks: ReadonlyMap<string, EjectionMark>;
}

const NONE: ReadonlyMap<string, EjectionMark> = new Map();

// A cache of a pure function of the state's contents, keyed by the state's version counters;
// it never changes what `outliers` returns.
const memo = new WeakMap<RouterState, Memo>();
// Per worker, its window's stats while the window has not changed (a result bumps its version).
const statsMemo = new WeakMap<ResultWindow, { version: number; policy: EjectionPolicy; stats: WindowStats }>();

function cachedStats(w: ResultWindow, policy: EjectionPolicy): WindowStats {
  const m = statsMemo.get(w);
  if (m !== undefined && m.version === w.version && m.policy === policy) return m.stats;
  const stats = windowStats(w, policy.windowMs, policy.latencyPercentile, policy.maxComputeMs < Infinity);
  statsMemo.set(w, { version: w.version, policy, stats });
  return stats;
}

/** The outliers among the workers, as every router with this state computes them. */
export function outliers(state: RouterState, policy: EjectionPolicy): ReadonlyMap<string, EjectionMark> {
  if (!policy.enabled || state.resultsVersion === 0) return NONE;
  const logBucket = Math.floor(state.logTime / RESULT_BUCKET_MS);
  const m = memo.get(state);
  if (m !== undefined && m.resultsVersion === state.resultsVersion && m.controlVersion === state.controlVersion && m.logBucket === logBucket && m.policy === policy) {
    return m.marks;
  }
  const marks = compute(state, policy, logBucket);
  memo.set(state, { resultsVersion: state.resultsVersion, controlVersion: state.controlVersion, logBucket, policy, marks });
  return marks;
}

/** Lower median of sorted[0..n) with one instance of `self` left out (when `self` is in it). */
function medianWithout(sorted: Float64Array, n: number, self: number | null): number | null {
  let pos = -1;
  if (self !== null) {
    // Any instance of an equal value leaves the same multiset.
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (sorted[mid]! < self) lo = mid + 1;
      else hi = mid;
    }
    if (lo < n && sorted[lo] === self) pos = lo;
  }
  const m = pos >= 0 ? n - 1 : n;
  if (m === 0) return null;
  const k = (m - 1) >> 1;
  return sorted[pos >= 0 && k >= pos ? k + 1 : k]!;
}

/**
 * The judged workers of a `compute` call, as columns. Module-level scratch reused by every call
 * (compute is synchronous and never re-entered): the judgement runs after every result a router
 * folds, and allocating per worker showed in verify's profile. Nothing here outlives a call.
 */
const judged = {
  n: 0,
  workerId: [] as string[],
  errorRate: new Float64Array(64),
  /** NaN: no successful result in the window. */
  latencyMs: new Float64Array(64),
  /** NaN: not judged on compute time. */
  computeMs: new Float64Array(64),
  lastResultAt: new Float64Array(64),
  active: new Uint8Array(64),
  peerErr: new Float64Array(64),
  peerLat: new Float64Array(64),
};

function ensureJudged(n: number): void {
  if (judged.errorRate.length >= n) return;
  const size = Math.max(n, judged.errorRate.length * 2);
  judged.errorRate = new Float64Array(size);
  judged.latencyMs = new Float64Array(size);
  judged.computeMs = new Float64Array(size);
  judged.lastResultAt = new Float64Array(size);
  judged.active = new Uint8Array(size);
  judged.peerErr = new Float64Array(size);
  judged.peerLat = new Float64Array(size);
}

/** Most severe first, ties by workerId. */
function bySeverity(a: { workerId: string; mark: EjectionMark }, b: { workerId: string; mark: EjectionMark }): number {
  return b.mark.severity - a.mark.severity || (a.workerId < b.workerId ? -1 : a.workerId > b.workerId ? 1 : 0);
}

function compute(state: RouterState, policy: EjectionPolicy, logBucket: number): ReadonlyMap<string, EjectionMark> {
  const spanBuckets = Math.ceil(policy.windowMs / RESULT_BUCKET_MS);
  ensureJudged(state.workers.size);
  const j = judged;
  let n = 0;
  let live = 0;
  for (const rec of state.workers.values()) {
    if (rec.evicted) continue;
    if (rec.claim !== null) live++;
    const w = rec.results;
    if (w === null) continue;
    const s = cachedStats(w, policy);
    if (s.results < policy.minRequests) continue;
    j.workerId[n] = rec.workerId;
    j.errorRate[n] = s.errors / s.results;
    j.latencyMs[n] = s.latencyMs ?? Number.NaN;
    j.computeMs[n] = s.computeMs ?? Number.NaN;
    j.lastResultAt[n] = w.lastResultAt;
    j.active[n] = Math.floor(w.lastResultAt / RESULT_BUCKET_MS) > logBucket - spanBuckets ? 1 : 0;
    n++;
  }
  if (n === 0) return NONE;
  // Peers: the active judged workers, sorted (numbers in [0, 1] and positive latencies: the
  // typed arrays' numeric sort orders them as `(a, b) => a - b` does).
  let nErr = 0;
  let nLat = 0;
  for (let i = 0; i < n; i++) {
    if (j.active[i] === 0) continue;
    j.peerErr[nErr++] = j.errorRate[i]!;
    if (!Number.isNaN(j.latencyMs[i]!)) j.peerLat[nLat++] = j.latencyMs[i]!;
  }
  const peerErr = j.peerErr.subarray(0, nErr).sort();
  const peerLat = j.peerLat.subarray(0, nLat).sort();

  let found: { workerId: string; mark: EjectionMark }[] | undefined;
  let absolute: { workerId: string; mark: EjectionMark }[] | undefined;
  for (let i = 0; i < n; i++) {
    const computeMs = j.computeMs[i]!;
    if (!Number.isNaN(computeMs) && computeMs >= policy.maxComputeMs) {
      (absolute ??= []).push({ workerId: j.workerId[i]!, mark: { tripAt: j.lastResultAt[i]!, cause: 'COMPUTE_TIME', severity: computeMs / Math.max(policy.maxComputeMs, 1e-9) } });
      continue;
    }
    const active = j.active[i] === 1;
    const errorRate = j.errorRate[i]!;
    const latencyMs = j.latencyMs[i]!;
    const medErr = medianWithout(peerErr, nErr, active ? errorRate : null) ?? 0;
    const errSeverity = (errorRate - medErr) / Math.max(policy.errorRateMargin, 1e-9);
    let latSeverity = 0;
    if (!Number.isNaN(latencyMs) && latencyMs >= policy.minLatencyMs) {
      const medLat = medianWithout(peerLat, nLat, active ? latencyMs : null);
      if (medLat !== null) latSeverity = latencyMs / (policy.latencyFactor * Math.max(medLat, 1e-9));
    }
    if (errSeverity < 1 && latSeverity < 1) continue;
    (found ??= []).push({
      workerId: j.workerId[i]!,
      mark: { tripAt: j.lastResultAt[i]!, cause: errSeverity >= latSeverity ? 'ERROR_RATE' : 'LATENCY', severity: Math.max(errSeverity, latSeverity) },
    });
  }
  const cap = Math.floor(policy.maxEjectedFraction * live);
  if ((found === undefined || cap === 0) && absolute === undefined) return NONE;
  const marks = new Map<string, EjectionMark>();
  for (const a of absolute ?? []) marks.set(a.workerId, a.mark);
  if (found !== undefined && cap > 0) {
    found.sort(bySeverity);
    for (const f of found.slice(0, cap)) marks.set(f.workerId, f.mark);
  }
  return marks;
}
