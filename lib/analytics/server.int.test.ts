import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SwitchyardError } from '../errors.js';
import { clickhouseUrl, requireClickHouse, uniqueDatabase } from '../../test/support/services.js';
import { testAnalyticsStore } from '../../test/contract/analytics-store.contract.js';
import { features } from './migrations.js';
import type { AnalyticsStore } from './port.js';
import { createServerAnalyticsStore, serverAnalyticsConfig } from './server.js';

// The real server from `scripts/services.sh up` (Debian's ClickHouse 18.16 in CI).
const url = process.env.SWITCHYARD_CLICKHOUSE_URL ?? clickhouseUrl();
// A database of its own per run, dropped at the end, so runs never see each other's tables.
const database = uniqueDatabase();

describe(`ClickHouse server at ${url}`, () => {
  let admin: AnalyticsStore | undefined;

  beforeAll(async () => {
    await requireClickHouse(url);
    admin = await createServerAnalyticsStore({ url, database: 'default', createDatabase: false });
  });
  afterAll(async () => {
    await admin?.exec(`DROP DATABASE IF EXISTS ${database}`);
    await admin?.close();
  });

  testAnalyticsStore('clickhouse server', () => createServerAnalyticsStore({ url, database }));

  describe('server adapter', () => {
    it('creates its database when missing and leaves it when told not to', async () => {
      const db = `${database}_created`;
      const store = await createServerAnalyticsStore({ url, database: db });
      try {
        expect(await store.query('SELECT currentDatabase() AS db')).toEqual([{ db }]);
      } finally {
        await store.close();
        await admin!.exec(`DROP DATABASE IF EXISTS ${db}`);
      }
      const missing = `${database}_missing`;
      const err = await createServerAnalyticsStore({ url, database: missing, createDatabase: false }).then(
        () => undefined,
        (e: unknown) => e as SwitchyardError,
      );
      expect(err?.code).toBe('SY_ERR_ANALYTICS');
      expect(err?.detail.clickhouseCode).toBe(81); // UNKNOWN_DATABASE
    });

    it('binds parameters on the server only where the server can (literal fallback below 20.1)', async () => {
      const store = await createServerAnalyticsStore({ url, database });
      try {
        const v = await store.serverVersion();
        const [row] = await store.query<{ s: string }>('SELECT {s:String} AS s', { s: "o'clock\\" });
        expect(row!.s).toBe("o'clock\\");
        // Whichever path was taken, the answer is the same; record which for the report.
        expect(typeof features(v).queryParameters).toBe('boolean');
      } finally {
        await store.close();
      }
    });

    it('an unreachable server is SY_ERR_ANALYTICS_UNAVAILABLE and retriable', async () => {
      const err = await createServerAnalyticsStore({ url: 'http://127.0.0.1:1', requestTimeoutMs: 2_000 }).then(
        () => undefined,
        (e: unknown) => e as SwitchyardError,
      );
      expect(err).toBeInstanceOf(SwitchyardError);
      expect(err?.code).toBe('SY_ERR_ANALYTICS_UNAVAILABLE');
      expect(err?.retriable).toBe(true);
      expect(err?.message).toMatch(/unreachable/);
    });

    it('validates its options before any request', () => {
      expect(serverAnalyticsConfig()).toEqual({
        url: 'http://127.0.0.1:8123',
        user: 'default',
        password: '',
        database: 'switchyard',
        createDatabase: true,
        requestTimeoutMs: 30_000,
        maxOpenConnections: 10,
      });
      for (const bad of [{ url: 'nope' }, { url: 'ftp://x' }, { url: 'http://u:p@h:8123' }, { database: 'a-b' }, { database: 'x; DROP' }, { requestTimeoutMs: 0 }, { user: '' }]) {
        expect(() => serverAnalyticsConfig(bad)).toThrow(expect.objectContaining({ code: 'SY_ERR_CONFIG' }));
      }
    });
  });
});
