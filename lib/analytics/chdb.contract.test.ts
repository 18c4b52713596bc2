import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SwitchyardError } from '../errors.js';
import { testAnalyticsStore } from '../../test/contract/analytics-store.contract.js';
import { chdbAnalyticsConfig, createChdbAnalyticsStore } from './chdb.js';
import { migrations } from '../../schemas/clickhouse/migrations/index.js';
import { features, migrate } from './migrations.js';
import { inlineParams } from './sql.js';

const dirs: string[] = [];
const tempDir = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'switchyard-chdb-'));
  dirs.push(d);
  return d;
};
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

// libchdb serves one data directory per process, so each block below closes its store
// before the next opens another directory.
const suiteDir = tempDir();
testAnalyticsStore('chdb', () => createChdbAnalyticsStore({ path: suiteDir }));

describe('chdb analytics store', () => {
  it('keeps its data across close and reopen of the same directory', async () => {
    const path = join(tempDir(), 'nested', 'analytics');
    const first = await createChdbAnalyticsStore({ path });
    await migrate(first);
    await first.exec("CREATE TABLE kept (id String, at DateTime('UTC')) ENGINE = MergeTree() ORDER BY id");
    await first.insert('kept', [{ id: 'a', at: new Date(Date.UTC(2024, 5, 1)) }]);
    await first.close();

    const again = await createChdbAnalyticsStore({ path });
    expect(await again.query('SELECT id, at FROM kept')).toEqual([{ id: 'a', at: '2024-06-01 00:00:00' }]);
    expect(await migrate(again)).toEqual({ applied: [], current: migrations.at(-1)!.version });
    await again.close();
  });

  it('is a modern engine: every feature gate is open', async () => {
    const store = await createChdbAnalyticsStore({ path: tempDir() });
    const v = await store.serverVersion();
    await store.close();
    expect(v.major).toBeGreaterThanOrEqual(24);
    expect(Object.values(features(v)).every(Boolean)).toBe(true);
  });

  it('stores DateTime64 to the millisecond from a JS Date', async () => {
    const store = await createChdbAnalyticsStore({ path: tempDir() });
    try {
      await store.exec("CREATE TABLE ms (id UInt8, at DateTime64(3, 'UTC'), day Date) ENGINE = MergeTree() ORDER BY id");
      await store.insert('ms', [{ id: 1, at: new Date(Date.UTC(2024, 1, 29, 23, 59, 59, 7)), day: new Date(Date.UTC(2024, 1, 29, 23, 59, 59, 7)) }]);
      expect(await store.query('SELECT at, day, toUnixTimestamp64Milli(at) AS ms FROM ms')).toEqual([
        { at: '2024-02-29 23:59:59.007', day: '2024-02-29', ms: Date.UTC(2024, 1, 29, 23, 59, 59, 7) },
      ]);
      // Bound as a parameter, the milliseconds survive too (chDB's own Date binding drops them).
      expect(
        await store.query("SELECT count() AS n FROM ms WHERE at = {at:DateTime64(3, 'UTC')}", { at: new Date(Date.UTC(2024, 1, 29, 23, 59, 59, 7)) }),
      ).toEqual([{ n: 1 }]);
      expect(await store.query("SELECT {at:DateTime64(3, 'UTC')} AS at", { at: new Date(5) })).toEqual([{ at: '1970-01-01 00:00:00.005' }]);
    } finally {
      await store.close();
    }
  });

  // The literal fallback (used on servers without parameter binding) is checked here
  // against ClickHouse's real lexer: the inlined SQL must read back every value exactly.
  it("the literal fallback round-trips hostile strings through the engine's own parser", async () => {
    const store = await createChdbAnalyticsStore({ path: tempDir() });
    const control = Array.from({ length: 32 }, (_, i) => String.fromCharCode(i)).join('') + '\x7f';
    const values = ["it's", '\\', "\\'", "'; SELECT 1; --", 'a\nb\r\nc\td', control, 'ünïcødé ✓', '{s:String}', "''''", '\\\\\''];
    try {
      for (const s of values) {
        const sql = inlineParams('SELECT {s:String} AS s, {a:Array(Nullable(String))} AS a', { s, a: [s, null] });
        expect(await store.query(sql)).toEqual([{ s, a: [s, null] }]);
      }
      const sql = inlineParams("SELECT {u:UInt64} AS u, {t:DateTime('UTC')} AS t, {f:Float64} AS f, {d:Date} AS d, {e:Array(UInt8)} AS e", {
        u: 18_446_744_073_709_551_615n,
        t: new Date(Date.UTC(2023, 10, 14, 22, 13, 20, 999)),
        f: -1.5e-7,
        d: new Date(Date.UTC(2024, 1, 29, 12)),
        e: [],
      });
      expect(await store.query(`SELECT toString(u) AS u, t, f, d, e FROM (${sql})`)).toEqual([
        { u: '18446744073709551615', t: '2023-11-14 22:13:20', f: -1.5e-7, d: '2024-02-29', e: [] },
      ]);
    } finally {
      await store.close();
    }
  });

  it('validates its options before touching the engine', () => {
    expect(chdbAnalyticsConfig().path).toBe(resolve('.switchyard/analytics'));
    expect(() => chdbAnalyticsConfig({ path: '' })).toThrow(SwitchyardError);
    expect(() => chdbAnalyticsConfig({ path: '  ' })).toThrow(/non-empty/);
  });
});
