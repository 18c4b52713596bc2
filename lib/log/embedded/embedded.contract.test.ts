import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../../logger.js';
import { testEventLog } from '../../../test/contract/event-log.contract.js';
import { openEmbeddedLog, type EmbeddedLog, type EmbeddedLogOptions } from './index.js';

/** A fixture over a fresh temp directory; `reopen` opens the same directory again. */
function fixture(options: Omit<EmbeddedLogOptions, 'dir'>) {
  return async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sy-embedded-contract-'));
    const opened: EmbeddedLog[] = [];
    const open = async () => {
      const log = await openEmbeddedLog({ dir, logger: silentLogger, retryBackoffMs: 10, ...options });
      opened.push(log);
      return log;
    };
    return {
      log: await open(),
      reopen: open,
      cleanup: async () => {
        await Promise.all(opened.map((l) => l.close()));
        await rm(dir, { recursive: true, force: true });
      },
    };
  };
}

// The defaults: group commit every 5 ms, 64 MiB segments.
testEventLog('embedded, fsync=interval', fixture({ fsync: 'interval' }));
// Tiny segments and a dense index, so every test also crosses segment rolls, sealed-segment
// reads and background compaction of compacted topics; fsync on every flush.
testEventLog('embedded, fsync=always, 1 KiB segments', fixture({ fsync: 'always', segmentBytes: 1024, indexIntervalBytes: 64 }));
