import { Admin, ConfigResourceTypes } from '@platformatic/kafka';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kafkaBrokers, requireKafka, uniqueName, waitFor } from '../../../test/support/services.js';
import { openKafkaLog } from '../kafka/adapter.js';
import type { EventLog, LogRecord, Subscription } from '../port.js';
import { topicLayout } from '../topics.js';
import { openPlatformaticLog } from './adapter.js';

// @platformatic/kafka-specific behaviour on a real broker (the kafkajs adapter's kafka.int.test.ts
// and retention.int.test.ts, and a group shared with a kafkajs member); the shared EventLog
// contract runs in platformatic.contract.int.test.ts.
describe('kafka adapter (platformatic) on a real broker', () => {
  let log: EventLog;
  const admin = new Admin({ clientId: 'platformatic-int-test', bootstrapBrokers: kafkaBrokers() });
  const extra: EventLog[] = [];

  beforeAll(async () => {
    await requireKafka();
    log = await openPlatformaticLog({ brokers: kafkaBrokers() });
  });
  afterAll(async () => {
    for (const l of extra) await l.close();
    await log?.close();
    await admin.close();
  });

  const configsOf = async (names: string[], keys: string[]) => {
    const described = await admin.describeConfigs({ resources: names.map((resourceName) => ({ resourceType: ConfigResourceTypes.TOPIC, resourceName, configurationKeys: keys })) });
    return (name: string, key: string) => described.find((r) => r.resourceName === name)?.configs.find((c) => c.name === key)?.value;
  };

  it('provisions the DESIGN.md topics with their partition counts and cleanup policies', async () => {
    const layout = topicLayout({ prefix: `${uniqueName('layout')}.`, lanes: 8 });
    await log.ensureTopics(Object.values(layout));
    await log.ensureTopics(Object.values(layout)); // idempotent
    expect(await log.partitionCount(layout.requests.name)).toBe(12);
    expect(await log.partitionCount(layout.decisions.name)).toBe(8);
    expect(await log.partitionCount(layout.control.name)).toBe(1);
    const config = await configsOf([layout.sessions.name, layout.heartbeats.name], ['cleanup.policy', 'retention.ms']);
    expect(config(layout.sessions.name, 'cleanup.policy')).toBe('compact');
    expect(config(layout.heartbeats.name, 'cleanup.policy')).toBe('delete');
    expect(config(layout.heartbeats.name, 'retention.ms')).toBe(String(6 * 3_600_000));
  });

  it('sets retention.bytes and a capped retention.ms on the topics that expire records, and neither on control or sessions', async () => {
    const budgeted = await openPlatformaticLog({ brokers: kafkaBrokers(), retentionBytes: 512 * 1024 * 1024, maxRetentionMs: 2 * 86_400_000 });
    extra.push(budgeted);
    const layout = topicLayout({ prefix: `${uniqueName('retention')}.`, lanes: 2 });
    await budgeted.ensureTopics(Object.values(layout));
    const config = await configsOf(Object.values(layout).map((t) => t.name), ['retention.ms', 'retention.bytes']);
    expect(config(layout.requests.name, 'retention.ms')).toBe(String(2 * 86_400_000));
    expect(config(layout.results.name, 'retention.ms')).toBe(String(2 * 86_400_000));
    expect(config(layout.heartbeats.name, 'retention.ms')).toBe(String(6 * 3_600_000));
    for (const t of [layout.requests, layout.decisions, layout.results, layout.heartbeats, layout.deadletter]) expect(config(t.name, 'retention.bytes')).toBe(String(512 * 1024 * 1024));
    expect(config(layout.control.name, 'retention.ms')).toBe('-1');
    expect(config(layout.control.name, 'retention.bytes')).toBe('-1');
    expect(config(layout.sessions.name, 'retention.bytes')).toBe('-1');
  });

  it('keeps per-partition order and distinct offsets under many concurrent appends (one idempotent request in flight)', async () => {
    const topic = uniqueName('concurrent');
    await log.ensureTopics([{ name: topic, partitions: 2 }]);
    const appends = Array.from({ length: 400 }, (_, i) => log.append([{ topic, partition: i % 2, value: Buffer.from(String(i)) }]));
    const positions = (await Promise.all(appends)).flat();
    for (const p of [0, 1]) {
      const mine = positions.filter((x) => x.partition === p).map((x) => x.offset);
      expect(new Set(mine).size).toBe(200);
      expect(Math.max(...mine)).toBe(199);
      const records = await log.read({ topic, partition: p, from: 0 });
      expect(records.map((r) => Number(r.value!.toString()))).toEqual(Array.from({ length: 200 }, (_, i) => i * 2 + p));
    }
  });

  it('a lane consumer (static assignment) reads only its partition while another lane reads the other', async () => {
    const topic = uniqueName('lanes');
    await log.ensureTopics([{ name: topic, partitions: 4 }]);
    await log.append(Array.from({ length: 40 }, (_, i) => ({ topic, partition: i % 4, value: Buffer.from(String(i)) })));
    const seen: Record<number, LogRecord[]> = { 1: [], 3: [] };
    const subs = await Promise.all(
      [1, 3].map((lane) =>
        log.subscribe({
          groupId: uniqueName(`worker-lane-${lane}`),
          topics: [topic],
          assignment: { kind: 'static', partitions: [{ topic, partitions: [lane] }] },
          onBatch: async (b) => void seen[lane]!.push(...b.records),
        }),
      ),
    );
    await waitFor(() => seen[1]!.length === 10 && seen[3]!.length === 10, { what: 'both lanes to drain' });
    expect(seen[1]!.every((r) => r.partition === 1)).toBe(true);
    expect(seen[3]!.every((r) => r.partition === 3)).toBe(true);
    expect(subs.map((s) => s.assigned())).toEqual([[{ topic, partitions: [1] }], [{ topic, partitions: [3] }]]);
    await Promise.all(subs.map((s) => s.close()));
  });

  it('appends records that fit the broker one by one but not together (its message.max.bytes is per record batch)', async () => {
    const topic = uniqueName('large');
    await log.ensureTopics([{ name: topic, partitions: 2 }]);
    const big = (n: number) => Buffer.alloc(600_000, n);
    const [pair, a, b] = await Promise.all([
      log.append([{ topic, partition: 0, value: big(1) }, { topic, partition: 0, value: big(2) }]),
      log.append([{ topic, partition: 1, value: big(3) }]),
      log.append([{ topic, partition: 1, value: big(4) }]),
    ]);
    expect([...pair, ...a, ...b].map((p) => [p.partition, p.offset])).toEqual([[0, 0], [0, 1], [1, 0], [1, 1]]);
    const read = [...(await log.read({ topic, partition: 0, from: 0 })), ...(await log.read({ topic, partition: 1, from: 0 }))];
    expect(read.map((r) => r.value![0])).toEqual([1, 2, 3, 4]);
  });

  it('reads a range from the middle of a partition that spans many record batches', async () => {
    const topic = uniqueName('range');
    await log.ensureTopics([{ name: topic, partitions: 1 }]);
    for (let i = 0; i < 5; i++) await log.append(Array.from({ length: 100 }, (_, j) => ({ topic, partition: 0, value: Buffer.from(String(i * 100 + j)) })));
    const middle = await log.read({ topic, partition: 0, from: 150, to: 420 });
    expect(middle.map((r) => r.offset)).toEqual(Array.from({ length: 270 }, (_, i) => 150 + i));
    const capped = await log.read({ topic, partition: 0, from: 390, maxRecords: 25 });
    expect(capped.map((r) => r.offset)).toEqual(Array.from({ length: 25 }, (_, i) => 390 + i));
  });

  it('fails with a clear error for an unknown topic and a bad partition', async () => {
    await expect(log.append([{ topic: uniqueName('nope'), value: Buffer.from('x') }])).rejects.toMatchObject({ code: 'SY_ERR_LOG_UNKNOWN_TOPIC' });
    const topic = uniqueName('bad-partition');
    await log.ensureTopics([{ name: topic, partitions: 2 }]);
    await expect(log.append([{ topic, partition: 2, value: Buffer.from('x') }])).rejects.toMatchObject({ code: 'SY_ERR_LOG_BAD_PARTITION' });
    // A bad record fails only its own append, not those coalesced with it.
    const [bad, good] = await Promise.allSettled([log.append([{ topic, partition: 9, value: Buffer.from('x') }]), log.append([{ topic, partition: 1, value: Buffer.from('y') }])]);
    expect(bad.status).toBe('rejected');
    expect(good.status).toBe('fulfilled');
  });

  it('rejects bad options at construction', async () => {
    await expect(openPlatformaticLog({ brokers: [] })).rejects.toMatchObject({ code: 'SY_ERR_CONFIG' });
    await expect(openPlatformaticLog({ brokers: kafkaBrokers(), maxProduceBatch: 0 })).rejects.toMatchObject({ code: 'SY_ERR_CONFIG' });
    await expect(openPlatformaticLog({ brokers: kafkaBrokers(), sessionTimeoutMs: 3_000, heartbeatIntervalMs: 1_001 })).rejects.toMatchObject({ code: 'SY_ERR_CONFIG' });
    await expect(openPlatformaticLog({ brokers: kafkaBrokers(), retryMaxMs: 0 })).rejects.toMatchObject({ code: 'SY_ERR_CONFIG' });
  });

  it('reads what the kafkajs adapter wrote, byte for byte, and the other way round', async () => {
    const kafkajs = await openKafkaLog({ brokers: kafkaBrokers() });
    extra.push(kafkajs);
    const topic = uniqueName('cross');
    await log.ensureTopics([{ name: topic, partitions: 3 }]);
    const record = (i: number) => ({ topic, key: `k${i}`, value: Buffer.from([i, 0, 255]), headers: { h: `v${i}`, b: Buffer.from([i]) }, timestamp: 1_700_000_000_000 + i });
    const fromKafkajs = await kafkajs.append([0, 1, 2, 3].map(record));
    const fromPlatformatic = await log.append([4, 5, 6, 7].map(record));
    // The same key lands on the same partition through either client.
    for (const [i, p] of [...fromKafkajs, ...fromPlatformatic].entries()) expect(p.partition).toBe((await kafkajs.append([record(i)]))[0]!.partition);
    for (const partition of [0, 1, 2]) {
      const a = await log.read({ topic, partition, from: 0 });
      const b = await kafkajs.read({ topic, partition, from: 0 });
      expect(a).toEqual(b);
    }
  });

  it('a kafkajs member and a platformatic member share one group (a rolling switch of SWITCHYARD_KAFKA_CLIENT)', async () => {
    const kafkajs = await openKafkaLog({ brokers: kafkaBrokers() });
    extra.push(kafkajs);
    const topic = uniqueName('mixed');
    await log.ensureTopics([{ name: topic, partitions: 4 }]);
    const groupId = uniqueName('mixed-group');
    const seen: string[] = [];
    const onBatch = async (b: { records: LogRecord[] }) => void seen.push(...b.records.map((r) => r.value!.toString()));
    const subs: Subscription[] = [];
    subs.push(await kafkajs.subscribe({ groupId, topics: [topic], onBatch }));
    subs.push(await log.subscribe({ groupId, topics: [topic], onBatch }));
    const split = () => {
      const [a, b] = subs.map((s) => s.assigned().flatMap((tp) => tp.partitions));
      return a!.length > 0 && b!.length > 0 && [...a!, ...b!].sort().join() === '0,1,2,3';
    };
    await waitFor(split, { timeoutMs: 25_000, what: 'the two clients to split 4 partitions' });
    await log.append(Array.from({ length: 40 }, (_, i) => ({ topic, partition: i % 4, value: Buffer.from(`m${i}`) })));
    await waitFor(() => seen.length >= 40, { timeoutMs: 25_000, what: '40 records across both members' });
    expect([...seen].sort()).toEqual(Array.from({ length: 40 }, (_, i) => `m${i}`).sort());
    await Promise.all(subs.map((s) => s.close()));
  });
});
