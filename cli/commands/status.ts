import { existsSync } from 'node:fs';
import { join } from 'node:path';
import Fastify, { LogController } from 'fastify';
import { InvalidArgumentError, type Command } from 'commander';
import { adminAuthFromToken, describeAdminAuth, requireAdmin } from '../../lib/auth/admin.js';
import { errorMessage } from '../../lib/errors.js';
import { createLogger } from '../../lib/logger.js';
import { openLogSource, type LogSource } from '../../replay/source.js';
import { StatusError, isStatusError } from '../../services/status/errors.js';
import { statusRoutes } from '../../services/status/routes.js';
import { StatusService, type LiveStatus, type StatusServiceOptions } from '../../services/status/service.js';
import { statusText } from '../../services/status/text.js';
import { configFrom, type GlobalFlags } from '../flags.js';
import { adminTokenOption } from './gateway.js';

interface StatusFlags {
  serve?: boolean;
  host: string;
  port: number;
  url?: string;
  seconds?: number;
  lookbackRecords?: number;
  actions: number;
  adminToken?: string;
}

const int = (name: string, min = 0) => (v: string) => {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < min) throw new InvalidArgumentError(`${name} must be an integer ≥ ${min}`);
  return n;
};

/** The log the configuration names, opened read-only (replay's source: no topic is created, no retention runs). */
async function openSource(flags: GlobalFlags): Promise<LogSource> {
  const config = configFrom(flags);
  const logDir = join(config.home, 'log');
  if (config.brokers.length === 0 && !existsSync(logDir)) {
    throw new StatusError('SY_ERR_STATUS_SOURCE', `no embedded log under ${config.home} (${logDir} does not exist): give the --home a cluster ran with, --brokers for Kafka, or --url of a running gateway`);
  }
  try {
    return await openLogSource(config, { logger: createLogger('status', config.logLevel === 'info' ? 'warn' : config.logLevel) });
  } catch (err) {
    const locked = /single-process|LOCKED/i.test(errorMessage(err)) || (err as { retriable?: boolean }).retriable === true;
    throw new StatusError(
      'SY_ERR_STATUS_SOURCE',
      `${errorMessage(err)}${locked && config.brokers.length === 0 ? '. While a cluster runs on this home, ask its gateway instead: switchyard status --url http://127.0.0.1:8080' : ''}`,
      { cause: err },
    );
  }
}

/** `/status.json` of a running gateway (or `switchyard status --serve`). */
async function fetchStatus(url: string, adminToken: string | undefined): Promise<LiveStatus> {
  const target = `${url.replace(/\/+$/, '')}/status.json`;
  let res: Response;
  try {
    res = await fetch(target, { headers: adminToken ? { authorization: `Bearer ${adminToken}` } : {}, signal: AbortSignal.timeout(10_000) });
  } catch (err) {
    throw new StatusError('SY_ERR_STATUS_SOURCE', `cannot reach ${target}: ${errorMessage(err)}`, { cause: err, retriable: true });
  }
  const body = (await res.json().catch(() => null)) as (LiveStatus & { error?: { code: string; message: string } }) | null;
  if (!res.ok || body === null) {
    throw new StatusError('SY_ERR_STATUS_SOURCE', `${target} answered ${res.status}${body?.error ? `: ${body.error.code}: ${body.error.message}` : ''}`);
  }
  return body;
}

const print = (doc: LiveStatus, flags: GlobalFlags, actions: number): void => {
  process.stdout.write(flags.json ? `${JSON.stringify(doc, null, 2)}\n` : `${statusText(doc, { actions })}\n`);
};

/** `switchyard status`: the cluster at a glance, from the log (or a gateway), once or served as a page. */
export function registerStatusCommand(program: Command): void {
  program
    .command('status')
    .description('the cluster at a glance, folded from the log: members and health, lanes, models and rollouts, the controller leader, throughput and latency, recent evictions, re-dispatches and sheds (--json for machines; --serve for the status page)')
    .option('--serve', 'serve the status page (/status, /status.json, /status/requests/:id) instead of printing once')
    .option('--host <host>', 'with --serve: listen address', '127.0.0.1')
    .option('--port <port>', 'with --serve: listen port (0 = any free port)', int('--port'), 8090)
    .option('--url <url>', "print the status a running gateway serves (its /status.json) instead of reading the log: how to see an embedded cluster's status while it runs")
    .option('--seconds <n>', 'seconds of per-second series and look-back (default 300)', int('--seconds', 10))
    .option('--lookback-records <n>', 'records read back per partition of heartbeats, decisions and results (default 20000)', int('--lookback-records'))
    .option('--actions <n>', 'recent actions printed of each list', int('--actions'), 15)
    .addOption(adminTokenOption())
    .addHelpText(
      'after',
      `
Reads the embedded log under --home (single-process: while \`switchyard up\` runs there, use --url
http://127.0.0.1:8080, or open the gateway's /status page), or Kafka with --brokers. The log is read,
never written: control whole, the other topics over the last --seconds. With --serve, the data
routes need the admin token (SWITCHYARD_ADMIN_TOKEN), or answer loopback clients only without one.`,
    )
    .action(async (opts: StatusFlags, cmd: Command) => {
      const flags = cmd.optsWithGlobals<GlobalFlags>();
      const serviceOptions: StatusServiceOptions = {
        ...(opts.seconds !== undefined ? { seriesSeconds: opts.seconds } : {}),
        ...(opts.lookbackRecords !== undefined ? { lookbackRecords: opts.lookbackRecords } : {}),
      };
      try {
        if (opts.url !== undefined) {
          if (opts.serve) throw new StatusError('SY_ERR_STATUS_BAD_REQUEST', '--url and --serve do not go together: the gateway at --url already serves the page');
          print(await fetchStatus(opts.url, opts.adminToken), flags, opts.actions);
          return;
        }
        if (opts.serve) await serve(flags, opts, serviceOptions);
        else await once(flags, opts, serviceOptions);
      } catch (err) {
        if (!isStatusError(err)) throw err;
        process.stderr.write(`switchyard status: ${err.message} [${err.code}]\n`);
        process.exitCode = 1;
      }
    });
}

async function once(flags: GlobalFlags, opts: StatusFlags, serviceOptions: StatusServiceOptions): Promise<void> {
  const source = await openSource(flags);
  try {
    const service = new StatusService(source, serviceOptions);
    await service.refresh();
    print(service.document(), flags, opts.actions);
    await service.close();
  } finally {
    await source.close();
  }
}

async function serve(flags: GlobalFlags, opts: StatusFlags, serviceOptions: StatusServiceOptions): Promise<void> {
  const config = configFrom(flags);
  const logger = createLogger('status', config.logLevel);
  const admin = adminAuthFromToken(opts.adminToken);
  const source = await openSource(flags);
  const service = new StatusService(source, { ...serviceOptions, logger });
  const app = Fastify({ loggerInstance: logger, logController: new LogController({ disableRequestLogging: true }) });
  try {
    await service.start();
    await app.register(statusRoutes, { service, guard: requireAdmin(admin) });
    app.get('/', async (_req, reply) => reply.redirect('/status'));
    const url = await app.listen({ host: opts.host, port: opts.port });
    logger.info({ url, log: source.description }, `status page at ${url}/status; ${describeAdminAuth(admin)}`);
    // One line on stdout for scripts and tests that start it as a process.
    process.stdout.write(`${JSON.stringify({ service: 'status', url: `${url}/status`, log: source.kind })}\n`);
  } catch (err) {
    await app.close().catch(() => {});
    await service.close();
    await source.close();
    throw err;
  }
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    try {
      await app.close();
      await service.close();
      await source.close();
    } finally {
      process.exit(0);
    }
  };
  process.once('SIGINT', () => void stop());
  process.once('SIGTERM', () => void stop());
}
