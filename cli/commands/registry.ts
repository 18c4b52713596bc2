import type { Command } from 'commander';
import { adminAuthFromToken } from '../../lib/auth/admin.js';
import { createLogger } from '../../lib/logger.js';
import { openLog } from '../../lib/log/open.js';
import { registerRegistryMetrics } from '../../services/registry/metrics.js';
import { startRegistryService } from '../../services/registry/service.js';
import { configFrom, type GlobalFlags } from '../flags.js';
import { metricsHostOption, metricsPortOption, serveProcessMetrics, type MetricsFlags } from '../metrics.js';
import { adminTokenOption } from './gateway.js';

/** `switchyard registry`: the Confluent-compatible schema registry over the log. */
export function registerRegistryCommand(program: Command): void {
  program
    .command('registry')
    .description('run the Confluent-compatible schema registry (schemas in the compacted _schemas topic)')
    .option('--host <host>', 'listen address', '127.0.0.1')
    .option('--port <port>', 'listen port', (v) => Number(v), 8081)
    .option('--topic <topic>', 'schemas topic (default: <prefix>_schemas, the one the services use)')
    .addOption(adminTokenOption())
    .addOption(metricsPortOption())
    .addOption(metricsHostOption())
    .action(async (opts: { host: string; port: number; topic?: string; adminToken?: string } & MetricsFlags, cmd: Command) => {
      const config = configFrom(cmd.optsWithGlobals<GlobalFlags>());
      const topic = opts.topic ?? `${config.topicPrefix}_schemas`;
      const logger = createLogger('registry', config.logLevel);
      const admin = adminAuthFromToken(opts.adminToken);
      const metrics = await serveProcessMetrics(opts, logger);
      const log = await openLog(config, logger);
      const service = await startRegistryService({ log, topic, host: opts.host, port: opts.port, logger, admin });
      if (metrics) registerRegistryMetrics(metrics.registry, service);
      logger.info({ url: service.url, log: log.kind, topic }, 'schema registry listening');
      const stop = async () => {
        await service.close();
        await metrics?.close();
        await log.close();
        process.exit(0);
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
}
