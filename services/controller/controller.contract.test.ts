import { afterEach, describe, expect, it } from 'vitest';
import { openRuntime, type Runtime } from '../../lib/bootstrap.js';
import type { LogRecord } from '../../lib/log/port.js';
import type { SwitchyardEvent } from '../../schemas/generated/events.js';
import { tempDir } from '../../test/support/log-dir.js';
import { startCluster, type Cluster } from '../../cli/cluster.js';
import { SyntheticBackend } from '../worker/backends/synthetic.js';
import { logSourceFrom } from '../../replay/source.js';
import { verifyDecisions } from '../../replay/verify.js';
import { verifyController } from '../../replay/verify-controller.js';

/**
 * The controller on the embedded log, driven by the real router, workers and controller code in
 * one process: a worker stopped without draining (as a crash would leave it) is evicted with its
 * evidence, its unfinished requests are re-dispatched and answered, and every request ends with
 * exactly one terminal outcome on the log. (The same on Kafka with real process kills:
 * test/chaos/*.chaos.test.ts.)
 */

interface Logged {
  event: SwitchyardEvent;
  record: LogRecord;
}

async function readTopic(rt: Runtime, topic: string): Promise<Logged[]> {
  const out: Logged[] = [];
  const ends = await rt.log.endOffsets(topic);
  for (let p = 0; p < ends.length; p++) {
    for (let from = 0; from < ends[p]!; ) {
      const records = await rt.log.read({ topic, partition: p, from, to: ends[p]! });
      if (records.length === 0) break;
      for (const record of records) if (record.value !== null) out.push({ event: await rt.ctx.codec.decode(record.value), record });
      from = records.at(-1)!.offset + 1;
    }
  }
  return out;
}

const until = async (what: string, check: () => Promise<boolean> | boolean, timeoutMs = 15_000): Promise<void> => {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
};

describe('controller (embedded log, in process)', () => {
  let rt: Runtime | undefined;
  let cluster: Cluster | undefined;
  let remove: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await cluster?.close();
    await rt?.close();
    await remove?.();
  });

  const boot = async (workers: number, baseMs: number) => {
    const tmp = await tempDir('sy-controller-');
    remove = tmp.remove;
    rt = await openRuntime({ brokers: [], home: tmp.dir, topicPrefix: 'switchyard.', lanes: 8, schemaRegistryUrl: undefined, clickhouseUrl: undefined, fsync: 'never', logLevel: 'warn' });
    cluster = await startCluster(rt, {
      gateway: false,
      workers: Array.from({ length: workers }, (_, i) => ({
        workerId: `w${i}`,
        zone: 'zone-a',
        capacity: 2,
        readAhead: false,
        backends: [new SyntheticBackend({ anyKind: true, profile: { baseMs } })],
      })),
    });
    await until('a leading controller', () => cluster!.controllers.some((c) => c.isLeader()));
    await until('every worker routable', () => cluster!.workers.every((w) => cluster!.routers[0]!.state().workers.get(w.id)?.heartbeat != null));
    return { rt, cluster };
  };

  const request = async (rt: Runtime, i: number, o: { deadlineMs?: number; sessionId?: string } = {}) => {
    const requestId = `req-${i.toString().padStart(4, '0')}`;
    await rt.log.append([
      {
        topic: rt.ctx.topics.requests.name,
        key: requestId,
        value: rt.ctx.codec.encode({
          type: 'InferenceRequested',
          eventId: rt.ctx.newEventId(),
          occurredAt: Date.now(),
          requestId,
          producer: 'test-client',
          model: 'sentiment-small',
          input: Buffer.from(JSON.stringify({ i })),
          deadlineAt: Date.now() + (o.deadlineMs ?? 20_000),
          sessionId: o.sessionId ?? null,
          cacheable: false,
        }),
      },
    ]);
    return requestId;
  };

  const terminals = (results: Logged[]) => {
    const byRequest = new Map<string, SwitchyardEvent[]>();
    for (const { event } of results) {
      const terminal = event.type === 'InferenceCompleted' || event.type === 'RequestRejected' || (event.type === 'InferenceFailed' && !event.retriable);
      if (!terminal || event.requestId === null) continue;
      byRequest.set(event.requestId, [...(byRequest.get(event.requestId) ?? []), event]);
    }
    return byRequest;
  };

  it('evicts a worker stopped without draining, with its evidence, and re-dispatches its unfinished requests to the survivor', async () => {
    const { rt, cluster } = await boot(2, 600);
    const ids = await Promise.all(Array.from({ length: 8 }, (_, i) => request(rt, i)));
    // Both workers have work in hand; stop one as a crash would (no drain, lane not released).
    await until('both workers busy', () => cluster.workers.every((w) => w.stats().inFlight + w.stats().queued > 0));
    const victim = cluster.workers[0]!;
    const stoppedAt = Date.now();
    await victim.stop();

    await until('every request answered', async () => terminals(await readTopic(rt, rt.ctx.topics.results.name)).size === ids.length, 20_000);
    const control = await readTopic(rt, rt.ctx.topics.control.name);
    const evictions = control.filter((l) => l.event.type === 'WorkerEvicted' && l.event.workerId === victim.id).map((l) => l.event as Extract<SwitchyardEvent, { type: 'WorkerEvicted' }>);
    expect(evictions).toHaveLength(1);
    const ev = evictions[0]!;
    expect(ev).toMatchObject({ reason: 'SUSPECTED_DEAD', producer: 'controller-1', phiThreshold: 8, minSilenceMs: 500 });
    expect(ev.epoch).toBe(1);
    expect(ev.silenceMs!).toBeGreaterThanOrEqual(500);
    expect(ev.phi!).toBeGreaterThanOrEqual(8);
    expect(ev.heartbeatPosition).not.toBeNull();
    expect(ev.occurredAt - stoppedAt).toBeLessThan(1_500);

    const decisions = (await readTopic(rt, rt.ctx.topics.decisions.name)).map((l) => l.event).filter((e): e is Extract<SwitchyardEvent, { type: 'RequestRouted' }> => e.type === 'RequestRouted');
    const redispatched = decisions.filter((d) => d.attempt > 1);
    expect(redispatched.length).toBeGreaterThan(0);
    for (const d of redispatched) {
      expect(d).toMatchObject({ reason: 'REDISPATCH', producer: 'controller-1', previousWorkerId: victim.id, workerId: 'w1' });
      expect(decisions.some((first) => first.requestId === d.requestId && first.attempt === d.attempt - 1 && first.workerId === victim.id)).toBe(true);
    }
    // Exactly one terminal outcome per request, all completed.
    const outcomes = terminals(await readTopic(rt, rt.ctx.topics.results.name));
    for (const id of ids) {
      expect(outcomes.get(id), id).toHaveLength(1);
      expect(outcomes.get(id)![0]!.type).toBe('InferenceCompleted');
    }
    expect(cluster.controllers[0]!.stats()).toMatchObject({ evictions: 1, redispatches: redispatched.length });

    // Replay re-derives every decision: the routers' and the controller's re-dispatches with the
    // routing code, the eviction and the re-dispatch choices with the controller's.
    const source = await logSourceFrom({ log: rt.log, registry: rt.registry, codec: rt.ctx.codec, description: 'test log' });
    const routing = await verifyDecisions(source, { index: false });
    expect(routing).toMatchObject({ diverged: 0, inconclusive: 0 });
    expect(Object.values(routing.skipped).reduce((a, b) => a + b, 0)).toBe(0);
    expect(routing.producers.map((p) => p.producer)).toContain('controller-1');
    const controllerReport = await verifyController(source);
    expect(controllerReport).toMatchObject({ diverged: 0, skipped: 0, ok: true });
    expect(controllerReport.byKind.evict).toBe(1);
    expect(controllerReport.byKind.route).toBe(redispatched.length);
  }, 40_000);

  it("migrates an evicted worker's sessions with their context to the worker affinity picks, which pre-warms; their next requests land there", async () => {
    const { rt, cluster } = await boot(2, 5);
    const sessions = Array.from({ length: 8 }, (_, i) => `s-${i}`);
    await Promise.all(sessions.map((s, i) => request(rt, 200 + i, { sessionId: s })));
    await until('every session served', async () => terminals(await readTopic(rt, rt.ctx.topics.results.name)).size === sessions.length);
    const sessionEvents = async () => (await readTopic(rt, rt.ctx.topics.sessions.name)).map((l) => l.event).filter((e): e is Extract<SwitchyardEvent, { type: 'SessionState' }> => e.type === 'SessionState');
    await until('every session recorded', async () => new Set((await sessionEvents()).map((e) => e.sessionId)).size === sessions.length);
    const owner = new Map((await sessionEvents()).map((e) => [e.sessionId, e.workerId]));
    const victim = cluster.workers.find((w) => [...owner.values()].includes(w.id))!;
    const survivor = cluster.workers.find((w) => w !== victim)!;
    const moving = sessions.filter((s) => owner.get(s) === victim.id);
    expect(moving.length).toBeGreaterThan(0);
    await victim.stop();
    await until('the sessions migrated', async () => (await sessionEvents()).filter((e) => e.reason === 'MIGRATED').length === moving.length);
    const migrated = (await sessionEvents()).filter((e) => e.reason === 'MIGRATED');
    for (const m of migrated) {
      expect(moving).toContain(m.sessionId);
      expect(m).toMatchObject({ workerId: survivor.id, migratedFrom: victim.id, producer: 'controller-1', epoch: 1, requestCount: 1 });
      expect(m.context.toString()).toContain('"i":');
    }
    await until('the survivor adopted them', () => survivor.stats().sessionsAdopted === moving.length);
    // The next request of a moved session goes to the survivor, which had its model loaded already.
    await request(rt, 300, { sessionId: moving[0]! });
    await until('answered', async () => terminals(await readTopic(rt, rt.ctx.topics.results.name)).has('req-0300'));
    const [next] = terminals(await readTopic(rt, rt.ctx.topics.results.name)).get('req-0300')!;
    expect(next).toMatchObject({ type: 'InferenceCompleted', workerId: survivor.id });
    const source = await logSourceFrom({ log: rt.log, registry: rt.registry, codec: rt.ctx.codec, description: 'test log' });
    const report = await verifyController(source);
    expect(report).toMatchObject({ diverged: 0, skipped: 0 });
    expect(report.byKind.migrate).toBe(moving.length);
  }, 40_000);

  it('ends a request no worker can serve at its deadline with DEADLINE_EXCEEDED: nothing stays accepted', async () => {
    const { rt, cluster } = await boot(1, 5);
    // The only worker is stopped first: the router still routes to it until its heartbeat is stale, then rejects.
    await cluster.workers[0]!.stop();
    await until('the worker evicted', () => cluster.controllers[0]!.stats().evictions === 1);
    const id = await request(rt, 1, { deadlineMs: 300 });
    await until('an outcome', async () => terminals(await readTopic(rt, rt.ctx.topics.results.name)).has(id), 10_000);
    const [outcome] = terminals(await readTopic(rt, rt.ctx.topics.results.name)).get(id)!;
    // The router rejects it (no capacity) or, when it was routed before the eviction, the controller ends it.
    expect(outcome!.type === 'RequestRejected' ? outcome.reason : outcome!.type === 'InferenceFailed' ? outcome.errorCode : outcome!.type).toMatch(/NO_CAPACITY|DEADLINE_EXCEEDED|WORKER_LOST/);
  }, 30_000);

  it('retries a retriable failure on another worker after a backoff', async () => {
    const { rt, cluster } = await boot(2, 5);
    // Drain w0 after the router has routed to it: decisions made after the drain are refused WORKER_DRAINING (retriable).
    const victim = cluster.workers[0]!;
    const draining = victim.drain('test');
    const ids = await Promise.all(Array.from({ length: 12 }, (_, i) => request(rt, 100 + i)));
    await draining;
    await until('every request answered', async () => terminals(await readTopic(rt, rt.ctx.topics.results.name)).size === ids.length, 20_000);
    const results = (await readTopic(rt, rt.ctx.topics.results.name)).map((l) => l.event);
    const outcomes = terminals(await readTopic(rt, rt.ctx.topics.results.name));
    for (const id of ids) expect(outcomes.get(id), id).toHaveLength(1);
    const refused = results.filter((e): e is Extract<SwitchyardEvent, { type: 'InferenceFailed' }> => e.type === 'InferenceFailed' && e.errorCode === 'WORKER_DRAINING');
    const decisions = (await readTopic(rt, rt.ctx.topics.decisions.name)).map((l) => l.event).filter((e): e is Extract<SwitchyardEvent, { type: 'RequestRouted' }> => e.type === 'RequestRouted');
    for (const r of refused) {
      const retry = decisions.find((d) => d.requestId === r.requestId && d.attempt === r.attempt + 1);
      expect(retry, `retry of ${r.requestId}`).toMatchObject({ reason: 'RETRY', producer: 'controller-1', workerId: 'w1' });
      expect(outcomes.get(r.requestId!)![0]!.type).toBe('InferenceCompleted');
    }
  }, 40_000);
});
