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
 * An outlier is EJECTED until `cooldownMs` of log time after its newest result, then HALF_OPEN:
 * it may take a request only while nothing is outstanding on it (one probe at a time). A probe's
 * result moves its window forward: if the window still shows an outlier it is ejected for another
 * cool-down; once the bad results have left the window (or too few remain to judge) it is back.
 */

/** An outlier: ejected until `tripAt + cooldownMs` of log time, half-open after. */
export interface EjectionMark {
  /** Newest result of the worker (log time the judgement was made at). */
  readonly tripAt: number;
  readonly cause: 'ERROR_RATE' | 'LATENCY';
  readonly severity: number;
}

interface Judged {
  readonly workerId: string;
  readonly errorRate: number;
  readonly latencyMs: number | null;
  readonly lastResultAt: number;
  readonly active: boolean;
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
  const stats = windowStats(w, policy.windowMs, policy.latencyPercentile);
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

/** Lower median of a sorted array with one instance of `self` left out (when `self` is in it). */
function medianWithout(sorted: readonly number[], self: number | null): number | null {
  let pos = -1;
  if (self !== null) {
    // Any instance of an equal value leaves the same multiset.
    let lo = 0;
    let hi = sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (sorted[mid]! < self) lo = mid + 1;
      else hi = mid;
    }
    if (lo < sorted.length && sorted[lo] === self) pos = lo;
  }
  const n = pos >= 0 ? sorted.length - 1 : sorted.length;
  if (n === 0) return null;
  const k = (n - 1) >> 1;
  return sorted[pos >= 0 && k >= pos ? k + 1 : k]!;
}

function compute(state: RouterState, policy: EjectionPolicy, logBucket: number): ReadonlyMap<string, EjectionMark> {
  const spanBuckets = Math.ceil(policy.windowMs / RESULT_BUCKET_MS);
  const judged: Judged[] = [];
  let live = 0;
  for (const rec of state.workers.values()) {
    if (rec.evicted) continue;
    if (rec.claim !== null) live++;
    const w = rec.results;
    if (w === null) continue;
    const s = cachedStats(w, policy);
    if (s.results < policy.minRequests) continue;
    judged.push({
      workerId: rec.workerId,
      errorRate: s.errors / s.results,
      latencyMs: s.latencyMs,
      lastResultAt: w.lastResultAt,
      active: Math.floor(w.lastResultAt / RESULT_BUCKET_MS) > logBucket - spanBuckets,
    });
  }
  if (judged.length === 0) return NONE;
  const peerErr: number[] = [];
  const peerLat: number[] = [];
  for (const j of judged) {
    if (!j.active) continue;
    peerErr.push(j.errorRate);
    if (j.latencyMs !== null) peerLat.push(j.latencyMs);
  }
  peerErr.sort((a, b) => a - b);
  peerLat.sort((a, b) => a - b);

  const found: { workerId: string; mark: EjectionMark }[] = [];
  for (const j of judged) {
    const medErr = medianWithout(peerErr, j.active ? j.errorRate : null) ?? 0;
    const errSeverity = (j.errorRate - medErr) / Math.max(policy.errorRateMargin, 1e-9);
    let latSeverity = 0;
    if (j.latencyMs !== null && j.latencyMs >= policy.minLatencyMs) {
      const medLat = medianWithout(peerLat, j.active ? j.latencyMs : null);
      if (medLat !== null) latSeverity = j.latencyMs / (policy.latencyFactor * Math.max(medLat, 1e-9));
    }
    if (errSeverity < 1 && latSeverity < 1) continue;
    found.push({
      workerId: j.workerId,
      mark: { tripAt: j.lastResultAt, cause: errSeverity >= latSeverity ? 'ERROR_RATE' : 'LATENCY', severity: Math.max(errSeverity, latSeverity) },
    });
  }
  const cap = Math.floor(policy.maxEjectedFraction * live);
  if (found.length === 0 || cap === 0) return NONE;
  found.sort((a, b) => b.mark.severity - a.mark.severity || (a.workerId < b.workerId ? -1 : a.workerId > b.workerId ? 1 : 0));
  const marks = new Map<string, EjectionMark>();
  for (const f of found.slice(0, cap)) marks.set(f.workerId, f.mark);
  return marks;
}
