import { afterAll, beforeAll } from 'vitest';
import { clickhouseUrl, requireClickHouse, uniqueDatabase } from '../../test/support/services.js';
import { testAnalyticsPack } from '../../test/contract/analytics-pack.contract.js';
import { createServerAnalyticsStore } from './server.js';

// The schema and query pack on the real ClickHouse server (Debian's 18.16 in CI), in a
// database of its own, dropped afterwards.
const url = clickhouseUrl();
const database = uniqueDatabase('switchyard_pack');
beforeAll(() => requireClickHouse(url));
afterAll(async () => {
  const admin = await createServerAnalyticsStore({ url, database: 'default', createDatabase: false });
  await admin.exec(`DROP DATABASE IF EXISTS ${database}`);
  await admin.close();
});
testAnalyticsPack(`clickhouse server ${url}`, () => createServerAnalyticsStore({ url, database }));
