import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../logger.js';
import { tempDir } from '../../../test/support/log-dir.js';
import type { LogRecord } from '../port.js';
import { openEmbeddedLog, type EmbeddedLog } from './index.js';

const flat = (rs: LogRecord[]) => rs.map((r) => ({ offset: r.offset, key: r.key?.toString(), value: r.value?.toString(), headers: Object.keys(r.headers), timestamp: r.timestamp }));

describe('embedded log tail cache', () => {
  let dir: string;
  let remove: () => Promise<void>;
  const open: EmbeddedLog[] = [];
  beforeEach(async () => ({ dir, remove } = await tempDir('sy-tail-')));
  afterEach(async () => {
    for (const l of open.splice(0)) await l.close();
    await remove();
  });
  const openLog = async (sub: string, tailCacheBytes: number, segmentBytes = 64 * 1024) => {
    const log = await openEmbeddedLog({ dir: `${dir}/${sub}`, fsync: 'never', segmentBytes, maintenanceIntervalMs: 0, tailCacheBytes, logger: silentLogger });
    open.push(log);
    return log;
  };

  it('serves the same records from memory as from the segment files, including across flushes, rolls and the cache edge', async () => {
    const cached = await openLog('cached', 20_000);
    const uncached = await openLog('uncached', 0);
    for (const log of [cached, uncached]) {
      await log.ensureTopics([{ name: 't', partitions: 1 }]);
      for (let batch = 0; batch < 40; batch++) {
        await log.append(Array.from({ length: 10 }, (_, i) => ({ topic: 't', partition: 0, key: `k${i}`, value: Buffer.alloc(100, 97 + ((batch + i) % 26)), headers: { h: String(batch) }, timestamp: 1_000 + batch })));
      }
    }
    // 400 records of ~150 bytes: the 20 kB cache holds the newest ~130, the files hold all.
    for (const [from, to, max] of [[0, 400, 1000], [250, 400, 1000], [390, 400, 5], [399, 400, 10], [120, 300, 1000], [0, 10, 3]] as const) {
      const a = await cached.read({ topic: 't', partition: 0, from, to, maxRecords: max });
      const b = await uncached.read({ topic: 't', partition: 0, from, to, maxRecords: max });
      expect(flat(a), `[${from}, ${to}) max ${max}`).toEqual(flat(b));
    }
  });

  it('does not serve records that compaction removed', async () => {
    const log = await openLog('compacted', 1024 * 1024, 1024);
    await log.ensureTopics([{ name: 's', partitions: 1, compacted: true }]);
    for (let i = 0; i < 60; i++) await log.append([{ topic: 's', partition: 0, key: `k${i % 3}`, value: Buffer.from(`v${i}`) }]);
    const before = await log.read({ topic: 's', partition: 0, from: 0 });
    expect(before).toHaveLength(60);
    await log.compact('s');
    const after = await log.read({ topic: 's', partition: 0, from: 0 });
    expect(after.length).toBeLessThan(60);
    // Every key keeps its latest value; nothing superseded in a closed segment comes back.
    const latest = new Map(after.map((r) => [r.key!.toString(), r.value!.toString()]));
    expect(latest).toEqual(new Map([['k0', 'v57'], ['k1', 'v58'], ['k2', 'v59']]));
  });
});
