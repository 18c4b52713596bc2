import { readdir, stat, truncate } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../logger.js';
import { tempDir } from '../../../test/support/log-dir.js';
import { waitFor } from '../../../test/support/services.js';
import { openEmbeddedLog, type EmbeddedLog, type EmbeddedLogOptions } from './index.js';

const TOPIC = 'results';

describe('embedded log committed offsets', () => {
  let dir: string;
  let remove: () => Promise<void>;
  let log: EmbeddedLog | undefined;

  beforeEach(async () => {
    ({ dir, remove } = await tempDir('sy-offsets-'));
  });
  afterEach(async () => {
    await log?.close();
    log = undefined;
    await remove();
  });

  const openLog = async (options: Omit<EmbeddedLogOptions, 'dir'> = {}) => {
    log = await openEmbeddedLog({ dir, fsync: 'always', logger: silentLogger, ...options });
    await log.ensureTopics([{ name: TOPIC, partitions: 3 }]);
    return log;
  };
  const consume = async (l: EmbeddedLog, groupId: string, until: (n: number) => boolean, maxBatchRecords = 500) => {
    let n = 0;
    const sub = await l.subscribe({ groupId, topics: [TOPIC], maxBatchRecords, onBatch: async (b) => void (n += b.records.length) });
    await waitFor(() => until(n), { timeoutMs: 10_000, what: `${groupId} to consume` });
    await sub.close();
    return n;
  };

  it('survive close and reopen, per group, topic and partition', async () => {
    let l = await openLog();
    await l.append(Array.from({ length: 30 }, (_, i) => ({ topic: TOPIC, partition: i % 3, value: Buffer.from(`v${i}`) })));
    await consume(l, 'router', (n) => n === 30, 4);
    const lane = await l.subscribe({ groupId: 'lane-7', topics: [TOPIC], assignment: { kind: 'static', partitions: [{ topic: TOPIC, partitions: [2] }] }, onBatch: async () => {} });
    await waitFor(async () => (await l.committedOffsets('lane-7', TOPIC))[2] === 10, { timeoutMs: 5_000, what: 'lane commit' });
    await lane.close();
    await l.close();
    l = await openLog();
    expect(await l.committedOffsets('router', TOPIC)).toEqual([10, 10, 10]);
    expect(await l.committedOffsets('lane-7', TOPIC)).toEqual([-1, -1, 10]);
    expect(await l.committedOffsets('nobody', TOPIC)).toEqual([-1, -1, -1]);
  });

  it('many commits roll and compact the internal offsets log; the latest commit wins after reopen', async () => {
    let l = await openLog({ fsync: 'never', segmentBytes: 4096, maintenanceIntervalMs: 3_600_000 });
    await l.append(Array.from({ length: 3_000 }, (_, i) => ({ topic: TOPIC, partition: i % 3, value: Buffer.from(`v${i}`) })));
    // One record per batch: 3000 commits.
    await consume(l, 'g', (n) => n === 3_000, 1);
    expect(await l.committedOffsets('g', TOPIC)).toEqual([1_000, 1_000, 1_000]);
    const offsetsDir = join(dir, 'offsets');
    // A file listed may be gone by the time it is stat'ed: compaction runs in the background.
    const sizeOf = async () =>
      (await Promise.all((await readdir(offsetsDir)).filter((f) => f.endsWith('.log')).map(async (f) => (await stat(join(offsetsDir, f)).catch(() => ({ size: 0 }))).size))).reduce(
        (a, b) => a + b,
        0,
      );
    // 3000 commit records of ~60 bytes would be ~180 KB; compaction keeps about one per key.
    await waitFor(async () => (await sizeOf()) < 20_000, { timeoutMs: 10_000, what: 'offsets compaction' });
    await l.close();
    l = await openLog({ fsync: 'never', segmentBytes: 4096 });
    expect(await l.committedOffsets('g', TOPIC)).toEqual([1_000, 1_000, 1_000]);
  });

  it('a torn tail of the offsets log loses at most the last commits (they are redelivered, at-least-once)', async () => {
    let l = await openLog();
    await l.append(Array.from({ length: 9 }, (_, i) => ({ topic: TOPIC, partition: 0, value: Buffer.from(`v${i}`) })));
    await consume(l, 'g', (n) => n === 9, 3);
    expect((await l.committedOffsets('g', TOPIC))[0]).toBe(9);
    await l.close();
    const offsetsDir = join(dir, 'offsets');
    const [segment] = (await readdir(offsetsDir)).filter((f) => f.endsWith('.log'));
    const file = join(offsetsDir, segment!);
    await truncate(file, (await stat(file)).size - 3);
    l = await openLog();
    // Commits are written in windows of a few ms, so the torn record held the latest window:
    // what survives is an earlier commit (3 or 6), or none when all three shared one window.
    const survived = (await l.committedOffsets('g', TOPIC))[0]!;
    expect([-1, 3, 6]).toContain(survived);
    const from = Math.max(survived, 0);
    const seen: number[] = [];
    const sub = await l.subscribe({ groupId: 'g', topics: [TOPIC], onBatch: async (b) => void seen.push(...b.records.map((r) => r.offset)) });
    await waitFor(() => seen.length === 9 - from, { timeoutMs: 5_000, what: 'redelivery' });
    await sub.close();
    // Redelivered from the surviving commit to the end: nothing skipped.
    expect(seen).toEqual(Array.from({ length: 9 - from }, (_, i) => from + i));
  });
});
