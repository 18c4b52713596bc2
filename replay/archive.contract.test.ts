import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createChdbAnalyticsStore } from '../lib/analytics/chdb.js';
import { testArchiveSource } from '../test/contract/replay-archive.contract.js';

// The archive in the embedded chDB engine: the zero-setup deployment's long retention.
testArchiveSource('chDB', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sy-archive-'));
  const store = await createChdbAnalyticsStore({ path: join(dir, 'analytics') });
  return {
    store,
    cleanup: async () => {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});
