import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { features, migrate } from '../../lib/analytics/migrations.js';
import { loadQueryPack, packQuery, resolveParams, runPackQuery } from '../../lib/analytics/pack.js';
import type { AnalyticsStore, Row } from '../../lib/analytics/port.js';
import { EVENT_TYPES, type SwitchyardEvent } from '../../schemas/generated/events.js';
import { SAMPLE_EVENTS } from '../../schemas/samples.js';
import { SINK_TABLES, rowFor, type TableRow } from '../../services/sink/rows.js';
import { EVICTION_TICK_ID, WINDOW, at, fixtureEvents } from '../support/analytics-fixture.js';

/**
 * The analytics schema and the query pack on one engine: migrations build every table and
 * rollup; every event type's row (from the sink's mapping) goes in and reads back; a
 * re-inserted event counts once in the base tables; and every shipped query returns the
 * numbers worked out by hand for the fixture (`test/support/analytics-fixture.ts`), with
 * duplicates of a third of the rows inserted. Run on chDB (`lib/analytics/pack.contract.test.ts`)
 * and on the real ClickHouse server (`lib/analytics/pack.int.test.ts`: 18.16 in CI).
 *
 * `factory` returns a store over an empty database of the suite's own.
 */
export function testAnalyticsPack(name: string, factory: () => Promise<AnalyticsStore>): void {
  describe(`analytics schema and query pack: ${name}`, () => {
    let store: AnalyticsStore;
    let fixtureRows: TableRow[];
    const pack = loadQueryPack();

    const insertRows = async (rows: readonly TableRow[]) => {
      for (const table of SINK_TABLES) {
        const batch = rows.filter((r) => r.table === table).map((r) => r.row);
        if (batch.length > 0) await store.insert(table, batch);
      }
    };
    const run = (query: string, given: Record<string, string | undefined> = {}) => {
      const q = packQuery(query, pack);
      return runPackQuery(store, q, resolveParams(q, { since: WINDOW.since.toISOString(), until: WINDOW.until.toISOString(), ...given }, Date.now()));
    };
    const count = async (sql: string) => (await store.query<{ n: number }>(sql))[0]!.n;

    beforeAll(async () => {
      store = await factory();
      await migrate(store);
      const events = await fixtureEvents();
      fixtureRows = events.map((e, i) => rowFor(e, { topic: 'switchyard.fixture', partition: 0, offset: i }));
      await insertRows(fixtureRows);
    });
    afterAll(async () => {
      await store?.close();
    });

    it('migrations build one table per event family (and ticks), the two rollups with their views, and the log archive', async () => {
      const tables = await store.query<{ name: string; engine: string }>('SELECT name, engine FROM system.tables WHERE database = currentDatabase() ORDER BY name');
      expect(Object.fromEntries(tables.map((t) => [t.name, t.engine]))).toEqual({
        control: 'ReplacingMergeTree',
        deadletters: 'ReplacingMergeTree',
        decisions: 'ReplacingMergeTree',
        decisions_by_minute: 'SummingMergeTree',
        decisions_by_minute_mv: 'MaterializedView',
        heartbeats: 'ReplacingMergeTree',
        log_ids: 'ReplacingMergeTree',
        log_ids_key_mv: 'MaterializedView',
        log_ids_request_mv: 'MaterializedView',
        log_records: 'ReplacingMergeTree',
        log_schemas: 'ReplacingMergeTree',
        log_topics: 'ReplacingMergeTree',
        requests: 'ReplacingMergeTree',
        results: 'ReplacingMergeTree',
        results_by_minute: 'AggregatingMergeTree',
        results_by_minute_mv: 'MaterializedView',
        schema_migrations: 'ReplacingMergeTree',
        sessions: 'ReplacingMergeTree',
        ticks: 'ReplacingMergeTree',
      });
      expect(await migrate(store)).toEqual({ applied: [], current: 5 });
      // The sink's rows and the tables agree column for column: no column a row leaves to its
      // default, none a row sets that the table lacks.
      for (const table of SINK_TABLES) {
        const described = await store.query<{ name: string; default_type: string }>(`DESCRIBE TABLE ${table}`);
        const insertable = described.filter((c) => c.default_type !== 'MATERIALIZED' && c.default_type !== 'ALIAS').map((c) => c.name);
        const mapped = fixtureRows.find((r) => r.table === table) ?? rowFor(SAMPLE_EVENTS.ControllerTick, { topic: 't', partition: 0, offset: 0 });
        expect({ table, columns: Object.keys(mapped.row).sort() }).toEqual({ table, columns: insertable.sort() });
      }
    });

    it('the rollups hold per-minute counts, cache hits and latency quantile states', async () => {
      const results = await store.query(
        `SELECT model, model_version, sumMerge(started) AS started, sumMerge(completed) AS completed, sumMerge(failed) AS failed,
                sumMerge(cache_hits) AS cache_hits, quantilesIfMerge(0.5, 0.95, 0.99)(latency) AS latency
         FROM results_by_minute
         WHERE minute >= toDateTime('2026-01-01 10:00:00', 'UTC') AND minute < toDateTime('2026-01-01 11:00:00', 'UTC')
         GROUP BY model, model_version ORDER BY model, model_version`,
      );
      expect(results).toHaveLength(2);
      expect(results[0]).toMatchObject({ model: 'sentiment', model_version: 'v1', started: 12, completed: 11, failed: 1, cache_hits: 4 });
      expect(results[1]).toMatchObject({ model: 'sentiment', model_version: 'v2', started: 4, completed: 3, failed: 1, cache_hits: 0 });
      // quantiles() interpolates: v1's 11 latencies are 10..120 without 50.
      const [p50, p95, p99] = results[0]!.latency as number[];
      expect(p50).toBeCloseTo(70, 6);
      expect(p95).toBeCloseTo(115, 6);
      expect(p99).toBeCloseTo(119, 6);
      // One minute of one worker: r1 completed on w1 at 10:01:01.010.
      expect(
        await store.query(
          "SELECT sumMerge(completed) AS completed, quantilesIfMerge(0.5, 0.95, 0.99)(latency) AS latency FROM results_by_minute WHERE worker_id = 'w1' AND minute = toDateTime('2026-01-01 10:01:00', 'UTC')",
        ),
      ).toEqual([{ completed: 1, latency: [10, 10, 10] }]);

      const decisions = await store.query(
        `SELECT type, reason, sum(decisions) AS n, sum(degraded_decisions) AS degraded FROM decisions_by_minute
         WHERE minute >= toDateTime('2026-01-01 10:00:00', 'UTC') AND minute < toDateTime('2026-01-01 12:00:00', 'UTC')
         GROUP BY type, reason ORDER BY type, reason`,
      );
      expect(decisions).toEqual([
        { type: 'RequestRouted', reason: 'AFFINITY', n: 7, degraded: 0 },
        { type: 'RequestRouted', reason: 'CANARY', n: 4, degraded: 0 },
        { type: 'RequestRouted', reason: 'FALLBACK_MODEL', n: 1, degraded: 1 },
        { type: 'RequestRouted', reason: 'LEAST_LOADED', n: 9, degraded: 0 },
        { type: 'RequestRouted', reason: 'REDISPATCH', n: 1, degraded: 0 },
        { type: 'RequestRouted', reason: 'ZONE_FAILOVER', n: 1, degraded: 1 },
        { type: 'RequestRejected', reason: 'DEADLINE_EXCEEDED', n: 1, degraded: 0 },
        { type: 'RequestRejected', reason: 'NO_CAPACITY', n: 1, degraded: 0 },
        { type: 'RequestRejected', reason: 'SHED', n: 3, degraded: 0 },
      ]);
    });

    it('a re-inserted event is one row with FINAL; the rollups count it again (documented as approximate)', async () => {
      const distinct = await count('SELECT count() AS n FROM results');
      // A third of every table again, in separate inserts (separate parts).
      await insertRows(fixtureRows.filter((_, i) => i % 3 === 0));
      await insertRows(fixtureRows.filter((_, i) => i % 3 === 0).slice(0, 5));
      expect(await count('SELECT count() AS n FROM results')).toBeGreaterThan(distinct);
      expect(await count('SELECT count() AS n FROM results FINAL')).toBe(distinct);
      expect(await count('SELECT uniqExact(event_id) AS n FROM results')).toBe(distinct);
      // Heartbeats have a 30-day TTL where the server has TTL: the fixture's (2026-01-01) go once expired.
      const { ttl } = features(await store.serverVersion());
      await store.exec('OPTIMIZE TABLE heartbeats FINAL');
      const heartbeatsExpired = ttl && at(10, 0) + 30 * 86_400_000 <= Date.now();
      expect(fixtureRows.filter((r) => r.table === 'ticks')).toEqual([]); // (so the TTL cannot make this flaky)
      for (const table of SINK_TABLES) {
        const expected = table === 'heartbeats' && heartbeatsExpired ? 0 : fixtureRows.filter((r) => r.table === table).length;
        expect({ table, rows: await count(`SELECT count() AS n FROM ${table} FINAL`) }).toEqual({ table, rows: expected });
      }
      const rollup = await count('SELECT sumMerge(completed) AS n FROM results_by_minute');
      expect(rollup).toBeGreaterThan(fixtureRows.filter((r) => r.row.type === 'InferenceCompleted').length);
    });

    it('every event type goes into its table and reads back as mapped', async () => {
      for (const type of EVENT_TYPES) {
        // Recent enough for the TTL of heartbeats and ticks.
        const sample = SAMPLE_EVENTS[type] as SwitchyardEvent;
        const event = type === 'WorkerHeartbeat' || type === 'ControllerTick' ? { ...sample, occurredAt: Date.now() - 1_000 } : sample;
        const { table, row } = rowFor(event, { topic: 'switchyard.samples', partition: 1, offset: 7 });
        await store.insert(table, [row]);
        const [back] = await store.query<Row>(`SELECT * FROM ${table} FINAL WHERE event_id = {id:UUID}`, { id: event.eventId });
        expect(back, `${type} read back`).toBeDefined();
        for (const [column, value] of Object.entries(row)) {
          const got = back![column];
          if (value instanceof Date) {
            // 'YYYY-MM-DD hh:mm:ss' (18.16) or with '.mmm' (DateTime64): compare to the second.
            expect(String(got).slice(0, 19), `${type}.${column}`).toBe(value.toISOString().slice(0, 19).replace('T', ' '));
          } else {
            expect(got, `${type}.${column}`).toEqual(normalize(value));
          }
        }
      }
    });

    it('every shipped query is in the pack, documented and answers with its declared columns', () => {
      expect(pack.map((q) => q.name)).toEqual([
        'cache-hit-ratio',
        'canary-vs-stable',
        'control-actions',
        'decisions-by-reason',
        'failover-incidents',
        'latency-by-version',
        'latency-by-worker',
        'latency-by-zone',
        'rejected-and-shed',
        'slowest-requests',
        'throughput-and-errors',
      ]);
      for (const q of pack) {
        expect(q.summary.length, q.name).toBeGreaterThan(10);
        expect(q.columns.length, q.name).toBeGreaterThan(0);
      }
    });

    const columnsOf = (name: string) => packQuery(name, pack).columns.map((c) => c.name);
    const expectColumns = (name: string, rows: Row[]) => {
      expect(rows.length, `${name} returns rows`).toBeGreaterThan(0);
      for (const r of rows) expect(Object.keys(r), name).toEqual(columnsOf(name));
    };

    it('latency-by-version: exact p50/p95/p99 per hour and version', async () => {
      const rows = await run('latency-by-version');
      expectColumns('latency-by-version', rows);
      expect(rows).toEqual([
        { bucket: '2026-01-01 10:00:00', model: 'sentiment', model_version: 'v1', completed: 11, p50_ms: 70, p95_ms: 120, p99_ms: 120 },
        { bucket: '2026-01-01 10:00:00', model: 'sentiment', model_version: 'v2', completed: 3, p50_ms: 140, p95_ms: 160, p99_ms: 160 },
        { bucket: '2026-01-01 11:00:00', model: 'llm', model_version: 'q4', completed: 4, p50_ms: 700, p95_ms: 800, p99_ms: 800 },
        { bucket: '2026-01-01 11:00:00', model: 'sentiment', model_version: 'v1', completed: 2, p50_ms: 50, p95_ms: 50, p99_ms: 50 },
      ]);
      // Filtered by model, in 2-hour buckets: v1 has 13 latencies 10,20,25,30,40,50,60…120.
      expect(await run('latency-by-version', { model: 'sentiment', bucket_minutes: '120' })).toEqual([
        { bucket: '2026-01-01 10:00:00', model: 'sentiment', model_version: 'v1', completed: 13, p50_ms: 60, p95_ms: 120, p99_ms: 120 },
        { bucket: '2026-01-01 10:00:00', model: 'sentiment', model_version: 'v2', completed: 3, p50_ms: 140, p95_ms: 160, p99_ms: 160 },
      ]);
      expect(await run('latency-by-version', { model: 'nope' })).toEqual([]);
    });

    it('latency-by-worker', async () => {
      const rows = await run('latency-by-worker');
      expectColumns('latency-by-worker', rows);
      expect(rows).toEqual([
        { bucket: '2026-01-01 10:00:00', worker_id: 'w1', completed: 7, p50_ms: 40, p95_ms: 80, p99_ms: 80 },
        { bucket: '2026-01-01 10:00:00', worker_id: 'w2', completed: 4, p50_ms: 110, p95_ms: 120, p99_ms: 120 },
        { bucket: '2026-01-01 10:00:00', worker_id: 'w3', completed: 3, p50_ms: 140, p95_ms: 160, p99_ms: 160 },
        { bucket: '2026-01-01 11:00:00', worker_id: 'w2', completed: 2, p50_ms: 50, p95_ms: 50, p99_ms: 50 },
        { bucket: '2026-01-01 11:00:00', worker_id: 'w3', completed: 4, p50_ms: 700, p95_ms: 800, p99_ms: 800 },
      ]);
      expect(await run('latency-by-worker', { worker: 'w2', since: '2026-01-01T11:00:00Z' })).toEqual([
        { bucket: '2026-01-01 11:00:00', worker_id: 'w2', completed: 2, p50_ms: 50, p95_ms: 50, p99_ms: 50 },
      ]);
    });

    it('latency-by-zone: the zone of the decision that routed each request', async () => {
      const rows = await run('latency-by-zone');
      expectColumns('latency-by-zone', rows);
      expect(rows).toEqual([
        { bucket: '2026-01-01 10:00:00', zone: 'a', completed: 11, p50_ms: 70, p95_ms: 120, p99_ms: 120 },
        { bucket: '2026-01-01 10:00:00', zone: 'b', completed: 3, p50_ms: 140, p95_ms: 160, p99_ms: 160 },
        { bucket: '2026-01-01 11:00:00', zone: 'a', completed: 2, p50_ms: 50, p95_ms: 50, p99_ms: 50 },
        { bucket: '2026-01-01 11:00:00', zone: 'b', completed: 4, p50_ms: 700, p95_ms: 800, p99_ms: 800 },
      ]);
    });

    it('throughput-and-errors: each event once, in the bucket of its own time', async () => {
      const rows = await run('throughput-and-errors');
      expectColumns('throughput-and-errors', rows);
      expect(rows).toEqual([
        { bucket: '2026-01-01 10:00:00', model: 'sentiment', requests: 20, requests_per_second: 0.006, completed: 14, failed: 2, rejected: 4, error_rate: 0.125 },
        { bucket: '2026-01-01 11:00:00', model: 'llm', requests: 4, requests_per_second: 0.001, completed: 4, failed: 0, rejected: 0, error_rate: 0 },
        { bucket: '2026-01-01 11:00:00', model: 'llm-big', requests: 1, requests_per_second: 0, completed: 0, failed: 0, rejected: 0, error_rate: 0 },
        { bucket: '2026-01-01 11:00:00', model: 'sentiment', requests: 1, requests_per_second: 0, completed: 2, failed: 0, rejected: 0, error_rate: 0 },
      ]);
    });

    it('cache-hit-ratio per worker', async () => {
      const rows = await run('cache-hit-ratio');
      expectColumns('cache-hit-ratio', rows);
      expect(rows).toEqual([
        { bucket: '2026-01-01 10:00:00', worker_id: 'w1', completed: 7, cache_hits: 3, cache_hit_ratio: 0.4286 },
        { bucket: '2026-01-01 10:00:00', worker_id: 'w2', completed: 4, cache_hits: 1, cache_hit_ratio: 0.25 },
        { bucket: '2026-01-01 10:00:00', worker_id: 'w3', completed: 3, cache_hits: 0, cache_hit_ratio: 0 },
        { bucket: '2026-01-01 11:00:00', worker_id: 'w2', completed: 2, cache_hits: 1, cache_hit_ratio: 0.5 },
        { bucket: '2026-01-01 11:00:00', worker_id: 'w3', completed: 4, cache_hits: 0, cache_hit_ratio: 0 },
      ]);
    });

    it('decisions-by-reason: 28 decisions in the window, the superseded rejection of r24 among them', async () => {
      const rows = await run('decisions-by-reason');
      expectColumns('decisions-by-reason', rows);
      expect(rows).toEqual([
        { outcome: 'routed', reason: 'LEAST_LOADED', decisions: 9, degraded: 0, share: 0.3214 },
        { outcome: 'routed', reason: 'AFFINITY', decisions: 7, degraded: 0, share: 0.25 },
        { outcome: 'routed', reason: 'CANARY', decisions: 4, degraded: 0, share: 0.1429 },
        { outcome: 'rejected', reason: 'SHED', decisions: 3, degraded: 0, share: 0.1071 },
        { outcome: 'rejected', reason: 'DEADLINE_EXCEEDED', decisions: 1, degraded: 0, share: 0.0357 },
        { outcome: 'rejected', reason: 'NO_CAPACITY', decisions: 1, degraded: 0, share: 0.0357 },
        { outcome: 'routed', reason: 'FALLBACK_MODEL', decisions: 1, degraded: 1, share: 0.0357 },
        { outcome: 'routed', reason: 'REDISPATCH', decisions: 1, degraded: 0, share: 0.0357 },
        { outcome: 'routed', reason: 'ZONE_FAILOVER', decisions: 1, degraded: 1, share: 0.0357 },
      ]);
      expect(await run('decisions-by-reason', { model: 'llm' })).toEqual([
        { outcome: 'routed', reason: 'LEAST_LOADED', decisions: 4, degraded: 0, share: 0.8 },
        { outcome: 'rejected', reason: 'DEADLINE_EXCEEDED', decisions: 1, degraded: 0, share: 0.2 },
      ]);
    });

    it('rejected-and-shed by priority, highest class first', async () => {
      const rows = await run('rejected-and-shed');
      expectColumns('rejected-and-shed', rows);
      expect(rows).toEqual([
        { priority: 'CRITICAL', requests: 4, rejected: 0, shed: 0, rejected_ratio: 0, shed_ratio: 0 },
        { priority: 'HIGH', requests: 6, rejected: 0, shed: 0, rejected_ratio: 0, shed_ratio: 0 },
        { priority: 'NORMAL', requests: 11, rejected: 0, shed: 0, rejected_ratio: 0, shed_ratio: 0 },
        { priority: 'LOW', requests: 5, rejected: 4, shed: 3, rejected_ratio: 0.8, shed_ratio: 0.6 },
      ]);
    });

    it('failover-incidents in time order, limited', async () => {
      const rows = await run('failover-incidents');
      expectColumns('failover-incidents', rows);
      const { occurred_at: _a, ...first } = rows[0]!;
      expect(String(rows[0]!.occurred_at).startsWith('2026-01-01 10:12:01')).toBe(true);
      expect(first).toEqual({
        occurred_at_ms: at(10, 12, 1),
        incident: 'zone_failover',
        worker_id: 'w2',
        lane: 2,
        zone: 'a',
        request_id: 'r12',
        reason: 'ZONE_FAILOVER',
        detail: '',
      });
      expect(rows.map(({ occurred_at: _o, ...r }) => r)).toEqual([
        first,
        { occurred_at_ms: at(11, 25, 1), incident: 'fallback_model', worker_id: 'w2', lane: 2, zone: 'a', request_id: 'r26', reason: 'FALLBACK_MODEL', detail: 'llm-big served by sentiment' },
        { occurred_at_ms: at(11, 30), incident: 'eviction', worker_id: 'w1', lane: 1, zone: '', request_id: '', reason: 'SUSPECTED_DEAD', detail: 'no heartbeat for 690 ms (phi 9.2 ≥ 8, at least 500 ms)' },
        { occurred_at_ms: at(11, 30, 5), incident: 'redispatch', worker_id: 'w2', lane: 2, zone: 'a', request_id: 'r25', reason: 'REDISPATCH', detail: 'previous worker w1' },
      ]);
      expect((await run('failover-incidents', { limit: '2' })).map((r) => r.incident)).toEqual(['zone_failover', 'fallback_model']);
    });

    it('canary-vs-stable: the versions of the latest rollout that named a canary', async () => {
      const rows = await run('canary-vs-stable', { model: 'sentiment' });
      expectColumns('canary-vs-stable', rows);
      expect(rows).toEqual([
        { role: 'canary', model_version: 'v2', completed: 3, failed: 1, error_rate: 0.25, p50_ms: 140, p95_ms: 160, p99_ms: 160, cache_hit_ratio: 0 },
        { role: 'stable', model_version: 'v1', completed: 13, failed: 1, error_rate: 0.0714, p50_ms: 60, p95_ms: 120, p99_ms: 120, cache_hit_ratio: 0.3846 },
      ]);
      expect(await run('canary-vs-stable', { model: 'llm' })).toEqual([]);
      // Before the canary started there is nothing to compare.
      expect(await run('canary-vs-stable', { model: 'sentiment', since: '2026-01-01T09:00:00Z', until: '2026-01-01T09:30:00Z' })).toEqual([]);
    });

    it('slowest-requests: end to end where the request is known, with the ids for replay', async () => {
      const rows = await run('slowest-requests', { limit: '5' });
      expectColumns('slowest-requests', rows);
      expect(rows.map(({ completed_at: _c, ...r }) => r)).toEqual([
        { request_id: 'r25', model: 'sentiment', model_version: 'v1', worker_id: 'w2', duration_ms: 660_000, latency_ms: 50, queue_ms: 1, compute_ms: 49, cache_hit: 0 },
        { request_id: 'r24', model: 'llm', model_version: 'q4', worker_id: 'w3', duration_ms: 1_800, latency_ms: 800, queue_ms: 0, compute_ms: 800, cache_hit: 0 },
        { request_id: 'r23', model: 'llm', model_version: 'q4', worker_id: 'w3', duration_ms: 1_700, latency_ms: 700, queue_ms: 0, compute_ms: 700, cache_hit: 0 },
        { request_id: 'r22', model: 'llm', model_version: 'q4', worker_id: 'w3', duration_ms: 1_600, latency_ms: 600, queue_ms: 0, compute_ms: 600, cache_hit: 0 },
        { request_id: 'r21', model: 'llm', model_version: 'q4', worker_id: 'w3', duration_ms: 1_500, latency_ms: 500, queue_ms: 0, compute_ms: 500, cache_hit: 0 },
      ]);
      expect(String(rows[0]!.completed_at).startsWith('2026-01-01 11:31:00')).toBe(true);
      const sentiment = await run('slowest-requests', { model: 'sentiment', limit: '2', since: '2026-01-01T10:00:00Z', until: '2026-01-01T11:00:00Z' });
      expect(sentiment.map((r) => [r.request_id, r.duration_ms])).toEqual([
        ['r16', 1_160],
        ['r14', 1_140],
      ]);
    });

    it('exactly one outcome per request: the superseded outcomes are stored, and what the pack counts has one per request', async () => {
      // The two losers are in the tables (so the answers above are not met by their absence)…
      const named = "(SELECT superseded_event_id FROM results FINAL WHERE type = 'ResultSuperseded')";
      expect(await store.query(`SELECT request_id, type, worker_id, latency_ms FROM results FINAL WHERE event_id IN ${named}`)).toEqual([
        { request_id: 'r25', type: 'InferenceCompleted', worker_id: 'w1', latency_ms: 779_000 },
      ]);
      expect(await store.query(`SELECT request_id, type, reason FROM decisions FINAL WHERE event_id IN ${named}`)).toEqual([{ request_id: 'r24', type: 'RequestRejected', reason: 'DEADLINE_EXCEEDED' }]);
      // …and in the window two requests have two terminal outcomes until the losers are dropped.
      const inWindow = `occurred_at_ms >= ${WINDOW.since.getTime()} AND occurred_at_ms < ${WINDOW.until.getTime()}`;
      const outcomes = (exclude: boolean) => `
        SELECT rid, count() AS n FROM (
          SELECT ifNull(request_id, '') AS rid FROM results FINAL
          WHERE type IN ('InferenceCompleted', 'InferenceFailed') AND ${inWindow}${exclude ? ` AND event_id NOT IN ${named}` : ''}
          UNION ALL
          SELECT ifNull(request_id, '') AS rid FROM decisions FINAL
          WHERE type = 'RequestRejected' AND ${inWindow}${exclude ? ` AND event_id NOT IN ${named}` : ''}
        ) GROUP BY rid HAVING n > 1 ORDER BY rid`;
      expect(await store.query(outcomes(false))).toEqual([
        { rid: 'r24', n: 2 },
        { rid: 'r25', n: 2 },
      ]);
      expect(await store.query(outcomes(true))).toEqual([]);
    });

    it('control-actions: elections, evictions with their evidence, re-dispatches and superseded outcomes, in time order', async () => {
      const rows = await run('control-actions');
      expectColumns('control-actions', rows);
      expect(String(rows[0]!.occurred_at).startsWith('2026-01-01 11:04:05')).toBe(true);
      const none = { epoch: null, silence_ms: null, phi: null, phi_threshold: null, min_silence_ms: null, mean_interval_ms: null, std_interval_ms: null };
      const superseded = {
        occurred_at_ms: at(11, 4, 5, 100),
        action: 'superseded',
        ...none,
        actor: 'controller-1',
        worker_id: '',
        lane: -1,
        request_id: 'r24',
        attempt: 1,
        reason: 'RequestRejected',
        detail: 'RequestRejected at switchyard.results/3:501 lost to InferenceCompleted at switchyard.results/3:500',
      };
      const election = {
        occurred_at_ms: at(11, 10),
        action: 'election',
        ...none,
        epoch: 2,
        actor: 'controller-2',
        worker_id: '',
        lane: -1,
        request_id: '',
        attempt: null,
        reason: 'LEADER_SILENT',
        silence_ms: 2_150,
        detail: 'replaces controller-1, lease 2000 ms',
      };
      const eviction = {
        occurred_at_ms: at(11, 30),
        action: 'eviction',
        epoch: 2,
        actor: 'controller-2',
        worker_id: 'w1',
        lane: 1,
        request_id: '',
        attempt: null,
        reason: 'SUSPECTED_DEAD',
        silence_ms: 690,
        phi: 9.2,
        phi_threshold: 8,
        min_silence_ms: 500,
        mean_interval_ms: 101.5,
        std_interval_ms: 25,
        detail: `last heartbeat switchyard.heartbeats/1:4711 (partition end 4712), decided at tick ${EVICTION_TICK_ID}`,
      };
      const redispatch = {
        occurred_at_ms: at(11, 30, 5),
        action: 'redispatch',
        ...none,
        actor: 'router-1',
        worker_id: 'w2',
        lane: 2,
        request_id: 'r25',
        attempt: 2,
        reason: 'REDISPATCH',
        detail: 'previous worker w1',
      };
      const lateAnswer = {
        occurred_at_ms: at(11, 33, 0, 500),
        action: 'superseded',
        ...none,
        actor: 'controller-2',
        worker_id: 'w1',
        lane: -1,
        request_id: 'r25',
        attempt: 1,
        reason: 'InferenceCompleted',
        detail: 'InferenceCompleted at switchyard.results/5:1201 lost to InferenceCompleted at switchyard.results/5:1200',
      };
      const withoutTime = (r: Row) => {
        const { occurred_at: _o, ...rest } = r;
        return rest;
      };
      expect(rows.map(withoutTime)).toEqual([superseded, election, eviction, redispatch, lateAnswer]);
      expect((await run('control-actions', { action: 'eviction' })).map(withoutTime)).toEqual([eviction]);
      expect((await run('control-actions', { limit: '2' })).map((r) => r.action)).toEqual(['superseded', 'election']);
      // controller-1's election is before the window; the samples (00:00–00:02) are earlier still.
      expect((await run('control-actions', { action: 'election', since: '2026-01-01T09:00:00Z' })).map(withoutTime)).toEqual([
        { ...election, occurred_at_ms: at(9, 0, 0, 500), epoch: 1, actor: 'controller-1', reason: 'FIRST_LEADER', silence_ms: null, detail: 'first leader, lease 2000 ms' },
        election,
      ]);
      expect(await run('control-actions', { since: '2026-01-01T11:34:00Z' })).toEqual([]);
    });
  });
}

/** A row value as the store reads it back: booleans as 0/1, arrays element-wise. */
function normalize(v: unknown): unknown {
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (Array.isArray(v)) return v.map(normalize);
  return v;
}

