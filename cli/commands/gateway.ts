import { InvalidArgumentError, type Command } from 'commander';
import { openRuntime } from '../../lib/bootstrap.js';
import { createLogger } from '../../lib/logger.js';
import { startGateway } from '../../services/gateway/service.js';
import { configFrom, type GlobalFlags } from '../flags.js';

interface GatewayFlags {
  host: string;
  port: number;
  instanceId?: string;
  defaultDeadlineMs?: number;
  maxDeadlineMs?: number;
  maxSyncWaitMs?: number;
  maxWaiters?: number;
  cacheEntries?: number;
  cacheTtlMs?: number;
  lookbackRecords?: number;
}

const int = (name: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) throw new InvalidArgumentError(`${name} must be a non-negative integer`);
  return n;
};

/** `switchyard gateway`: the HTTP gateway as its own process, on the configured log. */
export function registerGatewayCommand(program: Command): void {
  program
    .command('gateway')
    .description('run the HTTP gateway (POST /v1/infer, POST /v1/requests, GET /v1/requests/:id, /docs/json, /metrics)')
    .option('--host <host>', 'listen address', '127.0.0.1')
    .option('--port <port>', 'listen port (0 = any free port)', int('port'), 8080)
    .option('--instance-id <id>', 'instance id, the producer of its events (default: gateway-<random>)')
    .option('--default-deadline-ms <ms>', 'deadline of sync requests that give none (default 30000)', int('--default-deadline-ms'))
    .option('--max-deadline-ms <ms>', 'largest deadlineMs accepted (default 3600000)', int('--max-deadline-ms'))
    .option('--max-sync-wait-ms <ms>', 'longest a sync request waits before 504 + Location (default 60000)', int('--max-sync-wait-ms'))
    .option('--max-waiters <n>', 'most sync requests waiting at once (default 10000)', int('--max-waiters'))
    .option('--cache-entries <n>', 'requests whose status is remembered (default 100000)', int('--cache-entries'))
    .option('--cache-ttl-ms <ms>', 'how long a status is remembered (default 900000)', int('--cache-ttl-ms'))
    .option('--lookback-records <n>', 'records per results partition read back at start (default 1000)', int('--lookback-records'))
    .action(async (opts: GatewayFlags, cmd: Command) => {
      const config = configFrom(cmd.optsWithGlobals<GlobalFlags>());
      const logger = createLogger('gateway', config.logLevel);
      const runtime = await openRuntime(config, { logger });
      const defined = <T extends object>(o: T) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
      let gateway;
      try {
        gateway = await startGateway(runtime.ctx, {
          host: opts.host,
          port: opts.port,
          ...defined({
            instanceId: opts.instanceId,
            defaultDeadlineMs: opts.defaultDeadlineMs,
            maxDeadlineMs: opts.maxDeadlineMs,
            maxSyncWaitMs: opts.maxSyncWaitMs,
          }),
          results: defined({ maxWaiters: opts.maxWaiters, maxEntries: opts.cacheEntries, ttlMs: opts.cacheTtlMs, lookbackRecords: opts.lookbackRecords }),
          defaultMetrics: true,
          logger,
        });
      } catch (err) {
        await runtime.close();
        throw err;
      }
      const running = gateway;
      // One line on stdout for scripts and tests that start the gateway as a process.
      process.stdout.write(`${JSON.stringify({ service: 'gateway', url: running.url, instanceId: running.instanceId, log: runtime.log.kind })}\n`);
      let stopping = false;
      const stop = async () => {
        if (stopping) return;
        stopping = true;
        try {
          await running.close();
          await runtime.close();
        } finally {
          process.exit(0);
        }
      };
      process.once('SIGINT', () => void stop());
      process.once('SIGTERM', () => void stop());
    });
}
