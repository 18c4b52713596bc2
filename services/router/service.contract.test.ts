import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openEmbeddedLog } from '../../lib/log/embedded/index.js';
import { testRouterService } from '../../test/contract/router-service.contract.js';

testRouterService('embedded', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sy-router-'));
  const log = await openEmbeddedLog({ dir, fsync: 'never' });
  return { log, cleanup: async () => rmSync(dir, { recursive: true, force: true }) };
});
