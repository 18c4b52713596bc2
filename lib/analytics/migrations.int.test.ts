import { afterAll, beforeAll } from 'vitest';
import { clickhouseUrl, requireClickHouse, uniqueDatabase } from '../../test/support/services.js';
import { testAnalyticsMigrations } from '../../test/contract/analytics-migrations.contract.js';
import { createServerAnalyticsStore } from './server.js';

// The migration runner and migration 005 on the real ClickHouse server (Debian's 18.16 in CI,
// which has no ADD COLUMN IF NOT EXISTS), in a database of its own, dropped afterwards.
const url = clickhouseUrl();
const database = uniqueDatabase('switchyard_migrations');
beforeAll(() => requireClickHouse(url));
afterAll(async () => {
  const admin = await createServerAnalyticsStore({ url, database: 'default', createDatabase: false });
  await admin.exec(`DROP DATABASE IF EXISTS ${database}`);
  await admin.close();
});
testAnalyticsMigrations(`clickhouse server ${url}`, () => createServerAnalyticsStore({ url, database }));
