import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openRuntime, type Runtime } from '../lib/bootstrap.js';
import { tempDir } from '../test/support/log-dir.js';
import { startCluster, setRollout, type Cluster } from './cluster.js';
import type { SwitchyardEvent } from '../schemas/generated/events.js';

/**
 * The serving path end to end on the embedded log, in one process: HTTP → gateway →
 * requests → router → decisions (lane) → worker → results → gateway, with the shipped
 * models really computing.
 */
describe('embedded cluster end to end', () => {
  let rt: Runtime;
  let cluster: Cluster;
  let remove: () => Promise<void>;
  let url: string;

  beforeAll(async () => {
    const tmp = await tempDir('sy-cluster-');
    remove = tmp.remove;
    rt = await openRuntime({ brokers: [], home: tmp.dir, topicPrefix: 'switchyard.', lanes: 16, schemaRegistryUrl: undefined, clickhouseUrl: undefined, fsync: 'never', logLevel: 'warn' });
    cluster = await startCluster(rt, { routers: 2, gateway: { port: 0 } });
    await setRollout(rt, 'sentiment-small', [{ version: 'v1', weight: 50 }, { version: 'v2', weight: 50 }], 'v1', 'v2');
    url = cluster.gateway!.url;
  }, 60_000);
  afterAll(async () => {
    await cluster?.close();
    await rt?.close();
    await remove?.();
  });

  const infer = async (body: Record<string, unknown>, headers: Record<string, string> = {}) => {
    const res = await fetch(`${url}/v1/infer`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ deadlineMs: 20_000, ...body }) });
    return { status: res.status, headers: res.headers, body: (await res.json()) as { requestId: string; workerId: string; modelVersion: string; result?: { output: unknown } } };
  };

  it('answers with the model really computed, and a session stays on one worker and one version', async () => {
    const first = await infer({ model: 'sentiment-small', input: { text: 'I love this release' }, sessionId: 'alice' });
    expect(first.status).toBe(200);
    const output = first.body.result!.output as { label?: string; scores?: Record<string, number> };
    expect(output.label).toMatch(/positive|negative/);
    for (let i = 0; i < 8; i++) {
      const again = await infer({ model: 'sentiment-small', input: { text: `message ${i}` }, sessionId: 'alice' });
      expect(again.status).toBe(200);
      expect(again.body.workerId).toBe(first.body.workerId);
      expect(again.body.modelVersion).toBe(first.body.modelVersion);
    }
  });

  it('splits sessions across canary and stable by the rollout weights, and spreads them over workers', async () => {
    const versions: Record<string, number> = {};
    const workers = new Set<string>();
    await Promise.all(
      Array.from({ length: 60 }, async (_, i) => {
        const r = await infer({ model: 'sentiment-small', input: { text: 'ok' }, sessionId: `user-${i}` });
        expect(r.status).toBe(200);
        versions[r.body.modelVersion] = (versions[r.body.modelVersion] ?? 0) + 1;
        workers.add(r.body.workerId);
      }),
    );
    expect(Object.keys(versions).sort()).toEqual(['v1', 'v2']);
    expect(versions.v1!).toBeGreaterThan(12);
    expect(versions.v2!).toBeGreaterThan(12);
    expect(workers.size).toBeGreaterThanOrEqual(3);
  });

  it('executes an idempotent request once, however often it is sent', async () => {
    const headers = { 'idempotency-key': 'order-42' };
    const [a, b] = await Promise.all([infer({ model: 'embed-small', input: { text: 'same' } }, headers), infer({ model: 'embed-small', input: { text: 'same' } }, headers)]);
    const c = await infer({ model: 'embed-small', input: { text: 'same' } }, headers);
    expect([a.status, b.status, c.status]).toEqual([200, 200, 200]);
    const requestId = a.body.requestId;
    expect(new Set([a.body.requestId, b.body.requestId, c.body.requestId]).size).toBe(1);
    // Judged on the log, not on counters: the request was sent three times, decided once, executed once.
    const of = async (topic: string) => {
      const out: SwitchyardEvent[] = [];
      const ends = await rt.log.endOffsets(topic);
      for (let p = 0; p < ends.length; p++) for (const r of await rt.log.read({ topic, partition: p, from: 0 })) if (r.value !== null) out.push(await rt.ctx.codec.decode(r.value));
      return out.filter((e) => e.requestId === requestId);
    };
    expect((await of(rt.ctx.topics.requests.name)).filter((e) => e.type === 'InferenceRequested').length).toBeGreaterThanOrEqual(1);
    expect((await of(rt.ctx.topics.decisions.name)).filter((e) => e.type === 'RequestRouted')).toHaveLength(1);
    const results = await of(rt.ctx.topics.results.name);
    expect(results.filter((e) => e.type === 'InferenceStarted')).toHaveLength(1);
    expect(results.filter((e) => e.type === 'InferenceCompleted')).toHaveLength(1);
    expect(results.filter((e) => e.type === 'RequestRejected')).toHaveLength(0);
  });
});
