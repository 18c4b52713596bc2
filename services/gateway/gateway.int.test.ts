import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openKafkaLog } from '../../lib/log/kafka/index.js';
import type { EventLog, Subscription } from '../../lib/log/port.js';
import { InMemoryRegistry } from '../../lib/registry/core.js';
import { LogBackedRegistry } from '../../lib/registry/log-backed.js';
import { createServiceContext, type ServiceContext } from '../../lib/runtime.js';
import { EventCodec } from '../../schemas/codec.js';
import type { InferenceRequested } from '../../schemas/generated/events.js';
import { kafkaBrokers, requireKafka, uniqueName, waitFor } from '../../test/support/services.js';
import { createGateway, type Gateway } from './service.js';
import { completed, started, startTestWorker } from './testing.js';

interface StatusJson {
  requestId: string;
  status: string;
  result?: { outputEncoding: string; output: unknown };
}

const echo = (req: InferenceRequested) => [started(req), completed(req, Buffer.from(JSON.stringify({ echo: JSON.parse(Buffer.from(req.input).toString()) })))];

const requestsInLog = async (log: EventLog, ctx: ServiceContext) => (await log.endOffsets(ctx.topics.requests.name)).reduce((a, b) => a + b, 0);

describe('gateway on a real Kafka broker (in process)', () => {
  let log: EventLog;
  let ctx: ServiceContext;
  const gateways: Gateway[] = [];
  const subscriptions: Subscription[] = [];

  beforeAll(async () => {
    await requireKafka();
    log = await openKafkaLog({ brokers: kafkaBrokers() });
    const codec = await EventCodec.create({ registry: new InMemoryRegistry() });
    ctx = createServiceContext({ log, codec, topicPrefix: `${uniqueName('gw')}.`, lanes: 4 });
    await log.ensureTopics([ctx.topics.requests, ctx.topics.results, ctx.topics.deadletter]);
    const w = await startTestWorker(ctx, echo);
    subscriptions.push(w.subscription);
  });

  afterAll(async () => {
    for (const s of subscriptions) await s.close();
    for (const g of gateways) await g.close();
    await log?.close();
  });

  const gateway = async () => {
    const g = await createGateway(ctx);
    gateways.push(g);
    return g;
  };
  const post = (g: Gateway, url: string, body: unknown, headers: Record<string, string> = {}) =>
    g.app.inject({ method: 'POST', url, payload: JSON.stringify(body), headers: { 'content-type': 'application/json', ...headers } });

  it('answers a sync request sent the moment a new gateway has subscribed (before Kafka resolved "latest")', async () => {
    const g = await gateway(); // no wait for catch-up or settle: the settle reads cover the window
    const res = await post(g, '/v1/infer', { model: 'echo', input: { n: 1 }, deadlineMs: 30_000 });
    expect(res.statusCode).toBe(200);
    expect(res.json<StatusJson>()).toMatchObject({ status: 'completed', result: { outputEncoding: 'json', output: { echo: { n: 1 } } } });
    await waitFor(() => g.tracker.isCaughtUp(), { what: 'lookback' });
    expect((await g.app.inject('/readyz')).statusCode).toBe(200);
  });

  it('accepts an async request and GET follows it to completed', async () => {
    const g = gateways[0]!;
    const res = await post(g, '/v1/requests', { model: 'echo', input: 'async', sessionId: 'sess-1' });
    expect(res.statusCode).toBe(202);
    const location = res.headers.location as string;
    await waitFor(async () => (await g.app.inject(location)).json<StatusJson>().status === 'completed', { what: 'completed', timeoutMs: 30_000 });
    expect((await g.app.inject(location)).json<StatusJson>().result).toMatchObject({ output: { echo: 'async' } });
  });

  it('produces a repeated Idempotency-Key once, across two gateway instances', async () => {
    const before = await requestsInLog(log, ctx);
    const [g1, g2] = [gateways[0]!, await gateway()];
    const body = { model: 'echo', input: 'once', tenant: 'acme' };
    const a = await post(g1, '/v1/infer', body, { 'idempotency-key': 'kafka-key' });
    expect(a.statusCode).toBe(200);
    // g2 folds g1's result from results (every instance reads every partition) and answers it.
    await waitFor(async () => (await g2.app.inject(`/v1/requests/${a.json<StatusJson>().requestId}`)).statusCode === 200, { what: 'g2 to see the result' });
    const b = await post(g2, '/v1/infer', body, { 'idempotency-key': 'kafka-key' });
    expect(b.statusCode).toBe(200);
    expect(b.headers['idempotent-replayed']).toBe('true');
    expect(b.json<StatusJson>().requestId).toBe(a.json<StatusJson>().requestId);
    expect(await requestsInLog(log, ctx)).toBe(before + 1);
  });

  it('knows recent requests after a restart from its lookback', async () => {
    const g1 = gateways[0]!;
    const { requestId } = (await post(g1, '/v1/infer', { model: 'echo', input: 'remember me' })).json<StatusJson>();
    const restarted = await gateway();
    await restarted.tracker.whenCaughtUp();
    expect((await restarted.app.inject(`/v1/requests/${requestId}`)).json<StatusJson>().status).toBe('completed');
  });
});

describe('switchyard gateway as its own process on Kafka', () => {
  let child: ChildProcess | undefined;
  let log: EventLog;
  let worker: Subscription | undefined;
  let stderr = '';

  beforeAll(async () => {
    await requireKafka();
    log = await openKafkaLog({ brokers: kafkaBrokers() });
  });

  afterAll(async () => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
    await worker?.close();
    await log?.close();
  });

  it('serves sync and async requests, answered by a worker through Kafka, and stops on SIGTERM', async () => {
    const prefix = `${uniqueName('gwproc')}.`;
    child = spawn(process.execPath, ['--import', 'tsx', 'cli/main.ts', '--brokers', kafkaBrokers().join(','), '--prefix', prefix, 'gateway', '--port', '0'], {
      cwd: new URL('../..', import.meta.url).pathname,
      env: { ...process.env, SWITCHYARD_LANES: '4', SWITCHYARD_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const lines = createInterface({ input: child.stdout! });
    const first = await Promise.race([
      once(lines, 'line').then(([line]) => line as string),
      once(child, 'exit').then(([code]) => {
        throw new Error(`gateway exited with ${code} before listening: ${stderr}`);
      }),
    ]);
    const { url, log: kind } = JSON.parse(first) as { url: string; log: string };
    expect(kind).toBe('kafka');

    // The process registered the schemas in <prefix>_schemas; the worker reads them from there.
    const registry = await LogBackedRegistry.open({ log, topic: `${prefix}_schemas` });
    const codec = await EventCodec.create({ registry });
    const ctx = createServiceContext({ log, codec, topicPrefix: prefix, lanes: 4 });
    worker = (await startTestWorker(ctx, echo)).subscription;

    const post = (path: string, body: unknown) => fetch(`${url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const sync = await post('/v1/infer', { model: 'echo', input: [1, 2, 3], deadlineMs: 30_000 });
    expect(sync.status).toBe(200);
    expect(((await sync.json()) as StatusJson).result).toMatchObject({ output: { echo: [1, 2, 3] } });

    const accepted = await post('/v1/requests', { model: 'echo', input: 'later' });
    expect(accepted.status).toBe(202);
    const location = accepted.headers.get('location')!;
    await waitFor(async () => ((await (await fetch(`${url}${location}`)).json()) as StatusJson).status === 'completed', { what: 'async completion', timeoutMs: 30_000 });

    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(metrics).toContain('switchyard_gateway_http_requests_total{route="/v1/infer",method="POST",status="200"} 1');
    expect(metrics).toContain('process_cpu_seconds_total');
    expect((await fetch(`${url}/readyz`)).status).toBe(200);

    child.kill('SIGTERM');
    const [code] = (await once(child, 'exit')) as [number | null];
    expect(code).toBe(0);
  });
});
