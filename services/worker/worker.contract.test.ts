import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openEmbeddedLog } from '../../lib/log/embedded/index.js';
import { testWorkerFlow } from './worker-flow.contract.js';

testWorkerFlow('embedded', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'sy-worker-'));
  const log = await openEmbeddedLog({ dir, fsync: 'never', retryBackoffMs: 10 });
  return { log, cleanup: () => rm(dir, { recursive: true, force: true }) };
});
