import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openEmbeddedLog } from '../../lib/log/embedded/index.js';
import type { EventLog, SubscribeOptions } from '../../lib/log/port.js';
import { InMemoryRegistry } from '../../lib/registry/core.js';
import { createServiceContext, type ServiceContext } from '../../lib/runtime.js';
import { EventCodec } from '../../schemas/codec.js';
import { tempDir } from '../../test/support/log-dir.js';
import { uniqueName, waitFor } from '../../test/support/services.js';
import { ResultsTracker, type ResultsTrackerOptions } from './results.js';
import { acceptedStatus } from './state.js';
import { appendResults, completed, started } from './testing.js';

let log: EventLog;
let ctx: ServiceContext;
let remove: () => Promise<void>;
const trackers: ResultsTracker[] = [];

beforeEach(async () => {
  const dir = await tempDir('sy-results-');
  remove = dir.remove;
  log = await openEmbeddedLog({ dir: dir.dir, fsync: 'never', retryBackoffMs: 10 });
  const codec = await EventCodec.create({ registry: new InMemoryRegistry() });
  ctx = createServiceContext({ log, codec, topicPrefix: `${uniqueName('rt')}.`, lanes: 4 });
  await log.ensureTopics([ctx.topics.results, ctx.topics.deadletter]);
});

afterEach(async () => {
  for (const t of trackers.splice(0)) await t.close();
  await log.close();
  await remove();
});

function tracker(options: Partial<ResultsTrackerOptions> = {}, onLog: EventLog = log): ResultsTracker {
  const t = new ResultsTracker({
    log: onLog,
    codec: ctx.codec,
    topic: ctx.topics.results.name,
    deadLetterTopic: ctx.topics.deadletter.name,
    groupId: uniqueName('tracker'),
    producer: 'gateway-test',
    now: Date.now,
    logger: ctx.logger,
    ...options,
  });
  trackers.push(t);
  return t;
}

/**
 * The real log, with a result appended after the tracker has read the end offsets and before
 * its subscription starts: the window in which a Kafka consumer resolves "latest".
 */
function logWithRaceAtSubscribe(requestId: string): EventLog {
  return new Proxy(log, {
    get(target, prop, receiver) {
      if (prop === 'subscribe') {
        return async (options: SubscribeOptions) => {
          await appendResults(ctx, [completed({ requestId, model: 'm' }, Buffer.from('"in the gap"'))]);
          return target.subscribe(options);
        };
      }
      const value: unknown = Reflect.get(target, prop, receiver);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

describe('results tracker', () => {
  it('wakes a waiter when the result is folded, and answers at once for a known outcome', async () => {
    const t = tracker();
    await t.start();
    await t.whenCaughtUp();
    const waiting = t.waitFor('r-1', 10_000).outcome;
    expect(t.waiting).toBe(1);
    await appendResults(ctx, [started({ requestId: 'r-1', model: 'm' })]);
    await waitFor(() => t.get('r-1')?.status === 'started', { what: 'started' });
    expect(t.waiting).toBe(1);
    await appendResults(ctx, [completed({ requestId: 'r-1', model: 'm' }, Buffer.from('1'))]);
    expect((await waiting)?.status).toBe('completed');
    expect(t.waiting).toBe(0);
    expect((await t.waitFor('r-1', 10_000).outcome)?.status).toBe('completed');
  });

  it('answers a waiter with what is known at its timeout, on cancel, and on close', async () => {
    const t = tracker();
    await t.start();
    t.accept(acceptedStatus('r-2', 'm', Date.now(), null), Promise.resolve());
    expect((await t.waitFor('r-2', 20).outcome)?.status).toBe('accepted');
    // Cancelled (the client went away): the waiter is gone at once.
    const w = t.waitFor('r-2', 10_000);
    expect(t.waiting).toBe(1);
    w.cancel();
    expect(t.waiting).toBe(0);
    expect((await w.outcome)?.status).toBe('accepted');
    w.cancel();
    expect(t.waiting).toBe(0);
    const closing = t.waitFor('nobody', 10_000).outcome;
    await t.close();
    expect(await closing).toBeUndefined();
    expect(t.waiting).toBe(0);
  });

  it('forgets an accepted request whose append failed', async () => {
    const t = tracker();
    await t.start();
    await expect(t.accept(acceptedStatus('r-3', 'm', Date.now(), null), Promise.reject(new Error('log down')))).rejects.toThrow('log down');
    expect(t.get('r-3')).toBeUndefined();
    expect(t.appending('r-3')).toBeUndefined();
  });

  it('reads forward during the settle window: a result appended while the subscription starts still wakes its waiter', async () => {
    const t = tracker({ lookbackRecords: 0, sweepIntervalMs: 20 }, logWithRaceAtSubscribe('gap-1'));
    await t.start();
    const result = await t.waitFor('gap-1', 5_000).outcome;
    expect(result?.status).toBe('completed');
    expect(t.stats().rangeRead).toBe(1);
  });

  it('fills the hole before a delivered batch when there is no settle window', async () => {
    const t = tracker({ lookbackRecords: 0, settleMs: 0 }, logWithRaceAtSubscribe('gap-2'));
    await t.start();
    expect(t.get('gap-2')).toBeUndefined();
    // The next record on the same partition (same key) is delivered; the hole before it is read first.
    await appendResults(ctx, [started({ requestId: 'gap-2', model: 'm' }, { attempt: 2 })]);
    await waitFor(() => t.get('gap-2') !== undefined, { what: 'the hole and the batch folded' });
    expect(t.stats().rangeRead).toBe(1);
    expect(t.stats().folded).toBe(2);
    // The hole held attempt 1's outcome: read first, it stays the outcome (the first terminal one wins).
    expect(t.get('gap-2')).toMatchObject({ status: 'completed', attempt: 1 });
  });

  it('bounds memory by bytes as well as entries', async () => {
    const t = tracker({ maxBytes: 64 * 1024 });
    await t.start();
    const big = Buffer.alloc(20 * 1024, 1);
    await appendResults(ctx, Array.from({ length: 10 }, (_, i) => completed({ requestId: `big-${i}`, model: 'm' }, big, { contentType: 'application/octet-stream' })));
    await waitFor(() => t.stats().folded === 10, { what: 'ten results folded' });
    expect(t.stats().entries).toBeLessThanOrEqual(3);
    expect(t.stats().bytes).toBeLessThanOrEqual(64 * 1024);
  });

  it('validates its options at construction', () => {
    expect(() => tracker({ maxEntries: 0 })).toThrow(/maxEntries/);
    expect(() => tracker({ groupId: '' })).toThrow(/groupId/);
    trackers.splice(0);
  });
});
