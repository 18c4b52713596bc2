import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openEmbeddedLog } from '../../lib/log/embedded/index.js';
import { silentLogger } from '../../lib/logger.js';
import { mulberry32 } from '../../lib/prng.js';
import { InMemoryRegistry } from '../../lib/registry/core.js';
import { createServiceContext } from '../../lib/runtime.js';
import { EventCodec } from '../../schemas/codec.js';
import { ResultsTracker } from './results.js';
import { acceptedStatus } from './state.js';
import { completed, started, type ResultInit } from './testing.js';

/**
 * Memory probe of the results tracker, run as its own process with `--expose-gc` by
 * results-memory.unit.test.ts (not a test itself): tracks `count` requests of this gateway —
 * accepted here, then InferenceStarted and InferenceCompleted read back from the embedded log —
 * and prints, as one JSON line, the process's memory after a full GC before and after, the time
 * of a full GC before and after (what the tracker's live objects cost every mark-compact), and
 * the tracker's own accounting.
 *
 * Usage: node --expose-gc --import tsx results-memory.probe.ts <count> <realistic|large>
 * - realistic: outputs as the shipped models write them — 60% ~130 B (synthetic/noop), 30% ~80 B
 *   (sentiment labels), 10% 1–4 KB (embeddings); the tracker is bounded by `maxEntries`;
 * - large: 4–6 KB outputs, so the tracker is bounded by `maxBytes` (256 MiB) before `maxEntries`.
 *
 * The log runs without its tail cache, so what grows is the tracker (and the garbage the run
 * leaves), not the log's own bounded cache.
 */

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run with --expose-gc');

async function settledMemory(): Promise<NodeJS.MemoryUsage> {
  for (let i = 0; i < 4; i++) {
    gc!();
    await new Promise((r) => setImmediate(r));
  }
  return process.memoryUsage();
}

/** A full mark-compact's time, ms (median of five): what every old-generation GC pays to walk the live heap. */
function fullGcMs(): number {
  const times: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    gc!();
    times.push(performance.now() - t0);
  }
  return times.sort((a, b) => a - b)[2]!;
}

const count = Number(process.argv[2] ?? 100_000);
const mode = process.argv[3] ?? 'realistic';
const random = mulberry32(7);
const outputSize = (): number => {
  if (mode === 'large') return 4096 + Math.floor(random() * 2048);
  const r = random();
  return r < 0.6 ? 120 + Math.floor(random() * 20) : r < 0.9 ? 70 + Math.floor(random() * 20) : 1024 + Math.floor(random() * 3072);
};

/** Flat strings, as the gateway's ids and fingerprints are (a template literal would leave a rope of several objects per id). */
const flat = (s: string): string => Buffer.from(s, 'latin1').toString('latin1');
const requestIdOf = (i: number): string => flat(`0190a1b2-c3d4-7e5f-8a9b-${i.toString(16).padStart(12, '0')}`);

const { dir, remove } = await (async () => {
  const d = await mkdtemp(join(tmpdir(), 'sy-results-memory-'));
  return { dir: d, remove: () => rm(d, { recursive: true, force: true }) };
})();
try {
  const log = await openEmbeddedLog({ dir, fsync: 'never', tailCacheBytes: 0, maintenanceIntervalMs: 0, logger: silentLogger });
  const codec = await EventCodec.create({ registry: new InMemoryRegistry() });
  const ctx = createServiceContext({ log, codec, topicPrefix: 'mem.', lanes: 4 });
  await log.ensureTopics([ctx.topics.results, ctx.topics.deadletter]);
  const tracker = new ResultsTracker({
    log,
    codec,
    topic: ctx.topics.results.name,
    deadLetterTopic: ctx.topics.deadletter.name,
    groupId: 'memory-probe',
    producer: 'gateway-probe',
    now: Date.now,
    logger: silentLogger,
  });
  await tracker.start();
  await tracker.whenCaughtUp();
  const before = await settledMemory();
  const gcMsBefore = fullGcMs();

  // As live traffic: many requests in flight, each result appended on its own, so the tracker's
  // consumer reads a few records at a time.
  const inFlight = 64;
  let next = 0;
  const one = async (i: number): Promise<void> => {
    const requestId = requestIdOf(i);
    await tracker.accept(acceptedStatus(requestId, 'sentiment-small', Date.now(), flat(i.toString(16).padStart(64, '0'))), Promise.resolve());
    const append = (e: ResultInit) => log.append([{ topic: ctx.topics.results.name, key: requestId, value: codec.encode(e) }]);
    await append(started({ requestId, model: 'sentiment-small' }));
    await append(completed({ requestId, model: 'sentiment-small' }, Buffer.alloc(outputSize(), 0x61), { modelDigest: 'b'.repeat(64) }));
  };
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < count) await one(next++);
    }),
  );
  while (tracker.stats().folded < count * 2) await new Promise((r) => setTimeout(r, 5));

  const after = await settledMemory();
  const gcMsAfter = fullGcMs();
  const stats = tracker.stats();
  let outputBytes = 0;
  for (let i = 0; i < count; i++) outputBytes += tracker.get(requestIdOf(i))?.result?.output.byteLength ?? 0;
  process.stdout.write(
    `${JSON.stringify({
      count,
      mode,
      entries: stats.entries,
      accountedBytes: stats.bytes,
      outputBytes,
      maxBytes: tracker.options.maxBytes,
      maxEntries: tracker.options.maxEntries,
      rssGrowth: after.rss - before.rss,
      heapGrowth: after.heapUsed - before.heapUsed,
      arrayBuffersGrowth: after.arrayBuffers - before.arrayBuffers,
      gcMsBefore,
      gcMsAfter,
      before,
      after,
    })}\n`,
  );
  await tracker.close();
  await log.close();
} finally {
  await remove();
}
