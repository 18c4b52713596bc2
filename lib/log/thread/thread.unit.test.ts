import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MessageChannel } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../logger.js';
import { waitFor } from '../../../test/support/services.js';
import { openEmbeddedLog, type EmbeddedLog } from '../embedded/index.js';
import type { Batch, LogRecord } from '../port.js';
import { ThreadLog } from './client.js';
import { serveLog } from './server.js';
import { packAppends, packRecords, unpackAppends, unpackRecords } from './wire.js';

describe('thread log wire', () => {
  it('packs only the records’ bytes, not the pooled buffers they are views of, and gives them back as they were', () => {
    // Buffer.from(string) views an 8 KiB pool slab: cloned as it is, each would drag its slab along.
    const value = Buffer.from('payload');
    expect(value.buffer.byteLength).toBeGreaterThan(1000);
    const packed = packAppends([
      { topic: 't', partition: 3, key: 'k1', value, headers: { a: 'x', b: Buffer.from([1, 2]) }, timestamp: 42, durability: 'relaxed' },
      { topic: 'u', key: null, value: null },
    ]);
    expect(packed.bytes.byteLength).toBe('k1'.length + 'payload'.length + 1 + 2);
    const [first, second] = unpackAppends(structuredClone(packed, { transfer: [packed.bytes] }));
    expect(first).toEqual({ topic: 't', partition: 3, key: Buffer.from('k1'), value: Buffer.from('payload'), headers: { a: Buffer.from('x'), b: Buffer.from([1, 2]) }, timestamp: 42, durability: 'relaxed' });
    expect(second).toEqual({ topic: 'u', key: null, value: null });
  });

  it('log records keep offsets, timestamps, keys, values and headers', () => {
    const records: LogRecord[] = [
      { topic: 't', partition: 1, offset: 7, timestamp: 1000, key: Buffer.from('k'), value: Buffer.from('v'), headers: { h: Buffer.from('1') } },
      { topic: 't', partition: 1, offset: 8, timestamp: 1001, key: null, value: null, headers: {} },
    ];
    const packed = packRecords(records);
    expect(unpackRecords('t', 1, structuredClone(packed, { transfer: [packed.bytes] }))).toEqual(records);
  });
});

describe('thread log: either end going away', () => {
  let dir: string;
  let owner: EmbeddedLog | undefined;
  afterEach(async () => {
    await owner?.close();
    owner = undefined;
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const open = async () => {
    dir = await mkdtemp(join(tmpdir(), 'sy-thread-unit-'));
    owner = await openEmbeddedLog({ dir, logger: silentLogger, fsync: 'never' });
    await owner.ensureTopics([{ name: 't', partitions: 1 }]);
    const { port1, port2 } = new MessageChannel();
    const served = serveLog(owner, port1);
    return { served, client: await ThreadLog.connect(port2), port1, port2 };
  };

  it('when the service thread goes away mid-batch, the batch is not committed and the owner closes its subscription', async () => {
    const { client, port2 } = await open();
    await owner!.append([{ topic: 't', partition: 0, value: Buffer.from('a') }]);
    const seen: Batch[] = [];
    await client.subscribe({
      groupId: 'g',
      topics: ['t'],
      // Never resolves: the service thread dies with the batch in hand.
      onBatch: (batch) => {
        seen.push(batch);
        return new Promise(() => {});
      },
    });
    await waitFor(() => seen.length === 1);
    port2.close();
    // Another member of the group gets the record again: nothing was committed for it.
    const again: string[] = [];
    const sub = await owner!.subscribe({ groupId: 'g', topics: ['t'], onBatch: async (b) => void again.push(...b.records.map((r) => r.value!.toString())) });
    await waitFor(() => again.length === 1);
    expect(again).toEqual(['a']);
    expect(await owner!.committedOffsets('g', 't')).toEqual([1]);
    await sub.close();
  });

  it('when the owner goes away, pending and later calls fail with SY_ERR_LOG_CLOSED', async () => {
    const { client, served } = await open();
    expect(await client.endOffsets('t')).toEqual([0]);
    await served.close();
    await expect(client.endOffsets('t')).rejects.toMatchObject({ code: 'SY_ERR_LOG_CLOSED' });
    await expect(client.append([{ topic: 't', value: Buffer.from('x') }])).rejects.toMatchObject({ code: 'SY_ERR_LOG_CLOSED' });
  });

  it('an owner’s error keeps its code and retriable flag', async () => {
    const { client } = await open();
    await expect(client.read({ topic: 'missing', partition: 0, from: 0 })).rejects.toMatchObject({ name: 'SwitchyardError', code: 'SY_ERR_LOG_UNKNOWN_TOPIC' });
    await client.close();
  });
});
