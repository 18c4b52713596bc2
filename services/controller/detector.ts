import type { DetectorPolicy } from './options.js';

/**
 * Phi-accrual failure detection (Hayashibara et al.), pure.
 *
 * Per worker incarnation the fold keeps the last `window` intervals between consecutive
 * heartbeats (by their occurredAt, the worker's own clock). At a tick, the silence since the last
 * heartbeat is judged against a normal distribution of intervals with mean μ + acceptable pause
 * and deviation max(σ, minStd):
 *
 *   phi(silence) = −log10(1 − Φ((silence − μ − pause) / σ'))
 *
 * phi 8 means: if the worker were alive, a silence this long would happen once in 10^8
 * heartbeats. A worker is suspected when phi ≥ threshold and the silence ≥ minSilenceMs; the
 * floor keeps a very regular worker from being evicted after one late beat.
 */
export interface IntervalWindow {
  /** Ring of intervals, ms. */
  readonly ring: Float64Array;
  /** Intervals held (≤ ring length). */
  count: number;
  /** Next slot to write. */
  next: number;
  sum: number;
  sumSquares: number;
}

export function intervalWindow(size: number): IntervalWindow {
  return { ring: new Float64Array(size), count: 0, next: 0, sum: 0, sumSquares: 0 };
}

export function addInterval(w: IntervalWindow, ms: number): void {
  const v = ms < 0 ? 0 : ms;
  if (w.count === w.ring.length) {
    const old = w.ring[w.next]!;
    w.sum -= old;
    w.sumSquares -= old * old;
  } else {
    w.count++;
  }
  w.ring[w.next] = v;
  w.sum += v;
  w.sumSquares += v * v;
  w.next = (w.next + 1) % w.ring.length;
}

export interface IntervalStats {
  readonly meanMs: number;
  /** After the floor. */
  readonly stdMs: number;
}

export function intervalStats(w: IntervalWindow, p: DetectorPolicy): IntervalStats {
  if (w.count === 0) return { meanMs: p.firstIntervalMs, stdMs: p.minStdMs };
  const mean = w.sum / w.count;
  const variance = Math.max(0, w.sumSquares / w.count - mean * mean);
  return { meanMs: mean, stdMs: Math.max(Math.sqrt(variance), p.minStdMs) };
}

/** Complementary normal CDF, 1 − Φ(z), accurate in the far tail (Abramowitz–Stegun 7.1.26 on erfc). */
function normalTail(z: number): number {
  if (z < 0) return 1 - normalTail(-z);
  const x = z / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * x);
  const poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
  return 0.5 * poly * Math.exp(-x * x);
}

/** Phi of a silence given the learnt intervals; rounded to 3 decimals so it is stable on the wire. */
export function phiOf(silenceMs: number, stats: IntervalStats, p: DetectorPolicy): number {
  const z = (silenceMs - stats.meanMs - p.acceptablePauseMs) / stats.stdMs;
  const tail = normalTail(z);
  const phi = tail <= 0 ? 300 : Math.min(300, -Math.log10(tail));
  return Math.round(Math.max(0, phi) * 1000) / 1000;
}

export interface Suspicion {
  readonly suspected: boolean;
  readonly phi: number;
  readonly stats: IntervalStats;
}

export function judge(silenceMs: number, w: IntervalWindow, p: DetectorPolicy): Suspicion {
  const stats = intervalStats(w, p);
  const phi = phiOf(silenceMs, stats, p);
  return { suspected: silenceMs >= p.minSilenceMs && phi >= p.phiThreshold, phi, stats };
}
