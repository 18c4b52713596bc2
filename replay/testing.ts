import { createHash } from 'node:crypto';
import type { Subscription, TopicPartitions } from '../lib/log/port.js';
import type { ServiceContext } from '../lib/runtime.js';
import type {
  InferenceRequestedInit,
  ModelVersionRegisteredInit,
  RequestRouted,
  RolloutChangedInit,
  SwitchyardEventInit,
  WorkerHeartbeatInit,
  WorkerJoinedInit,
} from '../schemas/generated/events.js';
import { startRouter, type RunningRouter } from '../services/router/service.js';

/**
 * Test helpers for replay (used by replay's tests, the golden-fixture generator and the
 * benchmark; not part of the replay tool):
 * - `SimClock`: a clock the scenario moves by hand, given to the routers' ServiceContext so a
 *   recording has stable times;
 * - `startTestResponder`: a TEST RESPONDER standing in for workers — it reads the decisions
 *   lanes and appends InferenceStarted + InferenceCompleted/Failed for each RequestRouted. It is
 *   not the worker service (services/worker); it answers deterministically (the output is a hash
 *   of the input and the model digest) so reruns can be diffed;
 * - `recordRouterScenario`: a small cluster recorded through the real router shell
 *   (`startRouter`): models with a canary, workers in two zones with heartbeats, sessions and
 *   session-less requests, priorities, pinned versions, a slow worker (ejected as a latency
 *   outlier), impossible deadlines and unknown models (rejections), a drain and an eviction
 *   (sessions move).
 */

export class SimClock {
  constructor(public t: number) {}
  now = (): number => this.t;
  advance(ms: number): number {
    this.t += ms;
    return this.t;
  }
}

export const digestOf = (model: string, version: string): string => createHash('sha256').update(`${model}@${version}`).digest('hex');

/** What the test responder answers for an input on a model digest (deterministic). */
export const responderOutput = (input: Buffer, digest: string): Buffer =>
  Buffer.from(JSON.stringify({ label: createHash('sha256').update(digest).update(input).digest('hex').slice(0, 8), digest: digest.slice(0, 12) }));

export interface TestResponderOptions {
  /** Group id (unique per responder). @default 'replay-test-responder' */
  groupId?: string;
  /** Latency reported per worker (queueMs + computeMs). @default 20 */
  latencyMs?: (workerId: string) => number;
  /** Fail this decision instead of completing it. @default never */
  fails?: (decision: RequestRouted, n: number) => boolean;
  /** Clock for occurredAt. @default ctx.now */
  now?: () => number;
  /** Output for a decision. @default responderOutput(input, modelDigest) */
  output?: (decision: RequestRouted) => Buffer;
}

export interface TestResponder {
  answered(): number;
  close(): Promise<void>;
}

/**
 * A TEST RESPONDER (not a worker): reads every lane of `decisions` and, for each RequestRouted,
 * appends InferenceStarted then InferenceCompleted (or InferenceFailed) to `results`, keyed by
 * request id, as the chosen worker. A repeated (model digest, input) on the same worker is a
 * cache hit when the decision allows it.
 */
export async function startTestResponder(ctx: ServiceContext, o: TestResponderOptions = {}): Promise<TestResponder> {
  const now = o.now ?? ctx.now;
  const seen = new Set<string>();
  let n = 0;
  const decisions = ctx.topics.decisions;
  const sub: Subscription = await ctx.log.subscribe({
    groupId: o.groupId ?? 'replay-test-responder',
    topics: [decisions.name],
    fromBeginning: true,
    assignment: { kind: 'static', partitions: [{ topic: decisions.name, partitions: [...Array(decisions.partitions).keys()] } satisfies TopicPartitions] },
    onBatch: async (batch) => {
      const out: SwitchyardEventInit[] = [];
      for (const record of batch.records) {
        if (record.value === null) continue;
        const d = await ctx.codec.decode(record.value);
        if (d.type !== 'RequestRouted' || d.requestId === null) continue;
        n++;
        const latency = o.latencyMs?.(d.workerId) ?? 20;
        const cacheKey = `${d.workerId}/${d.modelDigest}/${d.input.toString('base64')}`;
        const cacheHit = d.cacheable && seen.has(cacheKey);
        seen.add(cacheKey);
        // Times as a worker would report them: started after its queue wait, finished after compute.
        const t = now();
        const env = (causationId: string, at: number) => ({ eventId: ctx.newEventId(), occurredAt: at, requestId: d.requestId, traceId: d.traceId, producer: `responder:${d.workerId}`, causationId });
        const started = { type: 'InferenceStarted' as const, ...env(d.eventId, t + Math.floor(latency / 2)), workerId: d.workerId, lane: d.lane, model: d.model, modelVersion: d.modelVersion, modelDigest: d.modelDigest, queueMs: Math.floor(latency / 2), attempt: d.attempt };
        out.push(started);
        if (o.fails?.(d, n)) {
          out.push({ type: 'InferenceFailed', ...env(started.eventId, t + latency), workerId: d.workerId, lane: d.lane, model: d.model, modelVersion: d.modelVersion, modelDigest: d.modelDigest, errorCode: 'BACKEND_ERROR', errorMessage: 'test responder: injected failure', retriable: true, queueMs: Math.floor(latency / 2), computeMs: latency - Math.floor(latency / 2), attempt: d.attempt });
        } else {
          const output = o.output?.(d) ?? responderOutput(d.input, d.modelDigest);
          out.push({
            type: 'InferenceCompleted',
            ...env(started.eventId, t + (cacheHit ? Math.floor(latency / 2) : latency)),
            workerId: d.workerId,
            lane: d.lane,
            model: d.model,
            modelVersion: d.modelVersion,
            modelDigest: d.modelDigest,
            output,
            outputSha256: createHash('sha256').update(output).digest('hex'),
            cacheHit,
            queueMs: Math.floor(latency / 2),
            computeMs: cacheHit ? 0 : latency - Math.floor(latency / 2),
            attempt: d.attempt,
          });
        }
      }
      if (out.length > 0) await ctx.log.append(out.map((e) => ({ topic: ctx.topics.results.name, key: e.requestId ?? null, value: ctx.codec.encode(e) })));
    },
  });
  return { answered: () => n, close: () => sub.close() };
}

async function until(check: () => Promise<boolean> | boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

export interface ScenarioOptions {
  clock: SimClock;
  /** Request rounds (each sends 3–4 requests and advances 20 ms). @default 120 */
  rounds?: number;
  /** Router replicas sharing the requests. @default 2 */
  routers?: number;
}

export interface ScenarioResult {
  requests: number;
  routers: { id: string; decided: number; routed: number; rejected: number }[];
  answered: number;
}

const WORKERS = [
  { workerId: 'w1', lane: 0, zone: 'zone-a' },
  { workerId: 'w2', lane: 1, zone: 'zone-a' },
  { workerId: 'w3', lane: 2, zone: 'zone-b' },
  { workerId: 'w4', lane: 3, zone: 'zone-b' },
] as const;

/**
 * Records a small cluster through the real router shell on `ctx.log` (topics must exist). The
 * routers' `now` is `clock`; the scenario moves it. Deterministic in content, not in the exact
 * interleaving (routers consume asynchronously), which is what replay must cope with.
 */
export async function recordRouterScenario(ctx: ServiceContext, o: ScenarioOptions): Promise<ScenarioResult> {
  const { clock } = o;
  const rounds = o.rounds ?? 120;
  const { topics, codec, log } = ctx;
  const env = (producer: string, requestId: string | null = null) => ({ eventId: ctx.newEventId(), occurredAt: clock.now(), requestId, producer });
  const control = (events: SwitchyardEventInit[]) => log.append(events.map((e) => ({ topic: topics.control.name, partition: 0, value: codec.encode(e) })));

  const models: ModelVersionRegisteredInit[] = [
    ['m', 'v1'],
    ['m', 'v2'],
    ['m-small', 'v1'],
  ].map(([model, version]) => ({
    type: 'ModelVersionRegistered',
    ...env('controller'),
    model: model!,
    version: version!,
    digest: digestOf(model!, version!),
    sizeBytes: 4096,
    kind: 'linear',
    fallbackModel: model === 'm' ? 'm-small' : null,
  }));
  const rollout: RolloutChangedInit = {
    type: 'RolloutChanged',
    ...env('controller'),
    model: 'm',
    weights: [
      { version: 'v1', weight: 90 },
      { version: 'v2', weight: 10 },
    ],
    stableVersion: 'v1',
    canaryVersion: 'v2',
    canary: true,
    reason: 'CANARY_START',
  };
  const joined: WorkerJoinedInit[] = WORKERS.map((w) => ({ type: 'WorkerJoined', ...env(w.workerId), ...w, capacity: 4, models: w.workerId === 'w4' ? ['m-small'] : [], startedAt: clock.now() }));
  await control([...models, rollout, ...joined]);

  const live = new Set<string>(WORKERS.map((w) => w.workerId));
  const draining = new Set<string>();
  const seqs = new Map<string, number>();
  const heartbeats = async () => {
    const beats: WorkerHeartbeatInit[] = WORKERS.filter((w) => live.has(w.workerId)).map((w) => {
      const seq = (seqs.get(w.workerId) ?? -1) + 1;
      seqs.set(w.workerId, seq);
      return {
        type: 'WorkerHeartbeat',
        ...env(w.workerId),
        ...w,
        seq,
        startedAt: joined.find((j) => j.workerId === w.workerId)!.startedAt,
        load: ((seq * 7 + w.lane * 3) % 10) / 20,
        queueDepth: (seq + w.lane) % 3,
        inFlight: (seq * 5 + w.lane) % 4,
        capacity: 4,
        loadedModels: w.workerId === 'w4' ? [digestOf('m-small', 'v1')] : [],
        draining: draining.has(w.workerId),
      };
    });
    await log.append(beats.map((e) => ({ topic: topics.heartbeats.name, key: e.workerId, value: codec.encode(e) })));
  };
  await heartbeats();

  const responder = await startTestResponder(ctx, {
    groupId: `replay-test-responder-${Math.floor(Math.random() * 1e9)}`,
    latencyMs: (w) => (w === 'w2' ? 450 : 15 + (w.charCodeAt(1) % 7)),
    fails: (d, n) => d.workerId === 'w3' && n % 9 === 0,
  });
  const routers: RunningRouter[] = [];
  for (let i = 0; i < (o.routers ?? 2); i++) {
    // The first router runs the default policy (its policyVersion is the bare code version, so any
    // change of a default shows); the others a policy of their own (parsed back from policyVersion).
    routers.push(await startRouter(ctx, { routerId: `router-${String.fromCharCode(97 + i)}`, policy: i === 0 ? {} : { affinityEpsilon: 0.5, ejection: { minRequests: 8 } } }));
  }

  let sent = 0;
  const decided = () => routers.reduce((a, r) => a + r.stats().decided + r.stats().duplicatesSkipped, 0);
  for (let round = 0; round < rounds; round++) {
    clock.advance(20);
    if (round % 20 === 0) await heartbeats();
    if (round === Math.floor(rounds / 2)) {
      draining.add('w1');
      await control([{ type: 'WorkerDraining', ...env('w1'), workerId: 'w1', lane: 0, reason: 'SIGTERM' }]);
    }
    if (round === Math.floor((rounds * 3) / 4)) {
      live.delete('w1');
      await control([{ type: 'WorkerEvicted', ...env('controller'), workerId: 'w1', lane: 0, reason: 'DRAINED', lastHeartbeatAt: clock.now() - 100, lastHeartbeatSeq: seqs.get('w1') ?? null }]);
    }
    const batch: InferenceRequestedInit[] = [];
    const request = (i: number, extra: Partial<InferenceRequestedInit>): InferenceRequestedInit => ({
      type: 'InferenceRequested',
      ...env(i % 2 === 0 ? 'gateway-1' : 'kafka-client-7', `req-${String(sent + batch.length).padStart(5, '0')}`),
      traceId: createHash('md5').update(String(sent + batch.length)).digest('hex'),
      model: 'm',
      input: Buffer.from(JSON.stringify({ text: `hello ${i % 11}` })),
      source: i % 2 === 0 ? 'GATEWAY' : 'KAFKA_CLIENT',
      ...extra,
    });
    batch.push(request(round, { sessionId: `s-${round % 6}` }));
    batch.push(request(round + 1, { priority: round % 5 === 0 ? 'BACKGROUND' : 'NORMAL' }));
    batch.push(request(round + 2, { zone: round % 3 === 0 ? 'zone-b' : null, parameters: { max_tokens: String(16 + (round % 4)) } }));
    if (round % 10 === 3) batch.push(request(round, { deadlineAt: clock.now() - 5 }));
    else if (round % 10 === 7) batch.push(request(round, { model: 'no-such-model' }));
    else if (round % 10 === 5) batch.push(request(round, { modelVersion: 'v2', sessionId: `pinned-${round % 2}` }));
    else if (round % 10 === 1) batch.push(request(round, { model: 'm-small', priority: 'HIGH' }));
    await log.append(batch.map((e) => ({ topic: topics.requests.name, key: e.sessionId ?? e.requestId ?? null, value: codec.encode(e) })));
    sent += batch.length;
    // Let routers and the responder keep up most of the time (decisions then see results).
    if (round % 4 === 0) await until(() => decided() >= sent, `${sent} decisions`);
  }
  await until(() => decided() >= sent, `${sent} decisions`);
  await until(async () => responder.answered() >= routers.reduce((a, r) => a + r.stats().routed, 0), 'the responder');
  const stats = routers.map((r) => ({ ...r.stats(), id: r.id }));
  for (const r of routers) await r.close();
  await responder.close();
  return { requests: sent, routers: stats.map((s) => ({ id: s.id, decided: s.decided, routed: s.routed, rejected: s.rejected })), answered: responder.answered() };
}
