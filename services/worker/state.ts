import type { Priority } from '../../schemas/generated/events.js';

/**
 * The worker's pure core, state half: what it has accepted, queued and started, as a fold of
 * its own decisions (`WorkerEvent`s from `decide`). Time arrives in commands. Nothing here
 * reads a clock, the log or the network; the shell (`service.ts`) turns events into log
 * records and backend calls.
 *
 * `evolve` updates the state in place and returns it (the fold runs per decision on the hot
 * path); treat a state as owned by one fold.
 */

/** Limits that shape execution. */
export interface WorkerLimits {
  /** Requests computing at once (the concurrency limit; WorkerJoined/WorkerHeartbeat.capacity). */
  readonly capacity: number;
  /** Largest batch (requests of one model computed in one backend call). */
  readonly maxBatchSize: number;
  /** Longest a request waits in the queue for its batch to fill, ms; 0 = dispatch as soon as a slot is free. */
  readonly maxBatchDelayMs: number;
  /**
   * Batches computing at once (backend executions). Requests queue while every execution is
   * busy, so they form batches when one frees (freeing request slots one by one would start
   * batches of one). @default ceil(capacity / maxBatchSize)
   */
  readonly maxConcurrentBatches: number;
}

/** What the worker needs of a routing decision (RequestRouted), with the time it arrived. */
export interface DecisionView {
  /** RequestRouted.eventId: the causationId of everything the worker writes for it. */
  readonly decisionId: string;
  readonly requestId: string;
  /** The worker the router chose. */
  readonly workerId: string;
  readonly lane: number;
  readonly modelDigest: string;
  readonly priority: Priority;
  readonly deadlineAt: number | null;
  /** RequestRouted.occurredAt: when the router decided. */
  readonly routedAt: number;
  readonly cacheable: boolean;
  readonly attempt: number;
  /**
   * The `control` offset in the decision's clock (how much of control the router had read), or
   * null when the clock does not name it. Tells whether the router could have seen this
   * worker's WorkerDraining.
   */
  readonly controlOffset: number | null;
}

/** An accepted decision. */
export interface Job extends DecisionView {
  /** When the worker received it (ms). */
  readonly receivedAt: number;
  /** Arrival order at this worker. */
  readonly seq: number;
}

export interface BatchInFlight {
  readonly batchId: string;
  readonly modelDigest: string;
  readonly jobs: readonly Job[];
  readonly startedAt: number;
}

export interface WorkerCounters {
  received: number;
  /** Decisions for another worker (a previous owner of the lane) or duplicates. */
  skipped: number;
  /** Refused: deadline passed, or routed after the router saw this worker draining. */
  refused: number;
  cacheHits: number;
  /** Cacheable decisions not in the cache. */
  cacheMisses: number;
  batches: number;
  completed: number;
  failed: number;
  /** Queued jobs given up when the worker stopped before starting them (left in the lane). */
  abandoned: number;
}

export interface WorkerState {
  readonly workerId: string;
  readonly lane: number;
  readonly limits: WorkerLimits;
  draining: boolean;
  /** Offset of this worker's WorkerDraining in `control`, once written. */
  drainOffset: number | null;
  /** Per model digest, jobs in dispatch order: priority class first, then arrival. */
  readonly queues: Map<string, Job[]>;
  queued: number;
  /** Requests in batches being computed. */
  inFlight: number;
  readonly batches: Map<string, BatchInFlight>;
  /** decisionIds queued or computing (a redelivered decision is a duplicate while active). */
  readonly active: Set<string>;
  /** Next arrival number. */
  seq: number;
  /** Next batch number (batch ids are `<workerId>/b<n>`). */
  batchSeq: number;
  readonly counters: WorkerCounters;
}

export const PRIORITY_RANK: Record<Priority, number> = { CRITICAL: 0, HIGH: 1, NORMAL: 2, LOW: 3, BACKGROUND: 4 };

export function initialWorkerState(workerId: string, lane: number, limits: Omit<WorkerLimits, 'maxConcurrentBatches'> & Partial<Pick<WorkerLimits, 'maxConcurrentBatches'>>): WorkerState {
  const { capacity, maxBatchSize, maxBatchDelayMs } = limits;
  const maxConcurrentBatches = limits.maxConcurrentBatches ?? Math.ceil(capacity / maxBatchSize);
  if (!Number.isInteger(maxConcurrentBatches) || maxConcurrentBatches < 1) throw new RangeError(`maxConcurrentBatches must be a positive integer, got ${maxConcurrentBatches}`);
  if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`capacity must be a positive integer, got ${capacity}`);
  if (!Number.isInteger(maxBatchSize) || maxBatchSize < 1) throw new RangeError(`maxBatchSize must be a positive integer, got ${maxBatchSize}`);
  if (!Number.isFinite(maxBatchDelayMs) || maxBatchDelayMs < 0) throw new RangeError(`maxBatchDelayMs must be ≥ 0, got ${maxBatchDelayMs}`);
  return {
    workerId,
    lane,
    limits: { capacity, maxBatchSize, maxBatchDelayMs, maxConcurrentBatches },
    draining: false,
    drainOffset: null,
    queues: new Map(),
    queued: 0,
    inFlight: 0,
    batches: new Map(),
    active: new Set(),
    seq: 0,
    batchSeq: 0,
    counters: { received: 0, skipped: 0, refused: 0, cacheHits: 0, cacheMisses: 0, batches: 0, completed: 0, failed: 0, abandoned: 0 },
  };
}

/** Why a decision in the lane is not executed here. */
export type SkipReason = 'OTHER_WORKER' | 'DUPLICATE';
/** Why an accepted decision is answered with InferenceFailed without computing. */
export type RefusalCode = 'DEADLINE_EXCEEDED' | 'WORKER_DRAINING';

/** What the worker decided. The shell writes the log events they imply. */
export type WorkerEvent =
  | { type: 'DecisionSkipped'; decision: DecisionView; reason: SkipReason }
  | { type: 'DecisionRefused'; job: Job; code: RefusalCode; message: string; retriable: boolean }
  | { type: 'CacheHit'; job: Job }
  | { type: 'JobQueued'; job: Job; cacheMiss: boolean }
  | { type: 'BatchStarted'; batchId: string; modelDigest: string; jobs: readonly Job[]; at: number }
  | { type: 'BatchFinished'; batchId: string; at: number; completed: number; failed: number }
  | { type: 'DrainStarted'; at: number; drainOffset: number | null }
  | { type: 'JobAbandoned'; job: Job; reason: string };

const before = (a: Job, b: Job): boolean => PRIORITY_RANK[a.priority] < PRIORITY_RANK[b.priority] || (a.priority === b.priority && a.seq < b.seq);

function enqueue(state: WorkerState, job: Job): void {
  let q = state.queues.get(job.modelDigest);
  if (q === undefined) {
    q = [];
    state.queues.set(job.modelDigest, q);
  }
  // Binary search for the first job that should come after this one.
  let lo = 0;
  let hi = q.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (before(job, q[mid]!)) hi = mid;
    else lo = mid + 1;
  }
  q.splice(lo, 0, job);
  state.queued++;
  state.active.add(job.decisionId);
}

function dequeue(state: WorkerState, job: Job): void {
  const q = state.queues.get(job.modelDigest);
  if (q === undefined) return;
  const i = q.indexOf(job);
  if (i < 0) return;
  q.splice(i, 1);
  if (q.length === 0) state.queues.delete(job.modelDigest);
  state.queued--;
}

/** Fold one of the worker's own events into its state (in place; returns the same state). */
export function evolve(state: WorkerState, event: WorkerEvent): WorkerState {
  const c = state.counters;
  switch (event.type) {
    case 'DecisionSkipped':
      c.received++;
      c.skipped++;
      break;
    case 'DecisionRefused':
      // A refused job is either new (refused on arrival) or queued (deadline passed while waiting).
      if (state.active.has(event.job.decisionId)) {
        dequeue(state, event.job);
        state.active.delete(event.job.decisionId);
      } else {
        c.received++;
      }
      c.refused++;
      break;
    case 'CacheHit':
      c.received++;
      c.cacheHits++;
      c.completed++;
      break;
    case 'JobQueued':
      c.received++;
      if (event.cacheMiss) c.cacheMisses++;
      state.seq = Math.max(state.seq, event.job.seq + 1);
      enqueue(state, event.job);
      break;
    case 'BatchStarted':
      for (const job of event.jobs) dequeue(state, job);
      state.inFlight += event.jobs.length;
      state.batches.set(event.batchId, { batchId: event.batchId, modelDigest: event.modelDigest, jobs: event.jobs, startedAt: event.at });
      state.batchSeq++;
      c.batches++;
      break;
    case 'BatchFinished': {
      const batch = state.batches.get(event.batchId);
      if (batch === undefined) break;
      state.batches.delete(event.batchId);
      state.inFlight -= batch.jobs.length;
      for (const job of batch.jobs) state.active.delete(job.decisionId);
      c.completed += event.completed;
      c.failed += event.failed;
      break;
    }
    case 'DrainStarted':
      state.draining = true;
      state.drainOffset = event.drainOffset;
      break;
    case 'JobAbandoned':
      dequeue(state, event.job);
      state.active.delete(event.job.decisionId);
      c.abandoned++;
      break;
    default:
      assertNever(event);
  }
  return state;
}

export function assertNever(x: never): never {
  throw new TypeError(`worker: unhandled ${JSON.stringify((x as { type?: unknown }).type)}`);
}

/** Load as a heartbeat reports it: in-flight over capacity, 0..1. */
export const loadOf = (state: WorkerState): number => Math.min(1, state.inFlight / state.limits.capacity);

/** When the oldest job still queued (not started) was received; null when nothing is queued. */
export function oldestQueuedAt(state: WorkerState): number | null {
  let oldest: number | null = null;
  for (const q of state.queues.values()) for (const job of q) if (oldest === null || job.receivedAt < oldest) oldest = job.receivedAt;
  return oldest;
}

/** Nothing queued and nothing computing. */
export const isIdle = (state: WorkerState): boolean => state.queued === 0 && state.inFlight === 0;

/** Cache hits over cacheable lookups, from two counter snapshots (0 when there were none). */
export function hitRatio(hits: number, misses: number): number {
  return hits + misses === 0 ? 0 : hits / (hits + misses);
}
