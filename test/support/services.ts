import { Socket } from 'node:net';

/**
 * Where integration tests find the real services (`scripts/services.sh up`). An
 * integration test never skips: when a service is unreachable it fails and says so.
 */
export const kafkaBrokers = (): string[] => (process.env.SWITCHYARD_TEST_BROKERS ?? '127.0.0.1:9092').split(',');
export const clickhouseUrl = (): string => process.env.SWITCHYARD_TEST_CLICKHOUSE_URL ?? 'http://127.0.0.1:8123';

export async function requireTcp(hostPort: string, what: string, timeoutMs = 3_000): Promise<void> {
  const [host, port] = hostPort.split(':');
  await new Promise<void>((resolve, reject) => {
    const socket = new Socket();
    const fail = (why: string) => {
      socket.destroy();
      reject(new Error(`${what} is not reachable at ${hostPort} (${why}). Start the real services with: bash scripts/services.sh up`));
    };
    socket.setTimeout(timeoutMs, () => fail('timeout'));
    socket.once('error', (err) => fail(err.message));
    socket.connect(Number(port), host!, () => {
      socket.end();
      resolve();
    });
  });
}

export const requireKafka = () => requireTcp(kafkaBrokers()[0]!, 'Kafka');

/** A unique name for topics and groups, so tests never share state. */
export const uniqueName = (prefix: string): string => `${prefix}-${Date.now().toString(36)}-${Math.floor(Math.random() * 1e9).toString(36)}`;

/** Polls `check` until it returns true or the timeout passes; never a fixed sleep. */
export async function waitFor(check: () => boolean | Promise<boolean>, { timeoutMs = 20_000, intervalMs = 10, what = 'condition' } = {}): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** Fails (never skips) with a message that says what to start when ClickHouse does not answer /ping. */
export async function requireClickHouse(url: string = clickhouseUrl()): Promise<void> {
  let why: string;
  try {
    const res = await fetch(new URL('/ping', url), { signal: AbortSignal.timeout(5_000) });
    if (res.ok) return;
    why = `HTTP ${res.status} from /ping`;
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    why = cause?.code ?? cause?.message ?? (err as Error).message;
  }
  throw new Error(`ClickHouse is not reachable at ${url} (${why}). Start the real services with: bash scripts/services.sh up`);
}

/** A database name of its own for a test run (drop it at the end). */
export const uniqueDatabase = (prefix = 'switchyard_test'): string => `${prefix}_${Date.now().toString(36)}_${Math.floor(Math.random() * 1e9).toString(36)}`;
