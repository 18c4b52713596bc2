import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../logger.js';
import type { Batch, Subscription, TopicPartitions } from '../port.js';
import { captureLogger, tempDir } from '../../../test/support/log-dir.js';
import { waitFor } from '../../../test/support/services.js';
import { rangeAssign, subtract } from './group.js';
import { openEmbeddedLog, type EmbeddedLog, type EmbeddedLogOptions } from './index.js';

describe('rangeAssign', () => {
  const counts: Record<string, number> = { a: 8, b: 3, c: 1 };
  const count = (t: string) => counts[t]!;

  it('gives each member of a topic a contiguous range, the first ones one more', () => {
    const out = rangeAssign(
      [
        { memberId: 'm1', topics: ['a'] },
        { memberId: 'm2', topics: ['a'] },
        { memberId: 'm3', topics: ['a'] },
      ],
      count,
    );
    expect(out.get('m1')).toEqual([{ topic: 'a', partitions: [0, 1, 2] }]);
    expect(out.get('m2')).toEqual([{ topic: 'a', partitions: [3, 4, 5] }]);
    expect(out.get('m3')).toEqual([{ topic: 'a', partitions: [6, 7] }]);
  });

  it('splits each topic among its own subscribers only; extra members get nothing', () => {
    const out = rangeAssign(
      [
        { memberId: 'm1', topics: ['a', 'c'] },
        { memberId: 'm2', topics: ['b', 'c'] },
        { memberId: 'm3', topics: ['c'] },
      ],
      count,
    );
    expect(out.get('m1')).toEqual([
      { topic: 'a', partitions: [0, 1, 2, 3, 4, 5, 6, 7] },
      { topic: 'c', partitions: [0] },
    ]);
    expect(out.get('m2')).toEqual([{ topic: 'b', partitions: [0, 1, 2] }]);
    expect(out.get('m3')).toEqual([]);
  });

  it('subtract leaves the partitions a member loses', () => {
    expect(
      subtract(
        [
          { topic: 'a', partitions: [0, 1, 2] },
          { topic: 'b', partitions: [0] },
        ],
        [{ topic: 'a', partitions: [1] }],
      ),
    ).toEqual([
      { topic: 'a', partitions: [0, 2] },
      { topic: 'b', partitions: [0] },
    ]);
  });
});

describe('embedded consumer groups', () => {
  const TOPIC = 'requests';
  let dir: string;
  let remove: () => Promise<void>;
  let log: EmbeddedLog;
  let subs: Subscription[];

  beforeEach(async () => {
    ({ dir, remove } = await tempDir('sy-groups-'));
    subs = [];
  });
  afterEach(async () => {
    await Promise.allSettled(subs.map((s) => s.close()));
    await log.close();
    await remove();
  });

  const openLog = async (options: Omit<EmbeddedLogOptions, 'dir'> = {}) => {
    log = await openEmbeddedLog({ dir, fsync: 'never', logger: silentLogger, retryBackoffMs: 5, ...options });
    await log.ensureTopics([{ name: TOPIC, partitions: 6 }]);
    return log;
  };
  const member = async (groupId: string, onBatch: (b: Batch) => Promise<void>, assignments?: TopicPartitions[][]) => {
    const sub = await log.subscribe({ groupId, topics: [TOPIC], onBatch, onAssigned: (a) => assignments?.push(a) });
    subs.push(sub);
    return sub;
  };
  const owned = (sub: Subscription) => sub.assigned().flatMap((tp) => tp.partitions);

  it('three members split six partitions two each; when one leaves, the others take its partitions', async () => {
    await openLog();
    const notes: TopicPartitions[][] = [];
    const a = await member('g', async () => {}, notes);
    expect(owned(a)).toEqual([0, 1, 2, 3, 4, 5]);
    const b = await member('g', async () => {});
    const c = await member('g', async () => {});
    // subscribe resolves after the rebalance that placed the new member.
    expect([owned(a), owned(b), owned(c)]).toEqual([
      [0, 1],
      [2, 3],
      [4, 5],
    ]);
    expect(notes.map((n) => n.flatMap((tp) => tp.partitions))).toEqual([[0, 1, 2, 3, 4, 5], [0, 1, 2], [0, 1]]);
    await b.close();
    expect([owned(a), owned(c)]).toEqual([
      [0, 1, 2],
      [3, 4, 5],
    ]);
    expect(b.assigned()).toEqual([]);
  });

  it('a rebalance waits for the batch in hand: it finishes and commits before its partition moves', async () => {
    await openLog();
    await log.append(Array.from({ length: 60 }, (_, i) => ({ topic: TOPIC, partition: i % 6, value: Buffer.from(`r${i}`) })));
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let holding = false;
    const seenA: string[] = [];
    const seenB: string[] = [];
    await member('g', async (batch) => {
      if (batch.partition === 5 && !holding) {
        holding = true;
        await gate; // partition 5's batch is in hand while B joins
      }
      seenA.push(...batch.records.map((r) => r.value!.toString()));
    });
    await waitFor(() => holding && seenA.length === 50, { timeoutMs: 5_000, what: 'A holding partition 5' });
    let joined = false;
    const joining = member('g', async (batch) => void seenB.push(...batch.records.map((r) => r.value!.toString()))).then((s) => {
      joined = true;
      return s;
    });
    await new Promise((r) => setTimeout(r, 50));
    expect(joined).toBe(false);
    release();
    const b = await joining;
    expect(owned(b)).toEqual([3, 4, 5]);
    expect(await log.committedOffsets('g', TOPIC)).toEqual([10, 10, 10, 10, 10, 10]);
    await log.append(Array.from({ length: 6 }, (_, i) => ({ topic: TOPIC, partition: i, value: Buffer.from(`late${i}`) })));
    await waitFor(() => seenA.length + seenB.length === 66, { timeoutMs: 5_000, what: 'all records' });
    expect(new Set([...seenA, ...seenB]).size).toBe(66);
    expect(seenB.sort()).toEqual(['late3', 'late4', 'late5']);
  });

  it('groups are independent: each group gets every record', async () => {
    await openLog();
    await log.append(Array.from({ length: 12 }, (_, i) => ({ topic: TOPIC, partition: i % 6, value: Buffer.from(`r${i}`) })));
    const x: string[] = [];
    const y: string[] = [];
    await member('x', async (b) => void x.push(...b.records.map((r) => r.value!.toString())));
    await member('y', async (b) => void y.push(...b.records.map((r) => r.value!.toString())));
    await waitFor(() => x.length === 12 && y.length === 12, { timeoutMs: 5_000, what: 'both groups' });
    expect(x.sort()).toEqual(y.sort());
  });

  it('onBatch failures go to onConsumerError and the logger, with their context, and are retried', async () => {
    const errors: { err: unknown; stage: string; attempt: number; partition: number }[] = [];
    const capture = captureLogger();
    await openLog({
      logger: capture.logger,
      onConsumerError: (err, ctx) => errors.push({ err, stage: ctx.stage, attempt: ctx.attempt, partition: ctx.partition }),
    });
    await log.append([{ topic: TOPIC, partition: 2, value: Buffer.from('poison-ish') }]);
    let calls = 0;
    await member('g', async () => {
      if (++calls <= 3) throw new Error(`failure ${calls}`);
    });
    await waitFor(() => calls === 4, { timeoutMs: 5_000, what: 'the fourth delivery' });
    expect(errors.map((e) => [e.stage, e.attempt, e.partition, (e.err as Error).message])).toEqual([
      ['onBatch', 1, 2, 'failure 1'],
      ['onBatch', 2, 2, 'failure 2'],
      ['onBatch', 3, 2, 'failure 3'],
    ]);
    const warnings = capture.lines.filter((l) => l.msg.includes('onBatch failed'));
    expect(warnings.length).toBe(3);
    expect(warnings[0]).toMatchObject({ groupId: 'g', topic: TOPIC, partition: 2, attempt: 1, err: 'failure 1', firstOffset: 0, records: 1 });
    await waitFor(async () => (await log.committedOffsets('g', TOPIC))[2] === 1, { timeoutMs: 5_000, what: 'the commit' });
  });

  it('closing a subscription during retries stops redelivering and leaves the batch uncommitted', async () => {
    await openLog({ retryBackoffMs: 1_000 });
    await log.append([{ topic: TOPIC, partition: 0, value: Buffer.from('x') }]);
    let calls = 0;
    const sub = await member('g', async () => {
      calls++;
      throw new Error('always fails');
    });
    await waitFor(() => calls === 1, { timeoutMs: 5_000, what: 'the first delivery' });
    const started = Date.now();
    await sub.close();
    expect(Date.now() - started).toBeLessThan(900); // well under the 1 s backoff it cut short
    expect(calls).toBe(1);
    expect((await log.committedOffsets('g', TOPIC))[0]).toBe(-1);
  });

  it('closing the log closes its subscriptions (the batch in hand commits)', async () => {
    await openLog();
    await log.append([{ topic: TOPIC, partition: 1, value: Buffer.from('x') }]);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let inHand = false;
    await member('g', async () => {
      inHand = true;
      await gate;
    });
    await waitFor(() => inHand, { timeoutMs: 5_000, what: 'the batch in hand' });
    const closing = log.close();
    release();
    await closing;
    log = await openEmbeddedLog({ dir, fsync: 'never', logger: silentLogger });
    expect((await log.committedOffsets('g', TOPIC))[1]).toBe(1);
  });
});
