import { copyFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { SwitchyardError } from '../../errors.js';
import { silentLogger } from '../../logger.js';
import { readCompacted } from '../compacted.js';
import type { LogRecord } from '../port.js';
import { captureLogger, tempDir } from '../../../test/support/log-dir.js';
import { waitFor } from '../../../test/support/services.js';
import { openEmbeddedLog, type EmbeddedLog, type EmbeddedLogOptions } from './index.js';

const TOPIC = 'sessions';
const small: Omit<EmbeddedLogOptions, 'dir'> = { fsync: 'never', segmentBytes: 1024, indexIntervalBytes: 100, maintenanceIntervalMs: 0, logger: silentLogger };

describe('embedded log compaction', () => {
  let dir: string;
  let remove: () => Promise<void>;
  let log: EmbeddedLog | undefined;

  beforeEach(async () => {
    ({ dir, remove } = await tempDir('sy-compaction-'));
  });
  afterEach(async () => {
    await log?.close();
    log = undefined;
    await remove();
  });

  const openLog = async (options: Omit<EmbeddedLogOptions, 'dir'> = {}) => {
    log = await openEmbeddedLog({ dir, ...small, ...options });
    await log.ensureTopics([{ name: TOPIC, partitions: 1, compacted: true }]);
    return log;
  };
  const readAll = (l: EmbeddedLog): Promise<LogRecord[]> => l.read({ topic: TOPIC, partition: 0, from: 0 });
  const view = (m: Map<string, LogRecord>) => new Map([...m].map(([k, r]) => [k, `${r.offset}:${r.value?.toString()}`]));

  /**
   * `n` updates, value "u<i>": the first half cycles through 10 keys, the second half through
   * keys 0–4 only, so keys 5–9 end with their latest value in a closed segment.
   */
  const writeUpdates = async (l: EmbeddedLog, n = 200) => {
    for (let i = 0; i < n; i += 20) {
      const keys = i < n / 2 ? 10 : 5;
      await l.append(Array.from({ length: 20 }, (_, k) => ({ topic: TOPIC, key: `key-${(i + k) % keys}`, value: Buffer.from(`u${i + k}`) })));
    }
  };

  it('keeps the latest record per key in closed segments, with its original offset; start and end offsets stay', async () => {
    const l = await openLog();
    await writeUpdates(l);
    const before = await readAll(l);
    const latestBefore = view(await readCompacted(l, TOPIC));
    const segmentsBefore = l.describePartition(TOPIC, 0);
    expect(segmentsBefore.length).toBeGreaterThan(4);

    const { result } = (await l.compact(TOPIC))[0]!;
    const after = await readAll(l);
    expect(await l.startOffsets(TOPIC)).toEqual([0]);
    expect(await l.endOffsets(TOPIC)).toEqual([200]);
    expect(view(await readCompacted(l, TOPIC))).toEqual(latestBefore);
    expect(after.length).toBeLessThan(before.length);
    // Offsets are the originals: strictly increasing, with gaps, each record unchanged.
    const byOffset = new Map(before.map((r) => [r.offset, r]));
    for (let i = 1; i < after.length; i++) expect(after[i]!.offset).toBeGreaterThan(after[i - 1]!.offset);
    for (const r of after) expect(r).toEqual(byOffset.get(r.offset));
    // In the closed segments, only the latest record of each key is left.
    const segmentsAfter = l.describePartition(TOPIC, 0);
    const activeBase = segmentsAfter.at(-1)!.baseOffset;
    const closed = after.filter((r) => r.offset < activeBase);
    const latestOffset = new Map([...(await readCompacted(l, TOPIC))].map(([k, r]) => [k, r.offset]));
    for (const r of closed) expect(latestOffset.get(r.key!.toString())).toBe(r.offset);
    expect(result.recordsAfter).toBeLessThan(result.recordsBefore);
    // Small cleaned segments are merged.
    expect(segmentsAfter.length).toBeLessThan(segmentsBefore.length);
    expect(segmentsAfter[0]!.baseOffset).toBe(0);
  });

  it('reads and consumers step over the gaps', async () => {
    const l = await openLog();
    await writeUpdates(l);
    await l.compact(TOPIC);
    const survivors = (await readAll(l)).map((r) => r.offset);
    const gap = survivors.findIndex((o, i) => i > 0 && o > survivors[i - 1]! + 1);
    expect(gap).toBeGreaterThan(0);
    const missing = survivors[gap - 1]! + 1;
    const fromGap = await l.read({ topic: TOPIC, partition: 0, from: missing, maxRecords: 2 });
    expect(fromGap.map((r) => r.offset)).toEqual(survivors.slice(gap, gap + 2));
    expect(await l.read({ topic: TOPIC, partition: 0, from: missing, to: survivors[gap]! })).toEqual([]);

    const seen: number[] = [];
    const sub = await l.subscribe({ groupId: 'bootstrap', topics: [TOPIC], maxBatchRecords: 3, onBatch: async (b) => void seen.push(...b.records.map((r) => r.offset)) });
    await waitFor(() => seen.length >= survivors.length, { timeoutMs: 5_000, what: 'all survivors' });
    await sub.close();
    expect(seen).toEqual(survivors);
    expect(await l.committedOffsets('bootstrap', TOPIC)).toEqual([200]);
  });

  it('a compacted partition survives a reopen, and appends continue after the end offset', async () => {
    let l = await openLog();
    await writeUpdates(l);
    await l.compact(TOPIC);
    const after = await readAll(l);
    await l.close();
    l = await openLog();
    expect(await readAll(l)).toEqual(after);
    expect(await l.startOffsets(TOPIC)).toEqual([0]);
    const [p] = await l.append([{ topic: TOPIC, key: 'key-0', value: Buffer.from('fresh') }]);
    expect(p!.offset).toBe(200);
  });

  it('drops a tombstone once it is older than deleteRetentionMs, and the key stays deleted', async () => {
    let now = 1_000_000;
    const l = await openLog({ clock: { now: () => now }, deleteRetentionMs: 60_000 });
    await l.append([
      { topic: TOPIC, key: 'gone', value: Buffer.from('v1') },
      { topic: TOPIC, key: 'kept', value: Buffer.from('v1') },
    ]);
    await l.append([{ topic: TOPIC, key: 'gone', value: null }]);
    // Push those records into closed segments.
    for (let i = 0; i < 30; i++) await l.append([{ topic: TOPIC, key: `pad-${i}`, value: Buffer.alloc(100) }]);
    await l.compact(TOPIC);
    const tombstoneKept = (await readAll(l)).filter((r) => r.key?.toString() === 'gone');
    expect(tombstoneKept.map((r) => r.value)).toEqual([null]);
    now += 60_001;
    await l.compact(TOPIC);
    expect((await readAll(l)).filter((r) => r.key?.toString() === 'gone')).toEqual([]);
    const latest = await readCompacted(l, TOPIC);
    expect(latest.has('gone')).toBe(false);
    expect(latest.get('kept')!.value!.toString()).toBe('v1');
  });

  it('runs on its own after a compacted partition rolls a segment', async () => {
    const capture = captureLogger();
    const l = await openLog({ logger: capture.logger, maintenanceIntervalMs: 3_600_000 });
    await writeUpdates(l, 400);
    await waitFor(() => capture.messages().includes('embedded log: compacted closed segments'), { timeoutMs: 5_000, what: 'background compaction' });
    expect(view(await readCompacted(l, TOPIC)).size).toBe(10);
  });

  it('compaction under load: appends, a consumer and range reads run throughout, and agree at the end', async () => {
    const l = await openLog({ maintenanceIntervalMs: 3_600_000 });
    const seen: LogRecord[] = [];
    const sub = await l.subscribe({ groupId: 'tail', topics: [TOPIC], maxBatchRecords: 7, onBatch: async (b) => void seen.push(...b.records) });
    let writing = true;
    const writer = (async () => {
      for (let i = 0; i < 600; i++) {
        await l.append(Array.from({ length: 5 }, (_, k) => ({ topic: TOPIC, key: `key-${(i * 5 + k) % 13}`, value: Buffer.from(`w${i}-${k}`) })));
      }
      writing = false;
    })();
    const readerErrors: unknown[] = [];
    const reader = (async () => {
      while (writing) {
        const records = await l.read({ topic: TOPIC, partition: 0, from: 0 }).catch((e: unknown) => void readerErrors.push(e));
        if (records) for (let i = 1; i < records.length; i++) expect(records[i]!.offset).toBeGreaterThan(records[i - 1]!.offset);
        await new Promise((r) => setImmediate(r));
      }
    })();
    let rounds = 0;
    for (; writing; rounds++) {
      await l.compact(TOPIC);
      // compact() and read() of nothing resolve in microtasks: let I/O run between rounds.
      await new Promise((r) => setImmediate(r));
    }
    await Promise.all([writer, reader]);
    expect(rounds).toBeGreaterThan(5);
    const [end] = await l.endOffsets(TOPIC);
    await waitFor(() => seen.at(-1)?.offset === end! - 1, { timeoutMs: 10_000, what: 'the consumer to catch up' });
    await sub.close();
    expect(readerErrors).toEqual([]);
    for (let i = 1; i < seen.length; i++) expect(seen[i]!.offset).toBeGreaterThan(seen[i - 1]!.offset);
    // The consumer's last value per key is the compacted view.
    const lastSeen = new Map(seen.map((r) => [r.key!.toString(), r.value!.toString()]));
    const compacted = new Map([...(await readCompacted(l, TOPIC))].map(([k, r]) => [k, r.value!.toString()]));
    expect(lastSeen).toEqual(compacted);
  });

  it('compact() refuses a topic that is not compacted', async () => {
    const l = await openLog();
    await l.ensureTopics([{ name: 'plain', partitions: 1 }]);
    const err = await l.compact('plain').catch((e: unknown) => e);
    expect((err as SwitchyardError).code).toBe('SY_ERR_LOG_BAD_TOPIC');
  });

  describe('crash safety', () => {
    const pdir = () => join(dir, 'topics', TOPIC, '0');

    it('remains of an unfinished compaction (no manifest) are deleted on open; the data is intact', async () => {
      let l = await openLog();
      await writeUpdates(l);
      const before = await readAll(l);
      await l.close();
      await writeFile(join(pdir(), '00000000000000000000.cleaned'), Buffer.alloc(100, 7));
      await writeFile(join(pdir(), '00000000000000000000.cleaned-index'), Buffer.alloc(10));
      l = await openLog();
      expect(await readAll(l)).toEqual(before);
      expect((await readdir(pdir())).filter((f) => f.includes('cleaned'))).toEqual([]);
    });

    it('a committed compaction (manifest written) is finished on open', async () => {
      let l = await openLog();
      await writeUpdates(l);
      const bases = l.describePartition(TOPIC, 0).map((s) => s.baseOffset);
      await l.close();
      // Stage a swap of the first two segments by a copy of the first one alone.
      const name = (base: number) => String(base).padStart(20, '0');
      await copyFile(join(pdir(), `${name(bases[0]!)}.log`), join(pdir(), `${name(bases[0]!)}.cleaned`));
      await writeFile(join(pdir(), 'cleaner.json'), JSON.stringify({ replaced: [bases[0], bases[1]], produced: [bases[0]] }));
      l = await openLog();
      const files = await readdir(pdir());
      expect(files).not.toContain('cleaner.json');
      expect(files).not.toContain(`${name(bases[1]!)}.log`);
      expect(l.describePartition(TOPIC, 0).map((s) => s.baseOffset)).toEqual([bases[0], ...bases.slice(2)]);
      const offsets = (await readAll(l)).map((r) => r.offset);
      expect(offsets.some((o) => o >= bases[1]! && o < bases[2]!)).toBe(false);
    });
  });
});
