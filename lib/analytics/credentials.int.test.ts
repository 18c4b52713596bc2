import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clickhouseUrl, requireClickHouse, uniqueDatabase } from '../../test/support/services.js';
import { configFromEnv } from '../config.js';
import { SwitchyardError } from '../errors.js';
import { openAnalytics } from './open.js';
import type { AnalyticsStore } from './port.js';

// ClickHouse credentials from SWITCHYARD_CLICKHOUSE_USER / _PASSWORD / _PASSWORD_FILE, through
// configFromEnv and openAnalytics, against the real server of `scripts/services.sh up`, whose
// users.xml (scripts/clickhouse/users.xml) has a `switchyard` user with this password beside the
// password-less `default` everyone else uses.
const PASSWORD = 'switchyard-test-password';
const url = clickhouseUrl();
const database = uniqueDatabase();

/** The user the server ran `store`'s query as (18.16 has no currentUser(); its process list says). */
async function serverUser(store: AnalyticsStore): Promise<string> {
  const marker = `who_${Math.floor(Math.random() * 1e9)}`;
  const rows = await store.query(`SELECT user FROM system.processes WHERE query LIKE '%${marker}%'`);
  return String(rows[0]?.user);
}

describe(`ClickHouse credentials on the server at ${url}`, () => {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-ch-credentials-'));
  const stores: AnalyticsStore[] = [];
  const open = async (env: NodeJS.ProcessEnv): Promise<AnalyticsStore> => {
    const config = configFromEnv({ SWITCHYARD_CLICKHOUSE_URL: url, ...env });
    const store = await openAnalytics({ clickhouseUrl: config.clickhouseUrl, clickhouseUser: config.clickhouseUser, clickhousePassword: config.clickhousePassword, database, home: dir });
    stores.push(store);
    return store;
  };

  beforeAll(async () => {
    await requireClickHouse(url);
  });
  afterAll(async () => {
    await stores[0]?.exec(`DROP DATABASE IF EXISTS ${database}`);
    await Promise.allSettled(stores.map((s) => s.close()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('connects as SWITCHYARD_CLICKHOUSE_USER with SWITCHYARD_CLICKHOUSE_PASSWORD, and writes and reads as that user', async () => {
    const store = await open({ SWITCHYARD_CLICKHOUSE_USER: 'switchyard', SWITCHYARD_CLICKHOUSE_PASSWORD: PASSWORD });
    expect(store.kind).toBe('server');
    expect(await serverUser(store)).toBe('switchyard');
    await store.exec('CREATE TABLE IF NOT EXISTS credentials_probe (n UInt32) ENGINE = Memory');
    await store.insert('credentials_probe', [{ n: 7 }]);
    expect(await store.query('SELECT n FROM credentials_probe')).toEqual([{ n: 7 }]);
  });

  it('takes the password from the first line of SWITCHYARD_CLICKHOUSE_PASSWORD_FILE', async () => {
    const file = join(dir, 'password');
    writeFileSync(file, `${PASSWORD}\n`, { mode: 0o600 });
    const store = await open({ SWITCHYARD_CLICKHOUSE_USER: 'switchyard', SWITCHYARD_CLICKHOUSE_PASSWORD_FILE: file });
    expect(await serverUser(store)).toBe('switchyard');
  });

  it("a wrong password is the server's authentication error (SY_ERR_ANALYTICS, code 193), not a connection error, and is not echoed", async () => {
    const err = await open({ SWITCHYARD_CLICKHOUSE_USER: 'switchyard', SWITCHYARD_CLICKHOUSE_PASSWORD: 'not-the-password' }).then(
      () => new Error('connected with a wrong password'),
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(SwitchyardError);
    const e = err as SwitchyardError;
    expect(e.code).toBe('SY_ERR_ANALYTICS');
    expect(e.retriable).toBe(false);
    expect(e.detail.clickhouseCode).toBe(193);
    expect(e.message).toMatch(/Wrong password for user switchyard/);
    expect(JSON.stringify({ message: e.message, detail: e.detail })).not.toContain('not-the-password');
  });

  it('without credentials the store connects as the default user', async () => {
    const store = await open({});
    expect(await serverUser(store)).toBe('default');
  });
});
