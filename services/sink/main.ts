/**
 * The sink as a process of its own: `node --import tsx services/sink/main.ts`, or
 * `switchyard sink` (cli/commands/sink.ts), which share `runSink`.
 *
 * Environment (read here and nowhere below): the deployment's `SWITCHYARD_*` variables
 * (`lib/config.ts`: brokers, home, topic prefix, lanes, schema registry, ClickHouse URL), and
 * - `SWITCHYARD_CLICKHOUSE_DATABASE` (default `switchyard`): the database on the server;
 * - `SWITCHYARD_SINK_BATCH_ROWS`, `SWITCHYARD_SINK_BATCH_DELAY_MS`: the batch bounds;
 * - `SWITCHYARD_SINK_ARCHIVE` (`true` | `false`, default `true`): keep the log archive.
 */
import { pathToFileURL } from 'node:url';
import { openAnalytics } from '../../lib/analytics/open.js';
import type { AnalyticsStore } from '../../lib/analytics/port.js';
import { openRuntime } from '../../lib/bootstrap.js';
import { configFromEnv, type SwitchyardConfig } from '../../lib/config.js';
import { SwitchyardError, errorMessage } from '../../lib/errors.js';
import { createLogger, type Logger } from '../../lib/logger.js';
import type { EventLog } from '../../lib/log/port.js';
import { startSink, type RunningSink, type SinkOptions } from './service.js';

export interface SinkProcessOptions {
  config: SwitchyardConfig;
  /** Database on the ClickHouse server. @default 'switchyard' */
  database?: string | undefined;
  batchRows?: number | undefined;
  batchDelayMs?: number | undefined;
  /** Keep the log archive (`SinkOptions.archive`). @default true */
  archive?: boolean | undefined;
  /** Log the sink's counters this often, ms (0 = never). @default 10_000 */
  statsEveryMs?: number;
  logger?: Logger;
}

export interface SinkProcess {
  sink: RunningSink;
  log: EventLog;
  store: AnalyticsStore;
  /** Close the sink, then the store and the log. */
  stop(): Promise<void>;
}

/**
 * Opens the deployment's runtime (log, schema registry, codec, topics: `lib/bootstrap.ts`) and
 * analytics store from configuration, and starts the sink.
 */
export async function runSink({ config, database, batchRows, batchDelayMs, archive, statsEveryMs = 10_000, logger = createLogger('sink', config.logLevel) }: SinkProcessOptions): Promise<SinkProcess> {
  const runtime = await openRuntime(config, { logger });
  let store: AnalyticsStore | undefined;
  try {
    store = await openAnalytics({ clickhouseUrl: config.clickhouseUrl, clickhouseUser: config.clickhouseUser, clickhousePassword: config.clickhousePassword, database, home: config.home });
    const options: SinkOptions = { log: runtime.log, store, codec: runtime.ctx.codec, topicPrefix: config.topicPrefix, lanes: config.lanes, ensureTopics: false, logger };
    if (batchRows !== undefined) options.batchRows = batchRows;
    if (batchDelayMs !== undefined) options.batchDelayMs = batchDelayMs;
    if (archive !== undefined) options.archive = archive;
    const sink = await startSink(options);
    const timer = statsEveryMs > 0 ? setInterval(() => logger.info(sink.stats(), 'sink stats'), statsEveryMs) : undefined;
    timer?.unref();
    const opened = store;
    let stopped: Promise<void> | undefined;
    return {
      sink,
      log: runtime.log,
      store: opened,
      stop: () =>
        (stopped ??= (async () => {
          if (timer) clearInterval(timer);
          await sink.close();
          await opened.close();
          await runtime.close();
        })()),
    };
  } catch (err) {
    await store?.close().catch(() => {});
    await runtime.close().catch(() => {});
    throw err;
  }
}

/**
 * Keeps the process alive until SIGINT/SIGTERM (the embedded log waits for data without
 * holding a handle), then stops; exits non-zero if stopping fails.
 */
export function stopOnSignals(process_: SinkProcess, logger: Logger): void {
  const keepAlive = setInterval(() => {}, 1 << 30);
  const stop = (signal: string) => {
    clearInterval(keepAlive);
    logger.info({ signal }, 'sink stopping');
    process_.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err: errorMessage(err) }, 'sink did not stop cleanly');
        process.exit(1);
      },
    );
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
}

const intFromEnv = (name: string): number | undefined => {
  const v = process.env[name];
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) throw new SwitchyardError('SY_ERR_CONFIG', `${name} must be a non-negative integer, got ${v}`);
  return n;
};

/** `SWITCHYARD_SINK_ARCHIVE`: `true`/`1` or `false`/`0`; undefined when unset. */
export function archiveFromEnv(env: NodeJS.ProcessEnv): boolean | undefined {
  const v = env.SWITCHYARD_SINK_ARCHIVE;
  if (v === undefined || v === '') return undefined;
  if (v === 'true' || v === '1') return true;
  if (v === 'false' || v === '0') return false;
  throw new SwitchyardError('SY_ERR_CONFIG', `SWITCHYARD_SINK_ARCHIVE must be true or false, got ${v}`);
}

async function main(): Promise<void> {
  const config = configFromEnv(process.env);
  const logger = createLogger('sink', config.logLevel);
  const running = await runSink({
    config,
    database: process.env.SWITCHYARD_CLICKHOUSE_DATABASE || undefined,
    batchRows: intFromEnv('SWITCHYARD_SINK_BATCH_ROWS'),
    batchDelayMs: intFromEnv('SWITCHYARD_SINK_BATCH_DELAY_MS'),
    archive: archiveFromEnv(process.env),
    logger,
  });
  stopOnSignals(running, logger);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    const code = err instanceof SwitchyardError ? ` [${err.code}]` : '';
    process.stderr.write(`sink: ${errorMessage(err)}${code}\n`);
    process.exit(1);
  });
}
