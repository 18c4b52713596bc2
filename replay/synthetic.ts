import { partitionForKey } from '../lib/log/partitioner.js';
import type { AppendRecord } from '../lib/log/port.js';
import type { ServiceContext } from '../lib/runtime.js';
import type {
  ClockEntry,
  InferenceRequested,
  PendingDecision,
  Priority,
  SwitchyardEvent,
  SwitchyardEventInit,
} from '../schemas/generated/events.js';
import { decide } from '../services/router/decide.js';
import { resolveRouterPolicy } from '../services/router/policies/options.js';
import { evolve, initialRouterState, type RouterState } from '../services/router/state.js';
import { digestOf } from './testing.js';
import { mulberry32 } from '../lib/prng.js';

/**
 * A large, realistic recorded log made fast (the replay benchmark, and tests of verify at
 * scale): events are written through the codec straight into the log, and routing decisions are
 * made by simulated routers that run the real pure core — `evolve` over every view record in
 * append order with a lag, `decide` with the exact clock of what they folded and their own
 * unread decisions as `pendingDecisions`. So `replay verify` over the result must report 0
 * divergences, like over a log written by the router shell.
 *
 * The mix per request: InferenceRequested; RequestRouted (to the lane) or RequestRejected (to
 * `results`); InferenceStarted and InferenceCompleted/Failed later in simulated time. Workers
 * heartbeat every 500 ms; one worker is slow (a latency outlier, ejected) and one fails now and
 * then; half the requests have a session, a quarter a preferred zone; all priority classes;
 * a 90/10 canary.
 */

export interface SyntheticOptions {
  /** Events to write (approximately; the last request completes). */
  events: number;
  /** @default 16 */
  workers?: number;
  /** Simulated routers. @default 2 */
  routers?: number;
  /** First simulated time. @default 2025-01-01T00:00:00Z */
  t0?: number;
  /** @default 1 */
  seed?: number;
  /** Called every ~50k events. */
  onProgress?: (written: number, total: number) => void;
}

export interface SyntheticResult {
  events: number;
  requests: number;
  decisions: number;
  rejected: number;
  heartbeats: number;
  /** Request ids, for lookups. */
  sampleRequestIds: string[];
  sessions: number;
  ms: number;
}

/** A min-heap of future events by time. */
class Timeline {
  private items: { at: number; seq: number; event: SwitchyardEvent }[] = [];
  private seq = 0;
  get size(): number {
    return this.items.length;
  }
  push(at: number, event: SwitchyardEvent): void {
    const a = this.items;
    a.push({ at, seq: this.seq++, event });
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (a[p]!.at < a[i]!.at || (a[p]!.at === a[i]!.at && a[p]!.seq < a[i]!.seq)) break;
      [a[p], a[i]] = [a[i]!, a[p]!];
      i = p;
    }
  }
  peekAt(): number {
    return this.items[0]?.at ?? Infinity;
  }
  pop(): SwitchyardEvent {
    const a = this.items;
    const top = a[0]!;
    const last = a.pop()!;
    if (a.length > 0) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        const less = (x: number, y: number) => a[x]!.at < a[y]!.at || (a[x]!.at === a[y]!.at && a[x]!.seq < a[y]!.seq);
        if (l < a.length && less(l, m)) m = l;
        if (r < a.length && less(r, m)) m = r;
        if (m === i) break;
        [a[m], a[i]] = [a[i]!, a[m]!];
        i = m;
      }
    }
    return top.event;
  }
}

interface SimRouter {
  id: string;
  state: RouterState;
  /** View records appended and not yet folded, in append order. */
  unread: { event: SwitchyardEvent; topic: string; partition: number; offset: number }[];
  head: number;
  /** Folded offset per "topic\0partition". */
  clock: Map<string, ClockEntry>;
  /** Own decisions appended and not yet folded, by eventId. */
  pending: Map<string, { workerId: string; lane: number }>;
}

const PRIORITIES: Priority[] = ['CRITICAL', 'HIGH', 'NORMAL', 'NORMAL', 'NORMAL', 'NORMAL', 'LOW', 'BACKGROUND'];

/** Write a synthetic recorded log of about `o.events` events into `ctx.log` (topics must exist). */
export async function writeSyntheticLog(ctx: ServiceContext, o: SyntheticOptions): Promise<SyntheticResult> {
  const started = performance.now();
  const rand = mulberry32(o.seed ?? 1);
  const { codec, topics, log } = ctx;
  const lanes = topics.decisions.partitions;
  const nWorkers = Math.min(o.workers ?? 16, lanes);
  const zones = ['zone-a', 'zone-b', 'zone-c', 'zone-d'];
  let now = o.t0 ?? 1_735_689_600_000;
  let eventSeq = 0;
  // UUIDv7-shaped, as the envelope's eventId is (the sink stores it as a UUID): the simulated
  // time in the first 48 bits, the sequence number in the last 48.
  const id = () => {
    const t = Math.max(0, Math.floor(now)).toString(16).padStart(12, '0');
    return `${t.slice(0, 8)}-${t.slice(8, 12)}-7000-8000-${(eventSeq++).toString(16).padStart(12, '0')}`;
  };
  const policy = resolveRouterPolicy({ affinityEpsilon: 0.5 });
  const routers: SimRouter[] = Array.from({ length: o.routers ?? 2 }, (_, i) => ({
    id: `router-sim-${i}`,
    state: initialRouterState({ lanes }),
    unread: [],
    head: 0,
    clock: new Map(),
    pending: new Map(),
  }));
  const isView = new Set([topics.control.name, topics.heartbeats.name, topics.decisions.name, topics.results.name]);
  const partitionsOf = new Map<string, number>(Object.values(topics).map((t) => [t.name, t.partitions]));
  const nextOffset = new Map<string, number>();
  let batch: AppendRecord[] = [];
  let written = 0;
  const result: SyntheticResult = { events: 0, requests: 0, decisions: 0, rejected: 0, heartbeats: 0, sampleRequestIds: [], sessions: 0, ms: 0 };

  /** Append (buffered) and hand view records to every simulated router. */
  const emit = async (topic: string, key: string | null, event: SwitchyardEvent, partition?: number): Promise<void> => {
    const p = partition ?? (key === null ? 0 : partitionForKey(Buffer.from(key, 'utf8'), partitionsOf.get(topic)!));
    const k = `${topic}\u0000${p}`;
    const offset = nextOffset.get(k) ?? 0;
    nextOffset.set(k, offset + 1);
    batch.push({ topic, partition: p, key, value: codec.encode(event as SwitchyardEventInit), timestamp: event.occurredAt });
    if (isView.has(topic)) for (const r of routers) r.unread.push({ event, topic, partition: p, offset });
    written++;
    if (batch.length >= 4_000) await flush();
  };
  const flush = async (): Promise<void> => {
    if (batch.length === 0) return;
    const b = batch;
    batch = [];
    await log.append(b);
    if (o.onProgress && Math.floor(written / 50_000) !== Math.floor((written - b.length) / 50_000)) o.onProgress(written, o.events);
  };
  /** Fold a router's unread records until at most `keep` remain (its lag). */
  const catchUp = (r: SimRouter, keep: number): void => {
    while (r.unread.length - r.head > keep) {
      const u = r.unread[r.head++]!;
      evolve(r.state, u.event);
      const k = `${u.topic}\u0000${u.partition}`;
      const c = r.clock.get(k);
      if (c) c.offset = u.offset + 1;
      else r.clock.set(k, { topic: u.topic, partition: u.partition, offset: u.offset + 1 });
      if ((u.event.type === 'RequestRouted' || u.event.type === 'RequestRejected') && u.event.producer === r.id) r.pending.delete(u.event.eventId);
    }
    if (r.head > 50_000) {
      r.unread = r.unread.slice(r.head);
      r.head = 0;
    }
  };
  const env = (producer: string, requestId: string | null = null) => ({ eventId: id(), occurredAt: now, requestId, traceId: null, producer, causationId: null, clock: [] as ClockEntry[] });

  // The cluster: models, a canary, workers.
  const workers = Array.from({ length: nWorkers }, (_, i) => ({ workerId: `worker-${String(i).padStart(2, '0')}`, lane: i, zone: zones[i % zones.length]!, capacity: 8, seq: 0, inFlight: 0, startedAt: now }));
  for (const [model, version] of [['m', 'v1'], ['m', 'v2']] as const) {
    await emit(topics.control.name, model, { type: 'ModelVersionRegistered', ...env('controller'), model, version, digest: digestOf(model, version), sizeBytes: 4096, kind: 'linear', fallbackModel: null, metadata: {}, registeredBy: null }, 0);
  }
  await emit(topics.control.name, 'm', { type: 'RolloutChanged', ...env('controller'), model: 'm', weights: [{ version: 'v1', weight: 90 }, { version: 'v2', weight: 10 }], stableVersion: 'v1', canaryVersion: 'v2', canary: true, budget: null, reason: 'CANARY_START', detail: null, epoch: null }, 0);
  for (const w of workers) {
    await emit(topics.control.name, null, { type: 'WorkerJoined', ...env(w.workerId), workerId: w.workerId, lane: w.lane, zone: w.zone, capacity: w.capacity, models: [], backend: 'cpu', accelerator: null, maxBatchSize: 1, maxBatchDelayMs: 0, startedAt: w.startedAt }, 0);
  }
  const heartbeat = async (): Promise<void> => {
    for (const w of workers) {
      await emit(topics.heartbeats.name, w.workerId, {
        type: 'WorkerHeartbeat',
        ...env(w.workerId),
        workerId: w.workerId,
        lane: w.lane,
        zone: w.zone,
        seq: w.seq++,
        startedAt: w.startedAt,
        load: Math.min(1, w.inFlight / w.capacity),
        queueDepth: Math.max(0, w.inFlight - w.capacity),
        inFlight: Math.min(w.inFlight, w.capacity),
        capacity: w.capacity,
        cacheHitRatio: 0,
        loadedModels: [],
        accelerator: null,
        draining: false,
        queueDelayMs: 0,
        cacheHitBuckets: [],
        bucketMs: 50,
        completed: 0,
      });
      result.heartbeats++;
    }
  };
  await heartbeat();
  for (const r of routers) catchUp(r, 0);

  const timeline = new Timeline();
  let nextHeartbeat = now + 500;
  let requestNo = 0;
  const nSessions = 2_000;
  result.sessions = nSessions;
  while (written < o.events) {
    now += 1;
    // Results due by now, then heartbeats.
    while (timeline.peekAt() <= now) {
      const e = timeline.pop();
      if (e.type === 'InferenceCompleted' || e.type === 'InferenceFailed') workers[e.lane]!.inFlight--;
      await emit(topics.results.name, e.requestId, e);
    }
    if (now >= nextHeartbeat) {
      await heartbeat();
      nextHeartbeat += 500;
    }
    // About one request per simulated ms.
    const requestId = `req-${(requestNo++).toString().padStart(8, '0')}`;
    const session = rand() < 0.5 ? `sess-${Math.floor(rand() * nSessions)}` : null;
    const source = rand() < 0.8 ? 'GATEWAY' : 'KAFKA_CLIENT';
    const request: InferenceRequested = {
      type: 'InferenceRequested',
      ...env(source === 'GATEWAY' ? 'gateway-1' : 'kafka-client-3', requestId),
      traceId: null,
      model: 'm',
      modelVersion: rand() < 0.02 ? 'v2' : null,
      input: Buffer.from(`{"text":"request ${requestNo % 5000}"}`),
      contentType: 'application/json',
      parameters: rand() < 0.3 ? { max_tokens: String(16 + Math.floor(rand() * 64)) } : {},
      sessionId: session,
      priority: PRIORITIES[Math.floor(rand() * PRIORITIES.length)]!,
      deadlineAt: rand() < 0.005 ? now - 1 : rand() < 0.3 ? now + 5_000 : null,
      zone: rand() < 0.25 ? zones[Math.floor(rand() * zones.length)]! : null,
      idempotencyKey: null,
      tenant: rand() < 0.5 ? 'tenant-a' : null,
      source,
      replyTopic: null,
      allowFallback: true,
      maxAttempts: null,
      cacheable: true,
      attributes: {},
    };
    const key = session ?? requestId;
    const reqPartition = partitionForKey(Buffer.from(key, 'utf8'), topics.requests.partitions);
    const reqOffset = nextOffset.get(`${topics.requests.name}\u0000${reqPartition}`) ?? 0;
    await emit(topics.requests.name, key, request);
    result.requests++;
    if (result.sampleRequestIds.length < 2_000 && rand() < 0.01) result.sampleRequestIds.push(requestId);

    // The router that owns the request's partition decides it, after folding up to its lag.
    const router = routers[reqPartition % routers.length]!;
    catchUp(router, Math.floor(rand() * 40));
    const pendingDecisions: PendingDecision[] = [];
    for (const { workerId, lane } of router.pending.values()) {
      const p = pendingDecisions.find((x) => x.workerId === workerId);
      if (p) p.count++;
      else pendingDecisions.push({ workerId, lane, count: 1 });
    }
    pendingDecisions.sort((a, b) => (a.workerId < b.workerId ? -1 : a.workerId > b.workerId ? 1 : 0));
    const clock = [...router.clock.values()].map((c) => ({ ...c })).sort((a, b) => (a.topic === b.topic ? a.partition - b.partition : a.topic < b.topic ? -1 : 1));
    const decision = decide({ eventId: id(), now, routerId: router.id, request, clock, pendingDecisions, policy, requestPosition: { topic: topics.requests.name, partition: reqPartition, offset: reqOffset } }, router.state);
    result.decisions++;
    if (decision.type === 'RequestRejected') {
      result.rejected++;
      await emit(topics.results.name, requestId, decision);
      continue;
    }
    router.pending.set(decision.eventId, { workerId: decision.workerId, lane: decision.lane });
    await emit(topics.decisions.name, requestId, decision, decision.lane);
    const w = workers[decision.lane]!;
    w.inFlight++;
    const slow = w.lane === 3;
    const queueMs = Math.floor(rand() * 4 * Math.max(1, w.inFlight - w.capacity + 1));
    const computeMs = slow ? 300 + Math.floor(rand() * 200) : 5 + Math.floor(rand() * 25);
    const base = { requestId, traceId: null, causationId: decision.eventId, clock: [] as ClockEntry[], workerId: w.workerId, lane: w.lane, model: decision.model, modelVersion: decision.modelVersion, modelDigest: decision.modelDigest, batchSize: 1, queueMs, attempt: 1 };
    timeline.push(now + queueMs, { type: 'InferenceStarted', eventId: id(), occurredAt: now + queueMs, producer: w.workerId, ...base, batchId: null });
    const at = now + queueMs + computeMs;
    if (w.lane === 5 && rand() < 0.05) {
      timeline.push(at, { type: 'InferenceFailed', eventId: id(), occurredAt: at, producer: w.workerId, ...base, errorCode: 'BACKEND_ERROR', errorMessage: 'synthetic failure', retriable: true, computeMs });
    } else {
      const output = Buffer.from(`{"label":"${requestNo % 3 === 0 ? 'neg' : 'pos'}"}`);
      timeline.push(at, { type: 'InferenceCompleted', eventId: id(), occurredAt: at, producer: w.workerId, ...base, output, contentType: 'application/json', outputSha256: null, cacheHit: false, computeMs, inputTokens: null, outputTokens: null, metrics: {} });
    }
  }
  // Let the work in flight finish.
  while (timeline.size > 0) {
    now = Math.max(now, timeline.peekAt());
    const e = timeline.pop();
    await emit(topics.results.name, e.requestId, e);
  }
  await flush();
  result.events = written;
  result.ms = performance.now() - started;
  return result;
}
