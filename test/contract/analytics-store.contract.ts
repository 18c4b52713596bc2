import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SwitchyardError } from '../../lib/errors.js';
import { appliedMigrations, features, migrate } from '../../lib/analytics/migrations.js';
import type { AnalyticsStore } from '../../lib/analytics/port.js';
import { migrations } from '../../schemas/clickhouse/migrations/index.js';
import { lowCardinality } from '../../schemas/clickhouse/migrations/gates.js';
import type { Migration } from '../../schemas/clickhouse/migrations/types.js';

/**
 * The `AnalyticsStore` contract: what the sink and the query pack may rely on, whichever
 * engine is underneath. Run by `lib/analytics/chdb.contract.test.ts` (chDB, ClickHouse
 * 26.x in-process) and `lib/analytics/server.int.test.ts` (a real ClickHouse server;
 * CI runs Debian's 18.16, so everything here must hold there too).
 *
 * `factory` returns a store over the suite's own database, empty on the first call; it may
 * be called again for a second store over the same database.
 */
export function testAnalyticsStore(name: string, factory: () => Promise<AnalyticsStore>): void {
  describe(`AnalyticsStore contract: ${name}`, () => {
    let store: AnalyticsStore;
    let n = 0;
    // Table names unique per test, so the tests never share state.
    const table = (prefix: string) => `${prefix}_${Date.now().toString(36)}_${++n}`;

    beforeAll(async () => {
      store = await factory();
    });
    afterAll(async () => {
      await store?.close();
    });

    const rejection = async (p: Promise<unknown>): Promise<SwitchyardError> => {
      try {
        await p;
      } catch (err) {
        expect(err).toBeInstanceOf(SwitchyardError);
        return err as SwitchyardError;
      }
      throw new Error('expected the call to reject');
    };

    it('reports a sane server version, the same on every call', async () => {
      const v = await store.serverVersion();
      expect(v.major).toBeGreaterThanOrEqual(18);
      expect(v.minor).toBeGreaterThanOrEqual(0);
      expect(v.patch).toBeGreaterThanOrEqual(0);
      expect(v.raw.startsWith(`${v.major}.${v.minor}.`)).toBe(true);
      expect(await store.serverVersion()).toEqual(v);
      const [row] = await store.query<{ v: string }>('SELECT version() AS v');
      expect(row!.v).toBe(v.raw);
    });

    it('runs DDL: create, see in system.tables, drop (a trailing semicolon is fine)', async () => {
      const t = table('ddl');
      await store.exec(`CREATE TABLE ${t} (id UInt32) ENGINE = MergeTree() ORDER BY id;`);
      const count = async () =>
        (await store.query<{ n: number }>('SELECT count() AS n FROM system.tables WHERE database = currentDatabase() AND name = {t:String}', { t }))[0]!.n;
      expect(await count()).toBe(1);
      await store.exec(`DROP TABLE ${t}`);
      expect(await count()).toBe(0);
    });

    it('inserts a batch and reads every column type back as the port promises', async () => {
      const t = table('types');
      await store.exec(`CREATE TABLE ${t} (
        id String, seq UInt32, big UInt64, neg Int64, ratio Float64,
        at DateTime('UTC'), tags Array(String), note Nullable(String), counts Array(UInt64)
      ) ENGINE = MergeTree() ORDER BY id`);
      const at = new Date(Date.UTC(2024, 0, 2, 3, 4, 5, 678));
      const rows = Array.from({ length: 500 }, (_, i) => ({
        id: `row-${String(i).padStart(4, '0')}`,
        seq: i,
        big: i === 0 ? 9_007_199_254_740_991n : i * 1_000_000_007,
        neg: -i,
        ratio: i / 4,
        at: i === 1 ? '2024-01-02T03:04:05Z' : at, // ISO text or a Date
        tags: i % 2 === 0 ? [] : [`t${i}`, "o'clock", 'back\\slash'],
        note: i % 3 === 0 ? null : `note ${i}\nsecond line`,
        counts: [i, 2 ** 40],
      }));
      await store.insert(t, rows);
      await store.insert(t, []); // no-op

      expect((await store.query<{ n: number }>(`SELECT count() AS n FROM ${t}`))[0]!.n).toBe(500);
      const got = await store.query<Record<string, unknown>>(`SELECT * FROM ${t} WHERE seq < 4 ORDER BY id`);
      expect(got).toEqual([
        { id: 'row-0000', seq: 0, big: 9_007_199_254_740_991, neg: 0, ratio: 0, at: '2024-01-02 03:04:05', tags: [], note: null, counts: [0, 2 ** 40] },
        { id: 'row-0001', seq: 1, big: 1_000_000_007, neg: -1, ratio: 0.25, at: '2024-01-02 03:04:05', tags: ['t1', "o'clock", 'back\\slash'], note: 'note 1\nsecond line', counts: [1, 2 ** 40] },
        { id: 'row-0002', seq: 2, big: 2_000_000_014, neg: -2, ratio: 0.5, at: '2024-01-02 03:04:05', tags: [], note: 'note 2\nsecond line', counts: [2, 2 ** 40] },
        { id: 'row-0003', seq: 3, big: 3_000_000_021, neg: -3, ratio: 0.75, at: '2024-01-02 03:04:05', tags: ['t3', "o'clock", 'back\\slash'], note: null, counts: [3, 2 ** 40] },
      ]);
      const [agg] = await store.query<{ total: number; unix: number; nulls: number }>(
        `SELECT sum(seq) AS total, max(toUnixTimestamp(at)) AS unix, countIf(isNull(note)) AS nulls FROM ${t}`,
      );
      expect(agg).toEqual({ total: (499 * 500) / 2, unix: Math.floor(at.getTime() / 1000), nulls: 167 });
    });

    it('refuses to round a 64-bit integer beyond 2^53, and toString() reads it exactly', async () => {
      const err = await rejection(store.query('SELECT toUInt64(18446744073709551615) AS big'));
      expect(err.code).toBe('SY_ERR_ANALYTICS');
      expect(err.retriable).toBe(false);
      expect(err.message).toContain('toString(big)');
      expect(await store.query('SELECT toString(toUInt64(18446744073709551615)) AS big')).toEqual([{ big: '18446744073709551615' }]);
      expect(await store.query('SELECT toInt64(-9007199254740991) AS low')).toEqual([{ low: -9_007_199_254_740_991 }]);
    });

    describe('query parameters', () => {
      const nasty = [
        "it's",
        "''",
        'back\\slash',
        '\\',
        "\\'",
        'trailing backslash \\',
        'line\nbreak\r\nand\ttab',
        "'; DROP TABLE users; --",
        "') OR 1=1 --",
        '{s:String}',
        '/* not a comment */ -- nor this',
        'ünïcødé ✓ 日本',
        '"double" `back`',
        '',
      ];

      it('binds strings with quotes, backslashes and newlines exactly (injection-safe)', async () => {
        for (const s of nasty) {
          expect(await store.query('SELECT {s:String} AS s, length({s:String}) AS len', { s })).toEqual([{ s, len: Buffer.byteLength(s) }]);
        }
      });

      it('filters rows by a bound value and matches only the exact string', async () => {
        const t = table('params');
        await store.exec(`CREATE TABLE ${t} (name String, n UInt32) ENGINE = MergeTree() ORDER BY name`);
        await store.insert(t, nasty.map((name, n) => ({ name, n })));
        for (const [i, name] of nasty.entries()) {
          expect(await store.query(`SELECT n FROM ${t} WHERE name = {name:String}`, { name })).toEqual([{ n: i }]);
        }
        expect((await store.query<{ c: number }>(`SELECT count() AS c FROM ${t}`))[0]!.c).toBe(nasty.length); // nothing dropped
      });

      it('binds numbers, 64-bit integers, DateTime, arrays and NULL with their declared types', async () => {
        const at = new Date(Date.UTC(2023, 10, 14, 22, 13, 20));
        const [row] = await store.query<Record<string, unknown>>(
          `SELECT {u:UInt64} AS u, {b:UInt64} AS b, {i:Int64} AS i, {f:Float64} AS f, {t:DateTime('UTC')} AS t,
                  {tags:Array(String)} AS tags, {empty:Array(String)} AS empty, {nothing:Nullable(String)} AS nothing,
                  toTypeName({u:UInt64}) AS ut, toTypeName({t:DateTime('UTC')}) AS tt, toTypeName({nothing:Nullable(String)}) AS nt`,
          { u: 42, b: 9_007_199_254_740_991n, i: -7, f: 0.125, t: at, tags: ["a'b", 'c\\d', 'e\nf'], empty: [], nothing: null },
        );
        expect(row).toEqual({
          u: 42,
          b: 9_007_199_254_740_991,
          i: -7,
          f: 0.125,
          t: '2023-11-14 22:13:20',
          tags: ["a'b", 'c\\d', 'e\nf'],
          empty: [],
          nothing: null,
          ut: 'UInt64',
          tt: "DateTime('UTC')",
          nt: 'Nullable(String)',
        });
      });

      it('binds instants by the declared type (seconds, UTC day) and non-finite floats', async () => {
        const [row] = await store.query<Record<string, unknown>>(
          `SELECT toUnixTimestamp({epoch:DateTime('UTC')}) AS epoch, {ms:DateTime('UTC')} AS ms, {day:Date} AS day,
                  isNaN({nan:Float64}) AS nan, isInfinite({inf:Float64}) AS inf,
                  arrayMap(x -> toUnixTimestamp(x), {times:Array(DateTime('UTC'))}) AS times`,
          {
            epoch: new Date(0),
            ms: new Date(1_700_000_000_999), // the fraction is dropped, not an error
            day: new Date(Date.UTC(2024, 1, 29, 23, 30)),
            nan: Number.NaN,
            inf: -Infinity,
            times: [new Date(0), new Date(86_400_000)],
          },
        );
        expect(row).toEqual({ epoch: 0, ms: '2023-11-14 22:13:20', day: '2024-02-29', nan: 1, inf: 1, times: [0, 86_400] });
      });

      it('leaves placeholders inside string literals alone', async () => {
        expect(await store.query("SELECT '{s:String}' AS lit, {s:String} AS v", { s: 'x' })).toEqual([{ lit: '{s:String}', v: 'x' }]);
      });

      it('rejects a placeholder without a value', async () => {
        const err = await rejection(store.query('SELECT {missing:String} AS m', {}));
        expect(err.code).toBe('SY_ERR_ANALYTICS');
        expect(err.retriable).toBe(false);
      });
    });

    it('ReplacingMergeTree: the same row inserted twice reads as one row with FINAL; the highest version wins', async () => {
      const t = table('dedup');
      await store.exec(`CREATE TABLE ${t} (event_id String, version UInt32, payload String) ENGINE = ReplacingMergeTree(version) ORDER BY event_id`);
      const row = { event_id: '018f2a7e-0000-7000-8000-000000000001', version: 1, payload: 'first' };
      await store.insert(t, [row]);
      await store.insert(t, [row]); // a redelivered batch
      await store.insert(t, [{ event_id: 'other', version: 1, payload: 'v1' }]);
      await store.insert(t, [{ event_id: 'other', version: 2, payload: 'v2' }]);
      expect(await store.query(`SELECT event_id, payload FROM ${t} FINAL ORDER BY event_id`)).toEqual([
        { event_id: row.event_id, payload: 'first' },
        { event_id: 'other', payload: 'v2' },
      ]);
    });

    describe('errors carry stable codes and ClickHouse detail', () => {
      it('bad SQL: SY_ERR_ANALYTICS, not retriable, with ClickHouse code 62 and its text', async () => {
        const err = await rejection(store.query('SELEC 1'));
        expect(err.code).toBe('SY_ERR_ANALYTICS');
        expect(err.retriable).toBe(false);
        expect(err.detail.clickhouseCode).toBe(62);
        expect(String(err.detail.clickhouseMessage)).toMatch(/Syntax error/);
        expect(err.detail.sql).toBe('SELEC 1');
        expect(err.cause).toBeDefined();
      });

      it('unknown table: code 60, in exec and in query', async () => {
        expect((await rejection(store.query('SELECT * FROM no_such_table_here'))).detail.clickhouseCode).toBe(60);
        expect((await rejection(store.exec('DROP TABLE no_such_table_here'))).detail.clickhouseCode).toBe(60);
      });

      it('insert: an unknown column, a bad table name or a value that does not parse is SY_ERR_ANALYTICS', async () => {
        const t = table('bad_insert');
        await store.exec(`CREATE TABLE ${t} (id String, n UInt64) ENGINE = MergeTree() ORDER BY id`);
        const unknown = await rejection(store.insert(t, [{ id: 'a', n: 1, nope: 2 }]));
        expect(unknown.code).toBe('SY_ERR_ANALYTICS');
        expect(unknown.detail.column).toBe('nope');
        const injected = await rejection(store.insert(`${t}; DROP TABLE ${t}`, [{ id: 'a' }]));
        expect(injected.code).toBe('SY_ERR_ANALYTICS');
        const unparsable = await rejection(store.insert(t, [{ id: 'ok', n: 1 }, { id: 'bad', n: 'not a number' }]));
        expect(unparsable.code).toBe('SY_ERR_ANALYTICS');
        expect(unparsable.retriable).toBe(false);
        expect(typeof unparsable.detail.clickhouseCode).toBe('number');
        expect(unparsable.detail.table).toBe(t);
        expect((await store.query<{ n: number }>(`SELECT count() AS n FROM ${t}`))[0]!.n).toBe(0); // nothing half-inserted
      });

      it('a closed store refuses every call, and close() is idempotent', async () => {
        const other = await factory();
        expect((await other.query<{ one: number }>('SELECT 1 AS one'))[0]!.one).toBe(1);
        await other.close();
        await other.close();
        const err = await rejection(other.query('SELECT 1'));
        expect(err.code).toBe('SY_ERR_ANALYTICS');
        expect(err.message).toMatch(/closed/);
        // The suite's own store is unaffected.
        expect((await store.query<{ one: number }>('SELECT 1 AS one'))[0]!.one).toBe(1);
      });
    });

    describe('migrations', () => {
      // The runner is exercised with the bookkeeping migration and examples of its own; the
      // shipped schema is tested in test/contract/analytics-pack.contract.ts.
      const base = migrations.slice(0, 1);
      const example: Migration = {
        version: 2,
        name: 'contract_example',
        up: (ctx) => [
          `CREATE TABLE IF NOT EXISTS contract_example (
            event_id String,
            model ${lowCardinality(ctx.features, 'String')},
            at DateTime('UTC')
          ) ENGINE = ReplacingMergeTree() ORDER BY event_id`,
        ],
      };

      it('applies pending migrations in order, records them, and is a no-op the second time', async () => {
        const list = [...base, example];
        expect(await appliedMigrations(store)).toEqual([]);
        expect(await migrate(store, list)).toEqual({ applied: [1, 2], current: 2 });
        expect(await migrate(store, list)).toEqual({ applied: [], current: 2 });
        expect(await appliedMigrations(store)).toEqual([
          { version: 1, name: 'schema_migrations' },
          { version: 2, name: 'contract_example' },
        ]);
        const [meta] = await store.query<{ server_version: string }>('SELECT server_version FROM schema_migrations FINAL WHERE version = 2');
        expect(meta!.server_version).toBe((await store.serverVersion()).raw);
        // The gated column type matches what the server supports.
        const [col] = await store.query<{ type: string }>(
          "SELECT type FROM system.columns WHERE database = currentDatabase() AND table = 'contract_example' AND name = 'model'",
        );
        expect(col!.type).toBe(features(await store.serverVersion()).lowCardinality ? 'LowCardinality(String)' : 'String');
        await store.insert('contract_example', [{ event_id: 'e1', model: 'm', at: new Date(0) }]);
      });

      it('refuses a store migrated by newer code, and a renamed migration', async () => {
        expect((await rejection(migrate(store, base))).message).toMatch(/newer code/);
        expect((await rejection(migrate(store, [...base, { ...example, name: 'renamed' }]))).message).toMatch(/"contract_example".*"renamed"/);
      });

      it('a failing statement names the migration and keeps the ClickHouse code', async () => {
        const broken: Migration = { version: 3, name: 'broken', up: () => ['CREATE TABLE broken_one (x UInt8) ENGINE = NoSuchEngine()'] };
        const err = await rejection(migrate(store, [...base, example, broken]));
        expect(err.code).toBe('SY_ERR_ANALYTICS');
        expect(err.message).toMatch(/migration 3 \(broken\)/);
        expect(err.detail.clickhouseCode).toEqual(expect.any(Number));
        expect((await appliedMigrations(store)).map((m) => m.version)).toEqual([1, 2]);
      });
    });
  });
}
