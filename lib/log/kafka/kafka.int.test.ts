import { Kafka, ConfigResourceTypes, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kafkaBrokers, requireKafka, uniqueName, waitFor } from '../../../test/support/services.js';
import type { EventLog, LogRecord } from '../port.js';
import { topicLayout } from '../topics.js';
import { openKafkaLog } from './adapter.js';

// Kafka-specific behaviour on a real broker; the shared EventLog contract runs in
// kafka.contract.int.test.ts.
describe('kafka adapter on a real broker', () => {
  let log: EventLog;
  const admin = new Kafka({ brokers: kafkaBrokers(), logLevel: logLevel.NOTHING }).admin();

  beforeAll(async () => {
    await requireKafka();
    log = await openKafkaLog({ brokers: kafkaBrokers() });
    await admin.connect();
  });
  afterAll(async () => {
    await log?.close();
    await admin.disconnect();
  });

  it('provisions the DESIGN.md topics with their partition counts and cleanup policies', async () => {
    const prefix = `${uniqueName('layout')}.`;
    const layout = topicLayout({ prefix, lanes: 8 });
    await log.ensureTopics(Object.values(layout));
    await log.ensureTopics(Object.values(layout)); // idempotent
    expect(await log.partitionCount(layout.requests.name)).toBe(12);
    expect(await log.partitionCount(layout.decisions.name)).toBe(8);
    expect(await log.partitionCount(layout.control.name)).toBe(1);
    const described = await admin.describeConfigs({
      includeSynonyms: false,
      resources: [layout.sessions, layout.heartbeats].map((t) => ({ type: ConfigResourceTypes.TOPIC, name: t.name, configNames: ['cleanup.policy', 'retention.ms'] })),
    });
    const config = (name: string, key: string) =>
      described.resources.find((r) => r.resourceName === name)?.configEntries.find((e) => e.configName === key)?.configValue;
    expect(config(layout.sessions.name, 'cleanup.policy')).toBe('compact');
    expect(config(layout.heartbeats.name, 'cleanup.policy')).toBe('delete');
    expect(config(layout.heartbeats.name, 'retention.ms')).toBe(String(6 * 3_600_000));
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
      // Appends to one partition land in call order.
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
    // One append of two, and two coalesced appends, each pair > 1 MiB on one partition.
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
    const [bad, good] = await Promise.allSettled([
      log.append([{ topic, partition: 9, value: Buffer.from('x') }]),
      log.append([{ topic, partition: 1, value: Buffer.from('y') }]),
    ]);
    expect(bad.status).toBe('rejected');
    expect(good.status).toBe('fulfilled');
  });

  it('rejects bad options at construction', async () => {
    await expect(openKafkaLog({ brokers: [] })).rejects.toMatchObject({ code: 'SY_ERR_CONFIG' });
    await expect(openKafkaLog({ brokers: kafkaBrokers(), maxProduceBatch: 0 })).rejects.toMatchObject({ code: 'SY_ERR_CONFIG' });
    await expect(openKafkaLog({ brokers: kafkaBrokers(), sessionTimeoutMs: 3_000, heartbeatIntervalMs: 1_001 })).rejects.toMatchObject({ code: 'SY_ERR_CONFIG' });
    await expect(openKafkaLog({ brokers: kafkaBrokers(), retryMaxMs: 0 })).rejects.toMatchObject({ code: 'SY_ERR_CONFIG' });
  });
});
