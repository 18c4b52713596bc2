/** Summary statistics for benchmarks. Percentiles by nearest rank on sorted samples. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

export const median = (xs: readonly number[]): number => percentile([...xs].sort((a, b) => a - b), 50);

export function summarize(samples: readonly number[]): { p50: number; p99: number; n: number } {
  const sorted = [...samples].sort((a, b) => a - b);
  return { p50: percentile(sorted, 50), p99: percentile(sorted, 99), n: sorted.length };
}

export const round = (x: number, digits = 2): number => Number(x.toFixed(digits));

/** Milliseconds since an hrtime origin, as a float. */
export const msSince = (start: bigint): number => Number(process.hrtime.bigint() - start) / 1e6;
