import { open as openFile, readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../logger.js';
import { tempDir } from '../../../test/support/log-dir.js';
import { checkFrame, frameOffset } from './frame.js';
import { openEmbeddedLog, type EmbeddedLog, type EmbeddedLogOptions } from './index.js';

const TOPIC = 'segments';

describe('embedded log segments and the sparse index', () => {
  let dir: string;
  let remove: () => Promise<void>;
  let log: EmbeddedLog;

  beforeEach(async () => {
    ({ dir, remove } = await tempDir('sy-segments-'));
  });
  afterEach(async () => {
    await log?.close();
    await remove();
  });

  const openLog = async (options: Omit<EmbeddedLogOptions, 'dir'>) => {
    log = await openEmbeddedLog({ dir, fsync: 'never', logger: silentLogger, ...options });
    await log.ensureTopics([{ name: TOPIC, partitions: 1 }]);
    return log;
  };
  const pdir = () => join(dir, 'topics', TOPIC, '0');
  const appendMany = async (n: number, valueBytes: number, start = 0) => {
    for (let i = 0; i < n; i += 100) {
      await log.append(Array.from({ length: Math.min(100, n - i) }, (_, k) => ({ topic: TOPIC, partition: 0, value: Buffer.alloc(valueBytes, (start + i + k) % 251) })));
    }
  };

  it('rolls at segmentBytes; each segment starts at its first offset and sealed ones have an index file', async () => {
    await openLog({ segmentBytes: 4096, indexIntervalBytes: 512 });
    await appendMany(300, 100);
    const segments = log.describePartition(TOPIC, 0);
    expect(segments.length).toBeGreaterThan(5);
    for (const seg of segments) expect(seg.size).toBeLessThanOrEqual(4096);
    expect(segments.slice(0, -1).every((s) => s.sealed)).toBe(true);
    expect(segments.at(-1)!.sealed).toBe(false);
    const files = (await readdir(pdir())).sort();
    for (const seg of segments) {
      const name = String(seg.baseOffset).padStart(20, '0');
      expect(files).toContain(`${name}.log`);
      expect(files.includes(`${name}.index`)).toBe(seg.sealed);
      const [first] = await log.read({ topic: TOPIC, partition: 0, from: seg.baseOffset, maxRecords: 1 });
      expect(first!.offset).toBe(seg.baseOffset);
    }
    // Every record, across all the boundaries, in order.
    const all = await log.read({ topic: TOPIC, partition: 0, from: 0 });
    expect(all.map((r) => r.offset)).toEqual(Array.from({ length: 300 }, (_, i) => i));
    expect(all.every((r, i) => r.value!.equals(Buffer.alloc(100, i % 251)))).toBe(true);
  });

  it('a record larger than segmentBytes gets a segment of its own', async () => {
    await openLog({ segmentBytes: 1024 });
    await log.append([{ topic: TOPIC, partition: 0, value: Buffer.alloc(100) }]);
    await log.append([{ topic: TOPIC, partition: 0, value: Buffer.alloc(5000, 1) }]);
    await log.append([{ topic: TOPIC, partition: 0, value: Buffer.alloc(100, 2) }]);
    const segments = log.describePartition(TOPIC, 0);
    expect(segments.map((s) => s.baseOffset)).toEqual([0, 1, 2]);
    expect(segments[1]!.size).toBeGreaterThan(5000);
    const records = await log.read({ topic: TOPIC, partition: 0, from: 1 });
    expect(records.map((r) => r.value!.length)).toEqual([5000, 100]);
  });

  it('the index points at or just before the asked offset, within one index interval', async () => {
    const interval = 1024;
    await openLog({ segmentBytes: 256 * 1024, indexIntervalBytes: interval });
    await appendMany(2000, 200);
    const partition = log.partition(TOPIC, 0);
    for (const offset of [0, 1, 7, 500, 999, 1000, 1500, 1999]) {
      const { segment, position } = partition.indexLookup(offset);
      const handle = await openFile(join(pdir(), `${String(segment).padStart(20, '0')}.log`), 'r');
      try {
        const size = (await handle.stat()).size;
        const buf = Buffer.alloc(size - position);
        await handle.read(buf, 0, buf.length, position);
        let pos = 0;
        let skipped = 0;
        expect(frameOffset(buf, 0)).toBeLessThanOrEqual(offset);
        while (frameOffset(buf, pos) < offset) {
          pos += checkFrame(buf, pos, buf.length) as number;
          skipped++;
        }
        expect(frameOffset(buf, pos)).toBe(offset);
        expect(pos).toBeLessThan(interval + 300);
        expect(skipped).toBeLessThanOrEqual(Math.ceil(interval / 236));
      } finally {
        await handle.close();
      }
    }
  });

  it('a read from the middle starts at the indexed position, not at the start of the log', async () => {
    // The tail cache off: this is about the segment's index, not about memory.
    await openLog({ segmentBytes: 8 * 1024 * 1024, indexIntervalBytes: 4096, tailCacheBytes: 0 });
    await appendMany(3000, 1000);
    const handle = await openFile(join(pdir(), '00000000000000000000.log'), 'r');
    const proto = Object.getPrototypeOf(handle) as { read: (...args: unknown[]) => Promise<unknown> };
    await handle.close();
    const positions: number[] = [];
    const original = proto.read;
    proto.read = async function (this: unknown, ...args: unknown[]) {
      positions.push(args[3] as number);
      return original.apply(this, args);
    };
    try {
      const records = await log.read({ topic: TOPIC, partition: 0, from: 2500, maxRecords: 10 });
      expect(records.map((r) => r.offset)).toEqual(Array.from({ length: 10 }, (_, i) => 2500 + i));
    } finally {
      proto.read = original;
    }
    const frameBytes = 1000 + 36;
    expect(positions.length).toBeGreaterThan(0);
    expect(Math.min(...positions)).toBeGreaterThan(2500 * frameBytes - 4096 - frameBytes);
  });

  it('records returned by read stay intact after later reads reuse the read blocks', async () => {
    await openLog({ segmentBytes: 1024 * 1024 });
    await appendMany(1000, 500);
    const first = await log.read({ topic: TOPIC, partition: 0, from: 0, maxRecords: 300 });
    const single = await log.read({ topic: TOPIC, partition: 0, from: 700, maxRecords: 1 });
    for (let i = 0; i < 5; i++) await log.read({ topic: TOPIC, partition: 0, from: 300 + i * 100 });
    expect(first.every((r, i) => r.value!.equals(Buffer.alloc(500, i % 251)))).toBe(true);
    expect(single[0]!.value!.equals(Buffer.alloc(500, 700 % 251))).toBe(true);
    // A one-record read keeps only that record's bytes alive, not a whole read block.
    expect(single[0]!.value!.buffer.byteLength).toBeLessThan(64 * 1024);
  });

  it('keeps a bounded number of segment files open while reading a long history', async () => {
    await openLog({ segmentBytes: 1024 });
    await appendMany(5000, 100);
    expect(log.describePartition(TOPIC, 0).length).toBeGreaterThan(400);
    const openFds = async () => (await readdir('/proc/self/fd')).length;
    const before = await openFds();
    const all = await log.read({ topic: TOPIC, partition: 0, from: 0 });
    expect(all.length).toBe(5000);
    expect((await openFds()) - before).toBeLessThan(300);
    // Closed handles are reopened on demand.
    expect((await log.read({ topic: TOPIC, partition: 0, from: 3, maxRecords: 1 }))[0]!.offset).toBe(3);
  });

  it('indexes of sealed segments are loaded on open (and match what was written)', async () => {
    await openLog({ segmentBytes: 4096, indexIntervalBytes: 256 });
    await appendMany(200, 100);
    const before = log.describePartition(TOPIC, 0);
    await log.close();
    const indexFiles = (await readdir(pdir())).filter((f) => f.endsWith('.index'));
    const mtimes = await Promise.all(indexFiles.map(async (f) => (await stat(join(pdir(), f))).mtimeMs));
    const contents = await Promise.all(indexFiles.map((f) => readFile(join(pdir(), f))));
    await openLog({ segmentBytes: 4096, indexIntervalBytes: 256 });
    expect(log.describePartition(TOPIC, 0)).toEqual(before);
    // Loaded, not rebuilt: the files were not rewritten.
    expect(await Promise.all(indexFiles.map(async (f) => (await stat(join(pdir(), f))).mtimeMs))).toEqual(mtimes);
    expect(await Promise.all(indexFiles.map((f) => readFile(join(pdir(), f))))).toEqual(contents);
    expect((await log.read({ topic: TOPIC, partition: 0, from: 150, maxRecords: 1 }))[0]!.offset).toBe(150);
  });
});
