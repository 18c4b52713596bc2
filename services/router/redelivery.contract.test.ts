import { afterEach, describe, expect, it } from 'vitest';
import { openRuntime, type Runtime } from '../../lib/bootstrap.js';
import type { Batch, EventLog, SubscribeOptions } from '../../lib/log/port.js';
import { tempDir } from '../../test/support/log-dir.js';
import { startCluster, type Cluster } from '../../cli/cluster.js';
import { logSourceFrom } from '../../replay/source.js';
import { verifyDecisions } from '../../replay/verify.js';
import { verifyController } from '../../replay/verify-controller.js';
import { SyntheticBackend } from '../worker/backends/synthetic.js';

/**
 * At-least-once delivery means a view consumer gets batches again (after a broker outage a
 * restarted consumer resumes from its last commit). The routers' and the controller's views must
 * fold each record once and never move their clock back, or a decision's clock no longer names the
 * state it was made in and replay diverges. Here every other batch of those views is delivered
 * again, older ones included, and replay must still re-derive every decision.
 */
function redelivering(log: EventLog): EventLog {
  return new Proxy(log, {
    get(target, prop, receiver) {
      if (prop !== 'subscribe') return Reflect.get(target, prop, receiver) as unknown;
      return (options: SubscribeOptions) => {
        if (!/-view\./.test(options.groupId)) return target.subscribe(options);
        // Per partition, the batches delivered so far: now and then one from a few batches back is
        // delivered again first, as a consumer resuming from an older commit would.
        const seen = new Map<string, Batch[]>();
        let n = 0;
        return target.subscribe({
          ...options,
          onBatch: async (batch) => {
            const k = `${batch.topic}/${batch.partition}`;
            const past = seen.get(k) ?? [];
            seen.set(k, past);
            if (n++ % 3 === 0 && past.length >= 2) {
              for (const old of past.slice(-2)) await options.onBatch(old);
            }
            await options.onBatch(batch);
            past.push(batch);
            if (past.length > 8) past.shift();
          },
        });
      };
    },
  });
}

describe('views fold a redelivered batch once', () => {
  let rt: Runtime | undefined;
  let cluster: Cluster | undefined;
  let remove: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await cluster?.close();
    await rt?.close();
    await remove?.();
  });

  it('replay re-derives every decision of routers and a controller whose views get batches again, older ones included', async () => {
    const tmp = await tempDir('sy-redelivery-');
    remove = tmp.remove;
    rt = await openRuntime({ brokers: [], home: tmp.dir, topicPrefix: 'switchyard.', lanes: 8, schemaRegistryUrl: undefined, clickhouseUrl: undefined, fsync: 'never', logLevel: 'warn' });
    const wrapped: Runtime = { ...rt, ctx: { ...rt.ctx, log: redelivering(rt.log) } };
    cluster = await startCluster(wrapped, {
      gateway: false,
      routers: 2,
      workers: [0, 1].map((i) => ({ workerId: `w${i}`, zone: 'zone-a', capacity: 2, backends: [new SyntheticBackend({ anyKind: true, profile: { baseMs: 5, jitterMs: 10 } })] })),
    });
    const ids: string[] = [];
    for (let i = 0; i < 80; i++) {
      const requestId = `req-${i}`;
      ids.push(requestId);
      await rt.log.append([
        {
          topic: rt.ctx.topics.requests.name,
          key: requestId,
          value: rt.ctx.codec.encode({ type: 'InferenceRequested', eventId: rt.ctx.newEventId(), occurredAt: Date.now(), requestId, producer: 'test', model: 'sentiment-small', input: Buffer.from(`{"i":${i}}`), sessionId: i % 3 === 0 ? `s-${i % 7}` : null, deadlineAt: Date.now() + 20_000, cacheable: false }),
        },
      ]);
      if (i % 10 === 9) await new Promise((r) => setTimeout(r, 30));
    }
    const outcomes = async () => {
      const done = new Set<string>();
      const ends = await rt!.log.endOffsets(rt!.ctx.topics.results.name);
      for (let p = 0; p < ends.length; p++) for (const r of await rt!.log.read({ topic: rt!.ctx.topics.results.name, partition: p, from: 0 })) {
        const e = await rt!.ctx.codec.decode(r.value!);
        if ((e.type === 'InferenceCompleted' || e.type === 'RequestRejected') && e.requestId !== null) done.add(e.requestId);
      }
      return done.size;
    };
    const until = Date.now() + 20_000;
    while ((await outcomes()) < ids.length && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    expect(await outcomes()).toBe(ids.length);
    const source = await logSourceFrom({ log: rt.log, registry: rt.registry, codec: rt.ctx.codec, description: 'redelivery log' });
    const routing = await verifyDecisions(source, { index: false });
    expect(routing.divergences.map((d) => ({ requestId: d.requestId, producer: d.producer, paths: d.diffs.map((x) => x.path) }))).toEqual([]);
    expect(routing).toMatchObject({ decisions: 80, verified: 80, diverged: 0 });
    expect((await verifyController(source)).diverged).toBe(0);
  }, 40_000);
});
