import { Option, type Command } from 'commander';
import { createLogger } from '../../lib/logger.js';
import { archiveFromEnv, runSink, stopOnSignals } from '../../services/sink/main.js';
import { registerSinkMetrics } from '../../services/sink/metrics.js';
import { configFrom, type GlobalFlags } from '../flags.js';
import { metricsHostOption, metricsPortOption, serveProcessMetrics, type MetricsFlags } from '../metrics.js';

interface SinkFlags extends GlobalFlags, MetricsFlags {
  clickhouse?: string;
  database?: string;
  batchRows?: number;
  batchDelayMs?: number;
  /** False with --no-archive. */
  archive: boolean;
}

const int = (v: string) => {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`not a non-negative integer: ${v}`);
  return n;
};

/** `switchyard sink`: every topic into ClickHouse, as a process of its own. */
export function registerSinkCommand(program: Command): void {
  program
    .command('sink')
    .description('consume every Switchyard topic into ClickHouse (group "sink"); stops on SIGINT/SIGTERM')
    .addOption(new Option('--clickhouse <url>', 'ClickHouse server URL; default: the embedded chDB engine under <home>/analytics').env('SWITCHYARD_CLICKHOUSE_URL'))
    .addOption(new Option('--database <name>', 'database on the ClickHouse server').env('SWITCHYARD_CLICKHOUSE_DATABASE').default('switchyard'))
    .addOption(new Option('--batch-rows <n>', 'size bound of a batch').env('SWITCHYARD_SINK_BATCH_ROWS').argParser(int))
    .addOption(new Option('--batch-delay-ms <ms>', 'time bound of a batch').env('SWITCHYARD_SINK_BATCH_DELAY_MS').argParser(int))
    .addOption(new Option('--no-archive', 'do not keep the log archive (log_records, log_schemas, log_topics: every record byte for byte, for replay from ClickHouse); also SWITCHYARD_SINK_ARCHIVE=false'))
    .addOption(metricsPortOption())
    .addOption(metricsHostOption())
    .action(async (_opts: unknown, cmd: Command) => {
      const flags = cmd.optsWithGlobals<SinkFlags>();
      const config = configFrom(flags);
      if (flags.clickhouse !== undefined) config.clickhouseUrl = flags.clickhouse;
      const logger = createLogger('sink', config.logLevel);
      const metrics = await serveProcessMetrics(flags, logger);
      const running = await runSink({
        config,
        database: flags.database,
        batchRows: flags.batchRows,
        batchDelayMs: flags.batchDelayMs,
        // The flag wins; else the environment; else the default (on).
        archive: flags.archive ? archiveFromEnv(process.env) : false,
        logger,
      });
      if (metrics) registerSinkMetrics(metrics.registry, running.sink);
      stopOnSignals(running, logger);
    });
}
