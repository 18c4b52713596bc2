import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SwitchyardError } from '../../errors.js';
import { silentLogger } from '../../logger.js';
import { tempDir } from '../../../test/support/log-dir.js';
import { openEmbeddedLog, type EmbeddedLog, type EmbeddedLogOptions } from './index.js';
import { resolveEmbeddedLogOptions } from './options.js';

const codeOf = async (promise: Promise<unknown>): Promise<string | undefined> =>
  promise.then(
    () => undefined,
    (e: unknown) => (e instanceof SwitchyardError ? e.code : `not a SwitchyardError: ${String(e)}`),
  );

describe('embedded log options', () => {
  it('fills in documented defaults', () => {
    const o = resolveEmbeddedLogOptions();
    expect(o).toMatchObject({
      dir: '.switchyard/log',
      fsync: 'interval',
      fsyncIntervalMs: 5,
      segmentBytes: 64 * 1024 * 1024,
      indexIntervalBytes: 4096,
      maxRecordBytes: 8 * 1024 * 1024,
      retryBackoffMs: 100,
      retryBackoffMaxMs: 5_000,
      deleteRetentionMs: 86_400_000,
      retentionBytes: -1,
      maxRetentionMs: -1,
      maintenanceIntervalMs: 60_000,
    });
    expect(typeof o.clock.now()).toBe('number');
  });

  it.each<[string, EmbeddedLogOptions]>([
    ['empty dir', { dir: '' }],
    ['unknown fsync policy', { fsync: 'sometimes' as never }],
    ['negative fsync interval', { fsyncIntervalMs: -1 }],
    ['fractional fsync interval', { fsyncIntervalMs: 2.5 }],
    ['tiny segments', { segmentBytes: 100 }],
    ['huge segments', { segmentBytes: 2 ** 31 }],
    ['zero index interval', { indexIntervalBytes: 0 }],
    ['tiny max record', { maxRecordBytes: 10 }],
    ['clock without now', { clock: {} as never }],
    ['backoff max below backoff', { retryBackoffMs: 100, retryBackoffMaxMs: 50 }],
    ['negative delete retention', { deleteRetentionMs: -5 }],
    ['retentionBytes -2', { retentionBytes: -2 }],
    ['fractional maxRetentionMs', { maxRetentionMs: 1.5 }],
    ['NaN maintenance interval', { maintenanceIntervalMs: Number.NaN }],
  ])('rejects %s at construction with SY_ERR_CONFIG', async (_, options) => {
    expect(() => resolveEmbeddedLogOptions(options)).toThrow(SwitchyardError);
    expect(await codeOf(openEmbeddedLog(options))).toBe('SY_ERR_CONFIG');
  });
});

describe('embedded log behaviour', () => {
  let dir: string;
  let remove: () => Promise<void>;
  let log: EmbeddedLog;

  beforeEach(async () => {
    ({ dir, remove } = await tempDir('sy-embedded-'));
  });
  afterEach(async () => {
    await log.close();
    await remove();
  });

  const openLog = async (options: Omit<EmbeddedLogOptions, 'dir'> = {}) => {
    log = await openEmbeddedLog({ dir, fsync: 'never', logger: silentLogger, ...options });
    return log;
  };

  it('persists topic metadata in topics.json', async () => {
    await openLog();
    await log.ensureTopics([
      { name: 'sessions', partitions: 12, compacted: true },
      { name: 'control', partitions: 1, retentionMs: -1 },
      { name: 'heartbeats', partitions: 6, retentionMs: 21_600_000, durability: 'relaxed' },
      { name: 'requests', partitions: 2, visibility: 'written' },
    ]);
    const stored = JSON.parse(await readFile(join(dir, 'topics.json'), 'utf8')) as { topics: unknown[] };
    expect(stored.topics).toEqual([
      { name: 'sessions', partitions: 12, compacted: true, retentionMs: -1, durability: 'sync', visibility: 'synced' },
      { name: 'control', partitions: 1, compacted: false, retentionMs: -1, durability: 'sync', visibility: 'synced' },
      { name: 'heartbeats', partitions: 6, compacted: false, retentionMs: 21_600_000, durability: 'relaxed', visibility: 'synced' },
      { name: 'requests', partitions: 2, compacted: false, retentionMs: -1, durability: 'sync', visibility: 'written' },
    ]);
    await expect(log.ensureTopics([{ name: 'odd', partitions: 1, visibility: 'eventually' as never }])).rejects.toMatchObject({ code: 'SY_ERR_LOG_BAD_TOPIC' });
    await log.close();
    await openLog();
    expect(await log.partitionCount('sessions')).toBe(12);
    expect(await log.partitionCount('heartbeats')).toBe(6);
  });

  it('concurrent ensureTopics calls create each topic once', async () => {
    await openLog();
    await Promise.all(Array.from({ length: 5 }, () => log.ensureTopics([{ name: 't', partitions: 2 }])));
    expect(await log.partitionCount('t')).toBe(2);
    const stored = JSON.parse(await readFile(join(dir, 'topics.json'), 'utf8')) as { topics: unknown[] };
    expect(stored.topics).toHaveLength(1);
  });

  it.each([['a/b'], ['..'], ['.'], [''], ['x'.repeat(250)], ['spaces are bad']])('rejects the topic name %j with SY_ERR_LOG_BAD_TOPIC', async (name) => {
    await openLog();
    expect(await codeOf(log.ensureTopics([{ name, partitions: 1 }]))).toBe('SY_ERR_LOG_BAD_TOPIC');
  });

  it('rejects bad partition counts and retention with SY_ERR_LOG_BAD_TOPIC', async () => {
    await openLog();
    expect(await codeOf(log.ensureTopics([{ name: 'a', partitions: 0 }]))).toBe('SY_ERR_LOG_BAD_TOPIC');
    expect(await codeOf(log.ensureTopics([{ name: 'a', partitions: 1.5 }]))).toBe('SY_ERR_LOG_BAD_TOPIC');
    expect(await codeOf(log.ensureTopics([{ name: 'a', partitions: 1, retentionMs: -7 }]))).toBe('SY_ERR_LOG_BAD_TOPIC');
    expect(await log.partitionCount('a')).toBeUndefined();
  });

  it('keyless records of one append stick to one partition; the next append moves on', async () => {
    await openLog();
    await log.ensureTopics([{ name: 't', partitions: 3 }]);
    const calls = await Promise.all(Array.from({ length: 6 }, () => log.append(Array.from({ length: 5 }, () => ({ topic: 't', value: Buffer.from('x') })))));
    const partitions = calls.map((positions) => {
      expect(new Set(positions.map((p) => p.partition)).size).toBe(1);
      return positions[0]!.partition;
    });
    expect(partitions).toEqual([0, 1, 2, 0, 1, 2]);
  });

  it('an append is all or nothing: one bad record fails the call and nothing is written', async () => {
    await openLog();
    await log.ensureTopics([
      { name: 't', partitions: 2 },
      { name: 'c', partitions: 1, compacted: true },
    ]);
    const good = { topic: 't', partition: 0, value: Buffer.from('ok') };
    expect(await codeOf(log.append([good, { topic: 't', partition: 2, value: Buffer.from('x') }]))).toBe('SY_ERR_LOG_BAD_PARTITION');
    expect(await codeOf(log.append([good, { topic: 't', partition: -1, value: Buffer.from('x') }]))).toBe('SY_ERR_LOG_BAD_PARTITION');
    expect(await codeOf(log.append([good, { topic: 'nope', value: Buffer.from('x') }]))).toBe('SY_ERR_LOG_UNKNOWN_TOPIC');
    expect(await codeOf(log.append([good, { topic: 'c', value: Buffer.from('keyless on a compacted topic') }]))).toBe('SY_ERR_LOG_BAD_RECORD');
    expect(await codeOf(log.append([good, { topic: 't', value: 'not a buffer' as never }]))).toBe('SY_ERR_LOG_BAD_RECORD');
    expect(await codeOf(log.append([good, { topic: 't', value: null, headers: { h: 42 as never } }]))).toBe('SY_ERR_LOG_BAD_RECORD');
    expect(await codeOf(log.append([good, { topic: 't', value: null, timestamp: 1.5 }]))).toBe('SY_ERR_LOG_BAD_RECORD');
    expect(await log.endOffsets('t')).toEqual([0, 0]);
    expect(await log.append([])).toEqual([]);
  });

  it('rejects records larger than maxRecordBytes', async () => {
    await openLog({ maxRecordBytes: 1024 });
    await log.ensureTopics([{ name: 't', partitions: 1 }]);
    expect(await codeOf(log.append([{ topic: 't', value: Buffer.alloc(1024) }]))).toBe('SY_ERR_LOG_BAD_RECORD');
    await log.append([{ topic: 't', value: Buffer.alloc(1024 - 36) }]);
  });

  it('stamps records with the injected clock when they carry no timestamp', async () => {
    await openLog({ clock: { now: () => 1_234_567 } });
    await log.ensureTopics([{ name: 't', partitions: 1 }]);
    await log.append([{ topic: 't', value: Buffer.from('a') }, { topic: 't', value: Buffer.from('b'), timestamp: 99 }]);
    expect((await log.read({ topic: 't', partition: 0, from: 0 })).map((r) => r.timestamp)).toEqual([1_234_567, 99]);
  });

  it('read validates its range', async () => {
    await openLog();
    await log.ensureTopics([{ name: 't', partitions: 1 }]);
    expect(await codeOf(log.read({ topic: 't', partition: 0, from: -1 }))).toBe('SY_ERR_LOG_OFFSET_OUT_OF_RANGE');
    expect(await codeOf(log.read({ topic: 't', partition: 0, from: 0, maxRecords: 0 }))).toBe('SY_ERR_CONFIG');
    expect(await log.read({ topic: 't', partition: 0, from: 100 })).toEqual([]);
  });

  it('subscribe validates its options', async () => {
    await openLog();
    await log.ensureTopics([{ name: 't', partitions: 2 }]);
    const onBatch = async () => {};
    expect(await codeOf(log.subscribe({ groupId: '', topics: ['t'], onBatch }))).toBe('SY_ERR_CONFIG');
    expect(await codeOf(log.subscribe({ groupId: 'g', topics: ['t'], onBatch, maxBatchRecords: 0 }))).toBe('SY_ERR_CONFIG');
    expect(await codeOf(log.subscribe({ groupId: 'g', topics: [], onBatch }))).toBe('SY_ERR_CONFIG');
    expect(await codeOf(log.subscribe({ groupId: 'g', topics: ['t'], onBatch, assignment: { kind: 'static', partitions: [{ topic: 't', partitions: [2] }] } }))).toBe(
      'SY_ERR_LOG_BAD_PARTITION',
    );
  });

  it('after close, every call fails with SY_ERR_LOG_CLOSED; close is idempotent; appends made before close complete', async () => {
    await openLog({ fsync: 'interval', fsyncIntervalMs: 1_000 });
    await log.ensureTopics([{ name: 't', partitions: 1 }]);
    await log.append([{ topic: 't', value: Buffer.from('first') }]);
    const inFlight = log.append([{ topic: 't', value: Buffer.from('in flight') }]);
    await Promise.all([log.close(), log.close()]);
    expect((await inFlight)[0]!.offset).toBe(1);
    expect(await codeOf(log.append([{ topic: 't', value: Buffer.from('late') }]))).toBe('SY_ERR_LOG_CLOSED');
    expect(await codeOf(log.read({ topic: 't', partition: 0, from: 0 }))).toBe('SY_ERR_LOG_CLOSED');
    expect(await codeOf(log.endOffsets('t'))).toBe('SY_ERR_LOG_CLOSED');
    expect(await codeOf(log.ensureTopics([{ name: 'u', partitions: 1 }]))).toBe('SY_ERR_LOG_CLOSED');
    expect(await codeOf(log.subscribe({ groupId: 'g', topics: ['t'], onBatch: async () => {} }))).toBe('SY_ERR_LOG_CLOSED');
    await log.close();
  });

  it('opens with the defaults of the EventLog port: kind is embedded', async () => {
    await openLog();
    expect(log.kind).toBe('embedded');
    expect(log.dir).toBe(dir);
  });
});
