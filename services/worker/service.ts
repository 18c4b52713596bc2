import type { ProjectedDecoder } from '../../schemas/codec.js';
import { LRUCache } from 'lru-cache';
import { SwitchyardError, errorMessage, isRetriable } from '../../lib/errors.js';
import { sha256Hex } from '../../lib/blob/digest.js';
import { deadLetterPolicy, subscribeEvents } from '../../lib/events/subscribe.js';
import type { AppendRecord, LogRecord, Subscription } from '../../lib/log/port.js';
import { RecentIds } from '../../lib/recent-ids.js';
import { instanceId, type ServiceContext } from '../../lib/runtime.js';
import type {
  Accelerator,
  ClockEntry,
  InferenceCompletedInit,
  InferenceFailedInit,
  InferenceStartedInit,
  RequestRouted,
  SwitchyardEvent,
  SwitchyardEventInit,
  WorkerHeartbeatInit,
} from '../../schemas/generated/events.js';
import { AcceleratorProbe } from './accelerator.js';
import type { InferenceItem, InferenceOutput, ItemResult } from './backends/port.js';
import { ControlReader } from './control.js';
import { decide, nextDispatchAt, type WorkerCommand } from './decide.js';
import { failureOf, type Failure } from './failures.js';
import { chooseLane, LaneTable } from './lanes.js';
import { ModelLoader } from './loader.js';
import { SessionBook, servedState } from './sessions.js';
import { resolveWorkerOptions, type ResolvedWorkerOptions, type WorkerOptions } from './options.js';
import { evolve, hitRatio, initialWorkerState, isIdle, loadOf, oldestQueuedAt, type DecisionView, type Job, type WorkerCounters, type WorkerEvent, type WorkerState } from './state.js';
import { deferred, type Deferred } from '../../lib/deferred.js';

export type { WorkerOptions } from './options.js';

/**
 * The worker service shell: wires the log to the pure decider (`decide.ts`), the model loader
 * and the backends.
 *
 * Lifecycle:
 * 1. **Claim a lane.** Fold `control` (the router's own lane fold, `lanes.ts`), append
 *    `WorkerJoined` for a free lane, read control again up to that record: if the claim won (the
 *    first valid claim of a free lane in log order wins; the log is the sequencer) the lane is
 *    ours, else try another free lane.
 * 2. **Consume the lane.** Partition `lane` of `decisions` with a static assignment under the
 *    lane's group id `<prefix>worker.lane-<n>`: whoever holds the lane next resumes from the last
 *    committed offset. A lane batch commits only once every decision in it is answered (its
 *    result appended), so nothing in the lane is skipped when a worker dies. While a batch
 *    computes, later decisions are read ahead (`log.read`) so batches can fill and the
 *    concurrency limit can be used; they are answered once and remembered by decision id, so
 *    the subscription's later delivery of them only waits for (or sees) their answer.
 * 3. **Execute** the decisions addressed to this worker id (see `decide.ts` for which, and why
 *    decisions for a previous owner of the lane are skipped): deadline check, result cache
 *    (LRU by model digest and sha256 of the content type, parameters and input; TTL), dynamic
 *    batching under the concurrency limit, lazy verified model loading. Writes
 *    InferenceStarted (a batch started) / InferenceCompleted / InferenceFailed to `results`,
 *    keyed by requestId, causationId = the decision's eventId, clock = the lane position of
 *    the decision and the control position. A cache hit writes only InferenceCompleted
 *    (cacheHit, computeMs 0). queueMs is measured from the decision's occurredAt (routed) to the
 *    start, so it includes the trip through the log.
 * 4. **Heartbeat** every `heartbeatIntervalMs` to `heartbeats` keyed by worker id, and poll
 *    control: if the controller evicts this worker it stops consuming (fenced).
 * 5. **Drain** (`drain()`, on SIGTERM): append WorkerDraining; routers stop choosing this worker
 *    once they read it. Decisions made before that (their clock's control offset is at or before
 *    the WorkerDraining) are still executed; later ones are refused (WORKER_DRAINING,
 *    retriable). When nothing is queued or computing, the lane is committed to its end and no
 *    decision arrived for `drainQuietMs`, close the lane consumer and release the lane with a
 *    `WorkerEvicted` (reason DRAINED) of its own. After `drainTimeoutMs` queued work that has not
 *    started is abandoned: it stays uncommitted in the lane.
 *
 * `stop()` stops without releasing the lane (as a crash would, but closing cleanly): the lane
 * stays claimed until the controller evicts the worker or it restarts under the same id.
 */
export interface RunningWorker {
  readonly id: string;
  readonly lane: number;
  /** Stop taking work, finish in-flight work, commit, release the lane. Resolves when done. */
  drain(reason?: string): Promise<void>;
  /** Stop at once without releasing the lane (queued work stays uncommitted in the lane). */
  stop(): Promise<void>;
  stats(): WorkerStats;
}

export type WorkerPhase = 'running' | 'draining' | 'released' | 'stopped' | 'evicted';

export interface WorkerStats {
  id: string;
  lane: number;
  zone: string;
  phase: WorkerPhase;
  capacity: number;
  queued: number;
  inFlight: number;
  load: number;
  counters: WorkerCounters;
  /** Cache hits over cacheable lookups since start. */
  cacheHitRatio: number;
  cacheEntries: number;
  loadedModels: string[];
  heartbeatsSent: number;
  /** Decisions answered before the lane consumer delivered them. */
  readAhead: number;
  /** Sessions kept, and how many were handed over by the controller (migrations). */
  sessions: number;
  sessionsAdopted: number;
}

interface Payload {
  readonly event: RequestRouted;
  readonly offset: number;
  /** Result cache key; null when the request is not cacheable (or the cache is off). */
  readonly cacheKey: string | null;
}

interface CachedAnswer {
  output: Buffer;
  contentType: string;
  outputSha256: string;
  inputTokens: number | null;
  outputTokens: number | null;
}

const stoppedError = (why: string): SwitchyardError => new SwitchyardError('SY_ERR_WORKER_STOPPED', `worker stopped before answering: ${why}`, { retriable: true });

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Width of the heartbeat's cache-hit buckets, ms. */
const CACHE_BUCKET_MS = 50;

/** The sha256 a result is cached under: model digest, content type, parameters (sorted), input. */
export function cacheKeyOf(modelDigest: string, contentType: string, parameters: Readonly<Record<string, string>>, input: Uint8Array): string {
  const params = Object.keys(parameters)
    .sort()
    .map((k) => [k, parameters[k]]);
  const h = sha256Hex(Buffer.concat([Buffer.from(`${contentType}\u0000${JSON.stringify(params)}\u0000`), input]));
  return `${modelDigest}:${h}`;
}

/** Start a worker: claim a lane, start heartbeats and consume the lane. */
export async function startWorker(ctx: ServiceContext, options: WorkerOptions): Promise<RunningWorker> {
  const worker = new Worker(ctx, resolveWorkerOptions(options, () => instanceId('worker')));
  await worker.start();
  return worker;
}

class Worker implements RunningWorker {
  readonly id: string;
  lane = -1;
  private readonly o: ResolvedWorkerOptions;
  private state!: WorkerState;
  private phase: WorkerPhase | 'starting' = 'starting';
  private readonly startedAt: number;
  private readonly loader: ModelLoader;
  private readonly cache: LRUCache<string, CachedAnswer> | null;
  private readonly probe: AcceleratorProbe;
  private readonly table: LaneTable;
  private readonly control: ControlReader;
  private readonly decisionsTopic: string;
  /**
   * Decodes the lane's decisions without their candidates and pending decisions, which the worker
   * never reads (the clock stays: it names the control offset the router had seen): the shared
   * decoder, so a decision is decoded once for the worker, the router's view and the controller.
   */
  private readonly decisions: ProjectedDecoder;
  private readonly controlTopic: string;
  private readonly laneGroup: string;
  /** decisionId → answer, for accepted decisions not answered yet. */
  private readonly pending = new Map<string, Deferred>();
  private readonly payloads = new Map<string, Payload>();
  /** Decision ids answered (or skipped), so a redelivery is not executed twice (the last N, outside the V8 heap). */
  private readonly answered: RecentIds;
  private sub: Subscription | undefined;
  private sessionSub: Subscription | undefined;
  private readonly sessions: SessionBook;
  private dispatchQueued = false;
  private dispatchTimer: NodeJS.Timeout | undefined;
  private dispatchTimerAt = Infinity;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private heartbeatSeq = 0;
  private lastHeartbeatAt: number | null = null;
  private heartbeatsSent = 0;
  private heartbeatInFlight: Promise<void> | undefined;
  private controlInFlight: Promise<void> | undefined;
  private lastHits = 0;
  private lastMisses = 0;
  private lastRatio = 0;
  /** Cache lookups since the last heartbeat in 50 ms buckets: [hits, misses] per bucket. */
  private cacheBuckets: [number, number][] = [];
  /** When control was last read up to its end (fencing: results are not written on a view older than `fenceMs`). */
  private lastControlReadAt = 0;
  /** Settles when the latest result append was handed to the log (or fenced): the next one's turn. */
  private appendTurn: Promise<void> = Promise.resolve();
  private releasing = false;
  private drainPromise: Promise<void> | undefined;
  private stopPromise: Promise<void> | undefined;
  private lastOwnDecisionAt = 0;
  /** Background writes (heartbeats, results) to wait for before stopping. */
  private readonly writes = new Set<Promise<unknown>>();
  private readonly batchesRunning = new Set<Promise<void>>();
  // Read-ahead.
  private batchesWaiting = 0;
  private readPos = 0;
  private batchEnd = 0;
  private readingAhead = false;
  private readAheadCount = 0;
  private readonly readAheadPollMs: number;

  constructor(
    private readonly ctx: ServiceContext,
    options: ResolvedWorkerOptions,
  ) {
    this.o = options;
    this.id = options.workerId;
    this.startedAt = ctx.now();
    this.loader = new ModelLoader({ store: options.blobStore, backends: options.backends, maxLoaded: options.maxLoadedModels });
    this.cache =
      options.cacheMaxEntries > 0
        ? new LRUCache<string, CachedAnswer>({ max: options.cacheMaxEntries, maxSize: options.cacheMaxBytes, sizeCalculation: (v) => v.output.length + 128, ttl: options.cacheTtlMs })
        : null;
    this.answered = new RecentIds(4 * options.readAheadMaxRecords + 4_096);
    this.probe = new AcceleratorProbe(options.runCommand);
    this.sessions = new SessionBook({ contextBytes: options.sessionContextBytes, maxSessions: options.maxSessions });
    this.table = new LaneTable(ctx.topics.decisions.partitions);
    this.control = new ControlReader(ctx, (event) => this.table.apply(event));
    this.decisionsTopic = ctx.topics.decisions.name;
    this.decisions = ctx.codec.shared;
    this.controlTopic = ctx.topics.control.name;
    const prefix = this.decisionsTopic.endsWith('decisions') ? this.decisionsTopic.slice(0, -'decisions'.length) : '';
    this.laneGroup = `${prefix}worker.lane-`;
    this.readAheadPollMs = options.readAheadPollMs ?? (ctx.log.kind === 'kafka' ? 20 : 2);
  }

  // ---------------------------------------------------------------------------------------
  // Start: lane claim, heartbeats, lane consumer.

  async start(): Promise<void> {
    const { log, topics, logger } = this.ctx;
    await log.ensureTopics([topics.decisions, topics.results, topics.heartbeats, topics.control, topics.deadletter]);
    if (this.o.accelerator === undefined) await this.probe.refresh();
    await this.claim();
    this.state = initialWorkerState(this.id, this.lane, {
      capacity: this.o.capacity,
      maxBatchSize: this.o.maxBatchSize,
      maxBatchDelayMs: this.o.maxBatchDelayMs,
      maxConcurrentBatches: this.o.maxConcurrentBatches,
    });
    this.phase = 'running';
    this.scheduleHeartbeat(0);
    try {
      this.sub = await subscribeEvents(log, {
        groupId: `${this.laneGroup}${this.lane}`,
        topics: [this.decisionsTopic],
        assignment: { kind: 'static', partitions: [{ topic: this.decisionsTopic, partitions: [this.lane] }] },
        fromBeginning: true,
        codec: this.decisions,
        deadLetterTopic: topics.deadletter.name,
        deadLetter: deadLetterPolicy('worker', topics),
        producer: this.id,
        now: this.ctx.now,
        onEvents: (batch) => this.onLaneBatch(batch.events),
      });
    } catch (err) {
      await this.stop();
      throw err;
    }
    try {
      this.sessionSub = await this.watchSessions();
    } catch (err) {
      await this.stop();
      throw err;
    }
    logger.info({ workerId: this.id, lane: this.lane, zone: this.o.zone, capacity: this.o.capacity, backend: this.o.backendName }, 'worker joined');
  }

  /**
   * Session hand-over: the controller's SessionState (MIGRATED) naming this worker brings the
   * session's context here and loads its model now, before the session's next request; one naming
   * another worker as the new home of a session this worker kept releases it. Read from the end:
   * a restarted worker starts with no sessions (they come back as they are served or migrated).
   */
  private async watchSessions(): Promise<Subscription> {
    const topic = this.ctx.topics.sessions;
    return this.ctx.log.subscribe({
      groupId: `${this.laneGroup.replace(/worker\.lane-$/, '')}worker-sessions.${this.id}.${this.ctx.newEventId()}`,
      topics: [topic.name],
      fromBeginning: false,
      assignment: { kind: 'follow', partitions: [{ topic: topic.name, partitions: [...Array(topic.partitions).keys()] }] },
      onBatch: async (batch) => {
        for (const record of batch.records) {
          if (record.value === null || record.value.length === 0) continue;
          let event: SwitchyardEvent;
          try {
            event = await this.ctx.codec.decode(record.value);
          } catch {
            continue; // the sink dead-letters bad records of `sessions`
          }
          if (event.type !== 'SessionState' || event.reason !== 'MIGRATED') continue;
          if (event.workerId === this.id) {
            this.sessions.adopt(event);
            if (event.modelDigest !== null && event.modelDigest !== '') {
              this.loader.load(event.modelDigest).catch((err: unknown) => this.ctx.logger.warn({ workerId: this.id, sessionId: event.sessionId, err: errorMessage(err) }, 'pre-warming a migrated session failed'));
            }
            this.ctx.logger.info({ workerId: this.id, sessionId: event.sessionId, from: event.migratedFrom }, 'session migrated here; model pre-warmed');
          } else if (event.migratedFrom === this.id) {
            this.sessions.release(event.sessionId);
          }
        }
      },
    });
  }

  /** The session's state after this answer, as a record for `sessions` (none without a session). */
  private sessionRecord(p: Payload): AppendRecord | null {
    const entry = this.sessions.served(p.event);
    if (entry === undefined) return null;
    const { eventId, occurredAt, producer, traceId, causationId, clock } = this.envelope(p);
    const state = servedState({ eventId, occurredAt, producer, traceId, causationId, clock }, p.event, this.id, this.lane, entry);
    return { topic: this.ctx.topics.sessions.name, key: state.sessionId, value: this.ctx.codec.encode(state) };
  }

  private accelerator(): Accelerator {
    return this.o.accelerator ?? this.probe.sample();
  }

  private async claim(): Promise<void> {
    const tried = new Set<number>();
    for (let attempt = 0; attempt <= this.table.lanes; attempt++) {
      await this.control.catchUp();
      const lane = chooseLane(this.table, this.id, this.o.lane, tried);
      if (lane === undefined) {
        throw new SwitchyardError('SY_ERR_WORKER_NO_LANE', `no free lane for ${this.id}: all ${this.table.lanes} lanes of ${this.decisionsTopic} are held`, { retriable: true });
      }
      const [pos] = await this.ctx.log.append([
        {
          topic: this.controlTopic,
          partition: 0,
          key: this.id,
          value: this.ctx.codec.encode({
            type: 'WorkerJoined',
            eventId: this.ctx.newEventId(),
            occurredAt: this.ctx.now(),
            producer: this.id,
            clock: [{ topic: this.controlTopic, partition: 0, offset: this.control.position }],
            workerId: this.id,
            lane,
            zone: this.o.zone,
            capacity: this.o.capacity,
            models: this.o.models,
            backend: this.o.backendName,
            accelerator: this.accelerator(),
            maxBatchSize: this.o.maxBatchSize,
            maxBatchDelayMs: Math.round(this.o.maxBatchDelayMs),
            startedAt: this.startedAt,
          }),
        },
      ]);
      await this.control.catchUp((pos?.offset ?? 0) + 1);
      if (this.table.laneOf(this.id) === lane) {
        this.lane = lane;
        return;
      }
      this.ctx.logger.info({ workerId: this.id, lane, holder: this.table.holder(lane) }, 'lane claim lost to an earlier claim; trying another lane');
      tried.add(lane);
    }
    throw new SwitchyardError('SY_ERR_WORKER_NO_LANE', `${this.id} lost every lane claim it made`, { retriable: true });
  }

  // ---------------------------------------------------------------------------------------
  // Decisions.

  private async onLaneBatch(events: readonly { event: SwitchyardEvent; record: LogRecord }[]): Promise<void> {
    if (this.phase === 'stopped' || this.phase === 'evicted' || this.phase === 'released') throw stoppedError(this.phase);
    const waits: Promise<void>[] = [];
    for (const { event, record } of events) {
      if (record.offset >= this.readPos) this.readPos = record.offset + 1;
      waits.push(this.accept(event, record));
    }
    const last = events.at(-1)?.record.offset;
    if (last !== undefined) this.batchEnd = Math.max(this.batchEnd, last + 1);
    this.batchesWaiting++;
    void this.readAhead();
    try {
      await Promise.all(waits);
    } finally {
      this.batchesWaiting--;
    }
  }

  /** Accept one record of the lane; resolves once it is answered (result appended) or skipped. */
  private accept(event: SwitchyardEvent, record: LogRecord): Promise<void> {
    if (event.type !== 'RequestRouted') return Promise.resolve();
    const id = event.eventId;
    if (this.answered.has(id)) return Promise.resolve();
    const waiting = this.pending.get(id);
    if (waiting !== undefined) return waiting.promise;
    if (this.phase !== 'running' && this.phase !== 'draining') return Promise.reject(stoppedError(this.phase));
    const now = this.ctx.now();
    const view = this.viewOf(event);
    if (view.workerId === this.id) this.lastOwnDecisionAt = now;
    const cacheKey = this.cache !== null && event.cacheable ? cacheKeyOf(event.modelDigest, event.contentType, event.parameters, event.input) : null;
    const d = deferred();
    this.pending.set(id, d);
    this.payloads.set(id, { event, offset: record.offset, cacheKey });
    const cached = cacheKey !== null && this.cache!.has(cacheKey);
    if (cacheKey !== null && view.workerId === this.id) this.countLookup(now, cached);
    this.run({ type: 'Receive', now, decision: view, cached });
    return d.promise;
  }

  private countLookup(now: number, hit: boolean): void {
    const b = Math.max(0, Math.floor((now - (this.lastHeartbeatAt ?? this.startedAt)) / CACHE_BUCKET_MS));
    if (b > 1_000) return; // heartbeats stalled: the buckets are for the autoscaler's recent view
    while (this.cacheBuckets.length <= b) this.cacheBuckets.push([0, 0]);
    this.cacheBuckets[b]![hit ? 0 : 1]++;
  }

  private viewOf(e: RequestRouted): DecisionView {
    const control = e.clock.find((c) => c.topic === this.controlTopic && c.partition === 0);
    return {
      decisionId: e.eventId,
      requestId: e.requestId ?? e.eventId,
      workerId: e.workerId,
      lane: e.lane,
      modelDigest: e.modelDigest,
      priority: e.priority,
      deadlineAt: e.deadlineAt,
      routedAt: e.occurredAt,
      cacheable: e.cacheable,
      attempt: e.attempt,
      controlOffset: control?.offset ?? null,
    };
  }

  /** Decide, fold, act. */
  private run(command: WorkerCommand): void {
    const events = decide(command, this.state);
    for (const e of events) evolve(this.state, e);
    for (const e of events) this.act(e);
  }

  private act(e: WorkerEvent): void {
    switch (e.type) {
      case 'DecisionSkipped':
        this.settle(e.decision.decisionId, Promise.resolve());
        if (e.reason === 'OTHER_WORKER') this.ctx.logger.debug({ workerId: this.id, lane: this.lane, decisionId: e.decision.decisionId, addressedTo: e.decision.workerId }, 'skipping a decision addressed to another worker');
        break;
      case 'DecisionRefused':
        this.settle(e.job.decisionId, this.writeFailed(e.job, { errorCode: e.code, errorMessage: e.message, retriable: e.retriable }, { queueMs: this.queueMs(e.job, this.ctx.now()) }));
        break;
      case 'CacheHit':
        this.settle(e.job.decisionId, this.writeCacheHit(e.job));
        break;
      case 'JobQueued':
      case 'BatchFinished':
        this.scheduleDispatch();
        break;
      case 'BatchStarted': {
        const running = this.runBatch(e.batchId, e.modelDigest, e.jobs, e.at);
        this.batchesRunning.add(running);
        const forget = () => void this.batchesRunning.delete(running);
        running.then(forget, forget);
        break;
      }
      case 'JobAbandoned': {
        const d = this.pending.get(e.job.decisionId);
        this.pending.delete(e.job.decisionId);
        this.payloads.delete(e.job.decisionId);
        d?.reject(stoppedError(e.reason));
        break;
      }
      case 'DrainStarted':
        this.scheduleDispatch();
        break;
    }
  }

  /** Resolve a decision's answer once `write` is durable (or fail it, to be redelivered). */
  private settle(decisionId: string, write: Promise<void>): void {
    const d = this.pending.get(decisionId);
    this.payloads.delete(decisionId);
    const tracked = write.then(
      () => {
        this.answered.add(decisionId);
        this.pending.delete(decisionId);
        d?.resolve();
      },
      (err: unknown) => {
        this.pending.delete(decisionId);
        this.ctx.logger.warn({ workerId: this.id, decisionId, err: errorMessage(err) }, 'writing a result failed; the lane batch will be redelivered');
        d?.reject(err);
      },
    );
    this.track(tracked);
  }

  private track(p: Promise<unknown>): void {
    this.writes.add(p);
    const forget = () => void this.writes.delete(p);
    p.then(forget, forget);
  }

  private scheduleDispatch(): void {
    if (this.dispatchQueued) return;
    this.dispatchQueued = true;
    queueMicrotask(() => {
      this.dispatchQueued = false;
      if (this.phase === 'stopped' || this.phase === 'evicted' || this.phase === 'starting') return;
      this.run({ type: 'Dispatch', now: this.ctx.now() });
      this.armDispatchTimer();
    });
  }

  private armDispatchTimer(): void {
    const at = nextDispatchAt(this.state);
    if (at === null || at >= this.dispatchTimerAt) return;
    if (this.dispatchTimer !== undefined) clearTimeout(this.dispatchTimer);
    this.dispatchTimerAt = at;
    this.dispatchTimer = setTimeout(() => {
      this.dispatchTimer = undefined;
      this.dispatchTimerAt = Infinity;
      this.scheduleDispatch();
    }, Math.max(0, at - this.ctx.now()));
  }

  private queueMs(job: Job, at: number): number {
    return Math.max(0, at - job.routedAt);
  }

  // ---------------------------------------------------------------------------------------
  // Batches.

  private async runBatch(batchId: string, modelDigest: string, jobs: readonly Job[], startedAt: number): Promise<void> {
    const payloads = jobs.map((j) => this.payloads.get(j.decisionId)!);
    let results: ItemResult[] | undefined;
    let failure: Failure | undefined;
    let computeMs = 0;
    let started: Promise<unknown> = Promise.resolve();
    try {
      const model = await this.loader.load(modelDigest);
      started = this.append(jobs.map((job, i) => this.startedRecord(job, payloads[i]!, batchId, jobs.length, startedAt)));
      this.track(started);
      const items: InferenceItem[] = payloads.map((p) => ({ requestId: p.event.requestId ?? p.event.eventId, input: p.event.input, contentType: p.event.contentType, parameters: p.event.parameters }));
      const t0 = performance.now();
      results = await model.infer(items);
      computeMs = performance.now() - t0;
      if (results.length !== jobs.length) throw new SwitchyardError('SY_ERR_BACKEND', `backend returned ${results.length} results for a batch of ${jobs.length}`);
    } catch (err) {
      failure = failureOf(err);
      results = undefined;
      this.ctx.logger.warn({ workerId: this.id, batchId, modelDigest, requestIds: payloads.map((p) => p.event.requestId), errorCode: failure.errorCode, err: errorMessage(err) }, 'batch failed');
    }
    let completed = 0;
    const records: AppendRecord[] = [];
    let write: Promise<void>;
    try {
      jobs.forEach((job, i) => {
        const p = payloads[i]!;
        const r = results?.[i];
        const m = { batchSize: jobs.length, queueMs: this.queueMs(job, startedAt), computeMs };
        if (r?.ok) {
          const answer = this.answer(r.value);
          let record: AppendRecord;
          try {
            const metrics = Object.assign({ compute_ms: computeMs }, r.value.metrics);
            record = this.completedRecord(job, p, answer, { batchSize: m.batchSize, queueMs: m.queueMs, computeMs, cacheHit: false, metrics });
          } catch (err) {
            // A result that does not fit InferenceCompleted (e.g. a non-numeric backend metric) fails honestly.
            records.push(this.failedRecord(job, p, { errorCode: 'BACKEND_ERROR', errorMessage: `the result does not fit InferenceCompleted: ${errorMessage(err)}`, retriable: false }, m));
            return;
          }
          completed++;
          if (p.cacheKey !== null) this.cache!.set(p.cacheKey, answer);
          records.push(record);
          const session = this.sessionRecord(p);
          if (session !== null) records.push(session);
        } else {
          records.push(this.failedRecord(job, p, r === undefined ? failure! : failureOf(r.error), m));
        }
      });
      // Pipelined behind the Started records, not waiting for their acknowledgement: `append`
      // keeps the order the log receives them in (both are keyed by request, so one partition),
      // and a Kafka producer carries both in one request when the model is quick.
      write = Promise.all([started, this.append(records)]).then(() => undefined);
    } catch (err) {
      write = Promise.reject(err);
    }
    // Capacity frees when computing ends; results become durable behind it (after the Started records).
    this.run({ type: 'Finish', now: this.ctx.now(), batchId, completed, failed: jobs.length - completed });
    for (const job of jobs) this.settle(job.decisionId, write);
    await write.catch(() => {});
  }

  private answer(v: InferenceOutput): CachedAnswer {
    return { output: v.output, contentType: v.contentType || 'application/json', outputSha256: sha256Hex(v.output), inputTokens: v.inputTokens ?? null, outputTokens: v.outputTokens ?? null };
  }

  // ---------------------------------------------------------------------------------------
  // Result events.

  private clockOf(p: Payload): ClockEntry[] {
    return [
      { topic: this.decisionsTopic, partition: this.lane, offset: p.offset + 1 },
      { topic: this.controlTopic, partition: 0, offset: this.control.position },
    ];
  }

  private envelope(p: Payload) {
    return { eventId: this.ctx.newEventId(), occurredAt: this.ctx.now(), requestId: p.event.requestId, traceId: p.event.traceId, producer: this.id, causationId: p.event.eventId, clock: this.clockOf(p) };
  }

  /**
   * What every result event of a request starts with: its envelope, this worker, and the model
   * the decision named. Assigned into the envelope, not spread: V8 builds a spread followed by
   * more properties on a slow path (~5 µs here against ~0.2 µs, twice per request).
   */
  private resultHeader(p: Payload) {
    const e = p.event;
    return Object.assign(this.envelope(p), { workerId: this.id, lane: this.lane, model: e.model, modelVersion: e.modelVersion, modelDigest: e.modelDigest });
  }

  private record(p: Payload, event: SwitchyardEventInit, durability?: AppendRecord['durability']): AppendRecord {
    const topic = this.ctx.topics.results.name;
    const key = p.event.requestId ?? p.event.eventId;
    const value = this.ctx.codec.encode(event);
    return durability === undefined ? { topic, key, value } : { topic, key, value, durability };
  }

  private startedRecord(job: Job, p: Payload, batchId: string, batchSize: number, at: number): AppendRecord {
    const e = p.event;
    const event: InferenceStartedInit = {
      type: 'InferenceStarted',
      ...this.resultHeader(p),
      batchSize,
      batchId,
      queueMs: Math.round(this.queueMs(job, at)),
      attempt: e.attempt,
    };
    // Intermediate: rides the fsync of the outcome that follows (a machine crash that loses it
    // leaves a request without an outcome, which is dispatched again).
    return this.record(p, event, 'relaxed');
  }

  private completedRecord(job: Job, p: Payload, a: CachedAnswer, m: { cacheHit: boolean; batchSize: number; queueMs: number; computeMs: number; metrics: Record<string, number> }): AppendRecord {
    const event: InferenceCompletedInit = {
      type: 'InferenceCompleted',
      ...this.resultHeader(p),
      output: a.output,
      contentType: a.contentType,
      outputSha256: a.outputSha256,
      cacheHit: m.cacheHit,
      batchSize: m.batchSize,
      queueMs: Math.round(m.queueMs),
      computeMs: Math.round(m.computeMs),
      inputTokens: a.inputTokens,
      outputTokens: a.outputTokens,
      attempt: job.attempt,
      metrics: m.metrics,
    };
    return this.record(p, event);
  }

  private failedRecord(job: Job, p: Payload, f: Failure, m: { batchSize: number; queueMs: number; computeMs: number }): AppendRecord {
    const event: InferenceFailedInit = {
      type: 'InferenceFailed',
      ...this.resultHeader(p),
      errorCode: f.errorCode,
      errorMessage: f.errorMessage,
      retriable: f.retriable,
      batchSize: m.batchSize,
      queueMs: Math.round(m.queueMs),
      computeMs: Math.round(m.computeMs),
      attempt: job.attempt,
    };
    return this.record(p, event);
  }

  private writeFailed(job: Job, f: Failure, m: { queueMs: number }): Promise<void> {
    const p = this.payloads.get(job.decisionId);
    if (p === undefined) return Promise.reject(new Error(`no payload for ${job.decisionId}`));
    return this.append([this.failedRecord(job, p, f, { batchSize: 1, queueMs: m.queueMs, computeMs: 0 })]).then(() => undefined);
  }

  private writeCacheHit(job: Job): Promise<void> {
    const p = this.payloads.get(job.decisionId);
    const answer = p?.cacheKey == null ? undefined : this.cache!.get(p.cacheKey);
    if (p === undefined) return Promise.reject(new Error(`no payload for ${job.decisionId}`));
    if (answer === undefined) {
      // Expired between the lookup and now (TTL): unlikely, but answer honestly by computing.
      return Promise.reject(new SwitchyardError('SY_ERR_BACKEND', 'cached result expired before it was written', { retriable: true }));
    }
    const records = [this.completedRecord(job, p, answer, { cacheHit: true, batchSize: 1, queueMs: this.queueMs(job, this.ctx.now()), computeMs: 0, metrics: {} })];
    const session = this.sessionRecord(p);
    if (session !== null) records.push(session);
    return this.append(records).then(() => undefined);
  }

  /**
   * Append result events — only on a fresh view of control (fenced: see `fence`). Appends reach
   * the log in the order they were asked for (a batch's InferenceStarted before its outcome), each
   * after the one before it was handed to the log, not after it was acknowledged.
   */
  private append(records: AppendRecord[]): Promise<unknown> {
    if (records.length === 0) return Promise.resolve();
    const turn = this.appendTurn.then(() => this.fence());
    const appended = turn.then(() => this.ctx.log.append(records));
    this.appendTurn = turn.then(
      () => undefined,
      () => undefined,
    );
    return appended;
  }

  // ---------------------------------------------------------------------------------------
  // Read-ahead: while a lane batch computes, read the decisions after it so the queue keeps
  // filling (dynamic batching and the concurrency limit need a queue). Bounded by the queue
  // depth and by the distance from the batch being committed.

  private async readAhead(): Promise<void> {
    if (!this.o.readAhead || this.readingAhead) return;
    this.readingAhead = true;
    try {
      while (
        this.batchesWaiting > 0 &&
        this.phase === 'running' &&
        this.state.queued < this.o.capacity * this.o.maxBatchSize * 4 &&
        this.readPos - this.batchEnd < this.o.readAheadMaxRecords
      ) {
        const records = await this.ctx.log.read({ topic: this.decisionsTopic, partition: this.lane, from: this.readPos, maxRecords: 256 });
        if (records.length === 0) {
          await sleep(this.readAheadPollMs);
          continue;
        }
        const decoded: { event: SwitchyardEvent; record: LogRecord }[] = [];
        for (const record of records) {
          if (record.offset < this.readPos) continue;
          this.readPos = record.offset + 1;
          if (record.value === null || record.value.length === 0) continue;
          try {
            decoded.push({ event: this.decisions.decodeKnown(record.value) ?? (await this.decisions.decode(record.value)), record });
          } catch (err) {
            // The lane consumer dead-letters it; a retriable failure ends this round.
            if (isRetriable(err)) return;
          }
        }
        if (this.phase !== 'running') return;
        for (const { event, record } of decoded) {
          if (event.type === 'RequestRouted' && !this.answered.has(event.eventId) && !this.pending.has(event.eventId)) this.readAheadCount++;
          void this.accept(event, record).catch(() => {});
        }
      }
    } catch (err) {
      this.ctx.logger.debug({ workerId: this.id, err: errorMessage(err) }, 'read-ahead stopped');
    } finally {
      this.readingAhead = false;
    }
  }

  // ---------------------------------------------------------------------------------------
  // Heartbeats and control.

  /**
   * Heartbeats at a fixed rate: the next is due `heartbeatIntervalMs` after the previous one
   * started, or as soon as its append returns when that took longer. The control read each beat
   * starts runs beside it (one at a time): a slow read must not delay the next heartbeat, whose
   * silence is what the controller judges (a CI run under `stress-ng` saw a 756 ms gap when the
   * beat waited for its control read as well as its append).
   */
  private scheduleHeartbeat(delayMs: number): void {
    if (this.phase !== 'running' && this.phase !== 'draining') return;
    this.heartbeatTimer = setTimeout(() => {
      const startedAt = this.ctx.now();
      this.pollControl();
      const beat = this.beat();
      this.heartbeatInFlight = beat;
      void beat.finally(() => {
        if (this.heartbeatInFlight === beat) this.heartbeatInFlight = undefined;
        this.scheduleHeartbeat(Math.max(0, this.o.heartbeatIntervalMs - (this.ctx.now() - startedAt)));
      });
    }, delayMs);
  }

  /**
   * Fencing: before results are written, the worker's view of control must be recent. A worker
   * that was frozen (SIGSTOP) or starved past the controller's detection time learns here that it
   * was evicted, and writes nothing for work it no longer owns (it was re-dispatched).
   */
  private async fence(): Promise<void> {
    if (this.ctx.now() - this.lastControlReadAt > this.o.fenceMs) await this.readControl();
    // Also when another path (the heartbeat's control read) found the eviction first.
    if (this.phase === 'evicted') throw stoppedError('evicted by the controller: results of re-dispatched work are fenced');
  }

  private async beat(): Promise<void> {
    try {
      if (this.probe.hasGpu && this.heartbeatSeq % Math.max(1, Math.round(5_000 / this.o.heartbeatIntervalMs)) === 0) await this.probe.refresh();
      await this.heartbeat();
    } catch (err) {
      this.ctx.logger.warn({ workerId: this.id, err: errorMessage(err) }, 'heartbeat failed');
    }
  }

  /** Starts a read of control to its end unless one is running. */
  private pollControl(): void {
    if (this.controlInFlight !== undefined) return;
    const read = this.readControl().catch((err: unknown) => this.ctx.logger.warn({ workerId: this.id, err: errorMessage(err) }, 'reading control failed'));
    this.controlInFlight = read;
    void read.finally(() => {
      if (this.controlInFlight === read) this.controlInFlight = undefined;
    });
  }

  /** Folds control up to its end; the view is as recent as the moment the read began. */
  private async readControl(): Promise<void> {
    const began = this.ctx.now();
    await this.control.catchUp();
    this.lastControlReadAt = Math.max(this.lastControlReadAt, began);
    this.checkFenced();
  }

  private cacheRatio(): number {
    const { cacheHits, cacheMisses } = this.state.counters;
    const hits = cacheHits - this.lastHits;
    const misses = cacheMisses - this.lastMisses;
    this.lastHits = cacheHits;
    this.lastMisses = cacheMisses;
    // Over the last interval; carried forward through intervals with no cacheable lookups.
    if (hits + misses > 0) this.lastRatio = hitRatio(hits, misses);
    return this.lastRatio;
  }

  private async heartbeat(): Promise<void> {
    const accelerator = this.accelerator();
    // Device utilization counts towards load for GPUs only: on a CPU it mostly measures other processes.
    const load = Math.max(loadOf(this.state), accelerator.kind === 'gpu' ? (accelerator.utilization ?? 0) : 0);
    const now = this.ctx.now();
    const oldest = oldestQueuedAt(this.state);
    const buckets = this.cacheBuckets.map(([hits, misses]) => (hits + misses === 0 ? -1 : hits / (hits + misses)));
    this.cacheBuckets = [];
    const event: WorkerHeartbeatInit = {
      type: 'WorkerHeartbeat',
      eventId: this.ctx.newEventId(),
      occurredAt: now,
      producer: this.id,
      clock: [
        { topic: this.controlTopic, partition: 0, offset: this.control.position },
        { topic: this.decisionsTopic, partition: this.lane, offset: this.batchEnd },
      ],
      workerId: this.id,
      lane: this.lane,
      zone: this.o.zone,
      seq: this.heartbeatSeq++,
      startedAt: this.startedAt,
      load,
      queueDepth: this.state.queued,
      inFlight: this.state.inFlight,
      capacity: this.o.capacity,
      cacheHitRatio: this.cacheRatio(),
      loadedModels: this.loader.loaded(),
      accelerator,
      draining: this.state.draining,
      queueDelayMs: oldest === null ? 0 : Math.max(0, now - oldest),
      cacheHitBuckets: buckets,
      bucketMs: CACHE_BUCKET_MS,
      completed: this.state.counters.completed + this.state.counters.failed,
    };
    await this.ctx.log.append([{ topic: this.ctx.topics.heartbeats.name, key: this.id, value: this.ctx.codec.encode(event) }]);
    this.lastHeartbeatAt = now;
    this.heartbeatsSent++;
  }

  private checkFenced(): void {
    if (this.releasing || (this.phase !== 'running' && this.phase !== 'draining')) return;
    if (this.table.laneOf(this.id) === this.lane) return;
    const holder = this.table.holder(this.lane);
    const reason = this.table.isEvicted(this.id) ? 'evicted by the controller' : `lane ${this.lane} is now held by ${holder ?? 'nobody'}`;
    this.ctx.logger.warn({ workerId: this.id, lane: this.lane, reason }, 'worker fenced: stopping');
    void this.shutdown('evicted', reason).then(() => this.o.onEvicted?.(reason));
  }

  // ---------------------------------------------------------------------------------------
  // Drain and stop.

  drain(reason = 'SIGTERM'): Promise<void> {
    this.drainPromise ??= this.drainNow(reason);
    return this.drainPromise;
  }

  private async drainNow(reason: string): Promise<void> {
    if (this.phase !== 'running') return;
    const { log, codec, logger } = this.ctx;
    const started = this.ctx.now();
    const deadline = started + this.o.drainTimeoutMs;
    this.phase = 'draining';
    const [pos] = await log.append([
      {
        topic: this.controlTopic,
        partition: 0,
        key: this.id,
        value: codec.encode({
          type: 'WorkerDraining',
          eventId: this.ctx.newEventId(),
          occurredAt: started,
          producer: this.id,
          clock: [{ topic: this.controlTopic, partition: 0, offset: this.control.position }],
          workerId: this.id,
          lane: this.lane,
          reason,
          drainDeadlineAt: deadline,
        }),
      },
    ]);
    this.run({ type: 'Drain', now: started, drainOffset: pos?.offset ?? null });
    logger.info({ workerId: this.id, lane: this.lane, reason, queued: this.state.queued, inFlight: this.state.inFlight }, 'worker draining');
    await this.heartbeat().catch(() => {});
    for (;;) {
      if (this.phase !== 'draining') return; // fenced or stopped meanwhile
      const now = this.ctx.now();
      if (now >= deadline) {
        this.run({ type: 'Abandon', now, reason: `drain timeout after ${this.o.drainTimeoutMs} ms` });
        break;
      }
      if (isIdle(this.state) && this.pending.size === 0 && now - Math.max(started, this.lastOwnDecisionAt) >= this.o.drainQuietMs && (await this.laneCommitted())) break;
      await sleep(Math.min(20, Math.max(1, this.o.drainQuietMs / 4)));
    }
    await this.shutdown('released', `drained (${reason})`);
  }

  /** The lane group's committed offset has reached the lane's end: nothing in the lane is unanswered. */
  private async laneCommitted(): Promise<boolean> {
    const [committed, start, end] = await Promise.all([
      this.ctx.log.committedOffsets(`${this.laneGroup}${this.lane}`, this.decisionsTopic),
      this.ctx.log.startOffsets(this.decisionsTopic),
      this.ctx.log.endOffsets(this.decisionsTopic),
    ]);
    // No commit yet: caught up only if the lane holds nothing (empty, or everything expired).
    return Math.max(committed[this.lane] ?? -1, start[this.lane] ?? 0) >= (end[this.lane] ?? 0);
  }

  stop(): Promise<void> {
    return this.shutdown('stopped', 'stopped');
  }

  /**
   * Ends the worker: stop timers, stop the lane consumer (queued jobs are abandoned, so their
   * lane batch is not committed), wait for batches computing and writes, then — after a
   * drain — release the lane.
   */
  private shutdown(phase: 'released' | 'stopped' | 'evicted', why: string): Promise<void> {
    this.stopPromise ??= (async () => {
      const release = phase === 'released';
      this.releasing = release;
      this.phase = phase;
      if (this.heartbeatTimer !== undefined) clearTimeout(this.heartbeatTimer);
      if (this.dispatchTimer !== undefined) clearTimeout(this.dispatchTimer);
      // Nothing queued starts from here on: the awaits below (a heartbeat append, the lane
      // consumer's close) can take a Kafka round trip or more, and `stop()` means at once.
      if (this.state !== undefined) this.run({ type: 'Abandon', now: this.ctx.now(), reason: why });
      await Promise.all([this.heartbeatInFlight, this.controlInFlight]);
      const closing = Promise.all([this.sub?.close(), this.sessionSub?.close()]);
      if (this.state !== undefined) this.run({ type: 'Abandon', now: this.ctx.now(), reason: why });
      await closing?.catch((err: unknown) => this.ctx.logger.warn({ workerId: this.id, err: errorMessage(err) }, 'closing the lane consumer failed'));
      await Promise.allSettled([...this.batchesRunning]);
      await Promise.allSettled([...this.writes]);
      for (const [, d] of this.pending) d.reject(stoppedError(why));
      this.pending.clear();
      if (release) {
        const now = this.ctx.now();
        await this.ctx.log.append([
          {
            topic: this.controlTopic,
            partition: 0,
            key: this.id,
            value: this.ctx.codec.encode({
              type: 'WorkerEvicted',
              eventId: this.ctx.newEventId(),
              occurredAt: now,
              producer: this.id,
              clock: [{ topic: this.controlTopic, partition: 0, offset: this.control.position }],
              workerId: this.id,
              lane: this.lane,
              reason: 'DRAINED',
              lastHeartbeatAt: this.lastHeartbeatAt,
              lastHeartbeatSeq: this.heartbeatSeq > 0 ? this.heartbeatSeq - 1 : null,
              detail: `${this.id} released lane ${this.lane} after draining`,
            }),
          },
        ]);
      }
      await this.loader.unloadAll();
      this.ctx.logger.info({ workerId: this.id, lane: this.lane, phase, why, counters: this.state?.counters }, release ? 'worker drained and released its lane' : 'worker stopped');
    })();
    return this.stopPromise;
  }

  stats(): WorkerStats {
    const s = this.state;
    return {
      id: this.id,
      lane: this.lane,
      zone: this.o.zone,
      phase: this.phase === 'starting' ? 'running' : this.phase,
      capacity: this.o.capacity,
      queued: s?.queued ?? 0,
      inFlight: s?.inFlight ?? 0,
      load: s === undefined ? 0 : loadOf(s),
      counters: { ...(s?.counters ?? initialWorkerState(this.id, 0, { capacity: 1, maxBatchSize: 1, maxBatchDelayMs: 0 }).counters) },
      cacheHitRatio: s === undefined ? 0 : hitRatio(s.counters.cacheHits, s.counters.cacheMisses),
      cacheEntries: this.cache?.size ?? 0,
      loadedModels: this.loader.loaded(),
      heartbeatsSent: this.heartbeatsSent,
      readAhead: this.readAheadCount,
      sessions: this.sessions.size,
      sessionsAdopted: this.sessions.adopted,
    };
  }
}
