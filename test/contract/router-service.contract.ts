import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { EventLog, SubscribeOptions } from '../../lib/log/port.js';
import { InMemoryRegistry } from '../../lib/registry/core.js';
import { createServiceContext, type ServiceContext } from '../../lib/runtime.js';
import { EventCodec } from '../../schemas/codec.js';
import type { RequestRejected, RequestRouted, SwitchyardEvent } from '../../schemas/generated/events.js';
import { T0, evicted, heartbeat, joined, registered, request } from '../../services/router/fixtures.js';
import { startRouter, type RunningRouter } from '../../services/router/service.js';
import { uniqueName, waitFor } from '../support/services.js';

/**
 * The router service over any EventLog: it folds the log, decides requests, dispatches
 * each decision to its worker's lane, skips duplicates, sends rejections to `results`,
 * and a restarted router rebuilds its state from the log and keeps sessions in place.
 */
export function testRouterService(name: string, factory: () => Promise<{ log: EventLog; cleanup: () => Promise<void> }>): void {
  describe(`router service [${name}]`, () => {
    let log: EventLog;
    let cleanup: () => Promise<void>;
    let ctx: ServiceContext;
    const routers: RunningRouter[] = [];
    /** The routers' wall clock; the fleet's heartbeats are at T0. */
    let nowMs = T0 + 500;

    beforeEach(async () => {
      ({ log, cleanup } = await factory());
      nowMs = T0 + 500;
      const codec = await EventCodec.create({ registry: new InMemoryRegistry() });
      ctx = createServiceContext({ log, codec, topicPrefix: `${uniqueName('rt')}.`, lanes: 8, now: () => nowMs });
      await log.ensureTopics(Object.values(ctx.topics));
      const control = [registered('m', 'v1'), joined('w1', 0), joined('w2', 1), joined('w3', 2, { zone: 'zone-b' })];
      await log.append(control.map((e) => ({ topic: ctx.topics.control.name, partition: 0, value: codec.encode(e) })));
      const beats = ['w1', 'w2', 'w3'].map((w, lane) => heartbeat(w, lane, { zone: lane === 2 ? 'zone-b' : 'zone-a', seq: 1 }));
      await log.append(beats.map((e) => ({ topic: ctx.topics.heartbeats.name, key: e.workerId, value: codec.encode(e) })));
    });
    afterEach(async () => {
      for (const r of routers.splice(0)) await r.close();
      await log.close();
      await cleanup();
    });

    const send = (events: ReturnType<typeof request>[]) =>
      log.append(events.map((e) => ({ topic: ctx.topics.requests.name, key: e.sessionId ?? e.requestId, value: ctx.codec.encode(e) })));
    const readAll = async (topic: string): Promise<{ event: SwitchyardEvent; partition: number }[]> => {
      const ends = await log.endOffsets(topic);
      const out: { event: SwitchyardEvent; partition: number }[] = [];
      for (let p = 0; p < ends.length; p++) {
        for (const r of await log.read({ topic, partition: p, from: 0, to: ends[p]! })) out.push({ event: await ctx.codec.decode(r.value!), partition: p });
      }
      return out;
    };
    const decisions = async () => (await readAll(ctx.topics.decisions.name)) as { event: RequestRouted; partition: number }[];
    const total = async (topic: string) => (await log.endOffsets(topic)).reduce((a, b) => a + b, 0);

    // No worker answers in these tests, so outstanding load only grows; a generous bound keeps
    // the bounded-load rule from moving sessions (that rule has its own specs in decide).
    const sticky = { affinityEpsilon: 100 };

    it('dispatches each decision to its worker lane with the clock, the request and its position', async () => {
      routers.push(await startRouter(ctx, { routerId: 'router-a', policy: sticky }));
      const requests = Array.from({ length: 24 }, (_, i) => request(`r-${i}`, { sessionId: `s-${i % 8}`, at: T0 + 400 }));
      const positions = await send(requests);
      await waitFor(async () => (await total(ctx.topics.decisions.name)) === 24, { what: '24 decisions' });
      const got = await decisions();
      const lanes: Record<string, number> = { w1: 0, w2: 1, w3: 2 };
      const bySession = new Map<string, string>();
      for (const { event, partition } of got) {
        expect(event.type).toBe('RequestRouted');
        expect(partition).toBe(lanes[event.workerId]);
        expect(event.lane).toBe(partition);
        expect(event.producer).toBe('router-a');
        expect(event.reason).toBe('AFFINITY');
        // The clock names the whole prefix the router folded: 4 control records, 3 heartbeats.
        const control = event.clock.find((c) => c.topic === ctx.topics.control.name);
        expect(control?.offset).toBe(4);
        expect(event.clock.filter((c) => c.topic === ctx.topics.heartbeats.name).reduce((a, c) => a + c.offset, 0)).toBe(3);
        const i = Number(event.requestId!.slice(2));
        expect(event.request).toEqual(positions[i]);
        expect(Buffer.from(event.input).toString()).toBe('{"text":"hi"}');
        const prior = bySession.get(event.sessionId!);
        if (prior) expect(event.workerId).toBe(prior); // sticky per session
        bySession.set(event.sessionId!, event.workerId);
      }
      expect(new Set(bySession.values()).size).toBeGreaterThan(1);
    });

    it('decides a request id once, and sends rejections to results', async () => {
      const router = await startRouter(ctx, { routerId: 'router-a' });
      routers.push(router);
      await send([request('dup', { at: T0 + 400 })]);
      await waitFor(async () => (await total(ctx.topics.decisions.name)) === 1, { what: 'first decision' });
      await send([request('dup', { at: T0 + 450 }), request('late', { deadlineAt: T0 + 100 }), request('after', { at: T0 + 450 })]);
      await waitFor(async () => (await total(ctx.topics.decisions.name)) === 2 && (await total(ctx.topics.results.name)) === 1, { what: 'decisions after the duplicate' });
      expect((await decisions()).map((d) => d.event.requestId).sort()).toEqual(['after', 'dup']);
      const [rejected] = (await readAll(ctx.topics.results.name)).map((r) => r.event as RequestRejected);
      expect(rejected).toMatchObject({ type: 'RequestRejected', requestId: 'late', reason: 'DEADLINE_EXCEEDED' });
      expect(router.stats()).toMatchObject({ routed: 2, rejected: 1, duplicatesSkipped: 1 });
    });

    /**
     * Every heartbeat 5 s old (stale after 2 s) and the view at the log's end — a saturated host,
     * not a dead fleet, until the controller says otherwise: a router, and one request it holds.
     */
    const routerOverSilentFleet = async (requestId: string): Promise<RunningRouter> => {
      nowMs = T0 + 5_000;
      const router = await startRouter(ctx, { routerId: 'router-a', maxViewWaitMs: 20_000 });
      routers.push(router);
      await send([request(requestId, { at: T0 + 4_900, deadlineAt: T0 + 60_000 })]);
      await new Promise((r) => setTimeout(r, 300));
      expect(await total(ctx.topics.decisions.name)).toBe(0);
      expect(await total(ctx.topics.results.name)).toBe(0);
      return router;
    };

    it('a fleet whose heartbeats are all late but not evicted: waits for the next heartbeat rather than refusing', async () => {
      const router = await routerOverSilentFleet('r-late-beats');
      const beat = heartbeat('w2', 1, { seq: 2, at: T0 + 4_950 });
      await log.append([{ topic: ctx.topics.heartbeats.name, key: beat.workerId, value: ctx.codec.encode(beat) }]);
      await waitFor(async () => (await total(ctx.topics.decisions.name)) === 1, { what: 'the decision after a fresh heartbeat' });
      const [routed] = await decisions();
      expect(routed!.event).toMatchObject({ type: 'RequestRouted', requestId: 'r-late-beats', workerId: 'w2' });
      expect(router.stats()).toMatchObject({ routed: 1, rejected: 0, viewWaits: 1 });
    });

    it('…and refuses NO_CAPACITY as soon as the controller has evicted the silent workers', async () => {
      await routerOverSilentFleet('r-dead-fleet');
      const evictions = [evicted('w1', 0, T0 + 4_950), evicted('w2', 1, T0 + 4_950), evicted('w3', 2, T0 + 4_950)];
      await log.append(evictions.map((e) => ({ topic: ctx.topics.control.name, partition: 0, value: ctx.codec.encode(e) })));
      await waitFor(async () => (await total(ctx.topics.results.name)) === 1, { what: 'the rejection after the evictions', timeoutMs: 5_000 });
      const [rejected] = (await readAll(ctx.topics.results.name)).map((r) => r.event as RequestRejected);
      expect(rejected).toMatchObject({ type: 'RequestRejected', requestId: 'r-dead-fleet', reason: 'NO_CAPACITY' });
      expect(rejected!.candidates.map((c) => c.excluded)).toEqual(['EVICTED', 'EVICTED', 'EVICTED']);
    });

    it('refuses only on a view at the log\'s end: a refusal its view decides is decided again once the view has folded what the log holds', async () => {
      // Every T0 heartbeat is stale at T0 + 5 s. w1 is fresh but draining (so the router's view
      // looks fresh); w2's fresh heartbeat is on the log but held from the router's view for a
      // while (a view behind the log: a broker outage, a starved host).
      nowMs = T0 + 5_000;
      const w1 = heartbeat('w1', 0, { seq: 2, at: T0 + 4_950, draining: true });
      const w2 = heartbeat('w2', 1, { seq: 2, at: T0 + 4_960 });
      let release: () => void = () => {};
      const gate = new Promise<void>((r) => (release = r));
      let held = 0;
      const heartbeats = ctx.topics.heartbeats.name;
      const viewLog = new Proxy(log, {
        get(target, prop) {
          if (prop === 'subscribe') {
            return (o: SubscribeOptions) =>
              target.subscribe(
                o.assignment?.kind !== 'follow'
                  ? o
                  : {
                      ...o,
                      onBatch: async (batch) => {
                        const beats = batch.topic === heartbeats ? await Promise.all(batch.records.map((r) => ctx.codec.decode(r.value!))) : [];
                        if (beats.some((e) => e.type === 'WorkerHeartbeat' && e.workerId === 'w2' && e.seq === 2)) {
                          held++;
                          await gate;
                        }
                        return o.onBatch(batch);
                      },
                    },
              );
          }
          const v = Reflect.get(target, prop, target) as unknown;
          return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
        },
      });
      const router = await startRouter({ ...ctx, log: viewLog }, { routerId: 'router-a' });
      routers.push(router);
      await log.append([w1, w2].map((e) => ({ topic: heartbeats, key: e.workerId, value: ctx.codec.encode(e) })));
      await waitFor(() => held > 0, { what: "w2's heartbeat held from the view" });
      await send([request('r-behind', { at: T0 + 4_990, deadlineAt: T0 + 60_000 })]);
      await new Promise((r) => setTimeout(r, 300));
      // Not refused meanwhile: the router waits for its view to reach the log's end.
      expect(await total(ctx.topics.results.name)).toBe(0);
      release();
      await waitFor(async () => (await total(ctx.topics.decisions.name)) === 1, { what: 'the decision once the view caught up' });
      const [routed] = await decisions();
      expect(routed!.event).toMatchObject({ type: 'RequestRouted', requestId: 'r-behind', workerId: 'w2' });
      // Its clock names the heartbeat that was held.
      expect(routed!.event.clock.filter((c) => c.topic === heartbeats).reduce((a, c) => a + c.offset, 0)).toBe(5);
      expect(await total(ctx.topics.results.name)).toBe(0);
      expect(router.stats()).toMatchObject({ routed: 1, rejected: 0 });
      expect(router.stats().viewWaits).toBeGreaterThanOrEqual(1);
    });

    it('a restarted router rebuilds its state from the log: same sessions, same workers, no re-decision', async () => {
      const first = await startRouter(ctx, { routerId: 'router-a', policy: sticky });
      await send(Array.from({ length: 12 }, (_, i) => request(`a-${i}`, { sessionId: `s-${i % 6}`, at: T0 + 400 })));
      await waitFor(async () => (await total(ctx.topics.decisions.name)) === 12, { what: 'first decisions' });
      await first.close();

      const second = await startRouter(ctx, { routerId: 'router-b', policy: sticky });
      routers.push(second);
      // Replays of the first batch (same ids) and new requests of the same sessions.
      await send([
        ...Array.from({ length: 12 }, (_, i) => request(`a-${i}`, { sessionId: `s-${i % 6}`, at: T0 + 400 })),
        ...Array.from({ length: 12 }, (_, i) => request(`b-${i}`, { sessionId: `s-${i % 6}`, at: T0 + 450 })),
      ]);
      await waitFor(async () => (await total(ctx.topics.decisions.name)) === 24, { what: 'second decisions' });
      const got = (await decisions()).map((d) => d.event);
      const workerOf = (prefix: string) => new Map(got.filter((e) => e.requestId!.startsWith(prefix)).map((e) => [e.sessionId, e.workerId]));
      expect(workerOf('b-')).toEqual(workerOf('a-'));
      expect(got.filter((e) => e.requestId!.startsWith('a-')).every((e) => e.producer === 'router-a')).toBe(true);
      expect(second.stats().duplicatesSkipped).toBe(12);
      // Rendezvous hashing alone would keep the sessions in place; what proves the rebuild is the
      // load: router-b's first decision counted router-a's 12 unanswered decisions, worker by worker.
      const fromA = new Map<string, number>();
      for (const e of got) if (e.requestId!.startsWith('a-')) fromA.set(e.workerId, (fromA.get(e.workerId) ?? 0) + 1);
      const firstOfB = got.filter((e) => e.producer === 'router-b').sort((x, y) => x.occurredAt - y.occurredAt || (x.eventId < y.eventId ? -1 : 1))[0]!;
      for (const c of firstOfB.candidates) expect(c.inFlight - firstOfB.pendingDecisions.filter((p) => p.workerId === c.workerId).reduce((n, p) => n + p.count, 0), c.workerId).toBe(fromA.get(c.workerId) ?? 0);
      expect([...fromA.values()].reduce((a, b) => a + b, 0)).toBe(12);
    });
  });
}
