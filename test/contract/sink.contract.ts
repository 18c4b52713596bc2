import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { features } from '../../lib/analytics/migrations.js';
import { packQuery, resolveParams, runPackQuery } from '../../lib/analytics/pack.js';
import type { AnalyticsStore, Row } from '../../lib/analytics/port.js';
import type { EventLog } from '../../lib/log/port.js';
import { topicLayout } from '../../lib/log/topics.js';
import { InMemoryRegistry } from '../../lib/registry/core.js';
import { EventCodec } from '../../schemas/codec.js';
import type { SwitchyardEventInit } from '../../schemas/generated/events.js';
import { rowFor } from '../../services/sink/rows.js';
import { startSink, type RunningSink } from '../../services/sink/service.js';
import { WINDOW, at, fixtureEventInits } from '../support/analytics-fixture.js';
import { recordFor } from '../support/event-topics.js';
import { uniqueName, waitFor } from '../support/services.js';

export interface SinkTarget {
  log: EventLog;
  /** A store over an empty database of the test's own. */
  store: AnalyticsStore;
  cleanup: () => Promise<void>;
}

const LANES = 8;

/**
 * The sink over a log and an analytics store: every event of the fixture lands exactly once in
 * query results although a part of it is produced twice; undecodable records, an event
 * ClickHouse refuses and an event no table can hold end up in `deadletters` with their
 * original bytes; and a second sink resumes from the first one's committed offsets. Run on
 * the embedded log with chDB (`services/sink/sink.contract.test.ts`) and on Kafka with the
 * ClickHouse server (`services/sink/sink.int.test.ts`).
 */
export function testSink(name: string, factory: () => Promise<SinkTarget>): void {
  describe(`sink [${name}]`, () => {
    let target: SinkTarget;
    let codec: EventCodec;
    let sink: RunningSink | undefined;
    beforeEach(async () => {
      target = await factory();
      codec = await EventCodec.create({ registry: new InMemoryRegistry() });
    });
    afterEach(async () => {
      await sink?.close();
      sink = undefined;
      await target.cleanup();
    });

    const count = async (sql: string) => (await target.store.query<{ n: number }>(sql))[0]!.n;
    const caughtUp = async (group: string, topics: string[]) => {
      for (const t of topics) {
        const [ends, committed] = await Promise.all([target.log.endOffsets(t), target.log.committedOffsets(group, t)]);
        if (ends.some((end, p) => end > 0 && committed[p] !== end)) return false;
      }
      return true;
    };

    it('writes every event once, dead-letters bad records with their bytes, and answers the pack exactly', async () => {
      const prefix = `${uniqueName('sy')}.`;
      const layout = topicLayout({ prefix, lanes: LANES });
      const topics = Object.values(layout).map((t) => t.name);
      await target.log.ensureTopics(Object.values(layout));
      const inits = fixtureEventInits();
      const records = inits.map((e) => recordFor(layout, e, codec.encode(e)));
      // The producer sends the first 30 events twice (a retry after a lost acknowledgement).
      await target.log.append([...records, ...records.slice(0, 30)]);

      const garbage = Buffer.from('this is not the wire format');
      const truncated = records[5]!.value!.subarray(0, 9);
      const refusedEvent: SwitchyardEventInit = { type: 'InferenceRequested', eventId: 'not-a-uuid', occurredAt: at(10, 59), requestId: 'rx', producer: 'legacy-client', model: 'sentiment', input: Buffer.from('{}') };
      const refused = codec.encode(refusedEvent);
      const unmappableEvent: SwitchyardEventInit = { type: 'WorkerHeartbeat', eventId: '0194d2a1-0000-7000-8000-ffffffffffff', occurredAt: -1_000, producer: 'w9', workerId: 'w9', lane: 0, zone: 'a', seq: 0, load: 0, queueDepth: 0, inFlight: 0 };
      const unmappable = codec.encode(unmappableEvent);
      await target.log.append([
        { topic: layout.requests.name, key: 'bad-1', value: garbage, headers: { origin: 'test' } },
        { topic: layout.results.name, partition: 3, value: truncated },
        { topic: layout.requests.name, partition: 2, key: 'rx', value: refused },
        { topic: layout.heartbeats.name, partition: 1, key: 'w9', value: unmappable },
      ]);

      sink = await startSink({ log: target.log, store: target.store, codec, topicPrefix: prefix, lanes: LANES, batchRows: 64, batchDelayMs: 20, producer: 'sink-test' });
      await waitFor(async () => (await count('SELECT count() AS n FROM deadletters FINAL')) >= 5 && (await caughtUp('sink', topics)), {
        timeoutMs: 90_000,
        intervalMs: 200,
        what: 'the sink to write everything and commit',
      });

      // Exactly once in query results: every table holds the fixture's distinct events.
      const { ttl } = features(await target.store.serverVersion());
      await target.store.exec('OPTIMIZE TABLE heartbeats FINAL');
      const expected = new Map<string, number>();
      for (const [i, e] of inits.entries()) {
        const { table } = rowFor(await codec.decode(records[i]!.value!), { topic: '', partition: 0, offset: 0 });
        if (table === 'heartbeats' && ttl && e.occurredAt + 30 * 86_400_000 <= Date.now()) continue;
        expected.set(table, (expected.get(table) ?? 0) + 1);
      }
      expected.set('deadletters', 1 + 4); // the fixture's own DeadLettered + the four bad records
      for (const [table, n] of expected) expect({ table, rows: await count(`SELECT count() AS n FROM ${table} FINAL`) }).toEqual({ table, rows: n });

      const q = packQuery('throughput-and-errors');
      const rows = await runPackQuery(target.store, q, resolveParams(q, { since: WINDOW.since.toISOString(), until: WINDOW.until.toISOString() }, Date.now()));
      expect(rows).toEqual([
        { bucket: '2026-01-01 10:00:00', model: 'sentiment', requests: 20, requests_per_second: 0.006, completed: 14, failed: 2, rejected: 4, error_rate: 0.125 },
        { bucket: '2026-01-01 11:00:00', model: 'llm', requests: 4, requests_per_second: 0.001, completed: 4, failed: 0, rejected: 0, error_rate: 0 },
        { bucket: '2026-01-01 11:00:00', model: 'llm-big', requests: 1, requests_per_second: 0, completed: 0, failed: 0, rejected: 0, error_rate: 0 },
        { bucket: '2026-01-01 11:00:00', model: 'sentiment', requests: 1, requests_per_second: 0, completed: 2, failed: 0, rejected: 0, error_rate: 0 },
      ]);

      // The bad records, each with its original bytes and why.
      const dead = await target.store.query<Row>(
        "SELECT original_topic, original_partition, error_code, consumer_group, producer, original_key_base64, original_value_base64 FROM deadletters FINAL WHERE consumer_group = 'sink' AND producer = 'sink-test' ORDER BY error_code, original_topic",
      );
      const bytes = (b64: unknown) => (b64 === null ? null : Buffer.from(String(b64), 'base64'));
      expect(dead.map((d) => [d.original_topic, d.error_code, bytes(d.original_value_base64)])).toEqual([
        [layout.heartbeats.name, 'SY_ERR_ANALYTICS', unmappable],
        [layout.requests.name, 'SY_ERR_ANALYTICS', refused],
        [layout.results.name, 'SY_ERR_CODEC_DECODE', truncated],
        [layout.requests.name, 'SY_ERR_CODEC_MAGIC', garbage],
      ]);
      expect(bytes(dead.find((d) => d.error_code === 'SY_ERR_CODEC_MAGIC')!.original_key_base64)!.toString()).toBe('bad-1');

      const stats = sink.stats();
      expect(stats).toMatchObject({ deadLettered: 4, duplicates: 30, flushFailures: 0, lag: 0 });
      const text = await sink.metrics.registry.metrics();
      expect(text).toMatch(/switchyard_sink_dead_lettered_total\{reason="undecodable"\} 2/);
      expect(text).toMatch(/switchyard_sink_dead_lettered_total\{reason="rejected"\} 1/);
      expect(text).toMatch(/switchyard_sink_dead_lettered_total\{reason="unmappable"\} 1/);
      expect(text).toMatch(/switchyard_sink_batches_total \d+/);

      // A second sink resumes where the first committed: only new events are written.
      await sink.close();
      sink = undefined;
      const more: SwitchyardEventInit[] = [1, 2, 3].map((i) => ({
        type: 'InferenceRequested',
        eventId: `0194d2a1-0000-7000-9000-00000000000${i}`,
        occurredAt: at(10, 40, i),
        requestId: `late-${i}`,
        producer: 'gateway-1',
        model: 'sentiment',
        input: Buffer.from('{}'),
      }));
      await target.log.append(more.map((e) => recordFor(layout, e, codec.encode(e))));
      sink = await startSink({ log: target.log, store: target.store, codec, topicPrefix: prefix, lanes: LANES, batchRows: 64, batchDelayMs: 20, migrate: false });
      await waitFor(async () => (await count("SELECT count() AS n FROM requests FINAL WHERE request_id LIKE 'late-%'")) === 3 && (await caughtUp('sink', topics)), {
        timeoutMs: 60_000,
        intervalMs: 200,
        what: 'the second sink to write the new events',
      });
      expect(sink.stats()).toMatchObject({ events: 3, deadLettered: 0, duplicates: 0 });
    });
  });
}
