import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServerAnalyticsStore } from '../../lib/analytics/server.js';
import type { AnalyticsStore } from '../../lib/analytics/port.js';
import { rowFor } from '../../services/sink/rows.js';
import { ChaosCluster, figuresOf, printFigures, readTopic, startHttpLoad, startKafkaLoad } from '../support/chaos.js';
import { clickhouseUrl, requireClickHouse, uniqueDatabase, waitFor } from '../support/services.js';
import { expectReplayed, verifyCluster } from './verify.js';

/**
 * The sink SIGKILLed under load and started again: afterwards ClickHouse holds exactly what
 * the log holds — per table, one row per distinct event, and one archived row per position.
 */
describe('chaos: sink crash and restart', () => {
  const database = uniqueDatabase('switchyard_chaos_sink');
  let cluster: ChaosCluster;
  let store: AnalyticsStore;

  beforeAll(async () => {
    await requireClickHouse();
    cluster = await ChaosCluster.start({ scenario: 'sink-restart', workers: 2, controllers: 1, sink: { clickhouseUrl: clickhouseUrl(), database } });
    store = await createServerAnalyticsStore({ url: clickhouseUrl(), database });
  }, 90_000);
  afterAll(async () => {
    await cluster?.close();
    await store?.exec(`DROP DATABASE IF EXISTS ${database}`).catch(() => {});
    await store?.close();
  });

  it('ClickHouse counts equal the log’s after a SIGKILL of the sink mid-stream', async () => {
    const http = startHttpLoad({ url: cluster.gatewayUrl(), ratePerSec: 20, count: 240 });
    const kafka = startKafkaLoad({ topic: cluster.layout.requests.name, codec: cluster.codec, ratePerSec: 10, count: 120 });
    await new Promise((r) => setTimeout(r, 4_000));
    const killed = await cluster.signal('sink', 'SIGKILL');
    await new Promise((r) => setTimeout(r, 2_000));
    const topics = Object.values(cluster.layout).map((t) => t.name);
    const endsAtRestart = await Promise.all(topics.map((t) => cluster.log.endOffsets(t)));
    const restarted = await cluster.restart('sink');
    // Recovery: the restarted sink has committed everything that was on the log when it started.
    let recoveredAt = 0;
    const recovery = waitFor(
      async () => {
        const committed = await Promise.all(topics.map((t) => cluster.log.committedOffsets(`${cluster.prefix}sink`, t)));
        const done = endsAtRestart.every((ends, i) => ends.every((end, p) => end === 0 || committed[i]![p]! >= end));
        if (done) recoveredAt = Date.now();
        return done;
      },
      { timeoutMs: 60_000, intervalMs: 100, what: 'the restarted sink to catch up with the log as it was at its restart' },
    );
    const [httpOutcomes, kafkaOutcomes] = await Promise.all([http.done, kafka.done]);
    await recovery.catch(async (err: Error) => {
      const lag: string[] = [];
      for (const [i, t] of topics.entries()) {
        const committed = await cluster.log.committedOffsets(`${cluster.prefix}sink`, t);
        endsAtRestart[i]!.forEach((end, p) => end > 0 && committed[p]! < end && lag.push(`${t}/${p}: committed ${committed[p]} < ${end}`));
      }
      throw new Error(`${err.message}; behind: ${lag.join(', ')}\n${cluster.diagnostics(40)}`, { cause: err });
    });
    const report = await cluster.settle();

    // Stop everything but the sink, so the log stops growing (heartbeats), and let it finish.
    for (const name of cluster.names().filter((n) => n !== 'sink')) await cluster.signal(name, 'SIGTERM');
    await waitFor(() => cluster.sinkCaughtUp(), { timeoutMs: 30_000, intervalMs: 200, what: `the sink to commit the whole log\n${cluster.diagnostics()}` });

    // The log, decoded, per sink table (distinct event ids), and its positions.
    const expected = new Map<string, Set<string>>();
    let positions = 0;
    for (const topic of topics) {
      for (const record of await readTopic(cluster.log, topic)) {
        positions++;
        const event = await cluster.codec.decode(record.value!).catch(() => undefined);
        if (!event) continue;
        const { table } = rowFor(event, record);
        expected.set(table, (expected.get(table) ?? new Set()).add(event.eventId));
      }
    }
    const count = async (sql: string) => Number((await store.query<{ n: number }>(sql))[0]!.n);
    const tables: Record<string, { log: number; final: number; distinct: number }> = {};
    for (const [table, ids] of expected) {
      tables[table] = { log: ids.size, final: await count(`SELECT count() AS n FROM ${table} FINAL`), distinct: await count(`SELECT uniqExact(event_id) AS n FROM ${table}`) };
    }
    const archived = { log: positions, final: await count('SELECT count() AS n FROM log_records FINAL'), distinct: await count('SELECT uniqExact(log_topic, log_partition, log_offset) AS n FROM log_records') };
    const rawRows = await count('SELECT (SELECT count() FROM requests) + (SELECT count() FROM decisions) + (SELECT count() FROM results) AS n');

    printFigures(
      figuresOf('sink crash and restart', '20 req/s HTTP + 10 req/s Kafka for 12 s; sink SIGKILLed at 4 s, restarted 2 s later', httpOutcomes.length + kafkaOutcomes.length, report, {
        recoveryMs: recoveredAt - restarted.at,
        extra: {
          'sink down': `${((restarted.at - killed.at) / 1000).toFixed(1)} s`,
          'log positions': positions,
          'archived rows (raw)': await count('SELECT count() AS n FROM log_records'),
          'requests+decisions+results rows (raw)': rawRows,
          ...Object.fromEntries(Object.entries(tables).map(([t, c]) => [`${t} log/CH`, `${c.log}/${c.final}`])),
        },
      }),
      report,
    );

    for (const [table, c] of Object.entries(tables)) expect({ table, final: c.final, distinct: c.distinct }).toEqual({ table, final: c.log, distinct: c.log });
    expect(archived).toEqual({ log: positions, final: positions, distinct: positions });
    expect(report.withoutTerminal, cluster.diagnostics()).toEqual([]);
    expect(report.duplicated).toEqual([]);
    // Replay re-derives every decision of the run, the controller's included.
    const verify = await verifyCluster(cluster);
    expectReplayed(verify);
    expect(httpOutcomes.filter((o) => o.status !== 200)).toEqual([]);
  }, 90_000);
});
