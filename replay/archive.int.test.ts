import { createServerAnalyticsStore } from '../lib/analytics/server.js';
import { clickhouseUrl, requireClickHouse, uniqueDatabase } from '../test/support/services.js';
import { testArchiveSource } from '../test/contract/replay-archive.contract.js';

// The archive on a real ClickHouse server (Debian's 18.16 in CI): the production deployment's long retention.
testArchiveSource('ClickHouse server', async () => {
  const url = clickhouseUrl();
  await requireClickHouse(url);
  const database = uniqueDatabase('switchyard_archive');
  const store = await createServerAnalyticsStore({ url, database });
  return {
    store,
    cleanup: async () => {
      await store.exec(`DROP DATABASE IF EXISTS ${database}`);
      await store.close();
    },
  };
});
