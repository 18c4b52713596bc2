import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { SwitchyardError } from '../../errors.js';
import { silentLogger } from '../../logger.js';
import { tempDir } from '../../../test/support/log-dir.js';
import { waitFor } from '../../../test/support/services.js';
import { openEmbeddedLog, type EmbeddedLog, type EmbeddedLogOptions } from './index.js';

const TOPIC = 'heartbeats';
const HOUR = 3_600_000;

describe('embedded log retention', () => {
  let dir: string;
  let remove: () => Promise<void>;
  let log: EmbeddedLog | undefined;
  let now: number;

  beforeEach(async () => {
    ({ dir, remove } = await tempDir('sy-retention-'));
    now = 1_700_000_000_000;
  });
  afterEach(async () => {
    await log?.close();
    log = undefined;
    await remove();
  });

  const openLog = async (options: Omit<EmbeddedLogOptions, 'dir'> = {}, retentionMs = 6 * HOUR) => {
    log = await openEmbeddedLog({
      dir,
      fsync: 'never',
      segmentBytes: 1024,
      maintenanceIntervalMs: 0,
      logger: silentLogger,
      clock: { now: () => now },
      ...options,
    });
    await log.ensureTopics([{ name: TOPIC, partitions: 1, retentionMs }]);
    return log;
  };
  const appendN = async (l: EmbeddedLog, n: number, tag: string) => {
    for (let i = 0; i < n; i++) await l.append([{ topic: TOPIC, partition: 0, value: Buffer.alloc(90, i), headers: { tag } }]);
  };

  it('deletes closed segments older than retentionMs; the start offset moves to the first one kept', async () => {
    const l = await openLog();
    await appendN(l, 40, 'old');
    now += 7 * HOUR;
    await appendN(l, 40, 'new');
    const segments = l.describePartition(TOPIC, 0);
    const firstNew = segments.find((s) => s.baseOffset >= 40) ?? segments.at(-1)!;
    const deleted = await l.applyRetention(TOPIC);
    expect(deleted).toBeGreaterThan(0);
    const [start] = await l.startOffsets(TOPIC);
    expect(start).toBe(l.describePartition(TOPIC, 0)[0]!.baseOffset);
    expect(start).toBeGreaterThan(0);
    expect(start).toBeLessThanOrEqual(firstNew.baseOffset);
    expect(await l.endOffsets(TOPIC)).toEqual([80]);
    // Every "new" record is still there.
    const kept = await l.read({ topic: TOPIC, partition: 0, from: start! });
    expect(kept.filter((r) => r.headers.tag!.toString() === 'new').length).toBe(40);
    const files = await readdir(join(dir, 'topics', TOPIC, '0'));
    expect(files.filter((f) => f.endsWith('.log')).length).toBe(l.describePartition(TOPIC, 0).length);
  });

  it('a read below the start offset fails with SY_ERR_LOG_OFFSET_OUT_OF_RANGE; consumers start at the start offset', async () => {
    const l = await openLog();
    await appendN(l, 40, 'old');
    now += 7 * HOUR;
    await appendN(l, 20, 'new');
    await l.applyRetention();
    const [start] = await l.startOffsets(TOPIC);
    const err = await l.read({ topic: TOPIC, partition: 0, from: 0 }).catch((e: unknown) => e);
    expect((err as SwitchyardError).code).toBe('SY_ERR_LOG_OFFSET_OUT_OF_RANGE');
    const seen: number[] = [];
    const sub = await l.subscribe({ groupId: 'late', topics: [TOPIC], onBatch: async (b) => void seen.push(...b.records.map((r) => r.offset)) });
    await waitFor(() => seen.length >= 60 - start!, { timeoutMs: 5_000, what: 'the retained records' });
    await sub.close();
    expect(seen[0]).toBe(start);
    expect(seen.at(-1)).toBe(59);
  });

  it('a group whose committed offset fell below the start offset resumes at the start offset', async () => {
    const l = await openLog();
    await appendN(l, 10, 'old');
    const seen: number[] = [];
    let sub = await l.subscribe({ groupId: 'slow', topics: [TOPIC], onBatch: async (b) => void seen.push(...b.records.map((r) => r.offset)) });
    await waitFor(() => seen.length === 10, { timeoutMs: 5_000, what: 'first 10' });
    await sub.close();
    await appendN(l, 40, 'old');
    now += 7 * HOUR;
    await appendN(l, 20, 'new');
    await l.applyRetention();
    const [start] = await l.startOffsets(TOPIC);
    expect(start).toBeGreaterThan(10);
    seen.length = 0;
    sub = await l.subscribe({ groupId: 'slow', topics: [TOPIC], onBatch: async (b) => void seen.push(...b.records.map((r) => r.offset)) });
    await waitFor(() => seen.at(-1) === 69, { timeoutMs: 5_000, what: 'the end' });
    await sub.close();
    expect(seen[0]).toBe(start);
  });

  it('the start offset survives a reopen', async () => {
    let l = await openLog();
    await appendN(l, 40, 'old');
    now += 7 * HOUR;
    await appendN(l, 20, 'new');
    await l.applyRetention();
    const starts = await l.startOffsets(TOPIC);
    await l.close();
    l = await openLog();
    expect(await l.startOffsets(TOPIC)).toEqual(starts);
    expect(await l.endOffsets(TOPIC)).toEqual([60]);
  });

  it('keeps everything without retentionMs, and never deletes the active segment', async () => {
    let l = await openLog({}, -1);
    await appendN(l, 40, 'old');
    now += 1_000 * HOUR;
    expect(await l.applyRetention()).toBe(0);
    expect(await l.startOffsets(TOPIC)).toEqual([0]);
    await l.close();
    l = await openLog({ segmentBytes: 64 * 1024 }, 1);
    await l.ensureTopics([{ name: 'one-segment', partitions: 1, retentionMs: 1 }]);
    await l.append([{ topic: 'one-segment', partition: 0, value: Buffer.from('x') }]);
    now += HOUR;
    expect(await l.applyRetention('one-segment')).toBe(0);
    expect(await l.startOffsets('one-segment')).toEqual([0]);
  });

  it('retentionBytes caps a partition, oldest segments first', async () => {
    const l = await openLog({ retentionBytes: 3000 }, 1_000 * HOUR);
    await appendN(l, 100, 'x');
    await l.applyRetention();
    const segments = l.describePartition(TOPIC, 0);
    const total = segments.reduce((n, s) => n + s.size, 0);
    expect(total).toBeLessThanOrEqual(3000);
    expect(total).toBeGreaterThan(3000 - 1024);
    expect((await l.startOffsets(TOPIC))[0]).toBe(segments[0]!.baseOffset);
  });

  it('retentionBytes never trims a topic kept forever or a compacted one', async () => {
    const l = await openLog({ retentionBytes: 3000 }, -1);
    await l.ensureTopics([{ name: 'kv', partitions: 1, compacted: true }]);
    await appendN(l, 100, 'x');
    for (let i = 0; i < 100; i++) await l.append([{ topic: 'kv', partition: 0, key: `k${i}`, value: Buffer.alloc(90, i) }]);
    expect(await l.applyRetention()).toBe(0);
    expect(await l.startOffsets(TOPIC)).toEqual([0]);
    expect(await l.startOffsets('kv')).toEqual([0]);
    expect(l.describePartition(TOPIC, 0).reduce((n, s) => n + s.size, 0)).toBeGreaterThan(3000);
  });

  it('maxRetentionMs lowers a longer topic retention, and leaves a shorter one and a forever topic alone', async () => {
    const l = await openLog({ maxRetentionMs: 2 * HOUR }, 7 * 24 * HOUR);
    await l.ensureTopics([
      { name: 'short', partitions: 1, retentionMs: HOUR },
      { name: 'forever', partitions: 1, retentionMs: -1 },
    ]);
    for (const topic of [TOPIC, 'short', 'forever']) for (let i = 0; i < 40; i++) await l.append([{ topic, partition: 0, value: Buffer.alloc(90, i) }]);
    now += 90 * 60_000;
    for (const topic of [TOPIC, 'short', 'forever']) for (let i = 0; i < 20; i++) await l.append([{ topic, partition: 0, value: Buffer.alloc(90, i) }]);
    // 1.5 h later: within the 2 h budget (TOPIC's own 7 days is lowered to it), past 'short''s 1 h.
    await l.applyRetention();
    expect(await l.startOffsets(TOPIC)).toEqual([0]);
    expect((await l.startOffsets('short'))[0]).toBeGreaterThan(0);
    now += HOUR;
    // 2.5 h after the first records: past the budget.
    await l.applyRetention();
    expect((await l.startOffsets(TOPIC))[0]).toBeGreaterThan(0);
    expect(await l.startOffsets('forever')).toEqual([0]);
  });

  it('runs on its own after a segment rolls', async () => {
    const l = await openLog({ maintenanceIntervalMs: HOUR });
    await appendN(l, 40, 'old');
    now += 7 * HOUR;
    await appendN(l, 40, 'new');
    await waitFor(async () => (await l.startOffsets(TOPIC))[0]! > 0, { timeoutMs: 5_000, what: 'background retention' });
  });
});
