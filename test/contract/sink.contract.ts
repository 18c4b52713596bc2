import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ARCHIVED_RECORD_COLUMNS, recordFromArchive, type ArchivedRecordRow } from '../../lib/analytics/archive.js';
import { features } from '../../lib/analytics/migrations.js';
import { packQuery, resolveParams, runPackQuery } from '../../lib/analytics/pack.js';
import type { AnalyticsStore, Row } from '../../lib/analytics/port.js';
import type { EventLog, LogRecord } from '../../lib/log/port.js';
import { topicLayout } from '../../lib/log/topics.js';
import { InMemoryRegistry } from '../../lib/registry/core.js';
import { EventCodec } from '../../schemas/codec.js';
import type { SwitchyardEventInit } from '../../schemas/generated/events.js';
import { rowFor } from '../../services/sink/rows.js';
import { startSink, type RunningSink } from '../../services/sink/service.js';
import { WINDOW, at, fixtureEventInits } from '../support/analytics-fixture.js';
import { recordFor } from '../support/event-topics.js';
import { uniqueName, waitFor } from '../support/services.js';
import { schemaIdOf } from '../../schemas/wire.js';

export interface SinkTarget {
  log: EventLog;
  /** A store over an empty database of the test's own. */
  store: AnalyticsStore;
  cleanup: () => Promise<void>;
}

const LANES = 8;

/** Every record of the topics, in (topic, partition, offset) order, as `log.read` returns them. */
export async function readTopics(log: EventLog, topics: readonly string[]): Promise<LogRecord[]> {
  const out: LogRecord[] = [];
  for (const topic of [...topics].sort()) {
    const ends = await log.endOffsets(topic);
    for (const [partition, end] of ends.entries()) {
      for (let from = (await log.startOffsets(topic))[partition] ?? 0; from < end; ) {
        const batch = await log.read({ topic, partition, from, to: end });
        if (batch.length === 0) break;
        out.push(...batch);
        from = batch[batch.length - 1]!.offset + 1;
      }
    }
  }
  return out;
}

/** A record as one line of text (every field, bytes as base64): cheap to compare by the ten thousand. */
export const recordText = (r: LogRecord): string =>
  JSON.stringify([r.topic, r.partition, r.offset, r.timestamp, r.key?.toString('base64') ?? null, r.value?.toString('base64') ?? null, Object.entries(r.headers).map(([k, v]) => [k, v.toString('base64')])]);

/** The log archive's records, one per position (`FINAL`), in (topic, partition, offset) order. */
export async function archivedRecords(store: AnalyticsStore): Promise<LogRecord[]> {
  const rows = await store.query<ArchivedRecordRow>(`SELECT ${ARCHIVED_RECORD_COLUMNS} FROM log_records FINAL ORDER BY log_topic, log_partition, log_offset`);
  return rows.map(recordFromArchive);
}

/**
 * The sink over a log and an analytics store: every event of the fixture lands exactly once in
 * query results although a part of it is produced twice; undecodable records, an event
 * ClickHouse refuses and an event no table can hold end up in `deadletters` with their
 * original bytes; every record read — duplicates and bad records too — is in the log archive
 * byte for byte, with its schemas and the topics' partition counts; and a second sink resumes
 * from the first one's committed offsets. Run on the embedded log with chDB
 * (`services/sink/sink.contract.test.ts`) and on Kafka with the ClickHouse server
 * (`services/sink/sink.int.test.ts`).
 */
export function testSink(name: string, factory: () => Promise<SinkTarget>): void {
  describe(`sink [${name}]`, () => {
    let target: SinkTarget;
    let registry: InMemoryRegistry;
    let codec: EventCodec;
    let sink: RunningSink | undefined;
    beforeEach(async () => {
      target = await factory();
      registry = new InMemoryRegistry();
      codec = await EventCodec.create({ registry });
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

    it('writes every event once, dead-letters bad records with their bytes, archives every record, and answers the pack exactly', async () => {
      const prefix = `${uniqueName('sy')}.`;
      const layout = topicLayout({ prefix, lanes: LANES });
      const topics = Object.values(layout).map((t) => t.name);
      await target.log.ensureTopics(Object.values(layout));
      const inits = fixtureEventInits();
      // Some records carry headers (binary values too) and a producer timestamp of their own.
      const records = inits.map((e, i) => {
        const r = recordFor(layout, e, codec.encode(e));
        if (i % 7 === 0) r.headers = { 'sy-trace': Buffer.from([i, 0xff, 0x00]), origin: 'fixture' };
        if (i % 3 === 0) r.timestamp = e.occurredAt;
        return r;
      });
      // The producer sends the first 30 events twice (a retry after a lost acknowledgement).
      await target.log.append([...records, ...records.slice(0, 30)]);

      const garbage = Buffer.from('this is not the wire format');
      const truncated = records[5]!.value!.subarray(0, 9);
      const refusedEvent: SwitchyardEventInit = { type: 'InferenceRequested', eventId: 'not-a-uuid', occurredAt: at(10, 59), requestId: 'rx', producer: 'legacy-client', model: 'sentiment', input: Buffer.from('{}') };
      const refused = codec.encode(refusedEvent);
      const unmappableEvent: SwitchyardEventInit = { type: 'WorkerHeartbeat', eventId: '0194d2a1-0000-7000-8000-ffffffffffff', occurredAt: -1_000, producer: 'w9', workerId: 'w9', lane: 0, zone: 'a', seq: 0, load: 0, queueDepth: 0, inFlight: 0 };
      const unmappable = codec.encode(unmappableEvent);
      await target.log.append([
        // On a topic the sink owns the dead letters of (a bad `requests` record is the router's).
        { topic: layout.control.name, key: 'bad-1', value: garbage, headers: { origin: 'test' } },
        { topic: layout.results.name, partition: 3, value: truncated },
        { topic: layout.requests.name, partition: 2, key: 'rx', value: refused },
        { topic: layout.heartbeats.name, partition: 1, key: 'w9', value: unmappable },
      ]);

      sink = await startSink({ log: target.log, store: target.store, codec, topicPrefix: prefix, lanes: LANES, batchRows: 64, batchDelayMs: 20, producer: 'sink-test' });
      await waitFor(async () => (await count('SELECT count() AS n FROM deadletters FINAL')) >= 5 && (await caughtUp(`${prefix}sink`, topics)), {
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
        `SELECT original_topic, original_partition, error_code, consumer_group, producer, original_key_base64, original_value_base64 FROM deadletters FINAL WHERE consumer_group = '${prefix}sink' AND producer = 'sink-test' ORDER BY error_code, original_topic`,
      );
      const bytes = (b64: unknown) => (b64 === null ? null : Buffer.from(String(b64), 'base64'));
      expect(dead.map((d) => [d.original_topic, d.error_code, bytes(d.original_value_base64)])).toEqual([
        [layout.heartbeats.name, 'SY_ERR_ANALYTICS', unmappable],
        [layout.requests.name, 'SY_ERR_ANALYTICS', refused],
        [layout.results.name, 'SY_ERR_CODEC_DECODE', truncated],
        [layout.control.name, 'SY_ERR_CODEC_MAGIC', garbage],
      ]);
      expect(bytes(dead.find((d) => d.error_code === 'SY_ERR_CODEC_MAGIC')!.original_key_base64)!.toString()).toBe('bad-1');

      // The log archive: every record of every topic, exactly as the log holds it — the 30
      // duplicates (other positions), the bad records and the sink's own dead letters included.
      // Delivery is at-least-once: a batch the sink gets again (a rebalance on a loaded broker)
      // dead-letters its bad records again — new positions on `deadletter`, the same event id.
      // So compare the archive with the log once the sink has committed everything the log holds
      // and the log has stopped growing.
      let fromLog = await readTopics(target.log, topics);
      let archived: LogRecord[];
      for (let round = 0; ; round++) {
        await waitFor(() => caughtUp(`${prefix}sink`, topics), { timeoutMs: 30_000, intervalMs: 100, what: 'the sink to commit the whole log' });
        archived = await archivedRecords(target.store);
        const again = await readTopics(target.log, topics);
        if ((again.length === fromLog.length && archived.length === again.length) || round >= 20) {
          fromLog = again;
          break;
        }
        fromLog = again;
        await new Promise((r) => setTimeout(r, 200));
      }
      expect(archived.length).toBe(fromLog.length);
      expect(archived).toEqual(fromLog);
      const letters = await Promise.all(fromLog.filter((r) => r.topic === layout.deadletter.name).map(async (r) => (await codec.decode(r.value!)).eventId));
      const letterCopies = letters.length - new Set(letters).size;
      expect(fromLog.length - letterCopies).toBe(inits.length + 30 + 4 + 4); // + the duplicates, the bad records and their dead letters (each once by id)
      const copies = await target.store.query<{ id: string; n: number }>(
        `SELECT event_id AS id, count() AS n FROM log_records FINAL WHERE event_id IN (${inits.slice(0, 30).map((e) => `'${e.eventId}'`).join(', ')}) GROUP BY event_id`,
      );
      expect(copies).toHaveLength(30);
      expect(copies.every((c) => c.n === 2)).toBe(true);
      expect(await count("SELECT count() AS n FROM log_records FINAL WHERE type = '' AND event_id = ''")).toBe(2); // the two that did not decode

      // log_ids: a request id finds every record of the request (by request id or by key).
      const requestId = inits.find((e) => e.type === 'InferenceCompleted')!.requestId!;
      const positions = await target.store.query<{ log_topic: string; log_partition: number; log_offset: number }>(
        'SELECT DISTINCT log_topic, log_partition, log_offset FROM log_ids WHERE id = {id:String} ORDER BY log_topic, log_partition, log_offset',
        { id: requestId },
      );
      const expectedPositions: { log_topic: string; log_partition: number; log_offset: number }[] = [];
      for (const r of fromLog) {
        const event = await codec.decode(r.value!).catch(() => undefined);
        if (event?.requestId === requestId || r.key?.toString() === requestId) expectedPositions.push({ log_topic: r.topic, log_partition: r.partition, log_offset: r.offset });
      }
      expect(expectedPositions.length).toBeGreaterThanOrEqual(3);
      expect(positions).toEqual(expectedPositions);

      // log_schemas: the writer schema of every schema id among the records that decoded.
      const seenIds = new Set<number>();
      for (const r of fromLog) if (await codec.decode(r.value!).then(() => true, () => false)) seenIds.add(schemaIdOf(r.value));
      const schemas = await target.store.query<{ schema_id: number; subject: string; schema: string }>('SELECT schema_id, subject, schema FROM log_schemas FINAL ORDER BY schema_id');
      expect(schemas.map((r) => r.schema_id)).toEqual([...seenIds].sort((a, b) => a - b));
      for (const r of schemas) expect(r).toEqual({ schema_id: r.schema_id, subject: (await codec.writerSchema(r.schema_id)).subject, schema: await registry.getById(r.schema_id) });
      expect(schemas.find((r) => r.schema_id === codec.schemaId('RequestRouted'))?.subject).toBe('switchyard.events.RequestRouted');

      // log_topics: every topic the sink consumes, with its partition count.
      const partitionCounts = await target.store.query<{ log_topic: string; partitions: number }>('SELECT log_topic, partitions FROM log_topics FINAL ORDER BY log_topic');
      expect(partitionCounts).toEqual(await Promise.all([...topics].sort().map(async (t) => ({ log_topic: t, partitions: (await target.log.partitionCount(t))! }))));
      expect(partitionCounts.find((t) => t.log_topic === layout.decisions.name)?.partitions).toBe(LANES);

      const stats = sink.stats();
      expect(stats).toMatchObject({ deadLettered: 4, duplicates: 30, flushFailures: 0, lag: 0 });
      expect(stats.archived).toBeGreaterThanOrEqual(fromLog.length);
      const text = await sink.metrics.registry.metrics();
      expect(text).toMatch(/switchyard_sink_dead_lettered_total\{reason="undecodable"\} 2/);
      expect(text).toMatch(/switchyard_sink_dead_lettered_total\{reason="rejected"\} 1/);
      expect(text).toMatch(/switchyard_sink_dead_lettered_total\{reason="unmappable"\} 1/);
      expect(text).toMatch(/switchyard_sink_batches_total \d+/);
      expect(text).toMatch(new RegExp(`switchyard_sink_events_total\\{table="log_records"\\} ${stats.archived}\\b`));

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
      await waitFor(async () => (await count("SELECT count() AS n FROM requests FINAL WHERE request_id LIKE 'late-%'")) === 3 && (await caughtUp(`${prefix}sink`, topics)), {
        timeoutMs: 60_000,
        intervalMs: 200,
        what: 'the second sink to write the new events',
      });
      expect(sink.stats()).toMatchObject({ events: 3, archived: 3, deadLettered: 0, duplicates: 0 });
      expect(await archivedRecords(target.store)).toEqual(await readTopics(target.log, topics));
    });

    it('with archive off, writes the event tables and nothing into the log archive', async () => {
      const prefix = `${uniqueName('sy')}.`;
      const layout = topicLayout({ prefix, lanes: LANES });
      await target.log.ensureTopics(Object.values(layout));
      const inits = fixtureEventInits().slice(0, 40);
      await target.log.append(inits.map((e) => recordFor(layout, e, codec.encode(e))));
      sink = await startSink({ log: target.log, store: target.store, codec, topicPrefix: prefix, lanes: LANES, batchRows: 64, batchDelayMs: 20, archive: false });
      // Every topic the fixture wrote to (heartbeats and control too: on Kafka they commit separately).
      await waitFor(async () => (await caughtUp(`${prefix}sink`, Object.values(layout).map((t) => t.name))) && sink!.stats().events >= inits.length, {
        timeoutMs: 60_000,
        intervalMs: 200,
        what: 'the sink to write the events',
      });
      expect(sink.stats()).toMatchObject({ events: inits.length, archived: 0 });
      for (const table of ['log_records', 'log_ids', 'log_schemas', 'log_topics']) expect({ table, rows: await count(`SELECT count() AS n FROM ${table}`) }).toEqual({ table, rows: 0 });
    });
  });
}
