import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addColumns, features, migrate, runMigration, tableColumns } from '../../lib/analytics/migrations.js';
import type { AnalyticsStore, Row } from '../../lib/analytics/port.js';
import { EVENT_TABLES, EVENT_TYPE_V5, controller } from '../../schemas/clickhouse/migrations/005_controller.js';
import { migrations } from '../../schemas/clickhouse/migrations/index.js';
import type { AddColumns } from '../../schemas/clickhouse/migrations/types.js';
import { EVENT_TYPES, type SwitchyardEvent } from '../../schemas/generated/events.js';
import { SAMPLE_EVENTS } from '../../schemas/samples.js';
import { rowFor } from '../../services/sink/rows.js';

/**
 * The migration runner on one engine: columns added idempotently without
 * `ADD COLUMN IF NOT EXISTS` (which ClickHouse 18.16 does not parse), by concurrent migrators
 * too, and migration 005 upgrading a store that holds rows of the 004 schema. Run on chDB
 * (`lib/analytics/migrations.contract.test.ts`) and on the real server
 * (`lib/analytics/migrations.int.test.ts`: 18.16 in CI).
 *
 * `factory` returns a store over an empty database of the suite's own.
 */
export function testAnalyticsMigrations(name: string, factory: () => Promise<AnalyticsStore>): void {
  describe(`analytics migrations: ${name}`, () => {
    let store: AnalyticsStore;
    const rows = (sql: string) => store.query<Row>(sql);

    beforeAll(async () => {
      store = await factory();
    });
    afterAll(async () => {
      await store?.close();
    });

    it('addColumns adds what a table lacks in one ALTER, then nothing; older rows read the DEFAULT or the type zero', async () => {
      await store.exec('CREATE TABLE t_add (id UInt32, a String) ENGINE = MergeTree() ORDER BY id');
      await store.insert('t_add', [{ id: 1, a: 'x' }]);
      const step: AddColumns = {
        kind: 'add_columns',
        table: 't_add',
        columns: [
          { name: 'a', type: 'String' },
          { name: 'b', type: 'Nullable(Int64)' },
          { name: 'c', type: 'Int32', default: '50' },
          { name: 'd', type: 'Array(Float64)' },
        ],
      };
      expect(await addColumns(store, step)).toEqual(['b', 'c', 'd']);
      expect(await addColumns(store, step)).toEqual([]);
      expect(await rows('SELECT * FROM t_add')).toEqual([{ id: 1, a: 'x', b: null, c: 50, d: [] }]);
      expect([...(await tableColumns(store, 't_add')).entries()]).toEqual([
        ['id', 'UInt32'],
        ['a', 'String'],
        ['b', 'Nullable(Int64)'],
        ['c', 'Int32'],
        ['d', 'Array(Float64)'],
      ]);
    });

    it('addColumns refuses a column that exists with another type, and a table that does not exist', async () => {
      await store.exec('CREATE TABLE t_clash (id UInt32, a String) ENGINE = MergeTree() ORDER BY id');
      await expect(addColumns(store, { kind: 'add_columns', table: 't_clash', columns: [{ name: 'a', type: 'Int64' }] })).rejects.toThrow(
        expect.objectContaining({ code: 'SY_ERR_ANALYTICS', message: expect.stringMatching(/t_clash\.a exists as String.*adds it as Int64/) }),
      );
      await expect(addColumns(store, { kind: 'add_columns', table: 't_nowhere', columns: [{ name: 'a', type: 'String' }] })).rejects.toThrow(/no such table/);
      expect([...(await tableColumns(store, 't_clash')).keys()]).toEqual(['id', 'a']);
    });

    it('migrators adding the same columns at once all succeed, and each column is added once', async () => {
      await store.exec('CREATE TABLE t_race (id UInt32) ENGINE = MergeTree() ORDER BY id');
      const names = ['c1', 'c2', 'c3', 'c4', 'c5', 'c6'];
      const step: AddColumns = { kind: 'add_columns', table: 't_race', columns: names.map((n) => ({ name: n, type: 'Nullable(String)' })) };
      const added = await Promise.all([addColumns(store, step), addColumns(store, step), addColumns(store, step)]);
      expect(added.flat().sort()).toEqual(names);
      expect([...(await tableColumns(store, 't_race')).keys()]).toEqual(['id', ...names]);
    });

    it('005 upgrades a store at 004: older rows keep reading (new columns empty or their default), every event type then goes in', async () => {
      expect(await migrate(store, migrations.slice(0, 4))).toEqual({ applied: [1, 2, 3, 4], current: 4 });
      // One row per event type the 004 schema knows, with the columns it has.
      const before = new Map<string, Map<string, string>>();
      for (const table of [...EVENT_TABLES, 'decisions_by_minute']) before.set(table, await tableColumns(store, table));
      // Recent enough for the 30-day TTL of heartbeats and ticks (where the server has TTL).
      const recent = (e: SwitchyardEvent): SwitchyardEvent => (e.type === 'WorkerHeartbeat' || e.type === 'ControllerTick' ? { ...e, occurredAt: Date.now() - 1_000 } : e);
      const older = EVENT_TYPES.filter((t) => !['ControllerElected', 'ControllerTick', 'ResultSuperseded'].includes(t));
      for (const type of older) {
        const { table, row } = rowFor(recent(SAMPLE_EVENTS[type] as SwitchyardEvent), { topic: 'switchyard.samples', partition: 0, offset: 1 });
        const columns = before.get(table)!;
        await store.insert(table, [Object.fromEntries(Object.entries(row).filter(([k]) => columns.has(k)))]);
      }
      await expect(store.insert('control', [rowFor(SAMPLE_EVENTS.ControllerElected, { topic: 't', partition: 0, offset: 2 }).row])).rejects.toThrow();

      expect(await migrate(store)).toEqual({ applied: [5], current: 5 });
      for (const table of [...EVENT_TABLES, 'decisions_by_minute', 'ticks']) {
        const type = (await tableColumns(store, table)).get('type')!;
        expect({ table, type: type.replace(/\s+/g, '') }).toEqual({ table, type: EVENT_TYPE_V5.replace(/\s+/g, '') });
      }
      expect(await rows(`SELECT queue_delay_ms, cache_hit_buckets, bucket_ms, completed FROM heartbeats WHERE event_id = '${SAMPLE_EVENTS.WorkerHeartbeat.eventId}'`)).toEqual([
        { queue_delay_ms: 0, cache_hit_buckets: [], bucket_ms: 50, completed: 0 },
      ]);
      expect(await rows(`SELECT reason, epoch, phi, tick_id, heartbeat_position_offset FROM control WHERE event_id = '${SAMPLE_EVENTS.WorkerEvicted.eventId}'`)).toEqual([
        { reason: 'SUSPECTED_DEAD', epoch: null, phi: null, tick_id: null, heartbeat_position_offset: null },
      ]);
      expect(await rows(`SELECT max_attempts FROM requests WHERE event_id = '${SAMPLE_EVENTS.InferenceRequested.eventId}'`)).toEqual([{ max_attempts: null }]);
      expect(await rows(`SELECT type, superseded_event_id, winner_position_offset FROM results WHERE event_id = '${SAMPLE_EVENTS.InferenceCompleted.eventId}'`)).toEqual([
        { type: 'InferenceCompleted', superseded_event_id: null, winner_position_offset: null },
      ]);

      // Every event type now goes in whole, the new ones included.
      for (const type of EVENT_TYPES) {
        const { table, row } = rowFor(recent(SAMPLE_EVENTS[type] as SwitchyardEvent), { topic: 'switchyard.samples', partition: 0, offset: 3 });
        await store.insert(table, [row]);
      }
      expect(await rows('SELECT controller_id, epoch, seq, interval_ms FROM ticks')).toEqual([{ controller_id: 'controller-2', epoch: 3, seq: 48_113, interval_ms: 100 }]);
      expect(await rows("SELECT count() AS n FROM results WHERE type = 'ResultSuperseded'")).toEqual([{ n: 1 }]);

      // Run again (a crash before it was recorded, or two processes migrating): nothing changes.
      const snapshot = async () => {
        const out: Record<string, [string, string][]> = {};
        for (const table of [...EVENT_TABLES, 'decisions_by_minute', 'ticks']) out[table] = [...(await tableColumns(store, table)).entries()];
        return out;
      };
      const columnsAfter = await snapshot();
      const serverVersion = await store.serverVersion();
      await runMigration(store, controller, { serverVersion, features: features(serverVersion) });
      expect(await snapshot()).toEqual(columnsAfter);
      expect(await migrate(store)).toEqual({ applied: [], current: 5 });
    });
  });
}
