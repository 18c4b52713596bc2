import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openRuntime, type Runtime } from '../bootstrap.js';
import { EventCodec } from '../../schemas/codec.js';
import type { SwitchyardEventInit } from '../../schemas/generated/events.js';
import { tempDir } from '../../test/support/log-dir.js';
import { observeWrites } from './tap.js';

const started = (requestId: string): SwitchyardEventInit => ({
  type: 'InferenceStarted',
  eventId: '0190a8a0-0000-7000-8000-000000000001',
  occurredAt: 1_700_000_000_000,
  requestId,
  traceId: null,
  producer: 'worker-1',
  causationId: null,
  clock: [],
  workerId: 'worker-1',
  lane: 0,
  model: 'm',
  modelVersion: 'v1',
  modelDigest: 'a'.repeat(64),
  batchSize: 1,
  batchId: 'b',
  queueMs: 0,
  attempt: 1,
});

/** observeWrites on the embedded log: what a service wrote is observed, nothing else; the rest passes through. */
describe('observeWrites', () => {
  let rt: Runtime;
  let remove: () => Promise<void>;
  beforeEach(async () => {
    const tmp = await tempDir('sy-tap-');
    remove = tmp.remove;
    rt = await openRuntime({ brokers: [], home: tmp.dir, topicPrefix: 'switchyard.', lanes: 4, schemaRegistryUrl: undefined, clickhouseUrl: undefined, fsync: 'never', logLevel: 'warn' });
  });
  afterEach(async () => {
    await rt.close();
    await remove();
  });

  it('observes an event once its append resolved; never one encoded but not written, nor one whose append failed', async () => {
    const seen: string[] = [];
    const ctx = observeWrites(rt.ctx, (e) => (e.type === 'InferenceStarted' ? e.requestId! : undefined), (id) => seen.push(id));
    const results = ctx.topics.results.name;
    const written = ctx.codec.encode(started('written'));
    ctx.codec.encode(started('never-appended'));
    const refused = ctx.codec.encode(started('append-failed'));
    const another = ctx.codec.encode(started('another'));
    await ctx.log.append([{ topic: results, key: 'written', value: written }]);
    await expect(ctx.log.append([{ topic: 'no-such-topic', key: 'x', value: refused }])).rejects.toThrow();
    expect(seen).toEqual(['written']);
    // The same bytes appended again are not counted twice.
    await ctx.log.append([{ topic: results, key: 'written', value: written }, { topic: results, key: 'another', value: another }]);
    expect(seen).toEqual(['written', 'another']);
  });

  it('passes everything else to the original log and codec', async () => {
    const ctx = observeWrites(rt.ctx, () => undefined, () => {});
    expect(ctx.log.kind).toBe('embedded');
    expect(ctx.codec).toBeInstanceOf(EventCodec);
    const [pos] = await ctx.log.append([{ topic: ctx.topics.results.name, key: 'k', value: ctx.codec.encode(started('k')) }]);
    const [record] = await rt.log.read({ topic: ctx.topics.results.name, partition: pos!.partition, from: pos!.offset });
    expect(await ctx.codec.decode(record!.value!)).toMatchObject({ type: 'InferenceStarted', requestId: 'k' });
    expect(ctx.now).toBe(rt.ctx.now);
  });
});
