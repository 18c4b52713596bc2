import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServerAnalyticsStore } from '../../lib/analytics/server.js';
import type { AnalyticsStore } from '../../lib/analytics/port.js';
import { MAX_REQUEST_RECORD_BYTES } from '../../lib/events/subscribe.js';
import type { InferenceRequestedInit } from '../../schemas/generated/events.js';
import { ChaosCluster, figuresOf, printFigures, startHttpLoad, startKafkaLoad } from '../support/chaos.js';
import { clickhouseUrl, kafkaBrokers, requireClickHouse, uniqueDatabase, waitFor } from '../support/services.js';
import { expectReplayed, verifyCluster } from './verify.js';

/**
 * Poison on `requests` while serving: undecodable bytes, an unknown schema id and an oversized
 * request written by a Kafka client among good traffic. Two groups consume `requests` (the
 * routers and the sink); each bad record gets exactly one dead letter, with its original bytes,
 * written by the router group — and serving goes on: every good request is answered.
 */
describe('chaos: poison on requests', () => {
  const database = uniqueDatabase('switchyard_chaos_poison');
  let cluster: ChaosCluster;
  let store: AnalyticsStore;

  beforeAll(async () => {
    await requireClickHouse();
    cluster = await ChaosCluster.start({ scenario: 'poison', workers: 2, controllers: 1, sink: { clickhouseUrl: clickhouseUrl(), database } });
    store = await createServerAnalyticsStore({ url: clickhouseUrl(), database });
  }, 90_000);
  afterAll(async () => {
    await cluster?.close();
    await store?.exec(`DROP DATABASE IF EXISTS ${database}`).catch(() => {});
    await store?.close();
  });

  it('dead-letters each bad record exactly once with its original bytes, and answers every good request', async () => {
    const started = Date.now();
    const http = startHttpLoad({ url: cluster.gatewayUrl(), ratePerSec: 15, count: 150 });
    const kafka = startKafkaLoad({ topic: cluster.layout.requests.name, codec: cluster.codec, ratePerSec: 5, count: 50 });

    // A Kafka client writes the poison among the traffic.
    await new Promise((r) => setTimeout(r, 3_000));
    const oversized: InferenceRequestedInit = {
      type: 'InferenceRequested',
      eventId: '0193e4a2-0000-7000-8000-00000000beef',
      occurredAt: Date.now(),
      requestId: 'oversized-request',
      producer: 'chaos-poisoner',
      model: cluster.model,
      input: Buffer.alloc(MAX_REQUEST_RECORD_BYTES + 50_000, 0x61),
      contentType: 'text/plain',
      deadlineAt: Date.now() + 10_000,
    };
    const poison = {
      undecodable: Buffer.from('{"model":"sentiment-small","input":"json is not the wire format"}'),
      unknownSchema: Buffer.from([0, 0x7f, 0x7f, 0x7f, 0x7f, 2, 4, 6]),
      oversized: cluster.codec.encode(oversized),
    };
    const producer = new Kafka({ brokers: kafkaBrokers(), logLevel: logLevel.NOTHING }).producer();
    await producer.connect();
    const written = new Map<string, { partition: number; offset: number }>();
    try {
      for (const [name, value] of Object.entries(poison)) {
        const [meta] = await producer.send({ topic: cluster.layout.requests.name, messages: [{ key: `poison-${name}`, value }] });
        written.set(name, { partition: meta!.partition, offset: Number(meta!.baseOffset) });
      }
    } finally {
      await producer.disconnect();
    }

    const [httpOutcomes, kafkaOutcomes] = await Promise.all([http.done, kafka.done]);
    const report = await cluster.settle();
    await waitFor(() => cluster.sinkCaughtUp(), { timeoutMs: 30_000, intervalMs: 250, what: 'the sink to catch up' });
    const analyticsDeadLetters = await store.query<{ n: number }>('SELECT count() AS n FROM deadletters FINAL');

    printFigures(
      figuresOf('poison on requests', '15 req/s HTTP + 5 req/s Kafka for 10 s; 3 bad records', httpOutcomes.length + kafkaOutcomes.length, report, {
        extra: { 'bad records': written.size, 'dead letters': report.deadLetters.reduce((n, g) => n + g.eventIds, 0), 'ClickHouse deadletters': analyticsDeadLetters[0]!.n, 'HTTP non-200': httpOutcomes.filter((o) => o.status !== 200).length },
      }),
      report,
    );
    const diagnostics = cluster.diagnostics();

    // Exactly one dead letter per bad record (one event id; a redelivery may repeat the record,
    // never the id), by the router group, with the record's original bytes — and no other.
    const requestsTopic = cluster.layout.requests.name;
    const expected = [...written].map(([name, at]) => ({ name, position: `${requestsTopic}/${at.partition}/${at.offset}` }));
    expect(report.deadLetters.map((g) => g.position).sort(), diagnostics).toEqual(expected.map((e) => e.position).sort());
    for (const { name, position } of expected) {
      const group = report.deadLetters.find((g) => g.position === position)!;
      expect({ name, eventIds: group.eventIds, groups: [...new Set(group.letters.map((l) => l.consumerGroup))] }).toEqual({ name, eventIds: 1, groups: [`${cluster.prefix}router`] });
      expect(Buffer.from(group.letters[0]!.originalValue!).equals(poison[name as keyof typeof poison]), name).toBe(true);
    }
    const codes = Object.fromEntries(expected.map(({ name, position }) => [name, report.deadLetters.find((g) => g.position === position)!.letters[0]!.errorCode]));
    expect(codes).toEqual({ undecodable: 'SY_ERR_CODEC_MAGIC', unknownSchema: 'SY_ERR_CODEC_UNKNOWN_SCHEMA', oversized: 'SY_ERR_CODEC_TOO_LARGE' });
    // Downstream the sink keeps one row per dead letter.
    expect(analyticsDeadLetters[0]!.n).toBe(written.size);

    // Serving went on: every good request answered, once, and the clients saw it.
    expect(report.badRequests.map((b) => b.position).sort()).toEqual(expected.map((e) => e.position).sort());
    expect(report.withoutTerminal, diagnostics).toEqual([]);
    expect(report.duplicated).toEqual([]);
    // Replay re-derives every decision of the run, the controller's included.
    const verify = await verifyCluster(cluster);
    expectReplayed(verify);
    expect(httpOutcomes.filter((o) => o.status !== 200), diagnostics).toEqual([]);
    expect(kafkaOutcomes.every((o) => o.acked)).toBe(true);
    for (const o of kafkaOutcomes) expect(report.requests.get(o.requestId)?.visible?.type, o.requestId).toBe('InferenceCompleted');
    expect(Date.now() - started).toBeLessThan(80_000);
  }, 90_000);
});
