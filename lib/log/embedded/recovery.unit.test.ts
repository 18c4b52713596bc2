import { appendFile, readdir, readFile, stat, truncate, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SwitchyardError } from '../../errors.js';
import { captureLogger, tempDir } from '../../../test/support/log-dir.js';
import { openEmbeddedLog, type EmbeddedLog, type EmbeddedLogOptions } from './index.js';

const TOPIC = 'recovery';

describe('embedded log crash recovery', () => {
  let dir: string;
  let remove: () => Promise<void>;
  let open: EmbeddedLog[];

  beforeEach(async () => {
    ({ dir, remove } = await tempDir('sy-recovery-'));
    open = [];
  });
  afterEach(async () => {
    await Promise.all(open.map((l) => l.close()));
    await remove();
  });

  const openLog = async (options: Omit<EmbeddedLogOptions, 'dir'> = {}) => {
    const capture = captureLogger();
    const log = await openEmbeddedLog({ dir, fsync: 'never', logger: capture.logger, ...options });
    open.push(log);
    return { log, ...capture };
  };
  const partitionDir = (partition = 0) => join(dir, 'topics', TOPIC, String(partition));
  const segmentFiles = async (partition = 0) => (await readdir(partitionDir(partition))).filter((f) => f.endsWith('.log')).sort();
  const activeSegment = async () => join(partitionDir(), (await segmentFiles()).at(-1)!);
  const values = async (log: EmbeddedLog) => (await log.read({ topic: TOPIC, partition: 0, from: 0 })).map((r) => `${r.offset}:${r.value?.toString()}`);

  /** Writes `n` records (one per append) and closes the log; returns the byte size after each record. */
  const writeRecords = async (n: number, options: Omit<EmbeddedLogOptions, 'dir'> = {}) => {
    const { log } = await openLog(options);
    await log.ensureTopics([{ name: TOPIC, partitions: 1 }]);
    const sizes: number[] = [];
    for (let i = 0; i < n; i++) {
      await log.append([{ topic: TOPIC, partition: 0, key: `k${i}`, value: Buffer.from(`value-${i}`), headers: { n: String(i) } }]);
      sizes.push(log.describePartition(TOPIC, 0).reduce((s, seg) => s + seg.size, 0));
    }
    await log.close();
    return sizes;
  };

  it('truncates a torn last record, keeps the ones before it, and appends continue at its offset', async () => {
    const sizes = await writeRecords(5);
    const file = await activeSegment();
    await truncate(file, sizes[4]! - 7); // a crash in the middle of writing record 4
    const { log, lines } = await openLog();
    expect(await log.endOffsets(TOPIC)).toEqual([4]);
    expect(await values(log)).toEqual(['0:value-0', '1:value-1', '2:value-2', '3:value-3']);
    expect((await stat(file)).size).toBe(sizes[3]);
    const warning = lines.find((l) => l.msg.includes('torn or corrupt tail'));
    expect(warning).toMatchObject({ topic: TOPIC, partition: 0, validBytes: sizes[3], truncatedBytes: sizes[4]! - 7 - sizes[3]!, problem: 'short-frame', lastGoodOffset: 3 });
    const [next] = await log.append([{ topic: TOPIC, partition: 0, value: Buffer.from('after-crash') }]);
    expect(next!.offset).toBe(4);
    await log.close();
    const { log: again } = await openLog();
    expect(await values(again)).toEqual(['0:value-0', '1:value-1', '2:value-2', '3:value-3', '4:after-crash']);
  });

  it('drops a last record whose CRC does not match', async () => {
    const sizes = await writeRecords(3);
    const file = await activeSegment();
    const bytes = await readFile(file);
    bytes[sizes[2]! - 2]! ^= 0xff; // inside record 2's value
    await writeFile(file, bytes);
    const { log, lines } = await openLog();
    expect(await values(log)).toEqual(['0:value-0', '1:value-1']);
    expect(lines.find((l) => l.msg.includes('torn or corrupt tail'))).toMatchObject({ problem: 'crc-mismatch', truncatedBytes: sizes[2]! - sizes[1]! });
    const [next] = await log.append([{ topic: TOPIC, partition: 0, value: Buffer.from('x') }]);
    expect(next!.offset).toBe(2);
  });

  it('cuts a torn frame header and zero-filled space after the last record', async () => {
    const sizes = await writeRecords(2);
    const file = await activeSegment();
    await appendFile(file, Buffer.from([0, 0]));
    let { log, lines } = await openLog();
    expect(await values(log)).toEqual(['0:value-0', '1:value-1']);
    expect(lines.find((l) => l.msg.includes('torn or corrupt tail'))).toMatchObject({ problem: 'short-header', truncatedBytes: 2 });
    await log.close();
    await appendFile(file, Buffer.alloc(4096));
    ({ log, lines } = await openLog());
    expect(await values(log)).toEqual(['0:value-0', '1:value-1']);
    expect(lines.find((l) => l.msg.includes('torn or corrupt tail'))).toMatchObject({ problem: 'bad-size', truncatedBytes: 4096 });
    expect((await stat(file)).size).toBe(sizes[1]);
  });

  it('a corrupt record in the active segment ends it: later records are dropped too', async () => {
    const sizes = await writeRecords(4);
    const file = await activeSegment();
    const bytes = await readFile(file);
    bytes[sizes[1]! - 3]! ^= 0x01; // record 1
    await writeFile(file, bytes);
    const { log } = await openLog();
    expect(await values(log)).toEqual(['0:value-0']);
    expect((await log.append([{ topic: TOPIC, partition: 0, value: Buffer.from('y') }]))[0]!.offset).toBe(1);
  });

  it('a clean close and reopen loses nothing and logs no warnings', async () => {
    await writeRecords(20);
    const { log, lines } = await openLog();
    expect((await values(log)).length).toBe(20);
    expect(lines.filter((l) => l.level >= 40)).toEqual([]);
  });

  describe('sealed segments', () => {
    const small = { segmentBytes: 1024, indexIntervalBytes: 128 };

    it('a flipped bit in a sealed segment fails the read with SY_ERR_LOG_CORRUPT', async () => {
      await writeRecords(60, small);
      const files = await segmentFiles();
      expect(files.length).toBeGreaterThan(2);
      const first = join(partitionDir(), files[0]!);
      const bytes = await readFile(first);
      bytes[bytes.length - 3]! ^= 0x40;
      await writeFile(first, bytes);
      const { log } = await openLog(small);
      const err = await log.read({ topic: TOPIC, partition: 0, from: 0 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(SwitchyardError);
      expect((err as SwitchyardError).code).toBe('SY_ERR_LOG_CORRUPT');
      expect((err as SwitchyardError).detail).toMatchObject({ problem: 'crc-mismatch' });
      // Records of the other segments are still readable.
      const later = await log.read({ topic: TOPIC, partition: 0, from: 59 });
      expect(later.map((r) => r.value?.toString())).toEqual(['value-59']);
    });

    it('a missing or damaged index is rebuilt from the segment', async () => {
      await writeRecords(60, small);
      const files = await segmentFiles();
      const firstIndex = join(partitionDir(), files[0]!.replace('.log', '.index'));
      const secondIndex = join(partitionDir(), files[1]!.replace('.log', '.index'));
      const intact = await readFile(firstIndex);
      await unlink(firstIndex);
      const damaged = await readFile(secondIndex);
      damaged[damaged.length - 1]! ^= 0xff;
      await writeFile(secondIndex, damaged);
      const { log, lines } = await openLog(small);
      expect((await values(log)).map((v) => v.split(':')[0])).toEqual(Array.from({ length: 60 }, (_, i) => String(i)));
      expect(await readFile(firstIndex)).toEqual(intact);
      expect((await readFile(secondIndex)).equals(damaged)).toBe(false);
      expect(lines.filter((l) => l.level >= 40)).toEqual([]);
    });

    it('a sealed segment with a torn tail is cut there, and later segments stay', async () => {
      await writeRecords(60, small);
      const files = await segmentFiles();
      const first = join(partitionDir(), files[0]!);
      const firstIndex = first.replace('.log', '.index');
      await truncate(first, (await stat(first)).size - 5);
      await unlink(firstIndex); // as if the crash came before the index was written
      const { log, lines } = await openLog(small);
      const offsets = (await log.read({ topic: TOPIC, partition: 0, from: 0 })).map((r) => r.offset);
      const secondBase = Number(files[1]!.slice(0, 20));
      expect(offsets).not.toContain(secondBase - 1);
      expect(offsets).toContain(secondBase);
      expect(offsets.at(-1)).toBe(59);
      expect(lines.find((l) => l.msg.includes('closed segment is corrupt'))).toMatchObject({ problem: 'short-frame' });
      expect((await log.append([{ topic: TOPIC, partition: 0, value: Buffer.from('z') }]))[0]!.offset).toBe(60);
    });
  });
});
