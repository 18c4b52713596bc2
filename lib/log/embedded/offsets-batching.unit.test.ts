import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../logger.js';
import { tempDir } from '../../../test/support/log-dir.js';
import { ChunkPool } from './chunks.js';
import { OffsetStore } from './offsets.js';
import type { PartitionConfig } from './partition.js';

describe('committed offsets are written in batches', () => {
  let dir: string;
  let remove: () => Promise<void>;
  beforeEach(async () => ({ dir, remove } = await tempDir('sy-offsets-batch-')));
  afterEach(() => remove());

  const config = (): PartitionConfig => ({
    dir: join(dir, 'offsets'),
    topic: '__offsets',
    partition: 0,
    segmentBytes: 1024 * 1024,
    indexIntervalBytes: 4096,
    tailCacheBytes: 0,
    tailCacheMaxAgeMs: 60_000,
    fsync: 'always',
    fsyncIntervalMs: 5,
    logger: silentLogger,
    chunks: new ChunkPool(64 * 1024, 2),
  });

  it('many commits in one window become one record per key, resolve once durable, and the latest survives a reopen', async () => {
    const store = await OffsetStore.open(config());
    const commits: Promise<void>[] = [];
    for (let i = 1; i <= 200; i++) {
      commits.push(store.commit('g', 't', 0, i, 1_000 + i));
      commits.push(store.commit('g', 't', 1, 10 * i, 1_000 + i));
    }
    // Visible at once, before anything is written.
    expect(store.get('g', 't', 0)).toBe(200);
    expect(store.log.endOffset).toBe(0);
    await Promise.all(commits);
    // Written: one record per key for the whole window, not 400.
    expect(store.log.endOffset).toBe(2);
    await store.close();

    const reopened = await OffsetStore.open(config());
    expect(reopened.get('g', 't', 0)).toBe(200);
    expect(reopened.get('g', 't', 1)).toBe(2000);
    await reopened.close();
  });

  it('close writes the commits still waiting for their window', async () => {
    const store = await OffsetStore.open(config());
    void store.commit('g', 't', 0, 42, 1_000);
    await store.close();
    const reopened = await OffsetStore.open(config());
    expect(reopened.get('g', 't', 0)).toBe(42);
    await reopened.close();
  });
});
