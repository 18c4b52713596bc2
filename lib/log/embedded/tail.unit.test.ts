import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../logger.js';
import { mulberry32 } from '../../prng.js';
import { tempDir } from '../../../test/support/log-dir.js';
import type { LogRecord } from '../port.js';
import { frameSize, writeFrame, type FrameInput } from './frame.js';
import { openEmbeddedLog, type EmbeddedLog } from './index.js';
import { TailCache } from './tail.js';

const flat = (rs: LogRecord[]) => rs.map((r) => ({ offset: r.offset, key: r.key?.toString(), value: r.value?.toString(), headers: Object.keys(r.headers), timestamp: r.timestamp }));

describe('embedded log tail cache', () => {
  let dir: string;
  let remove: () => Promise<void>;
  const open: EmbeddedLog[] = [];
  beforeEach(async () => ({ dir, remove } = await tempDir('sy-tail-')));
  afterEach(async () => {
    for (const l of open.splice(0)) await l.close();
    await remove();
  });
  const openLog = async (sub: string, tailCacheBytes: number, segmentBytes = 64 * 1024) => {
    const log = await openEmbeddedLog({ dir: `${dir}/${sub}`, fsync: 'never', segmentBytes, maintenanceIntervalMs: 0, tailCacheBytes, logger: silentLogger });
    open.push(log);
    return log;
  };

  it('serves the same records from memory as from the segment files, including across flushes, rolls and the cache edge', async () => {
    const cached = await openLog('cached', 20_000);
    const uncached = await openLog('uncached', 0);
    for (const log of [cached, uncached]) {
      await log.ensureTopics([{ name: 't', partitions: 1 }]);
      for (let batch = 0; batch < 40; batch++) {
        await log.append(Array.from({ length: 10 }, (_, i) => ({ topic: 't', partition: 0, key: `k${i}`, value: Buffer.alloc(100, 97 + ((batch + i) % 26)), headers: { h: String(batch) }, timestamp: 1_000 + batch })));
      }
    }
    // 400 records of ~150 bytes: the 20 kB cache holds the newest ~130, the files hold all.
    for (const [from, to, max] of [[0, 400, 1000], [250, 400, 1000], [390, 400, 5], [399, 400, 10], [120, 300, 1000], [0, 10, 3]] as const) {
      const a = await cached.read({ topic: 't', partition: 0, from, to, maxRecords: max });
      const b = await uncached.read({ topic: 't', partition: 0, from, to, maxRecords: max });
      expect(flat(a), `[${from}, ${to}) max ${max}`).toEqual(flat(b));
    }
  });

  it('reads from the cache and from the files agree at every offset around the eviction edge', async () => {
    const cached = await openLog('edge-cached', 16 * 1024);
    const uncached = await openLog('edge-uncached', 0);
    for (const log of [cached, uncached]) {
      await log.ensureTopics([{ name: 't', partitions: 1 }]);
      for (let batch = 0; batch < 60; batch++) {
        await log.append(Array.from({ length: 1 + (batch % 5) }, (_, i) => ({ topic: 't', partition: 0, key: `k${batch}.${i}`, value: Buffer.alloc(50 + ((batch * 37 + i * 101) % 400), 97 + (i % 26)), timestamp: 1_000 + batch })));
      }
    }
    const [end] = await cached.endOffsets('t');
    for (let from = 0; from < end!; from++) {
      const a = await cached.read({ topic: 't', partition: 0, from, maxRecords: 7 });
      const b = await uncached.read({ topic: 't', partition: 0, from, maxRecords: 7 });
      expect(flat(a), `from ${from}`).toEqual(flat(b));
    }
  });

  it('readCached answers a range the cache holds without a promise, and says when the files must be read', async () => {
    const log = await openLog('read-cached', 16 * 1024);
    await log.ensureTopics([{ name: 't', partitions: 1 }]);
    for (let batch = 0; batch < 40; batch++) {
      await log.append(Array.from({ length: 5 }, (_, i) => ({ topic: 't', partition: 0, key: `k${batch}.${i}`, value: Buffer.alloc(100, 97 + i), timestamp: 1_000 + batch })));
    }
    const p = log.partition('t', 0);
    const end = p.endOffset;
    const offsets = (rs: LogRecord[]) => rs.map((r) => r.offset);
    const newest = p.readCached(end - 10, end, 1_000)!;
    expect(offsets(newest)).toEqual(Array.from({ length: 10 }, (_, i) => end - 10 + i));
    expect(flat(newest)).toEqual(flat(await log.read({ topic: 't', partition: 0, from: end - 10, maxRecords: 1_000 })));
    expect(offsets(p.readCached(end - 10, end, 3)!)).toEqual([end - 10, end - 9, end - 8]);
    // Older than the cache (16 KiB of ~150-byte frames): undefined, and the caller reads the files.
    expect(p.readCached(0, end, 10)).toBeUndefined();
    // At or past the visible end: nothing to read.
    expect(p.readCached(end, end + 5, 10)).toEqual([]);
  });

  it('hands every reader of the same range the same record objects, each in an array of its own', async () => {
    const log = await openLog('shared-reads', 16 * 1024);
    await log.ensureTopics([{ name: 't', partitions: 1 }]);
    await log.append(Array.from({ length: 8 }, (_, i) => ({ topic: 't', partition: 0, key: `k${i}`, value: Buffer.from(`v${i}`), timestamp: 1_000 + i })));
    const p = log.partition('t', 0);
    const first = p.readCached(2, 8, 500)!;
    const second = p.readCached(2, 8, 2_000)!;
    expect(second).not.toBe(first);
    expect(second).toHaveLength(6);
    second.forEach((r, i) => expect(r).toBe(first[i]));
    // A smaller batch of the same range: its first records, the same objects.
    const three = p.readCached(2, 8, 3)!;
    expect(three.map((r) => r.offset)).toEqual([2, 3, 4]);
    expect(three[0]).toBe(first[0]);
    // A read cut short by its max does not answer a larger one: that is read afresh, whole.
    const cut = p.readCached(0, 8, 2)!;
    const whole = p.readCached(0, 8, 500)!;
    expect(whole.map((r) => r.offset)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(whole[0]).not.toBe(cut[0]);
    expect(flat(whole)).toEqual(flat(await log.read({ topic: 't', partition: 0, from: 0, maxRecords: 500 })));
    // A new end (records appended since) is a new range.
    await log.append([{ topic: 't', partition: 0, key: 'k8', value: Buffer.from('v8') }]);
    const longer = p.readCached(2, p.endOffset, 500)!;
    expect(longer.map((r) => r.offset)).toEqual([2, 3, 4, 5, 6, 7, 8]);
  });

  it('whenReadable wakes a waiter once when records arrive, at once when they are there, and unwait forgets it', async () => {
    const log = await openLog('wait', 16 * 1024);
    await log.ensureTopics([{ name: 't', partitions: 1 }]);
    const p = log.partition('t', 0);
    let woken = 0;
    const wake = (): void => void woken++;
    p.whenReadable(0, wake);
    p.whenReadable(0, wake); // the same waker waits once
    expect(woken).toBe(0);
    await log.append([{ topic: 't', partition: 0, key: 'a', value: Buffer.from('1') }]);
    expect(woken).toBe(1);
    await log.append([{ topic: 't', partition: 0, key: 'a', value: Buffer.from('2') }]);
    expect(woken).toBe(1); // woken once, then forgotten until it waits again
    p.whenReadable(0, wake); // already readable: called at once
    expect(woken).toBe(2);
    p.whenReadable(p.endOffset, wake);
    p.unwait(wake);
    await log.append([{ topic: 't', partition: 0, key: 'a', value: Buffer.from('3') }]);
    expect(woken).toBe(2);
  });

  it('does not serve records that compaction removed', async () => {
    const log = await openLog('compacted', 1024 * 1024, 1024);
    await log.ensureTopics([{ name: 's', partitions: 1, compacted: true }]);
    for (let i = 0; i < 60; i++) await log.append([{ topic: 's', partition: 0, key: `k${i % 3}`, value: Buffer.from(`v${i}`) }]);
    const before = await log.read({ topic: 's', partition: 0, from: 0 });
    expect(before).toHaveLength(60);
    await log.compact('s');
    const after = await log.read({ topic: 's', partition: 0, from: 0 });
    expect(after.length).toBeLessThan(60);
    // Every key keeps its latest value; nothing superseded in a closed segment comes back.
    const latest = new Map(after.map((r) => [r.key!.toString(), r.value!.toString()]));
    expect(latest).toEqual(new Map([['k0', 'v57'], ['k1', 'v58'], ['k2', 'v59']]));
  });
});

describe('TailCache across eviction boundaries', () => {
  /** One flush's frames, framed as the partition frames them; frame `o` carries `o` in its value. */
  const flush = (first: number, sizes: number[]): Buffer => {
    const inputs: FrameInput[] = sizes.map((n, i) => ({ key: Buffer.from(`k${first + i}`), value: Buffer.alloc(n, (first + i) % 251), headers: [['o', Buffer.from(String(first + i))]], timestamp: first + i }));
    const buf = Buffer.alloc(inputs.reduce((t, r) => t + frameSize(r), 0));
    let pos = 0;
    inputs.forEach((r, i) => (pos = writeFrame(buf, pos, first + i, r, frameSize(r))));
    return buf;
  };
  const ids = (rs: LogRecord[]) => rs.map((r) => r.offset);
  const intact = (rs: LogRecord[]) => rs.every((r) => r.key!.toString() === `k${r.offset}` && r.headers.o!.toString() === String(r.offset) && r.value!.every((b) => b === r.offset % 251));

  it('serves exactly the frames it holds, contiguous up to the newest, for every offset and length, as blocks are evicted', () => {
    const random = mulberry32(11);
    // 16 KiB: 4 KiB blocks, so frames of up to ~1 KiB roll blocks every few flushes; 5 KiB frames
    // get blocks of their own, and 20 KiB frames cannot be cached at all.
    const cache = new TailCache(16 * 1024);
    let next = 0;
    let evictions = 0;
    let uncacheable = 0;
    for (let round = 0; round < 400; round++) {
      const count = 1 + Math.floor(random() * 6);
      const sizes = Array.from({ length: count }, () => {
        const r = random();
        return r < 0.02 ? 20 * 1024 : r < 0.06 ? 5 * 1024 : Math.floor(random() * 1000);
      });
      const before = cache.firstOffset;
      cache.add([flush(next, sizes)]);
      next += count;
      if (sizes.includes(20 * 1024)) uncacheable++;
      else if (before !== undefined && cache.firstOffset! > before) evictions++;
      expect(cache.bytes).toBeLessThanOrEqual(cache.capacity);
      const first = cache.firstOffset;
      if (first === undefined) {
        expect(cache.read(next - 1, next, 10, [], 't', 0)).toBe(false);
        continue;
      }
      // Contiguous up to the newest frame: size says so, and a whole read returns every offset.
      expect(cache.size).toBe(next - first);
      // Every starting offset around the cache edge, short and long reads, and `end`/`max` limits.
      for (let from = Math.max(0, first - 2); from < next; from++) {
        for (const [end, max] of [[next, 1], [next, 3], [next, 10_000], [Math.min(next, from + 2), 10_000]] as const) {
          const out: LogRecord[] = [];
          const served = cache.read(from, end, max, out, 't', 0);
          if (from < first) {
            expect(served, `from ${from} before the cache (${first})`).toBe(false);
            expect(out).toEqual([]);
            continue;
          }
          expect(served).toBe(true);
          const want = Array.from({ length: Math.max(0, Math.min(end - from, max)) }, (_, i) => from + i);
          expect(ids(out), `[${from}, ${end}) max ${max}; cache from ${first}`).toEqual(want);
          expect(intact(out)).toBe(true);
        }
      }
    }
    expect(evictions).toBeGreaterThan(20);
    expect(uncacheable).toBeGreaterThan(0);
  });

  it('stays exact over tens of thousands of evicted frames, evicting one block at a time (the index is compacted as it goes)', () => {
    // Offsets of six digits and 24-byte values: every frame is 80 bytes, 51 to a 4 KiB block,
    // and the 16 KiB cache holds 4 blocks: after an eviction, 3 full blocks and the newest.
    const cache = new TailCache(16 * 1024);
    const perBlock = Math.floor(4096 / flush(100_000, [24]).length);
    expect(perBlock).toBe(51);
    let next = 100_000;
    for (let round = 0; round < 6_000; round++) {
      const count = 1 + (round % 7);
      cache.add([flush(next, Array.from({ length: count }, () => 24))]);
      next += count;
      const first = cache.firstOffset!;
      expect(cache.size).toBe(next - first);
      if (next - 100_000 > 4 * perBlock) {
        expect(cache.size).toBeGreaterThan(3 * perBlock);
        expect(cache.size).toBeLessThanOrEqual(4 * perBlock);
        expect(cache.bytes).toBe(16 * 1024);
      }
      for (const from of [first, first + 1, (first + next) >>> 1, next - 1]) {
        if (from >= next) continue;
        const out: LogRecord[] = [];
        expect(cache.read(from, next, 5, out, 't', 0)).toBe(true);
        expect(ids(out)).toEqual(Array.from({ length: Math.min(5, next - from) }, (_, i) => from + i));
        expect(intact(out)).toBe(true);
      }
      if (first > 100_000) expect(cache.read(first - 1, next, 5, [], 't', 0)).toBe(false);
    }
    expect(next - 100_000).toBeGreaterThan(20_000);
  });

  it('appends to what `out` already holds, up to `max` in all', () => {
    const cache = new TailCache(64 * 1024);
    cache.add([flush(0, [10, 10, 10]), flush(3, [10, 10])]);
    const out: LogRecord[] = [];
    expect(cache.read(1, 5, 3, out, 't', 0)).toBe(true);
    expect(cache.read(4, 5, 3, out, 't', 0)).toBe(true);
    expect(ids(out)).toEqual([1, 2, 3]);
  });

  it('returns records that hold none of its blocks, so an evicted block is freed while records live on', () => {
    // 1 MiB: blocks of 64 KiB.
    const cache = new TailCache(1024 * 1024);
    cache.add([flush(0, [100, 100])]);
    const out: LogRecord[] = [];
    cache.read(0, 2, 10, out, 't', 0);
    // Overwrite the cache twice over: the records read before stay intact.
    for (let o = 2; o < 600; o += 4) cache.add([flush(o, [4000, 4000, 4000, 4000])]);
    expect(cache.firstOffset).toBeGreaterThan(2);
    expect(intact(out)).toBe(true);
    // A small read is a copy of its own bytes (at most a pool slab), not a view into a 64 KiB block.
    expect(out[0]!.value!.buffer.byteLength).toBeLessThanOrEqual(Buffer.poolSize);
  });

  it('drops the blocks whose newest frame is older than its age bound as frames are added, keeping the rest contiguous', () => {
    // 64 KiB: 4 KiB blocks; a block holds ~36 frames of 100 bytes.
    const cache = new TailCache(64 * 1024, 1_000);
    let next = 0;
    // One frame every 100 ms for 10 s: a slow partition, far from filling 64 KiB.
    for (let t = 0; t <= 10_000; t += 100) {
      cache.add([flush(next, [100])], t);
      next++;
    }
    const first = cache.firstOffset!;
    // Blocks whose newest frame is more than 1 s old are gone; the oldest block left may hold
    // older frames with its newest within the second (a block goes whole).
    expect(cache.bytes).toBeLessThanOrEqual(2 * 4096);
    expect(next - first).toBeGreaterThanOrEqual(10);
    expect(next - first).toBeLessThan(2 * 40);
    const out: LogRecord[] = [];
    expect(cache.read(first, next, 1_000, out, 't', 0)).toBe(true);
    expect(ids(out)).toEqual(Array.from({ length: next - first }, (_, i) => first + i));
    expect(intact(out)).toBe(true);
    expect(cache.read(first - 1, next, 1, [], 't', 0)).toBe(false);
    // Without an age bound the same writes keep every frame.
    const unbounded = new TailCache(64 * 1024);
    for (let o = 0; o < next; o++) unbounded.add([flush(o, [100])], o * 100);
    expect(unbounded.firstOffset).toBe(0);
    // After a silence longer than the bound, the next add starts from an empty cache.
    cache.add([flush(next, [100])], 20_000);
    expect(cache.firstOffset).toBe(next);
    expect(cache.size).toBe(1);
  });

  it('a zero capacity caches nothing', () => {
    const cache = new TailCache(0);
    cache.add([flush(0, [10])]);
    expect(cache.size).toBe(0);
    expect(cache.read(0, 1, 1, [], 't', 0)).toBe(false);
  });
});
