import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MessageChannel } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../logger.js';
import { waitFor } from '../../../test/support/services.js';
import { openEmbeddedLog, type EmbeddedLog } from '../embedded/index.js';
import type { Batch, LogRecord, TopicPartitions } from '../port.js';
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

  it('close waits for the calls in flight: an append sent before close is answered, not failed (a retry would duplicate it)', async () => {
    const { client } = await open();
    const appending = client.append([{ topic: 't', partition: 0, value: Buffer.from('x') }]);
    await client.close();
    await expect(appending).resolves.toEqual([{ topic: 't', partition: 0, offset: 0 }]);
    expect(await owner!.endOffsets('t')).toEqual([1]);
  });

  it('closing a subscription and then the log still commits the batch in hand', async () => {
    const { client } = await open();
    await owner!.append([{ topic: 't', partition: 0, value: Buffer.from('a') }]);
    let inHand = false;
    let handled = false;
    const sub = await client.subscribe({
      groupId: 'g',
      topics: ['t'],
      onBatch: async () => {
        inHand = true;
        await new Promise((r) => setTimeout(r, 100));
        handled = true;
      },
    });
    await waitFor(() => inHand);
    const closing = sub.close();
    await client.close();
    await closing;
    expect(handled).toBe(true);
    expect(await owner!.committedOffsets('g', 't')).toEqual([1]);
  });

  it('a throwing onAssigned is reported, and an onBatch that throws at once is a failed batch delivered again', async () => {
    const { client } = await open();
    await owner!.append([{ topic: 't', partition: 0, value: Buffer.from('a') }]);
    let calls = 0;
    await client.subscribe({
      groupId: 'g',
      topics: ['t'],
      onAssigned: () => {
        throw new Error('onAssigned threw');
      },
      onBatch: () => {
        if (++calls === 1) throw new Error('onBatch threw before returning a promise');
        return Promise.resolve();
      },
    });
    await waitFor(async () => (await owner!.committedOffsets('g', 't'))[0] === 1);
    expect(calls).toBe(2);
    await client.close();
  });

  it('assigned() is the newest assignment, even when a rebalance overtakes the subscribe reply', async () => {
    await open();
    await owner!.close();
    owner = await openEmbeddedLog({ dir, logger: silentLogger, fsync: 'never' });
    await owner.ensureTopics([{ name: 'four', partitions: 4 }]);
    const { port1, port2 } = new MessageChannel();
    serveLog(owner, port1);
    const client = await ThreadLog.connect(port2);
    const seen: TopicPartitions[][] = [];
    const [mine, other] = await Promise.all([
      client.subscribe({ groupId: 'g', topics: ['four'], onBatch: async () => {}, onAssigned: (a) => void seen.push(a) }),
      owner.subscribe({ groupId: 'g', topics: ['four'], onBatch: async () => {} }),
    ]);
    await waitFor(() => mine.assigned()[0]?.partitions.length === 2 && other.assigned()[0]?.partitions.length === 2);
    expect(mine.assigned()).toEqual(seen.at(-1));
    const together = [...mine.assigned()[0]!.partitions, ...other.assigned()[0]!.partitions].sort();
    expect(together).toEqual([0, 1, 2, 3]);
    await other.close();
    await client.close();
  });

  it('a call that cannot be sent fails alone; the calls sent with it are answered', async () => {
    const { client } = await open();
    const good = client.endOffsets('t');
    const bad = client.read({ topic: 't', partition: 0, from: 0, hook: () => 1 } as unknown as Parameters<ThreadLog['read']>[0]);
    const [g, b] = await Promise.allSettled([good, bad]);
    expect(g).toEqual({ status: 'fulfilled', value: [0] });
    expect(b).toMatchObject({ status: 'rejected', reason: { code: 'SY_ERR_LOG_BAD_RECORD' } });
    await client.close();
  });

  it('an owner’s error keeps its code and retriable flag', async () => {
    const { client } = await open();
    await expect(client.read({ topic: 'missing', partition: 0, from: 0 })).rejects.toMatchObject({ name: 'SwitchyardError', code: 'SY_ERR_LOG_UNKNOWN_TOPIC' });
    await client.close();
  });
});
