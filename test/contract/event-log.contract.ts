import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SwitchyardError } from '../../lib/errors.js';
import { readCompacted } from '../../lib/log/compacted.js';
import { partitionForKey } from '../../lib/log/partitioner.js';
import type { AppendRecord, Batch, EventLog, LogRecord, SubscribeOptions, Subscription, TopicPartitions } from '../../lib/log/port.js';
import { uniqueName, waitFor } from '../support/services.js';

/** What an adapter's test file hands the suite, once per test. */
export interface EventLogFixture {
  log: EventLog;
  /**
   * A new `EventLog` over the same storage (embedded: the same directory; Kafka: a new
   * client). The suite closes the current log before calling it. Tests that need it are
   * skipped when it is absent.
   */
  reopen?: () => Promise<EventLog>;
  /** Releases whatever the fixture made (closing any log it opened that is still open). */
  cleanup: () => Promise<void>;
}

/** Waits generous enough for a real broker (rebalances take seconds); adapters pass far sooner. */
const WAIT = { timeoutMs: 25_000 };

/** Consumed records, in delivery order, plus the batches they came in. */
interface Collector {
  records: LogRecord[];
  batches: Batch[];
  onBatch: (batch: Batch) => Promise<void>;
  values: () => string[];
}

function collector(): Collector {
  const c: Collector = {
    records: [],
    batches: [],
    onBatch: async (batch) => {
      c.batches.push(batch);
      c.records.push(...batch.records);
    },
    values: () => c.records.map((r) => r.value?.toString() ?? '<null>'),
  };
  return c;
}

const text = (r: LogRecord): string => r.value?.toString() ?? '<null>';
const partitionsOf = (assigned: TopicPartitions[], topic: string): number[] =>
  assigned
    .filter((tp) => tp.topic === topic)
    .flatMap((tp) => tp.partitions)
    .sort((a, b) => a - b);
const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);
const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

async function rejectsWithCode(promise: Promise<unknown>, code: string): Promise<void> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, `expected a rejection with ${code}`).toBeInstanceOf(SwitchyardError);
  expect((err as SwitchyardError).code).toBe(code);
}

/**
 * The `EventLog` contract: one adapter-agnostic suite that every adapter passes (STYLE.md
 * habit 2). Each test uses its own random topic and group names and waits with deadlines,
 * never fixed sleeps, so it runs unchanged against Kafka, where group joins and
 * rebalances take seconds.
 */
export function testEventLog(name: string, factory: () => Promise<EventLogFixture>): void {
  describe(`EventLog contract [${name}]`, () => {
    let log: EventLog;
    let reopen: (() => Promise<EventLog>) | undefined;
    let cleanup: () => Promise<void>;
    let subscriptions: Subscription[];

    beforeEach(async () => {
      ({ log, reopen, cleanup } = await factory());
      subscriptions = [];
    });

    afterEach(async () => {
      await Promise.allSettled(subscriptions.map((s) => s.close()));
      await log.close();
      await cleanup();
    });

    const subscribe = async (options: SubscribeOptions): Promise<Subscription> => {
      const sub = await log.subscribe(options);
      subscriptions.push(sub);
      return sub;
    };

    const topicWith = async (partitions: number, extra: { compacted?: boolean } = {}): Promise<string> => {
      const topic = uniqueName('sy-contract');
      await log.ensureTopics([{ name: topic, partitions, ...extra }]);
      return topic;
    };

    const appendValues = (topic: string, partition: number, values: string[]) =>
      log.append(values.map((v) => ({ topic, partition, value: Buffer.from(v) })));

    /** Closes the log and opens it again over the same storage. */
    const restart = async (): Promise<void> => {
      await Promise.allSettled(subscriptions.map((s) => s.close()));
      subscriptions = [];
      await log.close();
      log = await reopen!();
    };

    describe('topics', () => {
      it('ensureTopics creates topics with their partition counts and is idempotent', async () => {
        const a = uniqueName('sy-contract');
        const b = uniqueName('sy-contract');
        await log.ensureTopics([
          { name: a, partitions: 3 },
          { name: b, partitions: 1, compacted: true },
        ]);
        expect(await log.partitionCount(a)).toBe(3);
        expect(await log.partitionCount(b)).toBe(1);
        await log.ensureTopics([{ name: a, partitions: 3 }]);
        // An existing topic is left as it is, even when asked with another count.
        await log.ensureTopics([{ name: a, partitions: 5 }]);
        expect(await log.partitionCount(a)).toBe(3);
        expect(await log.partitionCount(uniqueName('sy-missing'))).toBeUndefined();
      });

      it('an unknown topic or partition fails with a stable code', async () => {
        const missing = uniqueName('sy-missing');
        const topic = await topicWith(2);
        await rejectsWithCode(log.append([{ topic: missing, value: Buffer.from('x') }]), 'SY_ERR_LOG_UNKNOWN_TOPIC');
        await rejectsWithCode(log.read({ topic: missing, partition: 0, from: 0 }), 'SY_ERR_LOG_UNKNOWN_TOPIC');
        await rejectsWithCode(log.endOffsets(missing), 'SY_ERR_LOG_UNKNOWN_TOPIC');
        await rejectsWithCode(log.startOffsets(missing), 'SY_ERR_LOG_UNKNOWN_TOPIC');
        await rejectsWithCode(log.committedOffsets(uniqueName('sy-group'), missing), 'SY_ERR_LOG_UNKNOWN_TOPIC');
        await rejectsWithCode(log.subscribe({ groupId: uniqueName('sy-group'), topics: [missing], onBatch: async () => {} }), 'SY_ERR_LOG_UNKNOWN_TOPIC');
        await rejectsWithCode(log.append([{ topic, partition: 2, value: Buffer.from('x') }]), 'SY_ERR_LOG_BAD_PARTITION');
        await rejectsWithCode(log.read({ topic, partition: 5, from: 0 }), 'SY_ERR_LOG_BAD_PARTITION');
      });
    });

    describe('append and read', () => {
      it('offsets start at 0 and grow by one per record, per partition, in call order', async () => {
        const topic = await topicWith(2);
        const first = await log.append([
          { topic, partition: 0, value: Buffer.from('a0') },
          { topic, partition: 1, value: Buffer.from('b0') },
          { topic, partition: 0, value: Buffer.from('a1') },
          { topic, partition: 0, value: Buffer.from('a2') },
          { topic, partition: 1, value: Buffer.from('b1') },
        ]);
        expect(first).toEqual([
          { topic, partition: 0, offset: 0 },
          { topic, partition: 1, offset: 0 },
          { topic, partition: 0, offset: 1 },
          { topic, partition: 0, offset: 2 },
          { topic, partition: 1, offset: 1 },
        ]);
        const second = await appendValues(topic, 0, ['a3', 'a4']);
        expect(second.map((p) => p.offset)).toEqual([3, 4]);
        expect(await log.endOffsets(topic)).toEqual([5, 2]);
        expect(await log.startOffsets(topic)).toEqual([0, 0]);
        expect((await log.read({ topic, partition: 0, from: 0 })).map(text)).toEqual(['a0', 'a1', 'a2', 'a3', 'a4']);
        expect((await log.read({ topic, partition: 1, from: 0 })).map(text)).toEqual(['b0', 'b1']);
      });

      it('concurrent appends keep each call in order and every record where its position says', async () => {
        const topic = await topicWith(1);
        const calls = range(10).map((c) => range(5).map((i) => `c${c}-r${i}`));
        const positions = await Promise.all(calls.map((values) => appendValues(topic, 0, values)));
        const byOffset = new Map<number, string>();
        positions.forEach((ps, c) => {
          const offsets = ps.map((p) => p.offset);
          expect(offsets).toEqual([...offsets].sort((a, b) => a - b));
          ps.forEach((p, i) => byOffset.set(p.offset, calls[c]![i]!));
        });
        expect([...byOffset.keys()].sort((a, b) => a - b)).toEqual(range(50));
        const records = await log.read({ topic, partition: 0, from: 0 });
        expect(records.map((r) => r.offset)).toEqual(range(50));
        for (const r of records) expect(text(r)).toBe(byOffset.get(r.offset));
      });

      it('keyed records land on partitionForKey(key, partitions); an explicit partition wins', async () => {
        const topic = await topicWith(6);
        const keys = range(60).map((i) => `session-${i}`);
        const records: AppendRecord[] = keys.map((key, i) => (i % 2 === 0 ? { topic, key, value: Buffer.from(key) } : { topic, key: Buffer.from(key), value: Buffer.from(key) }));
        const positions = await log.append(records);
        positions.forEach((p, i) => expect(p.partition, keys[i]).toBe(partitionForKey(Buffer.from(keys[i]!), 6)));
        expect(new Set(positions.map((p) => p.partition)).size).toBeGreaterThan(1);
        for (const p of positions.slice(0, 5)) {
          const [r] = await log.read({ topic, partition: p.partition, from: p.offset, maxRecords: 1 });
          expect(r!.key!.toString()).toBe(text(r!));
        }
        const [pinned] = await log.append([{ topic, key: 'session-0', partition: (partitionForKey(Buffer.from('session-0'), 6) + 1) % 6, value: Buffer.from('x') }]);
        expect(pinned!.partition).toBe((partitionForKey(Buffer.from('session-0'), 6) + 1) % 6);
      });

      it('keyless records without a partition go to valid partitions and are all readable', async () => {
        const topic = await topicWith(3);
        const positions = [...(await appendManyKeyless(log, topic, 10)), ...(await appendManyKeyless(log, topic, 10)), ...(await appendManyKeyless(log, topic, 1))];
        for (const p of positions) expect(p.partition >= 0 && p.partition < 3).toBe(true);
        expect(sum(await log.endOffsets(topic))).toBe(21);
        const all = (await Promise.all(range(3).map((partition) => log.read({ topic, partition, from: 0 })))).flat();
        expect(all.map(text).sort()).toEqual(positions.map((_, i) => `keyless-${i % 10}`).sort());
      });

      it('keys, values, headers and timestamps roundtrip', async () => {
        const topic = await topicWith(1);
        const binary = Buffer.from([0, 1, 2, 0xfe, 0xff]);
        await log.append([
          { topic, partition: 0, key: binary, value: binary, headers: { bytes: binary, text: 'héllo', empty: '' }, timestamp: 1_700_000_000_123 },
          { topic, partition: 0, key: 'k', value: null, timestamp: 1_700_000_000_456 },
          { topic, partition: 0, value: Buffer.from('no key, no headers') },
        ]);
        const [a, b, c] = await log.read({ topic, partition: 0, from: 0 });
        expect(a).toMatchObject({ topic, partition: 0, offset: 0, timestamp: 1_700_000_000_123 });
        expect(a!.key).toEqual(binary);
        expect(a!.value).toEqual(binary);
        expect(Object.keys(a!.headers).sort()).toEqual(['bytes', 'empty', 'text']);
        expect(Buffer.isBuffer(a!.headers.bytes)).toBe(true);
        expect(a!.headers.bytes).toEqual(binary);
        expect(a!.headers.text!.toString('utf8')).toBe('héllo');
        expect(a!.headers.empty!.length).toBe(0);
        expect(b).toMatchObject({ offset: 1, value: null, timestamp: 1_700_000_000_456 });
        expect(b!.key!.toString()).toBe('k');
        expect(c!.key).toBeNull();
        expect(c!.headers).toEqual({});
        expect(typeof c!.timestamp).toBe('number');
        expect(Number.isFinite(c!.timestamp)).toBe(true);
      });

      it('range reads return [from, to) capped by maxRecords, from anywhere in the partition', async () => {
        const topic = await topicWith(1);
        const values = range(40).map((i) => `r${i}`);
        for (let i = 0; i < 40; i += 10) await appendValues(topic, 0, values.slice(i, i + 10));
        const read = async (r: { from: number; to?: number; maxRecords?: number }) => (await log.read({ topic, partition: 0, ...r })).map((x) => x.offset);
        expect(await read({ from: 0 })).toEqual(range(40));
        expect(await read({ from: 17, to: 23 })).toEqual([17, 18, 19, 20, 21, 22]);
        expect(await read({ from: 25, maxRecords: 3 })).toEqual([25, 26, 27]);
        expect(await read({ from: 5, to: 30, maxRecords: 4 })).toEqual([5, 6, 7, 8]);
        expect(await read({ from: 39 })).toEqual([39]);
        expect(await read({ from: 36, to: 1_000 })).toEqual([36, 37, 38, 39]);
        expect(await read({ from: 40 })).toEqual([]);
        expect(await read({ from: 12, to: 12 })).toEqual([]);
        const middle = await log.read({ topic, partition: 0, from: 31, to: 33 });
        expect(middle.map(text)).toEqual(['r31', 'r32']);
      });

      it('start and end offsets per partition', async () => {
        const topic = await topicWith(3);
        expect(await log.startOffsets(topic)).toEqual([0, 0, 0]);
        expect(await log.endOffsets(topic)).toEqual([0, 0, 0]);
        await appendValues(topic, 0, ['a', 'b', 'c']);
        await appendValues(topic, 2, ['d']);
        expect(await log.endOffsets(topic)).toEqual([3, 0, 1]);
        expect(await log.startOffsets(topic)).toEqual([0, 0, 0]);
      });

      it('readCompacted gives the latest value per key; a tombstone removes the key', async () => {
        const topic = await topicWith(2, { compacted: true });
        await log.append([
          { topic, key: 'k1', value: Buffer.from('v1') },
          { topic, key: 'k2', value: Buffer.from('v2') },
          { topic, key: 'k3', value: Buffer.from('v3') },
        ]);
        await log.append([
          { topic, key: 'k1', value: Buffer.from('v1b') },
          { topic, key: 'k2', value: null },
        ]);
        await log.append([{ topic, key: 'k1', value: Buffer.from('v1c') }]);
        const latest = await readCompacted(log, topic);
        expect([...latest.keys()].sort()).toEqual(['k1', 'k3']);
        expect(text(latest.get('k1')!)).toBe('v1c');
        expect(text(latest.get('k3')!)).toBe('v3');
      });
    });

    describe('consumer groups', () => {
      it('committedOffsets is -1 for every partition before a group commits', async () => {
        const topic = await topicWith(3);
        await appendValues(topic, 1, ['x']);
        expect(await log.committedOffsets(uniqueName('sy-group'), topic)).toEqual([-1, -1, -1]);
      });

      it('a group consumes every record once, per partition in offset order, and commits after each batch', async () => {
        const topic = await topicWith(3);
        const records = range(60).map((i) => ({ topic, key: `key-${i % 7}`, value: Buffer.from(`v${i}`) }));
        await log.append(records.slice(0, 30));
        await log.append(records.slice(30));
        const groupId = uniqueName('sy-group');
        const c = collector();
        await subscribe({ groupId, topics: [topic], maxBatchRecords: 4, onBatch: c.onBatch });
        await waitFor(() => c.records.length >= 60, { ...WAIT, what: '60 records' });
        expect(c.values().sort()).toEqual(records.map((r) => r.value.toString()).sort());
        for (const batch of c.batches) {
          expect(batch.topic).toBe(topic);
          expect(batch.records.length).toBeGreaterThan(0);
          expect(batch.records.length).toBeLessThanOrEqual(4);
          for (const r of batch.records) expect(r.partition).toBe(batch.partition);
          expect(batch.highWatermark).toBeGreaterThanOrEqual(batch.records[batch.records.length - 1]!.offset + 1);
        }
        const ends = await log.endOffsets(topic);
        for (const partition of range(3)) {
          const offsets = c.records.filter((r) => r.partition === partition).map((r) => r.offset);
          expect(offsets).toEqual(range(ends[partition]!));
        }
        await waitFor(async () => JSON.stringify(await log.committedOffsets(groupId, topic)) === JSON.stringify(ends.map((e) => (e === 0 ? -1 : e))), {
          ...WAIT,
          what: 'commits up to the end offsets',
        });
      });

      it('appends after subscribe are delivered promptly', async () => {
        const topic = await topicWith(2);
        const c = collector();
        const sub = await subscribe({ groupId: uniqueName('sy-group'), topics: [topic], onBatch: c.onBatch });
        await waitFor(() => partitionsOf(sub.assigned(), topic).length === 2, { ...WAIT, what: 'assignment' });
        const latencies: number[] = [];
        for (let i = 0; i < 5; i++) {
          const started = Date.now();
          await appendValues(topic, i % 2, [`live-${i}`]);
          await waitFor(() => c.values().includes(`live-${i}`), { ...WAIT, intervalMs: 2, what: `live-${i}` });
          latencies.push(Date.now() - started);
        }
        // Generous for a broker's fetch wait; an embedded log takes milliseconds.
        expect(Math.max(...latencies)).toBeLessThan(3_000);
      });

      it('fromBeginning: false skips what was there before the group first started', async () => {
        const topic = await topicWith(1);
        await appendValues(topic, 0, ['old-1', 'old-2', 'old-3']);
        const c = collector();
        await subscribe({ groupId: uniqueName('sy-group'), topics: [topic], fromBeginning: false, onBatch: c.onBatch });
        // When "latest" is resolved differs between adapters; keep appending probes until one arrives.
        let probes = 0;
        await waitFor(
          async () => {
            if (c.records.length > 0) return true;
            await appendValues(topic, 0, [`probe-${probes++}`]);
            return false;
          },
          { ...WAIT, intervalMs: 200, what: 'a probe' },
        );
        expect(c.values().filter((v) => v.startsWith('old-'))).toEqual([]);
      });

      it('a group resumes after its last committed offset: nothing lost, nothing committed delivered again', async () => {
        const topic = await topicWith(2);
        const groupId = uniqueName('sy-group');
        await appendValues(topic, 0, range(6).map((i) => `first-${i}`));
        await appendValues(topic, 1, range(4).map((i) => `first-p1-${i}`));
        const c1 = collector();
        const sub1 = await subscribe({ groupId, topics: [topic], maxBatchRecords: 3, onBatch: c1.onBatch });
        await waitFor(() => c1.records.length >= 10, { ...WAIT, what: 'first 10' });
        await sub1.close();
        expect(await log.committedOffsets(groupId, topic)).toEqual([6, 4]);
        await appendValues(topic, 0, ['second-0', 'second-1']);
        await appendValues(topic, 1, ['second-p1-0']);
        const c2 = collector();
        await subscribe({ groupId, topics: [topic], onBatch: c2.onBatch });
        await waitFor(() => c2.records.length >= 3, { ...WAIT, what: 'the 3 new records' });
        expect(c2.values().sort()).toEqual(['second-0', 'second-1', 'second-p1-0']);
        expect(c2.records.map((r) => `${r.partition}:${r.offset}`).sort()).toEqual(['0:6', '0:7', '1:4']);
        await waitFor(async () => JSON.stringify(await log.committedOffsets(groupId, topic)) === '[8,5]', { ...WAIT, what: 'commits' });
      });

      it('closing a subscription waits for the batch in hand and commits it', async () => {
        const topic = await topicWith(1);
        const groupId = uniqueName('sy-group');
        await appendValues(topic, 0, ['a', 'b', 'c']);
        let inHand!: () => void;
        const handed = new Promise<void>((resolve) => (inHand = resolve));
        let release!: () => void;
        const released = new Promise<void>((resolve) => (release = resolve));
        const seen: string[] = [];
        const sub = await subscribe({
          groupId,
          topics: [topic],
          onBatch: async (batch) => {
            inHand();
            await released;
            seen.push(...batch.records.map(text));
          },
        });
        await handed;
        const closing = sub.close();
        release();
        await closing;
        expect(seen).toEqual(['a', 'b', 'c']);
        expect(await log.committedOffsets(groupId, topic)).toEqual([3]);
      });

      it('two members of a group split the partitions disjointly and together see every record exactly once', async () => {
        const topic = await topicWith(4);
        const groupId = uniqueName('sy-group');
        const a = collector();
        const b = collector();
        const assignedA: TopicPartitions[][] = [];
        const assignedB: TopicPartitions[][] = [];
        const subA = await subscribe({ groupId, topics: [topic], onBatch: a.onBatch, onAssigned: (x) => assignedA.push(x) });
        await waitFor(() => partitionsOf(subA.assigned(), topic).length === 4, { ...WAIT, what: 'A owns all partitions' });
        const subB = await subscribe({ groupId, topics: [topic], onBatch: b.onBatch, onAssigned: (x) => assignedB.push(x) });
        const split = () => {
          const pa = partitionsOf(subA.assigned(), topic);
          const pb = partitionsOf(subB.assigned(), topic);
          return pa.length > 0 && pb.length > 0 && [...pa, ...pb].sort().join() === '0,1,2,3';
        };
        await waitFor(split, { ...WAIT, what: 'a disjoint split of 4 partitions' });
        const pa = partitionsOf(subA.assigned(), topic);
        const pb = partitionsOf(subB.assigned(), topic);
        expect(pa.filter((p) => pb.includes(p))).toEqual([]);
        expect(partitionsOf(assignedA[assignedA.length - 1]!, topic)).toEqual(pa);
        expect(partitionsOf(assignedB[assignedB.length - 1]!, topic)).toEqual(pb);

        const records = range(80).map((i) => ({ topic, partition: i % 4, value: Buffer.from(`m${i}`) }));
        await log.append(records);
        await waitFor(() => a.records.length + b.records.length >= 80, { ...WAIT, what: '80 records across both members' });
        const all = [...a.values(), ...b.values()];
        expect(all.sort()).toEqual(records.map((r) => r.value.toString()).sort());
        expect(new Set(all).size).toBe(80);
        for (const r of a.records) expect(pa).toContain(r.partition);
        for (const r of b.records) expect(pb).toContain(r.partition);
      });

      it('when a member leaves, the others take over its partitions and nothing is lost', async () => {
        const topic = await topicWith(4);
        const groupId = uniqueName('sy-group');
        const a = collector();
        const b = collector();
        const subA = await subscribe({ groupId, topics: [topic], onBatch: a.onBatch });
        await waitFor(() => partitionsOf(subA.assigned(), topic).length === 4, { ...WAIT, what: 'A owns all partitions' });
        const subB = await subscribe({ groupId, topics: [topic], onBatch: b.onBatch });
        await waitFor(() => partitionsOf(subB.assigned(), topic).length > 0 && partitionsOf(subA.assigned(), topic).length < 4, { ...WAIT, what: 'B joins' });
        await log.append(range(40).map((i) => ({ topic, partition: i % 4, value: Buffer.from(`before-${i}`) })));
        await waitFor(() => a.records.length + b.records.length >= 40, { ...WAIT, what: 'the first 40' });
        await subB.close();
        await waitFor(() => partitionsOf(subA.assigned(), topic).length === 4, { ...WAIT, what: 'A takes B’s partitions back' });
        await log.append(range(40).map((i) => ({ topic, partition: i % 4, value: Buffer.from(`after-${i}`) })));
        await waitFor(() => a.values().filter((v) => v.startsWith('after-')).length >= 40, { ...WAIT, what: 'A gets the next 40' });
        const seen = new Set([...a.values(), ...b.values()]);
        for (const i of range(40)) {
          expect(seen.has(`before-${i}`)).toBe(true);
          expect(seen.has(`after-${i}`)).toBe(true);
        }
      });

      it('static assignment consumes exactly the given partitions', async () => {
        const topic = await topicWith(4);
        for (const p of range(4)) await appendValues(topic, p, range(5).map((i) => `p${p}-${i}`));
        const c = collector();
        const notified: TopicPartitions[][] = [];
        const groupId = uniqueName('sy-lane');
        const sub = await subscribe({
          groupId,
          topics: [topic],
          assignment: { kind: 'static', partitions: [{ topic, partitions: [1, 3] }] },
          onBatch: c.onBatch,
          onAssigned: (x) => notified.push(x),
        });
        await waitFor(() => c.records.length >= 10, { ...WAIT, what: '10 records of lanes 1 and 3' });
        expect(partitionsOf(sub.assigned(), topic)).toEqual([1, 3]);
        expect(notified.length).toBeGreaterThan(0);
        expect(partitionsOf(notified[notified.length - 1]!, topic)).toEqual([1, 3]);
        await appendValues(topic, 0, ['late-p0']);
        await appendValues(topic, 3, ['late-p3']);
        await waitFor(() => c.values().includes('late-p3'), { ...WAIT, what: 'late-p3' });
        expect(new Set(c.records.map((r) => r.partition))).toEqual(new Set([1, 3]));
        expect(c.values().sort()).toEqual([...range(5).map((i) => `p1-${i}`), ...range(5).map((i) => `p3-${i}`), 'late-p3'].sort());
        await waitFor(async () => JSON.stringify(await log.committedOffsets(groupId, topic)) === '[-1,5,-1,6]', { ...WAIT, what: 'lane commits' });
      });

      it('follow: the given partitions in offset order, live, without a group — nothing committed, and a restart reads from the beginning again', async () => {
        const topic = await topicWith(3);
        for (const p of range(3)) await appendValues(topic, p, range(4).map((i) => `p${p}-${i}`));
        const groupId = uniqueName('sy-view');
        const c = collector();
        const notified: TopicPartitions[][] = [];
        const sub = await subscribe({
          groupId,
          topics: [topic],
          maxBatchRecords: 3,
          assignment: { kind: 'follow', partitions: [{ topic, partitions: [2, 0] }] },
          onBatch: c.onBatch,
          onAssigned: (x) => notified.push(x),
        });
        expect(partitionsOf(sub.assigned(), topic)).toEqual([0, 2]);
        expect(partitionsOf(notified[0]!, topic)).toEqual([0, 2]);
        await waitFor(() => c.records.length >= 8, { ...WAIT, what: '8 records of partitions 0 and 2' });
        await appendValues(topic, 1, ['late-p1']);
        await appendValues(topic, 2, ['late-p2']);
        await waitFor(() => c.values().includes('late-p2'), { ...WAIT, what: 'late-p2' });
        for (const partition of [0, 2]) expect(c.records.filter((r) => r.partition === partition).map((r) => r.offset)).toEqual(range(partition === 2 ? 5 : 4));
        expect(c.records.some((r) => r.partition === 1)).toBe(false);
        expect(Math.max(...c.batches.map((b) => b.records.length))).toBeLessThanOrEqual(3);
        await sub.close();
        expect(await log.committedOffsets(groupId, topic)).toEqual([-1, -1, -1]);
        // The same name again: no position was kept, so everything comes again.
        const again = collector();
        await subscribe({ groupId, topics: [topic], assignment: { kind: 'follow', partitions: [{ topic, partitions: [2] }] }, onBatch: again.onBatch });
        await waitFor(() => again.records.length >= 5, { ...WAIT, what: 'partition 2 again' });
        expect(again.values()).toEqual([...range(4).map((i) => `p2-${i}`), 'late-p2']);
      });

      it('follow with fromBeginning: false starts at the end', async () => {
        const topic = await topicWith(1);
        await appendValues(topic, 0, ['old-1', 'old-2']);
        const c = collector();
        await subscribe({ groupId: uniqueName('sy-view'), topics: [topic], fromBeginning: false, assignment: { kind: 'follow', partitions: [{ topic, partitions: [0] }] }, onBatch: c.onBatch });
        await appendValues(topic, 0, ['new-1']);
        await waitFor(() => c.records.length > 0, { ...WAIT, what: 'new-1' });
        expect(c.values()).toEqual(['new-1']);
        expect(c.records[0]!.offset).toBe(2);
      });

      it('a rejected onBatch is delivered again (at-least-once) and nothing is skipped', async () => {
        const topic = await topicWith(1);
        const groupId = uniqueName('sy-group');
        await appendValues(topic, 0, range(10).map((i) => `r${i}`));
        const attempts: number[][] = [];
        const handled: LogRecord[] = [];
        let failures = 0;
        await subscribe({
          groupId,
          topics: [topic],
          maxBatchRecords: 4,
          onBatch: async (batch) => {
            attempts.push(batch.records.map((r) => r.offset));
            // Fail the batch holding offset 4, twice.
            if (batch.records.some((r) => r.offset === 4) && failures < 2) {
              failures++;
              throw new Error('handler failed (on purpose)');
            }
            handled.push(...batch.records);
          },
        });
        await waitFor(() => handled.some((r) => r.offset === 9), { ...WAIT, what: 'the last record handled' });
        expect(failures).toBe(2);
        expect(attempts.filter((offsets) => offsets.includes(4)).length).toBe(3);
        expect(handled.map((r) => r.offset)).toEqual(range(10));
        await waitFor(async () => (await log.committedOffsets(groupId, topic))[0] === 10, { ...WAIT, what: 'commit after success' });
      });

      it('a burst across partitions is consumed exactly once with batching', async () => {
        const topic = await topicWith(3);
        const groupId = uniqueName('sy-group');
        const c = collector();
        await subscribe({ groupId, topics: [topic], maxBatchRecords: 100, onBatch: c.onBatch });
        const total = 3_000;
        await Promise.all(range(10).map((chunk) => log.append(range(total / 10).map((i) => ({ topic, key: `k${chunk}-${i}`, value: Buffer.from(`b${chunk * 1_000 + i}`) })))));
        await waitFor(() => c.records.length >= total, { ...WAIT, what: `${total} records` });
        expect(new Set(c.values()).size).toBe(total);
        expect(c.records.length).toBe(total);
        expect(c.batches.length).toBeLessThan(total);
        for (const partition of range(3)) {
          const offsets = c.records.filter((r) => r.partition === partition).map((r) => r.offset);
          expect(offsets).toEqual(range(offsets.length));
        }
      });
    });

    describe('across a reopen', () => {
      it('topics, records and offsets survive, and appends continue at the next offset', async (ctx) => {
        if (reopen === undefined) ctx.skip();
        const topic = await topicWith(2);
        await log.append(range(10).map((i) => ({ topic, key: `k${i}`, value: Buffer.from(`v${i}`), headers: { i: String(i) }, timestamp: 1_700_000_000_000 + i })));
        const ends = await log.endOffsets(topic);
        const before = await Promise.all(range(2).map((partition) => log.read({ topic, partition, from: 0 })));
        await restart();
        expect(await log.partitionCount(topic)).toBe(2);
        expect(await log.endOffsets(topic)).toEqual(ends);
        const after = await Promise.all(range(2).map((partition) => log.read({ topic, partition, from: 0 })));
        expect(after).toEqual(before);
        const [next] = await appendValues(topic, 0, ['after-reopen']);
        expect(next!.offset).toBe(ends[0]);
      });

      it('committed offsets survive, and the group resumes where it left off', async (ctx) => {
        if (reopen === undefined) ctx.skip();
        const topic = await topicWith(2);
        const groupId = uniqueName('sy-group');
        await log.append(range(10).map((i) => ({ topic, partition: i % 2, value: Buffer.from(`old-${i}`) })));
        const c1 = collector();
        const sub1 = await subscribe({ groupId, topics: [topic], onBatch: c1.onBatch });
        await waitFor(() => c1.records.length >= 10, { ...WAIT, what: 'first 10' });
        await sub1.close();
        const committed = await log.committedOffsets(groupId, topic);
        expect(committed).toEqual([5, 5]);
        await restart();
        expect(await log.committedOffsets(groupId, topic)).toEqual(committed);
        await log.append([
          { topic, partition: 0, value: Buffer.from('new-0') },
          { topic, partition: 1, value: Buffer.from('new-1') },
        ]);
        const c2 = collector();
        await subscribe({ groupId, topics: [topic], onBatch: c2.onBatch });
        await waitFor(() => c2.records.length >= 2, { ...WAIT, what: 'the 2 new records' });
        expect(c2.values().sort()).toEqual(['new-0', 'new-1']);
      });
    });
  });
}

async function appendManyKeyless(log: EventLog, topic: string, n: number) {
  return log.append(range(n).map((i) => ({ topic, value: Buffer.from(`keyless-${i}`) })));
}
