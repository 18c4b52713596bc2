import { InvalidArgumentError, type Command } from 'commander';
import { openRuntime } from '../../lib/bootstrap.js';
import { createLogger } from '../../lib/logger.js';
import { registerControllerMetrics } from '../../services/controller/metrics.js';
import { startController } from '../../services/controller/service.js';
import { configFrom, type GlobalFlags } from '../flags.js';
import { metricsHostOption, metricsPortOption, serveProcessMetrics, type MetricsFlags } from '../metrics.js';

const num = (name: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`${name} must be a non-negative number`);
  return n;
};

interface ControllerFlags extends MetricsFlags {
  controllerId?: string;
  tickMs?: number;
  leaseMs?: number;
  phiThreshold?: number;
  minSilenceMs?: number;
  maxAttempts?: number;
  maxRequestMs?: number;
  statsIntervalMs: number;
}

/** `switchyard controller`: failure detection, eviction, re-dispatch, retries, deadlines; run several, one leads. */
export function registerControllerCommand(program: Command): void {
  program
    .command('controller')
    .description('run a controller (failure detection, eviction, re-dispatch, retries, deadlines); run several: one leads, elected on the log')
    .option('--controller-id <id>', 'instance id, the producer of its events (default: controller-<random>)')
    .option('--tick-ms <ms>', 'tick interval: how often the leader decides (default 100)', num('--tick-ms'))
    .option('--lease-ms <ms>', 'a leader silent this long is replaced (default 2000)', num('--lease-ms'))
    .option('--phi-threshold <phi>', 'evict a worker when phi reaches this (default 8)', num('--phi-threshold'))
    .option('--min-silence-ms <ms>', '...and it has been silent at least this long (default 500)', num('--min-silence-ms'))
    .option('--max-attempts <n>', 'attempts per request unless the request says (default 3)', num('--max-attempts'))
    .option('--max-request-ms <ms>', 'deadline of a request that has none (default 120000)', num('--max-request-ms'))
    .option('--stats-interval-ms <ms>', 'log counters this often (0 = never)', num('--stats-interval-ms'), 10_000)
    .addOption(metricsPortOption())
    .addOption(metricsHostOption())
    .action(async (opts: ControllerFlags, cmd: Command) => {
      const config = configFrom(cmd.optsWithGlobals<GlobalFlags>());
      const logger = createLogger('controller', config.logLevel);
      const metrics = await serveProcessMetrics(opts, logger);
      const runtime = await openRuntime(config, { logger });
      const controller = await startController(runtime.ctx, {
        ...(opts.controllerId !== undefined ? { controllerId: opts.controllerId } : {}),
        ...(opts.tickMs !== undefined ? { tickIntervalMs: opts.tickMs } : {}),
        ...(opts.leaseMs !== undefined ? { leaseMs: opts.leaseMs } : {}),
        policy: {
          detector: {
            ...(opts.phiThreshold !== undefined ? { phiThreshold: opts.phiThreshold } : {}),
            ...(opts.minSilenceMs !== undefined ? { minSilenceMs: opts.minSilenceMs } : {}),
          },
          model: {
            ...(opts.maxAttempts !== undefined ? { maxAttempts: opts.maxAttempts } : {}),
            ...(opts.maxRequestMs !== undefined ? { maxRequestMs: opts.maxRequestMs } : {}),
          },
        },
      });
      if (metrics) registerControllerMetrics(metrics.registry, controller);
      logger.info({ controllerId: controller.id, log: runtime.log.kind }, 'controller running');
      const timer = opts.statsIntervalMs > 0 ? setInterval(() => logger.info(controller.stats(), 'controller stats'), opts.statsIntervalMs) : undefined;
      const stop = async () => {
        if (timer) clearInterval(timer);
        await controller.close();
        await metrics?.close();
        await runtime.close();
        process.exit(0);
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
}
