import { assertNever, PRIORITY_RANK, type DecisionView, type Job, type WorkerEvent, type WorkerState } from './state.js';

/**
 * The worker's pure core, decision half: `decide(command, state) → events`. Given/when/then
 * tests live in `decide.unit.test.ts`.
 *
 * Which decisions a worker executes: those whose `workerId` is its own id, from its lane. A
 * decision in the lane addressed to another worker (a previous owner of the lane, evicted or
 * drained) is skipped (`OTHER_WORKER`): that owner's unanswered decisions are re-dispatched by
 * the controller as new attempts, so executing them here too would run a request twice and
 * attribute the result to a worker the router did not choose. A worker that restarts under the
 * same id re-claims its lane and resumes from the lane's committed offset, so its own
 * unfinished decisions are executed after a crash.
 */
export type WorkerCommand =
  /** A decision read from the lane; `cached` says whether the result cache holds its answer. */
  | { type: 'Receive'; now: number; decision: DecisionView; cached: boolean }
  /** Form batches from the queue for the free capacity (after arrivals, finished batches, timers). */
  | { type: 'Dispatch'; now: number }
  /** A batch's backend call returned; counts of its items that completed and failed. */
  | { type: 'Finish'; now: number; batchId: string; completed: number; failed: number }
  /** Stop taking work: `drainOffset` is where this worker's WorkerDraining landed in control. */
  | { type: 'Drain'; now: number; drainOffset: number | null }
  /** Give up queued jobs that have not started (stopping); they stay uncommitted in the lane. */
  | { type: 'Abandon'; now: number; reason: string };

export function decide(command: WorkerCommand, state: WorkerState): WorkerEvent[] {
  switch (command.type) {
    case 'Receive':
      return receive(command, state);
    case 'Dispatch':
      return dispatch(command.now, state);
    case 'Finish':
      return state.batches.has(command.batchId) ? [{ type: 'BatchFinished', batchId: command.batchId, at: command.now, completed: command.completed, failed: command.failed }] : [];
    case 'Drain':
      return state.draining ? [] : [{ type: 'DrainStarted', at: command.now, drainOffset: command.drainOffset }];
    case 'Abandon':
      return [...state.queues.values()].flat().map((job) => ({ type: 'JobAbandoned', job, reason: command.reason }));
    default:
      return assertNever(command);
  }
}

/**
 * The job of a decision received at `now`, its fields written out: `{ ...decision, receivedAt, seq }`
 * would take V8's slow path for a spread followed by new properties (~2 µs a request, measured).
 */
function jobOf(d: DecisionView, receivedAt: number, seq: number): Job {
  return {
    decisionId: d.decisionId,
    requestId: d.requestId,
    workerId: d.workerId,
    lane: d.lane,
    modelDigest: d.modelDigest,
    priority: d.priority,
    deadlineAt: d.deadlineAt,
    routedAt: d.routedAt,
    cacheable: d.cacheable,
    attempt: d.attempt,
    controlOffset: d.controlOffset,
    receivedAt,
    seq,
  };
}

function receive({ now, decision, cached }: Extract<WorkerCommand, { type: 'Receive' }>, state: WorkerState): WorkerEvent[] {
  if (decision.workerId !== state.workerId) return [{ type: 'DecisionSkipped', decision, reason: 'OTHER_WORKER' }];
  if (state.active.has(decision.decisionId)) return [{ type: 'DecisionSkipped', decision, reason: 'DUPLICATE' }];
  const job = jobOf(decision, now, state.seq);
  if (decision.deadlineAt !== null && now >= decision.deadlineAt) {
    return [{ type: 'DecisionRefused', job, code: 'DEADLINE_EXCEEDED', message: `deadline passed ${now - decision.deadlineAt} ms before the worker received the decision`, retriable: false }];
  }
  // A router that had read this worker's WorkerDraining must not route to it; one that had not
  // (the decision's clock is before the drain) made a valid decision, which is executed.
  if (state.draining && state.drainOffset !== null && decision.controlOffset !== null && decision.controlOffset > state.drainOffset) {
    return [
      {
        type: 'DecisionRefused',
        job,
        code: 'WORKER_DRAINING',
        message: `worker ${state.workerId} is draining (WorkerDraining at control offset ${state.drainOffset}; the decision was made at control offset ${decision.controlOffset})`,
        retriable: true,
      },
    ];
  }
  if (decision.cacheable && cached) return [{ type: 'CacheHit', job }];
  return [{ type: 'JobQueued', job, cacheMiss: decision.cacheable }];
}

/**
 * Dynamic batching under the concurrency limits (requests computing ≤ capacity, batches
 * computing ≤ maxConcurrentBatches):
 * 1. queued jobs whose deadline has passed are refused (DEADLINE_EXCEEDED): work is dropped,
 *    never started late;
 * 2. model queues are served in the order of their best job (priority class, then arrival);
 * 3. a queue dispatches when it can fill a batch (`min(maxBatchSize, capacity)` jobs), when its
 *    oldest job has waited `maxBatchDelayMs`, or when the worker is draining (no point waiting
 *    for more work); the batch takes as many jobs as fit in the free capacity, and each batch
 *    takes one free execution.
 */
function dispatch(now: number, state: WorkerState): WorkerEvent[] {
  const events: WorkerEvent[] = [];
  const expired = new Set<Job>();
  for (const q of state.queues.values()) {
    for (const job of q) {
      if (job.deadlineAt !== null && now >= job.deadlineAt) {
        expired.add(job);
        events.push({
          type: 'DecisionRefused',
          job,
          code: 'DEADLINE_EXCEEDED',
          message: `deadline passed after ${now - job.receivedAt} ms in the worker's queue, before the request started`,
          retriable: false,
        });
      }
    }
  }
  const { capacity, maxBatchSize, maxBatchDelayMs, maxConcurrentBatches } = state.limits;
  let free = capacity - state.inFlight;
  let executions = maxConcurrentBatches - state.batches.size;
  if (free <= 0 || executions <= 0) return events;
  const fill = Math.min(maxBatchSize, capacity);
  const queues = [...state.queues.entries()]
    .map(([digest, q]) => ({ digest, jobs: expired.size === 0 ? q : q.filter((j) => !expired.has(j)) }))
    .filter((q) => q.jobs.length > 0)
    .sort((a, b) => PRIORITY_RANK[a.jobs[0]!.priority] - PRIORITY_RANK[b.jobs[0]!.priority] || a.jobs[0]!.seq - b.jobs[0]!.seq);
  let batchSeq = state.batchSeq;
  for (const { digest, jobs } of queues) {
    let at = 0;
    while (free > 0 && executions > 0 && at < jobs.length) {
      const waiting = jobs.length - at;
      const ready = waiting >= fill || state.draining || now - oldestReceived(jobs, at) >= maxBatchDelayMs;
      if (!ready) break;
      const take = Math.min(maxBatchSize, free, waiting);
      events.push({ type: 'BatchStarted', batchId: `${state.workerId}/b${batchSeq++}`, modelDigest: digest, jobs: jobs.slice(at, at + take), at: now });
      at += take;
      free -= take;
      executions--;
    }
    if (free <= 0 || executions <= 0) break;
  }
  return events;
}

/** The earliest arrival among jobs[from..] (a queue is in priority order, not arrival order). */
function oldestReceived(jobs: readonly Job[], from: number): number {
  let oldest = Infinity;
  for (let i = from; i < jobs.length; i++) if (jobs[i]!.receivedAt < oldest) oldest = jobs[i]!.receivedAt;
  return oldest;
}

/**
 * When the shell should next send `Dispatch` if nothing else happens: the earliest time a
 * waiting queue's oldest job reaches `maxBatchDelayMs`. Null when no queue is waiting on a timer.
 */
export function nextDispatchAt(state: WorkerState): number | null {
  if (state.inFlight >= state.limits.capacity || state.batches.size >= state.limits.maxConcurrentBatches) return null;
  let next: number | null = null;
  for (const q of state.queues.values()) {
    const at = oldestReceived(q, 0) + state.limits.maxBatchDelayMs;
    if (next === null || at < next) next = at;
  }
  return next;
}
