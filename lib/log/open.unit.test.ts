import { afterEach, describe, expect, it } from 'vitest';
import { tempDir } from '../../test/support/log-dir.js';
import { EmbeddedLog } from './embedded/index.js';
import { openLog } from './open.js';
import type { EventLog } from './port.js';

describe('openLog', () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanup.splice(0).reverse()) await c();
  });

  it('hands the retention budget of the configuration to the embedded log', async () => {
    const { dir, remove } = await tempDir('sy-open-');
    cleanup.push(remove);
    const log: EventLog = await openLog({ brokers: [], home: dir, fsync: 'never', retentionBytes: 5 * 2 ** 20, retentionMs: 3_600_000 });
    cleanup.push(() => log.close());
    expect(log).toBeInstanceOf(EmbeddedLog);
    expect((log as EmbeddedLog).options).toMatchObject({ retentionBytes: 5 * 2 ** 20, maxRetentionMs: 3_600_000 });
  });

  it('without a budget, keeps each topic\'s own retention and no size limit', async () => {
    const { dir, remove } = await tempDir('sy-open-');
    cleanup.push(remove);
    const log = (await openLog({ brokers: [], home: dir, fsync: 'never' })) as EmbeddedLog;
    cleanup.push(() => log.close());
    expect(log.options).toMatchObject({ retentionBytes: -1, maxRetentionMs: -1 });
  });
});
