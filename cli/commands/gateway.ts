import { InvalidArgumentError, Option, type Command } from 'commander';
import { adminAuthFromToken } from '../../lib/auth/admin.js';
import { generateSecret, hashSecret } from '../../lib/auth/secret.js';
import { openRuntime } from '../../lib/bootstrap.js';
import { createLogger } from '../../lib/logger.js';
import { loadApiKeys } from '../../services/gateway/auth.js';
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
  apiKeysFile?: string;
  adminToken?: string;
  insecure: boolean;
  requestTimeoutMs?: number;
  headersTimeoutMs?: number;
}

/** `--admin-token`, read from SWITCHYARD_ADMIN_TOKEN (prefer the variable: a flag shows in `ps`). */
export const adminTokenOption = () =>
  new Option('--admin-token <token>', 'admin token for admin routes (at least 16 characters; prefer the environment variable); without one, admin routes answer loopback clients only').env(
    'SWITCHYARD_ADMIN_TOKEN',
  );

/** Read a secret from stdin (so it stays out of the shell history and `ps`). */
async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8').trim();
}

const int = (name: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) throw new InvalidArgumentError(`${name} must be a non-negative integer`);
  return n;
};

/** `switchyard gateway`: the HTTP gateway as its own process, on the configured log. */
export function registerGatewayCommand(program: Command): void {
  const command = program
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
    .addOption(new Option('--api-keys-file <path>', 'API keys (JSON or YAML of { id, sha256, allowedModels?, ratePerSecond?, burst? }); with keys, every /v1 route needs one').env('SWITCHYARD_API_KEYS_FILE'))
    .addOption(adminTokenOption())
    .option('--insecure', 'allow a non-loopback --host with no API keys (anyone who reaches the port can run inference)', false)
    .option('--request-timeout-ms <ms>', 'time to receive a whole request, headers and body, before 408 (default 30000)', int('--request-timeout-ms'))
    .option('--headers-timeout-ms <ms>', 'time to receive the headers of a request before 408 (default 10000)', int('--headers-timeout-ms'))
    .action(async (opts: GatewayFlags, cmd: Command) => {
      const config = configFrom(cmd.optsWithGlobals<GlobalFlags>());
      const logger = createLogger('gateway', config.logLevel);
      // Fail on bad keys or a refused binding before opening the log.
      const apiKeys = opts.apiKeysFile === undefined || opts.apiKeysFile === '' ? [] : await loadApiKeys(opts.apiKeysFile);
      const admin = adminAuthFromToken(opts.adminToken);
      const runtime = await openRuntime(config, { logger });
      const defined = <T extends object>(o: T) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
      let gateway;
      try {
        gateway = await startGateway(runtime.ctx, {
          host: opts.host,
          port: opts.port,
          insecure: opts.insecure,
          apiKeys,
          admin,
          ...defined({
            instanceId: opts.instanceId,
            defaultDeadlineMs: opts.defaultDeadlineMs,
            maxDeadlineMs: opts.maxDeadlineMs,
            maxSyncWaitMs: opts.maxSyncWaitMs,
            requestTimeoutMs: opts.requestTimeoutMs,
            headersTimeoutMs: opts.headersTimeoutMs,
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

  command
    .command('hash-key [key]')
    .description('print the sha256 of an API key or admin token, as a key file holds it (the key from stdin when not given; --generate makes a new one)')
    .option('--generate', 'generate a new random key, print it and its hash')
    .option('--id <id>', 'also print a key-file entry with this id')
    .action(async (key: string | undefined, o: { generate?: boolean; id?: string }) => {
      const secret = o.generate ? generateSecret() : (key ?? (await readStdin()));
      if (secret === '') throw new InvalidArgumentError('give the key as an argument or on stdin, or --generate one');
      const sha256 = hashSecret(secret);
      if (o.generate) process.stdout.write(`key:    ${secret}\nsha256: ${sha256}\n`);
      else process.stdout.write(`${sha256}\n`);
      if (o.id !== undefined) process.stdout.write(`# in the API keys file:\nkeys:\n  - id: ${o.id}\n    sha256: ${sha256}\n`);
    });
}
