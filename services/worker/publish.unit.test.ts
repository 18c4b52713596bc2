import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryBlobStore } from '../../lib/blob/memory.js';
import { openEmbeddedLog } from '../../lib/log/embedded/index.js';
import type { EventLog } from '../../lib/log/port.js';
import { InMemoryRegistry } from '../../lib/registry/core.js';
import { createServiceContext, type ServiceContext } from '../../lib/runtime.js';
import { EventCodec } from '../../schemas/codec.js';
import { encodeModelFile } from './backends/format.js';
import { ModelCatalog } from './catalog.js';
import { ControlReader } from './control.js';
import { installShippedModels, pushModel, readShippedModels, SHIPPED_MODELS_DIR } from './publish.js';

describe('registering model versions (models push)', () => {
  let dir: string;
  let log: EventLog;
  let ctx: ServiceContext;
  let store: MemoryBlobStore;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sy-push-'));
    log = await openEmbeddedLog({ dir, fsync: 'never' });
    ctx = createServiceContext({ log, codec: await EventCodec.create({ registry: new InMemoryRegistry() }), lanes: 2 });
    await log.ensureTopics(Object.values(ctx.topics));
    store = new MemoryBlobStore();
  });
  afterEach(async () => {
    await log.close();
    await rm(dir, { recursive: true, force: true });
  });

  const catalog = async () => {
    const c = new ModelCatalog();
    await new ControlReader(ctx, (e, r) => c.apply(e, r.offset)).catchUp();
    return c;
  };
  const synthetic = (baseMs: number) => encodeModelFile({ kind: 'synthetic', name: 's', version: '1', config: { baseMs } });

  it('stores the blob and appends ModelVersionRegistered to control', async () => {
    const pushed = await pushModel(ctx, store, { bytes: synthetic(1), model: 'load', version: 'v1', fallbackModel: 'noop', registeredBy: 'alice' });
    expect(pushed).toMatchObject({ kind: 'synthetic', registered: true, offset: 0 });
    expect(await store.has(pushed.digest)).toBe(true);
    const v = (await catalog()).version('load', 'v1');
    expect(v).toMatchObject({ digest: pushed.digest, sizeBytes: pushed.sizeBytes, kind: 'synthetic', fallbackModel: 'noop', registeredBy: 'alice' });
  });

  it('is idempotent for the same bytes and refuses other bytes under a registered version', async () => {
    await pushModel(ctx, store, { bytes: synthetic(1), model: 'load', version: 'v1' });
    expect((await pushModel(ctx, store, { bytes: synthetic(1), model: 'load', version: 'v1' })).registered).toBe(false);
    await expect(pushModel(ctx, store, { bytes: synthetic(2), model: 'load', version: 'v1' })).rejects.toThrow(/versions are immutable/);
    expect((await log.endOffsets(ctx.topics.control.name))[0]).toBe(1);
  });

  it('checks the file is a model of the declared kind and that names are sane', async () => {
    await expect(pushModel(ctx, store, { bytes: Buffer.from('not a model'), model: 'm', version: 'v1' })).rejects.toMatchObject({ code: 'SY_ERR_MODEL_FORMAT' });
    await expect(pushModel(ctx, store, { bytes: synthetic(1), model: 'm', version: 'v1', kind: 'classifier' })).rejects.toThrow(/is a synthetic model, not classifier/);
    await expect(pushModel(ctx, store, { bytes: synthetic(1), model: 'bad name!', version: 'v1' })).rejects.toMatchObject({ code: 'SY_ERR_CONFIG' });
    await expect(pushModel(ctx, store, { bytes: synthetic(1), model: 'm', version: 'v1', fallbackModel: 'm' })).rejects.toThrow(/own fallback/);
  });

  it('installs the shipped models once', async () => {
    const first = await installShippedModels(ctx, store);
    expect(first.every((m) => m.registered)).toBe(true);
    expect((await installShippedModels(ctx, store)).some((m) => m.registered)).toBe(false);
    const shipped = await readShippedModels(SHIPPED_MODELS_DIR);
    const c = await catalog();
    expect(c.list().map((v) => `${v.model}@${v.version}`).sort()).toEqual(shipped.map((m) => `${m.model}@${m.version}`).sort());
    expect(c.status(c.version('sentiment-small', 'v2')!)).toBe('latest');
  });
});
