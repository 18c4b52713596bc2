import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

/**
 * The results tracker's memory bound (`maxBytes`, 256 MiB by default) checked against the
 * process's memory, not only the tracker's own counter. Each case runs
 * results-memory.probe.ts in a process of its own with `--expose-gc` and reads its figures: the
 * growth of RSS, V8 heap and ArrayBuffer memory after a full GC, from the tracker started to
 * `count` requests tracked.
 */

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const PROBE = fileURLToPath(new URL('./results-memory.probe.ts', import.meta.url));
const MiB = 1024 * 1024;
/** The embedded log's shared encode buffers (32 × 256 KiB), which the run fills, and GC noise. */
const LOG_AND_NOISE = 24 * MiB;

interface Probe {
  entries: number;
  accountedBytes: number;
  outputBytes: number;
  maxBytes: number;
  maxEntries: number;
  rssGrowth: number;
  heapGrowth: number;
  arrayBuffersGrowth: number;
  gcMsBefore: number;
  gcMsAfter: number;
}

async function probe(count: number, mode: 'realistic' | 'large'): Promise<Probe> {
  const { stdout } = await promisify(execFile)(process.execPath, ['--expose-gc', '--import', 'tsx', PROBE, String(count), mode], { cwd: ROOT, maxBuffer: 1024 * 1024 });
  const figures = JSON.parse(stdout.trim().split('\n').at(-1)!) as Probe;
  const mib = (n: number) => `${(n / MiB).toFixed(1)} MiB`;
  console.log(
    `results tracker, ${mode}: ${figures.entries} entries, counter ${mib(figures.accountedBytes)}, outputs ${mib(figures.outputBytes)}; growth: RSS ${mib(figures.rssGrowth)}, heap ${mib(figures.heapGrowth)}, ArrayBuffers ${mib(figures.arrayBuffersGrowth)}; a full GC ${figures.gcMsBefore.toFixed(1)} → ${figures.gcMsAfter.toFixed(1)} ms`,
  );
  return figures;
}

describe('results tracker memory, measured on the process', () => {
  it('100k tracked requests with the shipped models\' output sizes stay within the 256 MiB bound in RSS; outputs cost their own bytes', { timeout: 180_000 }, async () => {
    const r = await probe(100_000, 'realistic');
    // Bounded by maxEntries here: every request is remembered.
    expect(r.entries).toBe(100_000);
    expect(r.entries).toBe(r.maxEntries);
    expect(r.rssGrowth).toBeLessThanOrEqual(r.maxBytes);
    // No output pins a shared slab (a pooled copy of ~100 bytes pinned an 8 KiB one: ~4× the bytes).
    expect(r.arrayBuffersGrowth).toBeLessThanOrEqual(1.25 * r.outputBytes + LOG_AND_NOISE);
    // The counter the LRU evicts by is honest: live memory does not exceed it.
    expect(r.heapGrowth + r.arrayBuffersGrowth).toBeLessThanOrEqual(r.accountedBytes + LOG_AND_NOISE);
    // A status is a row of columns, not objects: on the V8 heap an entry is its id, its
    // fingerprint and the LRU's slot (~300 bytes measured); as objects it was ~490 bytes and six
    // objects, each walked by every mark-compact (see the probe's gcMsAfter).
    expect(r.heapGrowth).toBeLessThanOrEqual(r.entries * 400);
  });

  it('with 4–6 KB outputs the byte bound holds of live memory, and RSS stays near it', { timeout: 180_000 }, async () => {
    const r = await probe(60_000, 'large');
    // Bounded by maxBytes here: the counter is full and older requests were evicted.
    expect(r.entries).toBeLessThan(60_000);
    expect(r.accountedBytes).toBeGreaterThan(0.99 * r.maxBytes);
    expect(r.heapGrowth + r.arrayBuffersGrowth).toBeLessThanOrEqual(r.maxBytes + LOG_AND_NOISE);
    // RSS also holds what the allocators keep after the churn of ~5 KB buffers (V8 heap pages,
    // freed malloc memory not returned to the system): measured ~1.3× the bound.
    expect(r.rssGrowth).toBeLessThanOrEqual(1.5 * r.maxBytes);
  });
});
