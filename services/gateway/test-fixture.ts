import { connect } from 'node:net';
import { afterEach, beforeEach } from 'vitest';
import { openEmbeddedLog } from '../../lib/log/embedded/index.js';
import type { EventLog, Subscription } from '../../lib/log/port.js';
import { InMemoryRegistry } from '../../lib/registry/core.js';
import { createServiceContext, type ServiceContext } from '../../lib/runtime.js';
import { EventCodec } from '../../schemas/codec.js';
import type { InferenceRequested } from '../../schemas/generated/events.js';
import { tempDir } from '../../test/support/log-dir.js';
import { uniqueName } from '../../test/support/services.js';
import { createGateway, type Gateway, type GatewayOptions } from './service.js';
import { startTestWorker, type ResultInit } from './testing.js';

/**
 * Test fixture for the gateway's hostile-input and auth tests: an embedded log and context per
 * test, gateways and stand-in workers closed after it, and a raw-socket client for what
 * `inject` cannot send (Node's own parser limits and timeouts).
 */

export interface ErrorJson {
  error: { code: string; message: string; requestId?: string; reason?: string; retriable: boolean; retryAfterMs?: number; details?: { in: string; path: string; message: string }[] };
}

export interface GatewayFixture {
  readonly log: EventLog;
  readonly ctx: ServiceContext;
  gateway(options?: GatewayOptions): Promise<Gateway>;
  worker(respond: (req: InferenceRequested) => ResultInit[] | Promise<ResultInit[]>): Promise<{ seen: InferenceRequested[] }>;
  requestsInLog(): Promise<number>;
}

export function useGatewayFixture(): GatewayFixture {
  let log: EventLog;
  let ctx: ServiceContext;
  let remove: () => Promise<void>;
  const gateways: Gateway[] = [];
  const subscriptions: Subscription[] = [];

  beforeEach(async () => {
    const dir = await tempDir('sy-gateway-');
    remove = dir.remove;
    log = await openEmbeddedLog({ dir: dir.dir, fsync: 'never', retryBackoffMs: 10 });
    const codec = await EventCodec.create({ registry: new InMemoryRegistry() });
    ctx = createServiceContext({ log, codec, topicPrefix: `${uniqueName('gw')}.`, lanes: 4 });
  });

  afterEach(async () => {
    for (const s of subscriptions.splice(0)) await s.close();
    for (const g of gateways.splice(0)) await g.close();
    await log.close();
    await remove();
  });

  return {
    get log() {
      return log;
    },
    get ctx() {
      return ctx;
    },
    async gateway(options = {}) {
      const g = await createGateway(ctx, options);
      gateways.push(g);
      await g.tracker.whenCaughtUp();
      return g;
    },
    async worker(respond) {
      const w = await startTestWorker(ctx, respond);
      subscriptions.push(w.subscription);
      return w;
    },
    async requestsInLog() {
      return (await log.endOffsets(ctx.topics.requests.name)).reduce((a, b) => a + b, 0);
    },
  };
}

export interface RawAnswer {
  /** Everything the server sent. */
  raw: string;
  status: number | undefined;
  headers: Record<string, string>;
  body: string;
  /** When the server closed the connection, ms after the first write. */
  closedAfterMs: number;
}

/** A TCP connection to `url` to write raw HTTP on, and what the server sends until it closes. */
export interface RawConnection {
  write(data: string | Buffer): void;
  answer: Promise<RawAnswer>;
}

export function rawConnection(url: string, { timeoutMs = 20_000 } = {}): RawConnection {
  const { hostname, port } = new URL(url);
  const socket = connect({ host: hostname, port: Number(port) });
  const chunks: Buffer[] = [];
  let started = 0;
  const answer = new Promise<RawAnswer>((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`the server did not close the connection within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.on('data', (c) => chunks.push(c));
    socket.on('error', () => {}); // a reset after the answer is fine: 'close' follows
    socket.on('close', () => {
      clearTimeout(timer);
      const raw = Buffer.concat(chunks).toString('latin1');
      const split = raw.indexOf('\r\n\r\n');
      const head = split < 0 ? raw : raw.slice(0, split);
      const [statusLine, ...lines] = head.split('\r\n');
      const headers: Record<string, string> = {};
      for (const l of lines) {
        const colon = l.indexOf(':');
        if (colon > 0) headers[l.slice(0, colon).trim().toLowerCase()] = l.slice(colon + 1).trim();
      }
      const status = /^HTTP\/1\.1 (\d{3})/.exec(statusLine ?? '')?.[1];
      resolve({ raw, status: status === undefined ? undefined : Number(status), headers, body: split < 0 ? '' : raw.slice(split + 4), closedAfterMs: Date.now() - started });
    });
  });
  return {
    write: (data) => {
      if (started === 0) started = Date.now();
      socket.write(data);
    },
    answer,
  };
}

/**
 * Send `data` on a fresh TCP connection to `url` (and nothing more: the connection stays
 * half-finished if `data` is) and collect what the server sends until it closes.
 */
export function rawRequest(url: string, data: string | Buffer, options: { timeoutMs?: number } = {}): Promise<RawAnswer> {
  const c = rawConnection(url, options);
  c.write(data);
  return c.answer;
}
