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

/** CPU time (user + system) of this process since `since`, ms. */
export const cpuMsSince = (since: NodeJS.CpuUsage): number => {
  const u = process.cpuUsage(since);
  return (u.user + u.system) / 1000;
};

/** Run `fn`, with its wall time and this process's CPU time, ms. */
export async function timed<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number; cpu: number }> {
  const c = process.cpuUsage();
  const t = performance.now();
  const value = await fn();
  return { value, ms: performance.now() - t, cpu: cpuMsSince(c) };
}
