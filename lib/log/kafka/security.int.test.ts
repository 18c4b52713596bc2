import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uniqueName, waitFor } from '../../../test/support/services.js';
import { configFromEnv } from '../../config.js';
import { SwitchyardError } from '../../errors.js';
import { openLog } from '../open.js';
import type { EventLog, LogRecord } from '../port.js';

// A broker of its own, started here with `scripts/services.sh` in SWITCHYARD_KAFKA_SECURITY=sasl_ssl
// mode (its own directory and ports; the default broker on 9092 is not touched): the client
// listener is SASL_SSL with SCRAM-SHA-256, its certificate signed by a CA generated for the run.
// Every client below is configured the way a deployment is, from SWITCHYARD_* variables through
// configFromEnv and openLog.

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const SERVICES = join(ROOT, 'scripts/services.sh');

async function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const server = createServer();
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => ok(port));
    });
  });
}

function services(command: 'up' | 'down', env: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((ok, fail) => {
    execFile('bash', [SERVICES, command, 'kafka'], { env, timeout: 150_000 }, (err, stdout, stderr) => {
      if (err) fail(new Error(`services.sh ${command} (sasl_ssl) failed: ${err.message}\n${stdout}\n${stderr}`));
      else ok(stdout);
    });
  });
}

describe('Kafka over SASL_SSL (SCRAM-SHA-256) on a real broker', () => {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-sasl-ssl-'));
  let env: NodeJS.ProcessEnv;
  let broker: string;
  let caFile: string;
  let passwordFile: string;
  const logs: EventLog[] = [];

  /** The deployment's settings for this broker, with `overrides` on top (an empty string unsets). */
  const settings = (overrides: Record<string, string> = {}): NodeJS.ProcessEnv => ({
    SWITCHYARD_BROKERS: broker,
    // This suite is the kafkajs adapter's, whatever the default client (@platformatic/kafka has
    // its own: lib/log/platformatic/security.int.test.ts).
    SWITCHYARD_KAFKA_CLIENT: 'kafkajs',
    SWITCHYARD_KAFKA_SSL: 'true',
    SWITCHYARD_KAFKA_SSL_CA_FILE: caFile,
    SWITCHYARD_KAFKA_SASL_MECHANISM: 'scram-sha-256',
    SWITCHYARD_KAFKA_SASL_USERNAME: 'switchyard',
    SWITCHYARD_KAFKA_SASL_PASSWORD_FILE: passwordFile,
    // Fail fast: the failures below are not transient.
    SWITCHYARD_KAFKA_RETRY_MAX_MS: '200',
    ...overrides,
  });
  const open = async (overrides: Record<string, string> = {}): Promise<EventLog> => {
    const log = await openLog(configFromEnv(settings(overrides)));
    logs.push(log);
    return log;
  };
  const failure = async (overrides: Record<string, string>): Promise<SwitchyardError> => {
    const err: unknown = await open(overrides).then(
      () => new Error('connected, but should have been refused'),
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(SwitchyardError);
    return err as SwitchyardError;
  };

  beforeAll(async () => {
    for (const tool of ['openssl', 'keytool', 'java']) {
      if (spawnSync('bash', ['-c', `command -v ${tool}`]).status !== 0) {
        throw new Error(`${tool} is not installed: the SASL_SSL broker of this test needs openssl, keytool and java (a JDK 17+)`);
      }
    }
    const [port, controllerPort] = [await freePort(), await freePort()];
    broker = `127.0.0.1:${port}`;
    env = {
      ...process.env,
      SWITCHYARD_KAFKA_SECURITY: 'sasl_ssl',
      SWITCHYARD_SERVICES_DIR: dir,
      SWITCHYARD_KAFKA_PORT: String(port),
      SWITCHYARD_KAFKA_CONTROLLER_PORT: String(controllerPort),
      // The jars the default broker already resolved (else Maven fetches them into `dir`).
      SWITCHYARD_KAFKA_LIB_DIR: process.env.SWITCHYARD_KAFKA_LIB_DIR ?? join(ROOT, '.switchyard/services/kafka/lib'),
      SWITCHYARD_KAFKA_HEAP: '512m',
      SWITCHYARD_SERVICES_TIMEOUT: '90',
    };
    delete env.SWITCHYARD_KAFKA_SASL_PASSWORD;
    delete env.SWITCHYARD_KAFKA_SASL_USERNAME;
    await services('up', env);
    caFile = join(dir, 'kafka/tls/ca.pem');
    passwordFile = join(dir, 'kafka/tls/sasl-password');
  }, 180_000);

  afterAll(async () => {
    await Promise.allSettled(logs.map((l) => l.close()));
    if (env) await services('down', env).catch((err: unknown) => console.error(err));
    rmSync(dir, { recursive: true, force: true });
  }, 90_000);

  it('the broker really is SASL_SSL: its only client listener is SASL_SSL, with SCRAM-SHA-256', () => {
    const properties = readFileSync(join(dir, 'kafka/server.properties'), 'utf8');
    expect(properties).toMatch(new RegExp(`^listeners=SASL_SSL://${broker},CONTROLLER://127\\.0\\.0\\.1:\\d+$`, 'm'));
    expect(properties).toMatch(/^listener\.security\.protocol\.map=SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT$/m);
    expect(properties).toMatch(/^sasl\.enabled\.mechanisms=SCRAM-SHA-256$/m);
  });

  it('with the CA and the SCRAM credentials: creates topics, appends and subscribes (a round trip)', async () => {
    const log = await open();
    expect(log.kind).toBe('kafka');
    const topic = uniqueName('sasl-ssl');
    await log.ensureTopics([{ name: topic, partitions: 2 }]);
    expect(await log.partitionCount(topic)).toBe(2);
    const positions = await log.append(Array.from({ length: 10 }, (_, i) => ({ topic, key: `k${i}`, value: Buffer.from(`v${i}`) })));
    expect(positions).toHaveLength(10);
    const seen: LogRecord[] = [];
    const sub = await log.subscribe({ groupId: uniqueName('sasl-ssl-group'), topics: [topic], onBatch: async (b) => void seen.push(...b.records) });
    try {
      await waitFor(() => seen.length === 10, { what: '10 records back over SASL_SSL', timeoutMs: 30_000 });
    } finally {
      await sub.close();
    }
    expect(seen.map((r) => r.value!.toString()).sort()).toEqual(Array.from({ length: 10 }, (_, i) => `v${i}`).sort());
  }, 60_000);

  it('the password may come straight from SWITCHYARD_KAFKA_SASL_PASSWORD as well', async () => {
    const password = readFileSync(passwordFile, 'utf8').split('\n')[0]!;
    const log = await open({ SWITCHYARD_KAFKA_SASL_PASSWORD_FILE: '', SWITCHYARD_KAFKA_SASL_PASSWORD: password });
    const topic = uniqueName('sasl-ssl-env');
    await log.ensureTopics([{ name: topic, partitions: 1 }]);
    expect(await log.partitionCount(topic)).toBe(1);
  }, 30_000);

  it('a wrong password is refused: SY_ERR_LOG_AUTH, not retriable', async () => {
    const err = await failure({ SWITCHYARD_KAFKA_SASL_PASSWORD_FILE: '', SWITCHYARD_KAFKA_SASL_PASSWORD: 'not-the-password' });
    expect(err.code).toBe('SY_ERR_LOG_AUTH');
    expect(err.retriable).toBe(false);
    expect(err.message).toMatch(/SASL authentication failed/);
    expect(err.message).not.toContain('not-the-password');
  }, 30_000);

  it('an unknown user is refused the same way', async () => {
    const err = await failure({ SWITCHYARD_KAFKA_SASL_USERNAME: 'mallory' });
    expect(err.code).toBe('SY_ERR_LOG_AUTH');
  }, 30_000);

  it('without TLS (plain text to the TLS port) the client cannot connect', async () => {
    const err = await failure({ SWITCHYARD_KAFKA_SSL: '', SWITCHYARD_KAFKA_SSL_CA_FILE: '' });
    // The broker takes the client's first request for a bad TLS record and hangs up.
    expect(err.code).toBe('SY_ERR_LOG_BROKER');
    expect(err.message).toMatch(/^connecting to 127\.0\.0\.1:\d+: Closed connection/);
  }, 60_000);

  it("TLS that does not trust the broker's CA (Node's default CAs) is refused by the client", async () => {
    const err = await failure({ SWITCHYARD_KAFKA_SSL_CA_FILE: '' });
    expect(err.code).toBe('SY_ERR_LOG_BROKER');
    expect(err.message).toMatch(/self-signed certificate in certificate chain/);
  }, 60_000);

  it('TLS without SASL is refused by the broker (it wants SCRAM before any request)', async () => {
    const err = await failure({ SWITCHYARD_KAFKA_SASL_MECHANISM: '', SWITCHYARD_KAFKA_SASL_USERNAME: '', SWITCHYARD_KAFKA_SASL_PASSWORD_FILE: '' });
    expect(err.code).toBe('SY_ERR_LOG_BROKER');
    expect(err.message).toMatch(/Closed connection/);
  }, 60_000);
});
