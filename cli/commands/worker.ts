import { InvalidArgumentError, Option, type Command } from 'commander';
import { openRuntime } from '../../lib/bootstrap.js';
import { SwitchyardError } from '../../lib/errors.js';
import { createLogger } from '../../lib/logger.js';
import { BuiltinBackend } from '../../services/worker/backends/builtin.js';
import { OpenAiBackend } from '../../services/worker/backends/openai.js';
import type { Backend } from '../../services/worker/backends/port.js';
import { SyntheticBackend } from '../../services/worker/backends/synthetic.js';
import { WorkerRequestMetrics, registerWorkerMetrics } from '../../services/worker/metrics.js';
import { startWorker, type RunningWorker, type WorkerOptions } from '../../services/worker/service.js';
import { configFrom, type GlobalFlags } from '../flags.js';
import { metricsHostOption, metricsPortOption, serveProcessMetrics, type MetricsFlags } from '../metrics.js';
import { blobStoreFrom, blobsOption } from './models.js';

interface WorkerFlags extends MetricsFlags {
  exitOnEviction?: boolean;
  id?: string;
  zone: string;
  capacity: number;
  maxBatch?: number;
  maxBatchDelayMs: number;
  maxConcurrentBatches?: number;
  lane?: number;
  models?: string;
  backend: 'cpu' | 'synthetic' | 'http';
  httpUrl?: string;
  httpApiKey?: string;
  httpTimeoutMs: number;
  httpRetries: number;
  syntheticBaseMs: number;
  syntheticPerItemMs: number;
  syntheticJitterMs: number;
  blobs?: string;
  heartbeatMs: number;
  drainTimeoutMs: number;
  cacheEntries: number;
  cacheTtlMs: number;
}

const num =
  (name: string, { integer = true, min = 0 } = {}) =>
  (v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < min || (integer && !Number.isInteger(n))) throw new InvalidArgumentError(`${name} must be ${integer ? 'an integer' : 'a number'} ≥ ${min}`);
    return n;
  };

/** The backends of a worker process, from `--backend`. */
export function backendsFrom(opts: Pick<WorkerFlags, 'backend' | 'httpUrl' | 'httpApiKey' | 'httpTimeoutMs' | 'httpRetries' | 'syntheticBaseMs' | 'syntheticPerItemMs' | 'syntheticJitterMs'>): Backend[] {
  const profile = { baseMs: opts.syntheticBaseMs, perItemMs: opts.syntheticPerItemMs, jitterMs: opts.syntheticJitterMs };
  switch (opts.backend) {
    case 'cpu':
      return [new BuiltinBackend(), new SyntheticBackend({ profile })];
    case 'synthetic':
      return [new SyntheticBackend({ profile, anyKind: true })];
    case 'http':
      if (!opts.httpUrl) throw new SwitchyardError('SY_ERR_CONFIG', '--backend http needs --http-url (the OpenAI-compatible server, e.g. http://127.0.0.1:8000)');
      return [
        new OpenAiBackend({ url: opts.httpUrl, timeoutMs: opts.httpTimeoutMs, retries: opts.httpRetries, ...(opts.httpApiKey ? { apiKey: opts.httpApiKey } : {}) }),
        new SyntheticBackend({ profile }),
      ];
  }
}

/** `switchyard worker`: one worker as its own process. SIGTERM/SIGINT drain it; a second signal stops it. */
export function registerWorkerCommand(program: Command): void {
  program
    .command('worker')
    .description('run one worker: claim a lane, heartbeat, execute the decisions routed to it (embedded log by default; --brokers for Kafka)')
    .option('--id <id>', 'worker id; keep it stable across restarts to resume the lane (default: worker-<random>)')
    .option('--zone <zone>', 'zone (failure domain)', 'default')
    .option('--capacity <n>', 'requests computing at once', num('--capacity', { min: 1 }), 4)
    .option('--max-batch <n>', 'largest batch (default 4)', num('--max-batch', { min: 1 }))
    .option('--max-batch-delay-ms <ms>', 'longest wait to fill a batch', num('--max-batch-delay-ms', { integer: false }), 0)
    .option('--max-concurrent-batches <n>', 'batches computing at once (default: capacity / max batch)', num('--max-concurrent-batches', { min: 1 }))
    .option('--lane <n>', 'lane to try first', num('--lane'))
    .option('--models <names>', 'comma-separated model names this worker serves (default: any)')
    .addOption(new Option('--backend <backend>', 'built-in CPU models, synthetic service times (load tests), or an OpenAI-compatible server').choices(['cpu', 'synthetic', 'http']).default('cpu'))
    .addOption(new Option('--http-url <url>', 'OpenAI-compatible server for --backend http (vLLM, TGI, llama.cpp, Ollama)').env('SWITCHYARD_HTTP_BACKEND_URL'))
    .addOption(new Option('--http-api-key <key>', 'bearer token for the HTTP backend').env('SWITCHYARD_HTTP_BACKEND_API_KEY'))
    .option('--http-timeout-ms <ms>', 'per request to the HTTP backend', num('--http-timeout-ms', { min: 1 }), 60_000)
    .option('--http-retries <n>', 'retries of retriable HTTP backend failures', num('--http-retries'), 2)
    .option('--synthetic-base-ms <ms>', 'synthetic backend: fixed cost per batch', num('--synthetic-base-ms', { integer: false }), 0)
    .option('--synthetic-per-item-ms <ms>', 'synthetic backend: cost per request of a batch', num('--synthetic-per-item-ms', { integer: false }), 0)
    .option('--synthetic-jitter-ms <ms>', 'synthetic backend: largest extra delay (from a hash of the request ids)', num('--synthetic-jitter-ms', { integer: false }), 0)
    .addOption(blobsOption())
    .option('--exit-on-eviction', 'exit (code 3) when the controller evicts this worker, for a supervisor to restart it, instead of rejoining as a new incarnation')
    .option('--heartbeat-ms <ms>', 'heartbeat interval (the controller learns it: keep it well under its 500 ms minimum silence)', num('--heartbeat-ms', { min: 1 }), 100)
    .option('--drain-timeout-ms <ms>', 'longest a drain waits for in-flight work', num('--drain-timeout-ms'), 30_000)
    .option('--cache-entries <n>', 'result cache entries (0 disables it)', num('--cache-entries'), 10_000)
    .option('--cache-ttl-ms <ms>', 'result cache time to live', num('--cache-ttl-ms', { min: 1 }), 300_000)
    .addOption(metricsPortOption())
    .addOption(metricsHostOption())
    .action(async (opts: WorkerFlags, cmd: Command) => {
      const config = configFrom(cmd.optsWithGlobals<GlobalFlags>());
      const logger = createLogger('worker', config.logLevel);
      const backends = backendsFrom(opts);
      const metrics = await serveProcessMetrics(opts, logger);
      const rt = await openRuntime(config, { logger });
      // With metrics, the worker runs on a context that counts the results it writes (per model, version, zone).
      const ctx = metrics ? new WorkerRequestMetrics(metrics.registry).context(rt.ctx, opts.zone) : rt.ctx;
      let running: RunningWorker;
      // After an eviction (the controller judged it dead: a freeze, a partition) the process
      // rejoins as a new incarnation — a new startedAt and a fresh lane claim — unless told to exit.
      const options = (): WorkerOptions => ({
          blobStore: blobStoreFrom(opts.blobs, config.home),
          backends,
          zone: opts.zone,
          capacity: opts.capacity,
          maxBatchDelayMs: opts.maxBatchDelayMs,
          heartbeatIntervalMs: opts.heartbeatMs,
          drainTimeoutMs: opts.drainTimeoutMs,
          cacheMaxEntries: opts.cacheEntries,
          cacheTtlMs: opts.cacheTtlMs,
          ...(opts.id !== undefined ? { workerId: opts.id } : {}),
          ...(opts.maxBatch !== undefined ? { maxBatchSize: opts.maxBatch } : {}),
          ...(opts.maxConcurrentBatches !== undefined ? { maxConcurrentBatches: opts.maxConcurrentBatches } : {}),
          ...(opts.lane !== undefined ? { lane: opts.lane } : {}),
          ...(opts.models !== undefined ? { models: opts.models.split(',').map((s) => s.trim()).filter(Boolean) } : {}),
          onEvicted: (reason) => {
            if (opts.exitOnEviction) {
              logger.error({ reason }, 'worker evicted; exiting so a supervisor can restart it');
              void rt.close().finally(() => process.exit(3));
              return;
            }
            logger.warn({ reason }, 'worker evicted; rejoining as a new incarnation');
            void startWorker(ctx, options()).then(
              (w) => {
                running = w;
                logger.info({ workerId: w.id, lane: w.lane }, 'worker rejoined');
              },
              (err: unknown) => {
                logger.error({ err }, 'rejoining failed; exiting');
                void rt.close().finally(() => process.exit(3));
              },
            );
          },
        });
      try {
        running = await startWorker(ctx, options());
      } catch (err) {
        await rt.close();
        throw err;
      }
      if (metrics) registerWorkerMetrics(metrics.registry, () => [running], { ctx: rt.ctx });
      // One line on stdout for scripts and tests that start the worker as a process.
      process.stdout.write(`${JSON.stringify({ service: 'worker', id: running.id, lane: running.lane, log: rt.log.kind, backend: backends[0]!.name })}\n`);
      let signals = 0;
      const onSignal = (signal: string) => {
        if (++signals > 1) {
          logger.warn({ signal }, 'second signal: stopping without waiting for in-flight work');
          void running.stop().finally(() => rt.close().finally(() => process.exit(1)));
          return;
        }
        logger.info({ signal }, 'draining');
        void running
          .drain(signal === 'SIGTERM' ? 'SIGTERM' : 'ADMIN')
          .then(() => rt.close())
          .then(
            () => process.exit(0),
            (err: unknown) => {
              logger.error({ err }, 'drain failed');
              process.exit(1);
            },
          );
      };
      process.on('SIGINT', () => onSignal('SIGINT'));
      process.on('SIGTERM', () => onSignal('SIGTERM'));
    });
}
