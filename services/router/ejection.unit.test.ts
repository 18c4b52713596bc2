import { describe, expect, it } from 'vitest';
import type { SwitchyardEvent } from '../../schemas/generated/events.js';
import { completed, evicted, failed, joined, T0 } from './fixtures.js';
import type { EjectionMark } from './policies/ejection.js';
import { outliers } from './policies/ejection.js';
import type { EjectionPolicy } from './policies/options.js';
import { resolveRouterPolicy } from './policies/options.js';
import type { ResultWindow, RouterState, WindowStats } from './state.js';
import { evolve, initialRouterState, LATENCY_BINS, latencyBinUpperMs, RESULT_BUCKET_MS, RESULT_RING_SIZE, windowStats } from './state.js';
import { mulberry32 } from '../../lib/prng.js';

/**
 * The ejection judgement and the window statistics were rewritten for speed (no allocation per
 * worker, typed-array sorts): the decisions they feed must not change by a bit
 * (POLICY_CODE_VERSION stays). These are the previous implementations, kept as the reference, and
 * the new ones must agree with them on every state of a seeded random walk: workers joining,
 * failing, slow, evicted, over many windows and policies.
 */

function referenceWindowStats(w: ResultWindow, windowMs: number, percentile: number): WindowStats {
  const newest = Math.floor(w.lastResultAt / RESULT_BUCKET_MS);
  const span = Math.min(RESULT_RING_SIZE, Math.ceil(windowMs / RESULT_BUCKET_MS));
  let results = 0;
  let errors = 0;
  const bins = new Uint32Array(LATENCY_BINS);
  for (let bucket = newest - span + 1; bucket <= newest; bucket++) {
    const slot = ((bucket % RESULT_RING_SIZE) + RESULT_RING_SIZE) % RESULT_RING_SIZE;
    if (w.bucketIds[slot] !== bucket) continue;
    const base = slot * (2 + 2 * LATENCY_BINS);
    const n = w.cells[base]!;
    if (n === 0) continue;
    results += n;
    errors += w.cells[base + 1]!;
    for (let b = 0; b < LATENCY_BINS; b++) bins[b]! += w.cells[base + 2 + b]!;
  }
  const ok = results - errors;
  let latencyMs: number | null = null;
  if (ok > 0) {
    const rank = Math.max(1, Math.ceil(percentile * ok));
    let seen = 0;
    for (let b = 0; b < LATENCY_BINS; b++) {
      seen += bins[b]!;
      if (seen >= rank) {
        latencyMs = latencyBinUpperMs(b);
        break;
      }
    }
  }
  return { results, errors, latencyMs, computeMs: null };
}

function referenceMedianWithout(sorted: readonly number[], self: number | null): number | null {
  let pos = -1;
  if (self !== null) {
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

function referenceOutliers(state: RouterState, policy: EjectionPolicy): ReadonlyMap<string, EjectionMark> {
  const none = new Map<string, EjectionMark>();
  if (!policy.enabled || state.resultsVersion === 0) return none;
  const logBucket = Math.floor(state.logTime / RESULT_BUCKET_MS);
  const spanBuckets = Math.ceil(policy.windowMs / RESULT_BUCKET_MS);
  const judged: { workerId: string; errorRate: number; latencyMs: number | null; lastResultAt: number; active: boolean }[] = [];
  let live = 0;
  for (const rec of state.workers.values()) {
    if (rec.evicted) continue;
    if (rec.claim !== null) live++;
    const w = rec.results;
    if (w === null) continue;
    const s = referenceWindowStats(w, policy.windowMs, policy.latencyPercentile);
    if (s.results < policy.minRequests) continue;
    judged.push({
      workerId: rec.workerId,
      errorRate: s.errors / s.results,
      latencyMs: s.latencyMs,
      lastResultAt: w.lastResultAt,
      active: Math.floor(w.lastResultAt / RESULT_BUCKET_MS) > logBucket - spanBuckets,
    });
  }
  if (judged.length === 0) return none;
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
    const medErr = referenceMedianWithout(peerErr, j.active ? j.errorRate : null) ?? 0;
    const errSeverity = (j.errorRate - medErr) / Math.max(policy.errorRateMargin, 1e-9);
    let latSeverity = 0;
    if (j.latencyMs !== null && j.latencyMs >= policy.minLatencyMs) {
      const medLat = referenceMedianWithout(peerLat, j.active ? j.latencyMs : null);
      if (medLat !== null) latSeverity = j.latencyMs / (policy.latencyFactor * Math.max(medLat, 1e-9));
    }
    if (errSeverity < 1 && latSeverity < 1) continue;
    found.push({ workerId: j.workerId, mark: { tripAt: j.lastResultAt, cause: errSeverity >= latSeverity ? 'ERROR_RATE' : 'LATENCY', severity: Math.max(errSeverity, latSeverity) } });
  }
  const cap = Math.floor(policy.maxEjectedFraction * live);
  if (found.length === 0 || cap === 0) return none;
  found.sort((a, b) => b.mark.severity - a.mark.severity || (a.workerId < b.workerId ? -1 : a.workerId > b.workerId ? 1 : 0));
  const marks = new Map<string, EjectionMark>();
  for (const f of found.slice(0, cap)) marks.set(f.workerId, f.mark);
  return marks;
}

describe('outlier ejection: the rewrite agrees with the reference', () => {
  const policies = [
    resolveRouterPolicy().ejection,
    resolveRouterPolicy({ ejection: { windowMs: 3_000, minRequests: 3, errorRateMargin: 0.1, latencyFactor: 1.5, minLatencyMs: 10 } }).ejection,
    resolveRouterPolicy({ ejection: { maxEjectedFraction: 1, latencyPercentile: 0.5, windowMs: 64_000 } }).ejection,
    resolveRouterPolicy({ ejection: { maxEjectedFraction: 0.1, minRequests: 1, latencyPercentile: 1 } }).ejection,
  ];

  it.each([1, 2, 3, 4])('on every state of a random walk (seed %i)', (seed) => {
    const rnd = mulberry32(seed);
    const state = initialRouterState({ lanes: 64 });
    const workers = 3 + Math.floor(rnd() * 30);
    const lanes = new Map<string, number>();
    const slow = new Set<string>();
    const flaky = new Set<string>();
    for (let i = 0; i < workers; i++) {
      const id = `w${i}`;
      lanes.set(id, i);
      if (rnd() < 0.15) slow.add(id);
      if (rnd() < 0.15) flaky.add(id);
      if (rnd() < 0.9) evolve(state, joined(id, i, { at: T0 }));
    }
    let t = T0;
    let compared = 0;
    let ejected = 0;
    const mismatches: string[] = [];
    const same = (a: ReadonlyMap<string, EjectionMark>, b: ReadonlyMap<string, EjectionMark>) =>
      a.size === b.size && [...a].every(([k, m], i) => { const [k2, m2] = [...b][i]!; return k === k2 && m.tripAt === m2.tripAt && m.cause === m2.cause && m.severity === m2.severity; });
    for (let step = 0; step < 1_500; step++) {
      t += Math.floor(rnd() * 120);
      const id = `w${Math.floor(rnd() * workers)}`;
      const lane = lanes.get(id)!;
      let e: SwitchyardEvent;
      const r = rnd();
      // Results arrive out of order now and then (several partitions, several producers).
      const at = t - (rnd() < 0.1 ? Math.floor(rnd() * 20_000) : 0);
      if (r < 0.002) e = evicted(id, lane, t);
      else if (r < 0.004) e = joined(id, lane, { at: t });
      else if (flaky.has(id) && r < 0.4) e = failed(`q${step}`, id, lane, { at, errorCode: rnd() < 0.2 ? 'DEADLINE_EXCEEDED' : 'BACKEND_ERROR' });
      else e = completed(`q${step}`, id, lane, { at, latencyMs: Math.floor((slow.has(id) ? 400 : 15) * (0.2 + rnd() * 2)) });
      evolve(state, e);
      for (const policy of policies) {
        const got = outliers(state, policy);
        if (!same(got, referenceOutliers(state, policy))) mismatches.push(`step ${step}: ${JSON.stringify([...got])} vs ${JSON.stringify([...referenceOutliers(state, policy)])}`);
        ejected += got.size;
        compared++;
      }
      const rec = state.workers.get(id)!;
      if (rec.results !== null) {
        for (const policy of policies) {
          const a = windowStats(rec.results, policy.windowMs, policy.latencyPercentile);
          const b = referenceWindowStats(rec.results, policy.windowMs, policy.latencyPercentile);
          if (a.results !== b.results || a.errors !== b.errors || a.latencyMs !== b.latencyMs) mismatches.push(`step ${step}: window of ${id} ${JSON.stringify(a)} vs ${JSON.stringify(b)}`);
        }
      }
    }
    expect(mismatches.slice(0, 5)).toEqual([]);
    expect(compared).toBe(1_500 * policies.length);
    // The walk ejects someone: the comparison covers marks, not only empty maps.
    expect(ejected).toBeGreaterThan(0);
  });
});
