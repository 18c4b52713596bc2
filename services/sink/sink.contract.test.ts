import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createChdbAnalyticsStore } from '../../lib/analytics/chdb.js';
import { openEmbeddedLog } from '../../lib/log/embedded/index.js';
import { testSink } from '../../test/contract/sink.contract.js';

// The sink on the embedded log into chDB: the zero-setup deployment.
testSink('embedded log → chDB', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sy-sink-'));
  const log = await openEmbeddedLog({ dir: join(dir, 'log'), fsync: 'never', retryBackoffMs: 10 });
  const store = await createChdbAnalyticsStore({ path: join(dir, 'analytics') });
  return {
    log,
    store,
    cleanup: async () => {
      await store.close();
      await log.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});
