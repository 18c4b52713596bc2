import { Counter, Histogram, type Registry } from 'prom-client';
import { instancesOf, observeWrites, recordsBehind, sampledCounter, sampledGauge, within, type Instances, type Sample } from '../../lib/metrics/index.js';
import type { ServiceContext } from '../../lib/runtime.js';
import type { SwitchyardEventInit } from '../../schemas/generated/events.js';
import type { RunningWorker, WorkerPhase, WorkerStats } from './service.js';

/** Latency buckets of a request at a worker (queue + compute), seconds. */
export const WORKER_SECONDS_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

const PHASES: readonly WorkerPhase[] = ['running', 'draining', 'released', 'stopped', 'evicted'];

/** What the per-request series keep of a result event a worker wrote. */
interface ResultSummary {
  worker: string;
  model: string;
  version: string;
  outcome: 'completed' | 'failed';
  reason: string;
  seconds: number;
  computeSeconds: number;
}

const summarize = (event: SwitchyardEventInit): ResultSummary | undefined => {
  if (event.type === 'InferenceCompleted') {
    const queueMs = event.queueMs ?? 0;
    const computeMs = event.computeMs ?? 0;
    return { worker: event.workerId, model: event.model, version: event.modelVersion, outcome: 'completed', reason: '', seconds: (queueMs + computeMs) / 1000, computeSeconds: computeMs / 1000 };
  }
  if (event.type === 'InferenceFailed') {
    return { worker: event.workerId, model: event.model, version: event.modelVersion ?? '', outcome: 'failed', reason: event.errorCode, seconds: 0, computeSeconds: 0 };
  }
  return undefined;
};

/**
 * The workers' per-request series, by model, version and zone: counted from the result events
 * a worker writes (`InferenceCompleted`, `InferenceFailed`) once they are on the log, through
 * the context `context(ctx, zone)` returns — start the worker on that context:
 * - `switchyard_worker_requests_total{worker,zone,model,version,outcome}`: results written, `outcome` completed or failed
 * - `switchyard_worker_request_errors_total{worker,zone,model,version,reason}`: failures by error code
 * - `switchyard_worker_request_duration_seconds{zone,model,version}` (histogram): queue + compute
 *   of completed requests (routing → answer as the worker measured it; cache hits included)
 * - `switchyard_worker_request_compute_seconds{zone,model,version}` (histogram): compute time of
 *   the batch a completed request was in (0 for cache hits)
 *
 * One per registry; any number of workers share it.
 */
export class WorkerRequestMetrics {
  private readonly requests: Counter<'worker' | 'zone' | 'model' | 'version' | 'outcome'>;
  private readonly errors: Counter<'worker' | 'zone' | 'model' | 'version' | 'reason'>;
  private readonly duration: Histogram<'zone' | 'model' | 'version'>;
  private readonly compute: Histogram<'zone' | 'model' | 'version'>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.requests = new Counter({
      name: 'switchyard_worker_requests_total',
      help: 'Results written by workers, by model, version, zone and outcome (completed, failed)',
      labelNames: ['worker', 'zone', 'model', 'version', 'outcome'] as const,
      registers,
    });
    this.errors = new Counter({
      name: 'switchyard_worker_request_errors_total',
      help: 'Failures written by workers, by model, version, zone and error code',
      labelNames: ['worker', 'zone', 'model', 'version', 'reason'] as const,
      registers,
    });
    this.duration = new Histogram({
      name: 'switchyard_worker_request_duration_seconds',
      help: 'Queue + compute time of completed requests at the worker (routing to answer), by model, version and zone',
      labelNames: ['zone', 'model', 'version'] as const,
      buckets: WORKER_SECONDS_BUCKETS,
      registers,
    });
    this.compute = new Histogram({
      name: 'switchyard_worker_request_compute_seconds',
      help: 'Compute time of the batch of completed requests (0 for cache hits), by model, version and zone',
      labelNames: ['zone', 'model', 'version'] as const,
      buckets: WORKER_SECONDS_BUCKETS,
      registers,
    });
  }

  /** A context for a worker of `zone`: its result events are counted once they are on the log. */
  context(ctx: ServiceContext, zone: string): ServiceContext {
    // Label objects written out: `{ ...series, worker }` would take V8's slow path for a spread
    // followed by new properties (µs per request, measured), once per result written.
    return observeWrites(ctx, summarize, (s) => {
      const series = { zone, model: s.model, version: s.version };
      this.requests.inc({ zone, model: s.model, version: s.version, worker: s.worker, outcome: s.outcome });
      if (s.outcome === 'failed') {
        this.errors.inc({ zone, model: s.model, version: s.version, worker: s.worker, reason: s.reason });
        return;
      }
      this.duration.observe(series, s.seconds);
      this.compute.observe(series, s.computeSeconds);
    });
  }
}

/** Options of `registerWorkerMetrics`. */
export interface WorkerMetricsOptions {
  /** The workers' context: with it, each lane's consumer lag is read from the log at each scrape. @default none */
  ctx?: ServiceContext;
  /** Longest a scrape waits for the log's offsets, ms; then the lag series are left out. @default 2_000 */
  lagTimeoutMs?: number;
}

/**
 * The workers' series read from each worker's `stats()` at scrape time (labels `worker`, `zone`):
 * - `switchyard_worker_queue_depth`, `switchyard_worker_in_flight`, `switchyard_worker_capacity`,
 *   `switchyard_worker_load` (in flight + queued over capacity)
 * - `switchyard_worker_lane` (the lane held; -1 before a claim), `switchyard_worker_phase{phase}`
 *   (1 for the current phase: running, draining, released, stopped, evicted)
 * - `switchyard_worker_decisions_received_total`, `…_decisions_skipped_total` (another holder's
 *   or duplicates), `…_decisions_refused_total` (deadline passed, or routed after the drain),
 *   `switchyard_worker_abandoned_total`, `switchyard_worker_batches_total`
 * - `switchyard_worker_cache_hits_total`, `switchyard_worker_cache_misses_total`,
 *   `switchyard_worker_cache_hit_ratio` (since start), `switchyard_worker_cache_entries`
 * - `switchyard_worker_loaded_models`, `switchyard_worker_heartbeats_total`,
 *   `switchyard_worker_read_ahead_total`, `switchyard_worker_sessions`, `switchyard_worker_sessions_adopted_total`
 * - with `ctx`: `switchyard_worker_lane_lag_records{worker,zone,lane}`: decisions on the lane
 *   its group has not committed (queued and running work included)
 */
export function registerWorkerMetrics(registry: Registry, workers: Instances<RunningWorker>, options: WorkerMetricsOptions = {}): void {
  const current = instancesOf(workers);
  const registers = [registry];
  type L = 'worker' | 'zone';
  const each = (read: (s: WorkerStats) => number) => () => current().map((w): Sample<L> => {
    const s = w.stats();
    return { labels: { worker: s.id, zone: s.zone }, value: read(s) };
  });
  const labelNames = ['worker', 'zone'] as const;
  const gauge = (name: string, help: string, read: (s: WorkerStats) => number) => sampledGauge({ name, help, labelNames, registers, samples: each(read) });
  const counter = (name: string, help: string, read: (s: WorkerStats) => number) => sampledCounter({ name, help, labelNames, registers, samples: each(read) });

  gauge('switchyard_worker_queue_depth', 'Requests queued at the worker, not yet computing', (s) => s.queued);
  gauge('switchyard_worker_in_flight', 'Requests computing at the worker', (s) => s.inFlight);
  gauge('switchyard_worker_capacity', 'Requests the worker computes at once (its concurrency limit)', (s) => s.capacity);
  gauge('switchyard_worker_load', 'In flight plus queued, over capacity', (s) => s.load);
  gauge('switchyard_worker_lane', 'The lane the worker holds (-1 before its claim)', (s) => s.lane);
  sampledGauge({
    name: 'switchyard_worker_phase',
    help: 'The worker phase: 1 for the current one (running, draining, released, stopped, evicted)',
    labelNames: ['worker', 'zone', 'phase'] as const,
    registers,
    samples: () =>
      current().flatMap((w) => {
        const s = w.stats();
        return PHASES.map((phase) => ({ labels: { worker: s.id, zone: s.zone, phase }, value: s.phase === phase ? 1 : 0 }));
      }),
  });
  counter('switchyard_worker_decisions_received_total', 'Decisions read from the lane', (s) => s.counters.received);
  counter('switchyard_worker_decisions_skipped_total', "Decisions skipped: another holder's, or duplicates", (s) => s.counters.skipped);
  counter('switchyard_worker_decisions_refused_total', 'Decisions refused: deadline passed, or routed after the worker began draining', (s) => s.counters.refused);
  counter('switchyard_worker_abandoned_total', 'Queued requests given up when the worker stopped before starting them (left in the lane)', (s) => s.counters.abandoned);
  counter('switchyard_worker_batches_total', 'Batches computed', (s) => s.counters.batches);
  counter('switchyard_worker_cache_hits_total', 'Result cache hits', (s) => s.counters.cacheHits);
  counter('switchyard_worker_cache_misses_total', 'Cacheable requests not in the result cache', (s) => s.counters.cacheMisses);
  gauge('switchyard_worker_cache_hit_ratio', 'Cache hits over cacheable lookups since the worker started', (s) => s.cacheHitRatio);
  gauge('switchyard_worker_cache_entries', 'Entries in the result cache', (s) => s.cacheEntries);
  gauge('switchyard_worker_loaded_models', 'Models loaded', (s) => s.loadedModels.length);
  counter('switchyard_worker_heartbeats_total', 'Heartbeats written', (s) => s.heartbeatsSent);
  counter('switchyard_worker_read_ahead_total', 'Decisions answered before the lane consumer delivered them', (s) => s.readAhead);
  gauge('switchyard_worker_sessions', 'Sessions whose context the worker keeps', (s) => s.sessions);
  counter('switchyard_worker_sessions_adopted_total', 'Sessions handed to the worker by the controller (migrations)', (s) => s.sessionsAdopted);

  const { ctx } = options;
  if (ctx !== undefined) {
    const topic = ctx.topics.decisions.name;
    const groupPrefix = `${topic.endsWith('decisions') ? topic.slice(0, -'decisions'.length) : ''}worker.lane-`;
    const timeoutMs = options.lagTimeoutMs ?? 2_000;
    sampledGauge({
      name: 'switchyard_worker_lane_lag_records',
      help: 'Decisions on the lane its consumer group has not committed (consumer lag; queued and running work included)',
      labelNames: ['worker', 'zone', 'lane'] as const,
      registers,
      samples: async () => {
        const holding = current()
          .map((w) => w.stats())
          .filter((s) => s.lane >= 0 && (s.phase === 'running' || s.phase === 'draining'));
        const lags = await Promise.all(holding.map((s) => within(recordsBehind(ctx.log, `${groupPrefix}${s.lane}`, topic, [s.lane]), timeoutMs, undefined)));
        return holding.flatMap((s, i) => (lags[i] === undefined ? [] : [{ labels: { worker: s.id, zone: s.zone, lane: s.lane }, value: lags[i] }]));
      },
    });
  }
}
