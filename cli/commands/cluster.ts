import { InvalidArgumentError, Option, type Command } from 'commander';
import { adminAuthFromToken } from '../../lib/auth/admin.js';
import { openRuntime } from '../../lib/bootstrap.js';
import { loadApiKeys } from '../../services/gateway/auth.js';
import { adminTokenOption } from './gateway.js';
import { createLogger } from '../../lib/logger.js';
import { startCluster, DEFAULT_WORKERS } from '../cluster.js';
import { runDemo } from '../demo.js';
import { startServiceThread, type ServiceThread } from '../threads.js';
import { configFrom, type GlobalFlags } from '../flags.js';

const int = (v: string) => Number.parseInt(v, 10);

function threadCount(v: string): number {
  const n = Number(v);
  if (n !== 1 && n !== 2) throw new InvalidArgumentError('1 or 2');
  return n;
}

interface UpFlags {
  port: number;
  host: string;
  insecure: boolean;
  apiKeysFile?: string;
  adminToken?: string;
  routers: number;
  controllers: number;
  workers: number;
  registryPort?: number;
  blobPort?: number;
  analytics: boolean;
  threads: number;
}

/** `switchyard up` (a whole cluster in one process) and `switchyard demo`. */
export function registerClusterCommands(program: Command): void {
  program
    .command('up')
    .description('run gateway, router(s), a controller, workers and the registry in one process (embedded log by default; --brokers for Kafka)')
    .option('--port <port>', 'gateway port', int, 8080)
    .option('--host <address>', 'gateway address; anything but loopback needs API keys or --insecure', '127.0.0.1')
    .option('--insecure', 'allow a non-loopback --host with no API keys (anyone who reaches the port can run inference)', false)
    .addOption(new Option('--api-keys-file <path>', 'API keys (JSON/YAML, hashed: switchyard gateway hash-key); auth is on whenever keys are configured').env('SWITCHYARD_API_KEYS_FILE'))
    .addOption(adminTokenOption())
    .option('--routers <n>', 'router replicas', int, 1)
    .option('--controllers <n>', 'controllers (one leads, the others stand by)', int, 1)
    .option('--workers <n>', 'workers (alternating zone-a / zone-b)', int, DEFAULT_WORKERS.length)
    .option('--registry-port <port>', 'also serve the schema registry REST API on this port', int)
    .option('--blob-port <port>', 'also serve the blob store over HTTP on this port', int)
    .option('--analytics', 'run the sink into ClickHouse (SWITCHYARD_CLICKHOUSE_URL, else the embedded chDB engine)', false)
    .addOption(
      new Option('--threads <n>', 'threads: 2 runs the gateway (HTTP) in a thread of its own, the log, router, controller and workers in the main thread; 1 runs everything on one (docs/BENCHMARKS.md, "A thread for the gateway")')
        .env('SWITCHYARD_THREADS')
        .argParser(threadCount)
        .default(1),
    )
    .action(async (opts: UpFlags, cmd: Command) => {
      const config = configFrom(cmd.optsWithGlobals<GlobalFlags>());
      const logger = createLogger('switchyard', config.logLevel);
      const apiKeys = opts.apiKeysFile === undefined || opts.apiKeysFile === '' ? [] : await loadApiKeys(opts.apiKeysFile);
      const admin = adminAuthFromToken(opts.adminToken);
      const rt = await openRuntime(config, { logger });
      const workers = Array.from({ length: opts.workers }, (_, i) => ({ workerId: `worker-${i + 1}`, zone: i % 2 === 0 ? 'zone-a' : 'zone-b' }));
      const gateway = { host: opts.host, port: opts.port, insecure: opts.insecure, apiKeys, admin };
      const threaded = opts.threads > 1;
      const cluster = await startCluster(rt, {
        routers: opts.routers,
        controllers: opts.controllers,
        workers,
        gateway: threaded ? false : gateway,
        ...(opts.registryPort !== undefined ? { registry: { port: opts.registryPort, admin } } : {}),
        ...(opts.blobPort !== undefined ? { blobServer: { port: opts.blobPort, admin } } : {}),
        ...(opts.analytics ? { analytics: { clickhouseUrl: config.clickhouseUrl } } : {}),
      });
      const shutdown = async (exitCode: number) => {
        await cluster.close();
        await rt.close();
        process.exit(exitCode);
      };
      let thread: ServiceThread | undefined;
      try {
        if (threaded) {
          thread = await startServiceThread(rt, { gateway, workers: [] }, {
            metrics: cluster.metrics,
            logger,
            onExit: (code) => {
              logger.error({ code }, 'the gateway thread ended: stopping');
              void shutdown(1);
            },
          });
        }
      } catch (err) {
        await cluster.close();
        throw err;
      }
      const url = thread?.gateway ?? cluster.gateway?.url;
      logger.info(
        { gateway: url, metrics: url === undefined ? undefined : `${url}/metrics`, registry: cluster.registry?.url, blobs: cluster.blobServer?.url, log: rt.log.kind, threads: opts.threads, workers: cluster.workers.map((w) => `${w.id}@lane${w.lane}`) },
        'switchyard is up',
      );
      const stop = async () => {
        logger.info('shutting down: draining workers');
        await thread?.close();
        await shutdown(0);
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });

  program
    .command('demo')
    .description('start an embedded cluster, send mixed traffic through the gateway, print a summary and one request path')
    .option('-n, --requests <n>', 'requests to send', int, 3000)
    .option('-c, --concurrency <n>', 'requests in flight', int, 32)
    .option('--keep', 'keep the previous demo log instead of starting clean', false)
    .option('--no-analytics', 'do not run the sink into the embedded analytics engine')
    .action(async (opts: { requests: number; concurrency: number; keep: boolean; analytics: boolean }, cmd: Command) => {
      const flags = cmd.optsWithGlobals<GlobalFlags>();
      await runDemo(configFrom(flags), { ...opts, json: flags.json ?? false });
    });
}
