import { createServer, Socket, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServerAnalyticsStore } from '../../lib/analytics/server.js';
import { openKafkaLog } from '../../lib/log/kafka/index.js';
import { topicLayout } from '../../lib/log/topics.js';
import { InMemoryRegistry } from '../../lib/registry/core.js';
import { EventCodec } from '../../schemas/codec.js';
import { archivedRecords, readTopics, testSink } from '../../test/contract/sink.contract.js';
import { recordFor } from '../../test/support/event-topics.js';
import { eventStream } from '../../test/support/event-stream.js';
import { clickhouseUrl, kafkaBrokers, requireClickHouse, requireKafka, uniqueDatabase, uniqueName, waitFor } from '../../test/support/services.js';
import { startSink } from './service.js';

const url = clickhouseUrl();
const databases: string[] = [];
const serverStore = (database: string, at = url) => {
  databases.push(database);
  return createServerAnalyticsStore({ url: at, database });
};

beforeAll(async () => {
  await requireKafka();
  await requireClickHouse(url);
});
afterAll(async () => {
  const admin = await createServerAnalyticsStore({ url, database: 'default', createDatabase: false });
  for (const db of databases) await admin.exec(`DROP DATABASE IF EXISTS ${db}`);
  await admin.close();
});

// The same suite as on the embedded log and chDB, on real Kafka and the real server.
testSink('kafka → clickhouse server', async () => {
  const log = await openKafkaLog({ brokers: kafkaBrokers() });
  const store = await serverStore(uniqueDatabase('switchyard_sink'));
  return {
    log,
    store,
    cleanup: async () => {
      await store.close();
      await log.close();
    },
  };
});

/** A TCP proxy in front of ClickHouse that can be taken down and brought back. */
async function clickhouseProxy(target: string): Promise<{ url: string; down(): Promise<void>; up(): Promise<void>; close(): Promise<void> }> {
  const { hostname, port } = new URL(target);
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  let listenPort = 0;
  const up = () =>
    new Promise<void>((resolve) => {
      server = createServer((client) => {
        const upstream = new Socket();
        sockets.add(client).add(upstream);
        const drop = () => {
          client.destroy();
          upstream.destroy();
          sockets.delete(client);
          sockets.delete(upstream);
        };
        client.on('error', drop).on('close', drop);
        upstream.on('error', drop).on('close', drop);
        upstream.connect(Number(port), hostname, () => client.pipe(upstream).pipe(client));
      });
      server.listen(listenPort, '127.0.0.1', () => {
        listenPort = (server!.address() as { port: number }).port;
        resolve();
      });
    });
  const down = () =>
    new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      sockets.clear();
      if (!server) return resolve();
      server.close(() => resolve());
      server = undefined;
    });
  await up();
  return { url: `http://127.0.0.1:${listenPort}`, up, down, close: down };
}

describe('sink while ClickHouse is down [kafka → clickhouse server]', () => {
  it('retries with backoff, commits nothing it has not written, and loses nothing (archive included) once ClickHouse is back', async () => {
    const proxy = await clickhouseProxy(url);
    const database = uniqueDatabase('switchyard_outage');
    const direct = await serverStore(database);
    const viaProxy = await createServerAnalyticsStore({ url: proxy.url, database, requestTimeoutMs: 3_000 });
    const log = await openKafkaLog({ brokers: kafkaBrokers() });
    const codec = await EventCodec.create({ registry: new InMemoryRegistry() });
    const prefix = `${uniqueName('sy')}.`;
    const layout = topicLayout({ prefix, lanes: 8 });
    await log.ensureTopics(Object.values(layout));
    const count = async () => (await direct.query<{ n: number }>('SELECT count() AS n FROM requests FINAL'))[0]!.n;
    const committed = async () => (await log.committedOffsets(`${prefix}sink`, layout.requests.name)).reduce((a, b) => a + Math.max(0, b), 0);
    const before = eventStream({ requests: 200, start: Date.now() - 60_000, seed: 11 });
    const during = eventStream({ requests: 300, start: Date.now() - 30_000, seed: 12 });
    const sink = await startSink({ log, store: viaProxy, codec, topicPrefix: prefix, lanes: 8, batchRows: 100, batchDelayMs: 20, retryBudgetMs: 1_500, retryBackoffMs: 50, retryBackoffMaxMs: 400 });
    try {
      await log.append(before.events.map((e) => recordFor(layout, e, codec.encode(e))));
      await waitFor(async () => (await count()) === 200, { timeoutMs: 60_000, intervalMs: 100, what: 'the first 200 requests' });
      // Offsets are committed just after ClickHouse acknowledges: wait for the commits to land.
      await waitFor(async () => (await committed()) === 200, { timeoutMs: 30_000, intervalMs: 50, what: 'the first 200 requests to be committed' });

      await proxy.down();
      await log.append(during.events.map((e) => recordFor(layout, e, codec.encode(e))));
      await waitFor(() => sink.stats().flushFailures >= 2, { timeoutMs: 60_000, intervalMs: 100, what: 'flushes to fail while ClickHouse is down' });
      const text = await sink.metrics.registry.metrics();
      expect(text).toMatch(/switchyard_sink_insert_retries_total\{table="\w+"\} [1-9]/);
      // Nothing written, nothing committed past what was written.
      expect(await count()).toBe(200);
      expect(await committed()).toBe(200);

      await proxy.up();
      await waitFor(async () => (await count()) === 500, { timeoutMs: 90_000, intervalMs: 200, what: 'all 500 requests once ClickHouse is back' });
      await waitFor(
        async () => {
          for (const t of Object.values(layout)) {
            const [ends, done] = await Promise.all([log.endOffsets(t.name), log.committedOffsets(`${prefix}sink`, t.name)]);
            if (ends.some((e, p) => e > 0 && done[p] !== e)) return false;
          }
          return true;
        },
        { timeoutMs: 60_000, intervalMs: 100, what: 'every topic to be written and committed' },
      );
      for (const [table, expected] of [
        ['requests', 500],
        ['decisions', 500],
        ['results', 1_000],
      ] as const) {
        expect({ table, rows: (await direct.query<{ n: number }>(`SELECT count() AS n FROM ${table} FINAL`))[0]!.n }).toEqual({ table, rows: expected });
      }
      expect(sink.stats().deadLettered).toBe(0);
      // The archive went through the outage with the rest: every record once per position.
      expect(await archivedRecords(direct)).toEqual(await readTopics(log, Object.values(layout).map((t) => t.name)));
    } finally {
      await sink.close();
      await viaProxy.close();
      await direct.close();
      await log.close();
      await proxy.close();
    }
  });
});

