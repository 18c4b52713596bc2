import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openEmbeddedLog } from '../log/embedded/index.js';
import { testEventConsumer } from '../../test/contract/event-consumer.contract.js';

testEventConsumer('embedded', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sy-events-'));
  const log = await openEmbeddedLog({ dir, fsync: 'never', retryBackoffMs: 10 });
  return { log, cleanup: async () => rmSync(dir, { recursive: true, force: true }) };
});
