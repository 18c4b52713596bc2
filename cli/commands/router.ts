import { InvalidArgumentError, type Command } from 'commander';
import { openRuntime } from '../../lib/bootstrap.js';
import { createLogger } from '../../lib/logger.js';
import { registerRouterMetrics } from '../../services/router/metrics.js';
import { startRouter } from '../../services/router/service.js';
import { configFrom, type GlobalFlags } from '../flags.js';
import { metricsHostOption, metricsPortOption, serveProcessMetrics, type MetricsFlags } from '../metrics.js';

const num = (name: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`${name} must be a non-negative number`);
  return n;
};

/** `switchyard router`: one router replica; run several, they share `requests` in one group. */
export function registerRouterCommand(program: Command): void {
  program
    .command('router')
    .description('run a router replica (stateless: its state is a fold of the log; replicas share the requests topic)')
    .option('--router-id <id>', 'instance id, the producer of its decisions (default: router-<random>)')
    .option('--affinity-epsilon <e>', 'bounded-load slack for session affinity: (1+e)·average (default 0.25)', num('--affinity-epsilon'))
    .option('--stale-heartbeat-ms <ms>', 'a worker whose last heartbeat is older is not routed to (default 2000)', num('--stale-heartbeat-ms'))
    .option('--no-p2c', 'least loaded instead of power of two choices')
    .option('--no-ejection', 'do not eject latency/error outliers')
    .option('--max-compute-ms <ms>', 'breaker on absolute latency: back a worker out when its p90 compute time (not queue or log transit) reaches this (default: off)', num('--max-compute-ms'))
    .option('--stats-interval-ms <ms>', 'log decision counters this often (0 = never)', num('--stats-interval-ms'), 10_000)
    .addOption(metricsPortOption())
    .addOption(metricsHostOption())
    .action(async (opts: { routerId?: string; affinityEpsilon?: number; staleHeartbeatMs?: number; p2c: boolean; ejection: boolean; maxComputeMs?: number; statsIntervalMs: number } & MetricsFlags, cmd: Command) => {
      const config = configFrom(cmd.optsWithGlobals<GlobalFlags>());
      const logger = createLogger('router', config.logLevel);
      const metrics = await serveProcessMetrics(opts, logger);
      const runtime = await openRuntime(config, { logger });
      const router = await startRouter(runtime.ctx, {
        ...(opts.routerId !== undefined ? { routerId: opts.routerId } : {}),
        policy: {
          ...(opts.affinityEpsilon !== undefined ? { affinityEpsilon: opts.affinityEpsilon } : {}),
          ...(opts.staleHeartbeatMs !== undefined ? { staleHeartbeatMs: opts.staleHeartbeatMs } : {}),
          ...(opts.p2c ? {} : { powerOfTwoChoices: false }),
          ...(opts.ejection ? (opts.maxComputeMs !== undefined ? { ejection: { maxComputeMs: opts.maxComputeMs } } : {}) : { ejection: { enabled: false } }),
        },
      });
      if (metrics) registerRouterMetrics(metrics.registry, router, { ctx: runtime.ctx });
      logger.info({ routerId: router.id, policy: router.policy.version, log: runtime.log.kind }, 'router running');
      const timer = opts.statsIntervalMs > 0 ? setInterval(() => logger.info(router.stats(), 'router stats'), opts.statsIntervalMs) : undefined;
      const stop = async () => {
        if (timer) clearInterval(timer);
        await router.close();
        await metrics?.close();
        await runtime.close();
        process.exit(0);
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
}
