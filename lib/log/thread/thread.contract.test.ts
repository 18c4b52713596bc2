import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MessageChannel } from 'node:worker_threads';
import { silentLogger } from '../../logger.js';
import { testEventLog } from '../../../test/contract/event-log.contract.js';
import { openEmbeddedLog, type EmbeddedLog } from '../embedded/index.js';
import { ThreadLog } from './client.js';
import { serveLog, type ServedLog } from './server.js';

/**
 * The contract over a `ThreadLog`: an embedded log served across a `MessageChannel` (both ends in
 * this thread here; `switchyard up`'s service thread uses the same ports across threads, which the
 * cluster's test drives). `reopen` opens the log's directory again and connects a new channel.
 */
testEventLog('thread (embedded, fsync=always, 1 KiB segments, across a MessagePort)', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'sy-thread-contract-'));
  const owners: { log: EmbeddedLog; served: ServedLog }[] = [];
  const open = async () => {
    for (const o of owners) await o.log.close();
    const log = await openEmbeddedLog({ dir, logger: silentLogger, retryBackoffMs: 10, fsync: 'always', segmentBytes: 1024, indexIntervalBytes: 64 });
    const { port1, port2 } = new MessageChannel();
    owners.push({ log, served: serveLog(log, port1) });
    return ThreadLog.connect(port2);
  };
  return {
    log: await open(),
    reopen: open,
    cleanup: async () => {
      for (const o of owners) {
        await o.served.close();
        await o.log.close();
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
});
