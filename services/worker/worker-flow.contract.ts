import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SwitchyardError } from '../../lib/errors.js';
import type { AppendRecord, EventLog } from '../../lib/log/port.js';
import type {
  InferenceCompleted,
  InferenceFailed,
  InferenceStarted,
  SwitchyardEvent,
  WorkerEvicted,
  WorkerHeartbeat,
  WorkerJoined,
} from '../../schemas/generated/events.js';
import { uniqueName, waitFor } from '../../test/support/services.js';
import { encodeModelFile } from './backends/format.js';
import { workerHarness, type WorkerHarness } from './harness.js';
import { LaneTable } from './lanes.js';
import { pushModel } from './publish.js';
import { startWorker, type RunningWorker, type WorkerOptions } from './service.js';
import { startController } from '../controller/service.js';

export interface WorkerFlowFixture {
  log: EventLog;
  cleanup(): Promise<void>;
}

const isType =
  <T extends SwitchyardEvent['type']>(type: T) =>
  (e: SwitchyardEvent): e is Extract<SwitchyardEvent, { type: T }> =>
    e.type === type;

/**
 * The worker end to end on a real EventLog: lane claim, heartbeats, execution of routing
 * decisions appended by hand (encoded with the codec), the result cache, deadline drops,
 * refused weights, batching, draining and lane hand-over, restart. Run on the embedded log
 * (contract tier) and on Kafka (int tier).
 */
export function testWorkerFlow(name: string, factory: () => Promise<WorkerFlowFixture>, { timeoutMs = 20_000 } = {}): void {
  describe(`worker end to end [${name}]`, () => {
    let fixture: WorkerFlowFixture;
    let h: WorkerHarness;
    const workers: RunningWorker[] = [];
    const wait = (check: () => boolean | Promise<boolean>, what: string) => waitFor(check, { timeoutMs, intervalMs: 20, what });

    beforeEach(async () => {
      fixture = await factory();
      h = await workerHarness(fixture.log, { prefix: `${uniqueName('wk')}.`, lanes: 4 });
    });
    afterEach(async () => {
      await Promise.allSettled(workers.splice(0).map((w) => w.stop()));
      await fixture.log.close();
      await fixture.cleanup();
    });

    const start = async (o: Partial<WorkerOptions> = {}): Promise<RunningWorker> => {
      const w = await startWorker(h.ctx, { blobStore: h.store, zone: 'zone-a', capacity: 2, heartbeatIntervalMs: 50, drainQuietMs: 100, ...o });
      workers.push(w);
      return w;
    };
    const results = async () => (await h.events('results')).map((e) => e.event);
    const completedOf = async (requestId: string) => (await h.resultsOf(requestId)).filter(isType('InferenceCompleted'));
    const failedOf = async (requestId: string) => (await h.resultsOf(requestId)).filter(isType('InferenceFailed'));
    const answered = async (ids: string[]) => {
      const done = new Set((await results()).filter((e) => e.type === 'InferenceCompleted' || e.type === 'InferenceFailed').map((e) => e.requestId));
      return ids.every((id) => done.has(id));
    };
    const control = async () => (await h.events('control')).map((e) => e.event);
    const laneTable = async () => {
      const table = new LaneTable(4);
      for (const e of await control()) table.apply(e);
      return table;
    };
    const slowModel = async (baseMs: number, version = `v${baseMs}`) => {
      const { digest } = await pushModel(h.ctx, h.store, { bytes: encodeModelFile({ kind: 'synthetic', name: 'slow', version, config: { baseMs, perItemMs: 1 } }), model: 'slow', version });
      h.digests.set(`slow@${version}`, digest);
      return digest;
    };

    it('claims a lane, heartbeats, and executes the decisions addressed to it', async () => {
      const w = await start({ workerId: 'w-flow' });
      const table = await laneTable();
      expect(table.holder(w.lane)).toBe('w-flow');
      const joined = (await control()).filter(isType('WorkerJoined'));
      expect(joined.at(-1)).toMatchObject({ workerId: 'w-flow', lane: w.lane, zone: 'zone-a', capacity: 2, backend: 'cpu' } satisfies Partial<WorkerJoined>);

      await wait(async () => (await h.events('heartbeats')).length >= 2, 'two heartbeats');
      const beats = (await h.events('heartbeats')).map((e) => e.event).filter(isType('WorkerHeartbeat'));
      expect(beats.map((b) => b.seq)).toEqual([...beats.keys()]);
      expect(beats[0]).toMatchObject({ workerId: 'w-flow', lane: w.lane, zone: 'zone-a', capacity: 2, draining: false } satisfies Partial<WorkerHeartbeat>);
      expect(beats[0]!.accelerator?.kind).toMatch(/cpu|gpu/);
      expect((await h.events('heartbeats'))[0]!.record.key?.toString()).toBe('w-flow');

      const [d1, d2] = await h.route([
        { requestId: 'r-pos', workerId: 'w-flow', lane: w.lane, input: { text: 'I love it, what a great day' } },
        { requestId: 'r-emb', workerId: 'w-flow', lane: w.lane, model: 'embed-small@v2', input: { text: 'vectors please' } },
      ]);
      await wait(() => answered(['r-pos', 'r-emb']), 'both answered');
      const pos = await h.resultsOf('r-pos');
      expect(pos.map((e) => e.type)).toEqual(['InferenceStarted', 'InferenceCompleted']);
      const [started, done] = pos as [InferenceStarted, InferenceCompleted];
      expect(started).toMatchObject({ workerId: 'w-flow', lane: w.lane, causationId: d1, model: 'sentiment-small', modelVersion: 'v1', modelDigest: h.digests.get('sentiment-small@v1'), batchSize: expect.any(Number) });
      expect(done).toMatchObject({ workerId: 'w-flow', producer: 'w-flow', causationId: d1, cacheHit: false, modelDigest: h.digests.get('sentiment-small@v1'), attempt: 1 });
      expect(JSON.parse(Buffer.from(done.output).toString())).toMatchObject({ label: 'positive' });
      expect(done.computeMs).toBeGreaterThanOrEqual(0);
      expect(done.queueMs).toBeGreaterThanOrEqual(0);
      expect(done.clock).toContainEqual(expect.objectContaining({ topic: h.ctx.topics.decisions.name, partition: w.lane }));
      const emb = (await completedOf('r-emb'))[0]!;
      expect(emb.causationId).toBe(d2);
      const vec = JSON.parse(Buffer.from(emb.output).toString()).embedding as number[];
      expect(Math.hypot(...vec)).toBeCloseTo(1, 5);
      // Results are keyed by request id.
      const keys = (await h.events('results')).filter((e) => e.event.requestId === 'r-pos').map((e) => e.record.key?.toString());
      expect(new Set(keys)).toEqual(new Set(['r-pos']));

      await wait(async () => {
        const last = (await h.events('heartbeats')).map((e) => e.event).filter(isType('WorkerHeartbeat')).at(-1);
        return last?.loadedModels.includes(h.digests.get('sentiment-small@v1')!) === true;
      }, 'a heartbeat listing the loaded model');
      expect(w.stats()).toMatchObject({ id: 'w-flow', phase: 'running', counters: { completed: 2 } });
    });

    it('keeps its heartbeat rate while its reads of control are slow (the failure detector judges the beats, not the reads)', async () => {
      // Every look at control's end takes 300 ms — a broker slow to answer ListOffsets, a starved host.
      const controlTopic = h.ctx.topics.control.name;
      const slowLog = new Proxy(fixture.log, {
        get(target, prop, receiver) {
          if (prop === 'endOffsets') {
            return async (topic: string) => {
              if (topic === controlTopic) await new Promise((r) => setTimeout(r, 300));
              return target.endOffsets(topic);
            };
          }
          const v: unknown = Reflect.get(target, prop, receiver);
          return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
        },
      });
      const w = await startWorker({ ...h.ctx, log: slowLog }, { blobStore: h.store, zone: 'zone-a', capacity: 2, workerId: 'w-steady', heartbeatIntervalMs: 50 });
      workers.push(w);
      await wait(async () => (await h.events('heartbeats')).length >= 16, 'sixteen heartbeats');
      const at = (await h.events('heartbeats')).map((e) => e.event).filter(isType('WorkerHeartbeat')).map((b) => b.occurredAt);
      const gaps = at.slice(1).map((t, i) => t - at[i]!);
      // Each read of control took 300 ms: a beat that waited for one would leave a gap of ≥ 350 ms.
      expect(Math.max(...gaps)).toBeLessThan(250);
      expect(w.stats().heartbeatsSent).toBeGreaterThanOrEqual(16);
    });

    it("appends a batch's outcome behind its InferenceStarted without waiting for that append's acknowledgement, in order", async () => {
      // The log as the worker sees it: an append holding InferenceStarted records is not
      // acknowledged until released; every append's event types are noted when it is called.
      let release: () => void = () => {};
      const held = new Promise<void>((r) => (release = r));
      const calls: string[][] = [];
      const typesOf = async (records: AppendRecord[]) => Promise.all(records.map(async (r) => (await h.ctx.codec.decode(r.value!)).type));
      const log = new Proxy(h.ctx.log, {
        get(target, prop) {
          if (prop === 'append') {
            return (records: AppendRecord[]) => {
              const appended = target.append(records);
              const entry: string[] = [];
              calls.push(entry);
              return typesOf(records).then(async (types) => {
                entry.push(...types);
                const positions = await appended;
                if (types.includes('InferenceStarted')) await held;
                return positions;
              });
            };
          }
          const v = Reflect.get(target, prop, target) as unknown;
          return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
        },
      });
      const w = await startWorker({ ...h.ctx, log }, { blobStore: h.store, zone: 'zone-a', capacity: 2, heartbeatIntervalMs: 50, drainQuietMs: 100, workerId: 'w-pipe' });
      workers.push(w);
      await h.route([{ requestId: 'r-pipe', workerId: 'w-pipe', lane: w.lane, input: { text: 'pipelined' } }]);
      // The outcome's append is called while the Started append is still unacknowledged.
      await wait(() => calls.some((c) => c.includes('InferenceCompleted')), 'the outcome appended before the Started append was acknowledged');
      const order = calls.flat().filter((t) => t === 'InferenceStarted' || t === 'InferenceCompleted');
      expect(order).toEqual(['InferenceStarted', 'InferenceCompleted']);
      release();
      await wait(() => answered(['r-pipe']), 'answered');
      expect((await h.resultsOf('r-pipe')).map((e) => e.type)).toEqual(['InferenceStarted', 'InferenceCompleted']);
    });

    it('answers a repeated cacheable input from its cache and reports the hit ratio', async () => {
      const w = await start({ workerId: 'w-cache' });
      await h.route([{ requestId: 'c1', workerId: 'w-cache', lane: w.lane, input: { text: 'terrible service' } }]);
      await wait(() => answered(['c1']), 'c1');
      await h.route([
        { requestId: 'c2', workerId: 'w-cache', lane: w.lane, input: { text: 'terrible service' } },
        { requestId: 'c3', workerId: 'w-cache', lane: w.lane, input: { text: 'terrible service' }, cacheable: false },
        { requestId: 'c4', workerId: 'w-cache', lane: w.lane, input: { text: 'terrible service' }, model: 'sentiment-small@v2' },
      ]);
      await wait(() => answered(['c2', 'c3', 'c4']), 'c2..c4');
      const [c1, c2, c3, c4] = await Promise.all(['c1', 'c2', 'c3', 'c4'].map(async (id) => (await completedOf(id))[0]!));
      expect(c2).toMatchObject({ cacheHit: true, computeMs: 0, batchSize: 1 });
      expect(Buffer.from(c2!.output).equals(Buffer.from(c1!.output))).toBe(true);
      expect((await h.resultsOf('c2')).map((e) => e.type)).toEqual(['InferenceCompleted']);
      expect(c3!.cacheHit).toBe(false);
      // Another version is another digest: not the same cache entry.
      expect(c4!.cacheHit).toBe(false);
      expect(w.stats().cacheHitRatio).toBeCloseTo(1 / 3, 5);
      await wait(async () => ((await h.events('heartbeats')).map((e) => e.event).filter(isType('WorkerHeartbeat')).some((b) => b.cacheHitRatio > 0)), 'a heartbeat with a hit ratio');
    });

    it('drops work whose deadline passed, refuses weights whose digest does not match, and skips decisions for other workers', async () => {
      const w = await start({ workerId: 'w-refuse' });
      const tiny = h.digests.get('sentiment-tiny@v1')!;
      h.store.corrupt(tiny, Buffer.from('not the weights that were registered'));
      await h.route([
        { requestId: 'late', workerId: 'w-refuse', lane: w.lane, deadlineAt: h.ctx.now() - 1_000 },
        { requestId: 'tampered', workerId: 'w-refuse', lane: w.lane, model: 'sentiment-tiny@v1' },
        { requestId: 'unknown', workerId: 'w-refuse', lane: w.lane, modelDigest: '1'.repeat(64) },
        { requestId: 'bad-input', workerId: 'w-refuse', lane: w.lane, input: { image: 'png' } },
        { requestId: 'not-mine', workerId: 'previous-owner', lane: w.lane },
        { requestId: 'marker', workerId: 'w-refuse', lane: w.lane },
      ]);
      await wait(() => answered(['late', 'tampered', 'unknown', 'bad-input', 'marker']), 'every decision for the worker answered');
      const [late] = await failedOf('late');
      expect(late).toMatchObject({ errorCode: 'DEADLINE_EXCEEDED', retriable: false, workerId: 'w-refuse' } satisfies Partial<InferenceFailed>);
      expect(late!.errorMessage).toMatch(/deadline passed/);
      expect((await h.resultsOf('late')).map((e) => e.type)).toEqual(['InferenceFailed']);
      const [tampered] = await failedOf('tampered');
      expect(tampered).toMatchObject({ errorCode: 'DIGEST_MISMATCH', retriable: false, modelDigest: tiny });
      expect(tampered!.errorMessage).toContain(tiny);
      expect((await failedOf('unknown'))[0]).toMatchObject({ errorCode: 'MODEL_NOT_FOUND', retriable: true });
      expect((await failedOf('bad-input'))[0]).toMatchObject({ errorCode: 'INVALID_INPUT', retriable: false });
      expect(await h.resultsOf('not-mine')).toEqual([]);
      expect(w.stats().counters).toMatchObject({ skipped: 1, refused: 1 });
      expect(w.stats().loadedModels).not.toContain(tiny);
    });

    it('batches queued work of one model and never computes more than its capacity at once', async () => {
      const slow = await slowModel(80);
      const w = await start({ workerId: 'w-batch', capacity: 2, maxBatchSize: 3, maxBatchDelayMs: 0 });
      await h.route([{ requestId: 'b0', workerId: 'w-batch', lane: w.lane, model: 'slow@v80' }]);
      await wait(async () => (await h.resultsOf('b0')).length > 0, 'b0 started');
      const ids = Array.from({ length: 7 }, (_, i) => `b${i + 1}`);
      await h.route(ids.map((requestId) => ({ requestId, workerId: 'w-batch', lane: w.lane, model: 'slow@v80', input: { text: requestId } })));
      await wait(() => answered(['b0', ...ids]), 'all batched requests answered');
      const started = (await results()).filter(isType('InferenceStarted'));
      expect(started.every((s) => s.modelDigest === slow && s.batchSize <= 2)).toBe(true);
      const batches = new Map(started.map((s) => [s.batchId, s.batchSize]));
      expect([...batches.values()].reduce((a, b) => a + b, 0)).toBe(8);
      expect(Math.max(...batches.values())).toBe(2);
      const completed = (await results()).filter(isType('InferenceCompleted'));
      expect(completed.every((c) => c.batchSize === batches.get(started.find((s) => s.requestId === c.requestId)!.batchId))).toBe(true);
    });

    it('drains gracefully: finishes its work, refuses decisions made after the drain, commits, releases its lane to the next owner', async () => {
      await slowModel(120);
      const w1 = await start({ workerId: 'w-old', capacity: 1, maxBatchSize: 1, drainQuietMs: 150 });
      const lane = w1.lane;
      await h.route(['k1', 'k2', 'k3'].map((requestId) => ({ requestId, workerId: 'w-old', lane, model: 'slow@v120', input: { text: requestId } })));
      await wait(async () => (await h.resultsOf('k1')).length > 0, 'k1 started');
      const draining = w1.drain('SIGTERM');
      await wait(async () => (await control()).some((e) => e.type === 'WorkerDraining' && e.workerId === 'w-old'), 'WorkerDraining in control');
      expect(w1.stats().phase).toBe('draining');
      // A router that has read the WorkerDraining must not route here; if one does, it is refused.
      await h.route([{ requestId: 'after-drain', workerId: 'w-old', lane, model: 'slow@v120' }]);
      await draining;

      for (const id of ['k1', 'k2', 'k3']) expect((await completedOf(id)).length, id).toBe(1);
      expect((await failedOf('after-drain'))[0]).toMatchObject({ errorCode: 'WORKER_DRAINING', retriable: true });
      const ctl = await control();
      const drainedAt = ctl.findIndex((e) => e.type === 'WorkerDraining' && e.workerId === 'w-old');
      const releasedAt = ctl.findIndex((e) => e.type === 'WorkerEvicted' && e.workerId === 'w-old');
      expect(drainedAt).toBeGreaterThan(-1);
      expect(releasedAt).toBeGreaterThan(drainedAt);
      expect(ctl[releasedAt]).toMatchObject({ reason: 'DRAINED', lane } satisfies Partial<WorkerEvicted>);
      expect((await laneTable()).holder(lane)).toBeUndefined();
      const group = `${h.ctx.topics.decisions.name.slice(0, -'decisions'.length)}worker.lane-${lane}`;
      const committed = (await h.ctx.log.committedOffsets(group, h.ctx.topics.decisions.name))[lane];
      expect(committed).toBe((await h.ctx.log.endOffsets(h.ctx.topics.decisions.name))[lane]);
      expect(w1.stats().phase).toBe('released');
      const beats = (await h.events('heartbeats')).map((e) => e.event).filter(isType('WorkerHeartbeat'));
      expect(beats.some((b) => b.workerId === 'w-old' && b.draining)).toBe(true);

      // A decision for the old owner arrives late (its router lagged); then a new worker takes the lane.
      await h.route([{ requestId: 'late-for-old', workerId: 'w-old', lane }]);
      const w2 = await start({ workerId: 'w-new', lane });
      expect(w2.lane).toBe(lane);
      await h.route([{ requestId: 'for-new', workerId: 'w-new', lane }]);
      await wait(() => answered(['for-new']), 'the new owner answers');
      // The new owner resumed from the committed offset: nothing before it ran again.
      for (const id of ['k1', 'k2', 'k3']) expect((await completedOf(id)).length, id).toBe(1);
      // The old owner's late decision is skipped, left to the controller's re-dispatch.
      expect(await h.resultsOf('late-for-old')).toEqual([]);
      expect(w2.stats().counters.skipped).toBe(1);
    });

    it('a worker restarted under the same id re-claims its lane and finishes its own unfinished decisions', async () => {
      await slowModel(100);
      const first = await start({ workerId: 'w-crash', capacity: 1, maxBatchSize: 1 });
      const ids = ['u1', 'u2', 'u3', 'u4'];
      await h.route(ids.map((requestId) => ({ requestId, workerId: 'w-crash', lane: first.lane, model: 'slow@v100', input: { text: requestId } })));
      await wait(async () => (await h.resultsOf('u1')).length > 0, 'u1 started');
      await first.stop();
      expect(await answered(ids)).toBe(false);
      expect((await laneTable()).holder(first.lane)).toBe('w-crash');
      const again = await start({ workerId: 'w-crash', capacity: 1, maxBatchSize: 1 });
      expect(again.lane).toBe(first.lane);
      await wait(() => answered(ids), 'every decision answered after the restart');
      for (const id of ids) expect((await completedOf(id)).length, id).toBeGreaterThanOrEqual(1);
    });

    it('is evicted by the real controller when its heartbeats stop, writes no result for work it no longer owns (fenced), and says so', async () => {
      let told: string | undefined;
      // One heartbeat, then silence (as a frozen process): the controller's failure detector evicts it.
      const w = await start({ workerId: 'w-fenced', heartbeatIntervalMs: 600_000, onEvicted: (reason) => (told = reason) });
      await h.route([{ requestId: 'before', workerId: 'w-fenced', lane: w.lane }]);
      await wait(() => answered(['before']), 'answered before the eviction');
      const controller = await startController(h.ctx, { controllerId: 'controller-test' });
      try {
        await wait(async () => (await control()).some((e) => e.type === 'WorkerEvicted' && e.workerId === 'w-fenced'), 'the controller to evict the silent worker');
        const eviction = (await control()).find((e): e is WorkerEvicted => e.type === 'WorkerEvicted' && e.workerId === 'w-fenced')!;
        expect(eviction).toMatchObject({ reason: 'SUSPECTED_DEAD', producer: 'controller-test', lane: w.lane, epoch: 1 });
        expect(eviction.silenceMs!).toBeGreaterThanOrEqual(500);
        // A decision still reaching its lane is not answered: the worker reads control before it writes a result.
        await h.route([{ requestId: 'after', workerId: 'w-fenced', lane: w.lane }]);
        await wait(() => w.stats().phase === 'evicted' && told !== undefined, 'the worker to notice its eviction');
        expect(told).toMatch(/evicted/);
        await new Promise((r) => setTimeout(r, 300));
        expect(await h.resultsOf('after')).toEqual([]);
      } finally {
        await controller.close();
      }
    });

    it('drains an idle worker with an empty lane promptly', async () => {
      const w = await start({ workerId: 'w-idle', drainQuietMs: 50 });
      const t0 = Date.now();
      await w.drain('SCALE_DOWN');
      expect(Date.now() - t0).toBeLessThan(timeoutMs / 2);
      expect(w.stats().phase).toBe('released');
      const ctl = await control();
      expect(ctl.filter((e) => e.type === 'WorkerDraining' && e.workerId === 'w-idle')).toMatchObject([{ reason: 'SCALE_DOWN' }]);
      expect((await laneTable()).holder(w.lane)).toBeUndefined();
    });

    it('two workers racing for one lane: exactly one wins, the other takes another lane', async () => {
      const [a, b] = await Promise.all([start({ workerId: 'racer-a', lane: 2 }), start({ workerId: 'racer-b', lane: 2 })]);
      const winners = [a, b].filter((w) => w.lane === 2);
      expect(winners).toHaveLength(1);
      const loser = winners[0] === a ? b : a;
      expect(loser.lane).not.toBe(2);
      const table = await laneTable();
      expect(table.holder(2)).toBe(winners[0]!.id);
      expect(table.holder(loser.lane)).toBe(loser.id);
    });

    it('with one lane, the loser of the race gets no lane (SY_ERR_WORKER_NO_LANE)', async () => {
      const single = await workerHarness(fixture.log, { prefix: `${uniqueName('wk1')}.`, lanes: 1 });
      const attempt = (id: string) =>
        startWorker(single.ctx, { blobStore: single.store, workerId: id, heartbeatIntervalMs: 50 }).then(
          (w) => {
            workers.push(w);
            return w;
          },
          (err: unknown) => err,
        );
      const outcomes = await Promise.all([attempt('solo-a'), attempt('solo-b')]);
      const won = outcomes.filter((o) => !(o instanceof Error));
      const lost = outcomes.filter((o) => o instanceof Error);
      expect(won).toHaveLength(1);
      expect(lost).toHaveLength(1);
      expect(lost[0]).toBeInstanceOf(SwitchyardError);
      expect((lost[0] as SwitchyardError).code).toBe('SY_ERR_WORKER_NO_LANE');
    });
  });
}
