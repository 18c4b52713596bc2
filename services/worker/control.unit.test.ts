import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openEmbeddedLog } from '../../lib/log/embedded/index.js';
import type { EventLog } from '../../lib/log/port.js';
import { InMemoryRegistry } from '../../lib/registry/core.js';
import { createServiceContext, type ServiceContext } from '../../lib/runtime.js';
import { EventCodec } from '../../schemas/codec.js';
import { SAMPLE_EVENTS } from '../../schemas/samples.js';
import { ControlReader } from './control.js';

describe('ControlReader', () => {
  let dir: string;
  let log: EventLog;
  let ctx: ServiceContext;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sy-control-'));
    log = await openEmbeddedLog({ dir, fsync: 'never' });
    ctx = createServiceContext({ log, codec: await EventCodec.create({ registry: new InMemoryRegistry() }), lanes: 2 });
    await log.ensureTopics(Object.values(ctx.topics));
  });
  afterEach(async () => {
    await log.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('catch-ups started while one runs fold every record once, in log order', async () => {
    const control = ctx.topics.control.name;
    await log.append(['w0', 'w1', 'w2', 'w3'].map((workerId) => ({ topic: control, partition: 0, key: workerId, value: ctx.codec.encode({ ...SAMPLE_EVENTS.WorkerDraining, workerId }) })));
    // The first record decodes slowly (a registry lookup, a starved process): a second catch-up
    // started meanwhile must not fold the records after it first.
    const codec = ctx.codec;
    let calls = 0;
    const slowFirst = {
      decode: async (value: Buffer) => {
        if (calls++ === 0) await new Promise((r) => setTimeout(r, 30));
        return codec.decode(value);
      },
    } as unknown as EventCodec;
    const folded: number[] = [];
    const reader = new ControlReader({ ...ctx, codec: slowFirst }, (_event, record) => folded.push(record.offset));
    const [a, b] = await Promise.all([reader.catchUp(), reader.catchUp()]);
    expect(folded).toEqual([0, 1, 2, 3]);
    expect([a, b]).toEqual([4, 4]);
    expect(reader.position).toBe(4);
  });
});
