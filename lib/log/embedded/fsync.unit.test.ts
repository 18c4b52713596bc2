import { stat, truncate } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../logger.js';
import { tempDir } from '../../../test/support/log-dir.js';
import { waitFor } from '../../../test/support/services.js';
import { openEmbeddedLog, type EmbeddedLog, type EmbeddedLogOptions } from './index.js';
import { RELAXED_SYNC_MS } from './partition.js';
import { instrumentDatasync } from '../../../test/support/datasync.js';

const TOPIC = 'fsync';

const turns = async (n: number) => {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
};

// Each partition's file fsynced on its own (`journal: false`); the commit journal's fsyncs: journal.unit.test.ts.
describe('embedded log fsync policies, without the journal', () => {
  let dir: string;
  let remove: () => Promise<void>;
  let log: EmbeddedLog | undefined;
  let sync: Awaited<ReturnType<typeof instrumentDatasync>>;

  beforeEach(async () => {
    ({ dir, remove } = await tempDir('sy-fsync-'));
    sync = await instrumentDatasync(dir);
  });
  afterEach(async () => {
    sync.restore();
    await log?.close();
    log = undefined;
    await remove();
  });

  const openLog = async (options: Omit<EmbeddedLogOptions, 'dir'>, partitions = 1, durability: 'sync' | 'relaxed' = 'sync') => {
    log = await openEmbeddedLog({ dir: join(dir, 'log'), logger: silentLogger, maintenanceIntervalMs: 0, journal: false, ...options });
    await log.ensureTopics([{ name: TOPIC, partitions, durability }]);
    sync.calls.length = 0;
    return log;
  };
  const one = (partition = 0, v = 'x') => ({ topic: TOPIC, partition, value: Buffer.from(v) });

  it("'never' does not fsync appends", async () => {
    const log = await openLog({ fsync: 'never' });
    for (let i = 0; i < 10; i++) await log.append([one()]);
    await Promise.all(Array.from({ length: 10 }, () => log.append([one()])));
    expect(sync.calls).toEqual([]);
    expect(await log.endOffsets(TOPIC)).toEqual([20]);
  });

  it("'always' fsyncs every append call before it resolves, sharing one fsync among concurrent calls", async () => {
    const log = await openLog({ fsync: 'always' });
    for (let i = 0; i < 5; i++) await log.append([one()]);
    expect(sync.calls.length).toBe(5);
    sync.calls.length = 0;
    await Promise.all(Array.from({ length: 50 }, (_, i) => log.append([one(0, `c${i}`)])));
    expect(sync.calls.length).toBe(1);
  });

  it('an append resolves, and consumers see it, only after the fsync that covers it', async () => {
    const log = await openLog({ fsync: 'always' });
    const release = sync.hold();
    let resolved = false;
    const appending = log.append([one(0, 'held')]).then((p) => {
      resolved = true;
      return p;
    });
    await waitFor(() => sync.calls.length === 1, { timeoutMs: 5_000, intervalMs: 1, what: 'the fsync to start' });
    await turns(10);
    expect(resolved).toBe(false);
    expect(await log.endOffsets(TOPIC)).toEqual([0]);
    expect(await log.read({ topic: TOPIC, partition: 0, from: 0 })).toEqual([]);
    release();
    expect((await appending)[0]!.offset).toBe(0);
    expect(await log.endOffsets(TOPIC)).toEqual([1]);
  });

  it('a relaxed topic: an append resolves, and consumers see it, before its fsync, which follows within RELAXED_SYNC_MS', async () => {
    const log = await openLog({ fsync: 'always' }, 1, 'relaxed');
    const release = sync.hold();
    const started = performance.now();
    const [pos] = await log.append([one(0, 'relaxed')]);
    expect(pos!.offset).toBe(0);
    expect(sync.calls.length).toBe(0);
    expect((await log.read({ topic: TOPIC, partition: 0, from: 0 })).map((r) => r.value!.toString())).toEqual(['relaxed']);
    // More appends in the window share the one fsync that follows.
    for (let i = 0; i < 5; i++) await log.append([one(0, `r${i}`)]);
    await waitFor(() => sync.calls.length === 1, { timeoutMs: 5_000, intervalMs: 1, what: 'the relaxed fsync' });
    expect(sync.calls[0]!.at - started).toBeGreaterThanOrEqual(RELAXED_SYNC_MS * 0.8);
    // Appends go on while that fsync is held.
    await log.append([one(0, 'during')]);
    release();
    await new Promise((r) => setTimeout(r, RELAXED_SYNC_MS * 3));
    expect(sync.calls.length).toBe(2);
    expect(await log.endOffsets(TOPIC)).toEqual([7]);
  });

  it('a relaxed record on a synced topic is not fsynced on its own; the next synced append covers it', async () => {
    const log = await openLog({ fsync: 'always' });
    const release = sync.hold();
    await log.append([{ ...one(0, 'started'), durability: 'relaxed' }]);
    expect(sync.calls.length).toBe(0);
    expect((await log.read({ topic: TOPIC, partition: 0, from: 0 })).map((r) => r.value!.toString())).toEqual(['started']);
    let resolved = false;
    const completed = log.append([one(0, 'completed')]).then(() => (resolved = true));
    await waitFor(() => sync.calls.length === 1, { timeoutMs: 5_000, intervalMs: 1, what: 'the synced append to fsync' });
    await turns(10);
    expect(resolved).toBe(false);
    release();
    await completed;
    // The fsync covered the relaxed write too: no relaxed fsync follows.
    await new Promise((r) => setTimeout(r, RELAXED_SYNC_MS * 3));
    expect(sync.calls.length).toBe(1);
  });

  it('closing a relaxed topic fsyncs what it wrote; reopened, every acknowledged record is there', async () => {
    const first = await openLog({ fsync: 'always' }, 1, 'relaxed');
    for (let i = 0; i < 3; i++) await first.append([one(0, `r${i}`)]);
    expect(sync.calls.length).toBe(0);
    await first.close();
    expect(sync.calls.length).toBe(1);
    log = await openEmbeddedLog({ dir: join(dir, 'log'), logger: silentLogger, journal: false });
    expect((await log.read({ topic: TOPIC, partition: 0, from: 0 })).map((r) => r.value!.toString())).toEqual(['r0', 'r1', 'r2']);
  });

  it('a consumer whose commit is past the end (a relaxed tail lost in a machine crash) resumes at the end and skips nothing new', async () => {
    const first = await openLog({ fsync: 'always' }, 1, 'relaxed');
    for (let i = 0; i < 4; i++) await first.append([one(0, `old${i}`)]);
    const seen: string[] = [];
    const sub = await first.subscribe({ groupId: 'g', topics: [TOPIC], onBatch: async (b) => void seen.push(...b.records.map((r) => r.value!.toString())) });
    await waitFor(() => seen.length === 4, { timeoutMs: 5_000, intervalMs: 5, what: 'the first records' });
    await sub.close();
    await first.close();
    // The crash: the last two records never reached the disk, the committed offset (4) did.
    const segment = join(dir, 'log', 'topics', TOPIC, '0', `${'0'.repeat(20)}.log`);
    const size = (await stat(segment)).size;
    await truncate(segment, size / 2);
    log = await openEmbeddedLog({ dir: join(dir, 'log'), logger: silentLogger, maintenanceIntervalMs: 0, journal: false });
    expect(await log.endOffsets(TOPIC)).toEqual([2]);
    await log.append([one(0, 'new0')]);
    await log.append([one(0, 'new1')]);
    await log.append([one(0, 'new2')]);
    seen.length = 0;
    const again = await log.subscribe({ groupId: 'g', topics: [TOPIC], onBatch: async (b) => void seen.push(...b.records.map((r) => r.value!.toString())) });
    await waitFor(() => seen.length >= 3, { timeoutMs: 5_000, intervalMs: 5, what: 'the records appended after the crash' });
    await again.close();
    expect(seen).toEqual(['new0', 'new1', 'new2']);
  }, 20_000);

  it('a topic made sync becomes relaxed when ensureTopics asks for it, and the setting is kept', async () => {
    const first = await openLog({ fsync: 'always' });
    await first.append([one()]);
    expect(sync.calls.length).toBe(1);
    await first.ensureTopics([{ name: TOPIC, partitions: 1, durability: 'relaxed' }]);
    sync.calls.length = 0;
    await first.append([one()]);
    expect(sync.calls.length).toBe(0);
    await first.close();
    log = await openEmbeddedLog({ dir: join(dir, 'log'), logger: silentLogger, maintenanceIntervalMs: 0, journal: false });
    sync.calls.length = 0;
    await log.append([one()]);
    expect(sync.calls.length).toBe(0);
    expect(await log.endOffsets(TOPIC)).toEqual([3]);
  });

  it("'interval' batches appends into at most one fsync per partition per interval", async () => {
    const intervalMs = 40;
    const log = await openLog({ fsync: 'interval', fsyncIntervalMs: intervalMs }, 2);
    const until = performance.now() + 400;
    let appends = 0;
    await Promise.all(
      Array.from({ length: 16 }, async (_, producer) => {
        while (performance.now() < until) {
          await log.append([one(producer % 2)]);
          appends++;
        }
      }),
    );
    const byFile = new Map<number, number[]>();
    for (const c of sync.calls) byFile.set(c.fd, [...(byFile.get(c.fd) ?? []), c.at]);
    expect(byFile.size).toBe(2);
    for (const times of byFile.values()) {
      expect(times.length).toBeLessThanOrEqual(Math.ceil(400 / intervalMs) + 3);
      // The interval is between flush starts; an fsync follows its write, whose time varies.
      for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!).toBeGreaterThanOrEqual(intervalMs / 2);
      expect((times.at(-1)! - times[0]!) / (times.length - 1)).toBeGreaterThanOrEqual(intervalMs * 0.9);
    }
    expect(appends).toBeGreaterThan(sync.calls.length * 4);
    expect(sum(await log.endOffsets(TOPIC))).toBe(appends);
  });

  it("'interval' flushes at once after a quiet spell, and waits out the interval under load", async () => {
    const log = await openLog({ fsync: 'interval', fsyncIntervalMs: 300 });
    let started = performance.now();
    await log.append([one()]);
    const first = performance.now() - started;
    started = performance.now();
    await log.append([one()]);
    const second = performance.now() - started;
    expect(first).toBeLessThan(250);
    expect(second).toBeGreaterThanOrEqual(200);
    expect(sync.calls.length).toBe(2);
  });

  it('close flushes (and fsyncs) appends still waiting for their interval', async () => {
    const first = await openLog({ fsync: 'interval', fsyncIntervalMs: 10_000 });
    await first.append([one()]);
    const pending = first.append([one(0, 'late')]);
    await turns(3);
    await first.close();
    expect((await pending)[0]!.offset).toBe(1);
    expect(sync.calls.length).toBe(2);
    log = await openEmbeddedLog({ dir: join(dir, 'log'), logger: silentLogger, journal: false });
    expect((await log.read({ topic: TOPIC, partition: 0, from: 0 })).map((r) => r.value!.toString())).toEqual(['x', 'late']);
  });
});

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
