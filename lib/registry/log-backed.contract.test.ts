import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { openEmbeddedLog, type EmbeddedLogOptions } from '../log/embedded/index.js';
import { silentLogger } from '../logger.js';
import { testLogBackedRegistry } from '../../test/contract/registry.contract.js';

// The log-backed registry on the real embedded log: once with the defaults, once with tiny
// segments so `_schemas` rolls segments and gets compacted while the registry uses it.
const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

const embedded = (options: Omit<EmbeddedLogOptions, 'dir'>) => async () => {
  const dir = await mkdtemp(join(tmpdir(), 'sy-registry-contract-'));
  dirs.push(dir);
  return openEmbeddedLog({ dir, logger: silentLogger, ...options });
};

testLogBackedRegistry('embedded log', embedded({ fsync: 'never' }));
testLogBackedRegistry('embedded log, 1 KiB segments', embedded({ fsync: 'never', segmentBytes: 1024, indexIntervalBytes: 64, maintenanceIntervalMs: 1 }));
