import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openEmbeddedLog } from '../../lib/log/embedded/index.js';
import type { EventLog, Subscription } from '../../lib/log/port.js';
import { InMemoryRegistry } from '../../lib/registry/core.js';
import { createServiceContext, type ServiceContext } from '../../lib/runtime.js';
import { EventCodec } from '../../schemas/codec.js';
import type { InferenceRequested } from '../../schemas/generated/events.js';
import { tempDir } from '../../test/support/log-dir.js';
import { uniqueName, waitFor } from '../../test/support/services.js';
import { createGateway, type Gateway, type GatewayOptions } from './service.js';
import { appendResults, completed, failed, rejected, started, startTestWorker, type ResultInit } from './testing.js';

interface ErrorJson {
  error: { code: string; message: string; requestId?: string; reason?: string; retriable: boolean; retryAfterMs?: number; details?: { in: string; path: string; message: string }[] };
}
interface StatusJson {
  requestId: string;
  status: string;
  model: string | null;
  result?: { contentType: string; outputEncoding: string; output: unknown; cacheHit: boolean };
  error?: ErrorJson['error'];
}

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

async function gateway(options: GatewayOptions = {}): Promise<Gateway> {
  const g = await createGateway(ctx, options);
  gateways.push(g);
  await g.tracker.whenCaughtUp();
  return g;
}

async function worker(respond: (req: InferenceRequested) => ResultInit[] | Promise<ResultInit[]>) {
  const w = await startTestWorker(ctx, respond);
  subscriptions.push(w.subscription);
  return w;
}

const echo = (req: InferenceRequested) => [started(req), completed(req, Buffer.from(JSON.stringify({ echo: JSON.parse(req.input.toString()) })))];

const post = (g: Gateway, url: string, body: unknown, headers: Record<string, string> = {}) =>
  g.app.inject({ method: 'POST', url, payload: JSON.stringify(body), headers: { 'content-type': 'application/json', ...headers } });

const requestsInLog = async () => (await log.endOffsets(ctx.topics.requests.name)).reduce((a, b) => a + b, 0);

describe('gateway: validation', () => {
  it('answers 400 SY_ERR_GATEWAY_INVALID_REQUEST with every reason, and produces nothing', async () => {
    const g = await gateway();
    const res = await post(g, '/v1/requests', { input: 1, priority: 'URGENT', deadlineMs: 0, color: 'red', sessionId: 'has space' });
    expect(res.statusCode).toBe(400);
    const { error } = res.json<ErrorJson>();
    expect(error.code).toBe('SY_ERR_GATEWAY_INVALID_REQUEST');
    expect(error.retriable).toBe(false);
    const paths = error.details!.map((d) => d.path).sort();
    expect(paths).toEqual(['/color', '/deadlineMs', '/model', '/priority', '/sessionId']);
    expect(error.details!.find((d) => d.path === '/priority')!.message).toMatch(/CRITICAL, HIGH, NORMAL, LOW, BACKGROUND/);
    expect(error.details!.find((d) => d.path === '/model')!.message).toBe('is required');
    expect(await requestsInLog()).toBe(0);
  });

  it('checks input against contentType, deadlineMs against its cap, and the Idempotency-Key header', async () => {
    const g = await gateway({ maxDeadlineMs: 60_000 });
    const text = await post(g, '/v1/infer', { model: 'm', input: { not: 'a string' }, contentType: 'text/plain' });
    expect(text.statusCode).toBe(400);
    expect(text.json<ErrorJson>().error.details).toEqual([{ in: 'body', path: '/input', message: 'input must be a string for contentType text/plain' }]);
    const b64 = await post(g, '/v1/infer', { model: 'm', input: 'not base64!', contentType: 'image/png' });
    expect(b64.json<ErrorJson>().error.details![0]!.message).toMatch(/base64/);
    const far = await post(g, '/v1/infer', { model: 'm', input: 1, deadlineMs: 60_001 });
    expect(far.json<ErrorJson>().error.details).toEqual([{ in: 'body', path: '/deadlineMs', message: 'must be ≤ 60000' }]);
    const key = await post(g, '/v1/requests', { model: 'm', input: 1 }, { 'idempotency-key': 'has space' });
    expect(key.statusCode).toBe(400);
    expect(key.json<ErrorJson>().error.details![0]).toMatchObject({ in: 'headers', path: '/idempotency-key' });
    const badModel = await post(g, '/v1/requests', { model: '../etc', input: 1 });
    expect(badModel.json<ErrorJson>().error.details![0]).toMatchObject({ path: '/model' });
    expect(await requestsInLog()).toBe(0);
  });

  it('maps malformed JSON to 400, other media types to 415, unknown routes and ids to 404', async () => {
    const g = await gateway();
    const broken = await g.app.inject({ method: 'POST', url: '/v1/infer', payload: '{"model":', headers: { 'content-type': 'application/json' } });
    expect(broken.statusCode).toBe(400);
    expect(broken.json<ErrorJson>().error.code).toBe('SY_ERR_GATEWAY_INVALID_REQUEST');
    const xml = await g.app.inject({ method: 'POST', url: '/v1/infer', payload: '<x/>', headers: { 'content-type': 'application/xml' } });
    expect(xml.statusCode).toBe(415);
    expect(xml.json<ErrorJson>().error.code).toBe('SY_ERR_GATEWAY_UNSUPPORTED_MEDIA_TYPE');
    const nowhere = await g.app.inject('/v2/nothing');
    expect(nowhere.statusCode).toBe(404);
    expect(nowhere.json<ErrorJson>().error.code).toBe('SY_ERR_GATEWAY_NOT_FOUND');
    const unknown = await g.app.inject('/v1/requests/0190a0a0-0000-7000-8000-000000000000');
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json<ErrorJson>().error).toMatchObject({ code: 'SY_ERR_GATEWAY_NOT_FOUND', requestId: '0190a0a0-0000-7000-8000-000000000000' });
  });

  it('answers 413 for a body over the limit', async () => {
    const g = await gateway({ bodyLimit: 1024 });
    const res = await post(g, '/v1/requests', { model: 'm', input: 'x'.repeat(2048) });
    expect(res.statusCode).toBe(413);
    expect(res.json<ErrorJson>().error.code).toBe('SY_ERR_GATEWAY_PAYLOAD_TOO_LARGE');
  });

  it('answers 413 for a request within the body limit that would not fit the requests topic (the routers would dead-letter it), and produces nothing', async () => {
    const g = await gateway({ bodyLimit: 2 * 1024 * 1024 });
    const before = (await ctx.log.endOffsets(ctx.topics.requests.name)).reduce((a, b) => a + b, 0);
    const res = await post(g, '/v1/requests', { model: 'm', input: 'x'.repeat(950_000) });
    expect(res.statusCode).toBe(413);
    expect(res.json<ErrorJson>().error).toMatchObject({ code: 'SY_ERR_GATEWAY_PAYLOAD_TOO_LARGE' });
    expect(res.json<ErrorJson>().error.message).toMatch(/at most 900000/);
    expect((await ctx.log.endOffsets(ctx.topics.requests.name)).reduce((a, b) => a + b, 0)).toBe(before);
  });
});

describe('gateway: async requests', () => {
  it('answers 202 with the id and a Location, produces InferenceRequested, and GET follows accepted → started → completed', async () => {
    const g = await gateway();
    const res = await post(g, '/v1/requests', { model: 'sentiment', input: { text: 'hi' }, sessionId: 's-1', priority: 'HIGH', zone: 'eu-1', tenant: 'acme', parameters: { top_k: 3, raw: true }, deadlineMs: 5_000 }, {
      traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
    });
    expect(res.statusCode).toBe(202);
    const body = res.json<{ requestId: string; status: string; location: string }>();
    expect(body.status).toBe('accepted');
    expect(res.headers.location).toBe(`/v1/requests/${body.requestId}`);
    expect(body.location).toBe(res.headers.location);

    // The event on `requests`: keyed by the session, as DESIGN.md says.
    const [record] = (await Promise.all((await log.endOffsets(ctx.topics.requests.name)).map((end, partition) => (end > 0 ? log.read({ topic: ctx.topics.requests.name, partition, from: 0 }) : [])))).flat();
    expect(record!.key!.toString()).toBe('s-1');
    const event = (await ctx.codec.decode(record!.value!)) as InferenceRequested;
    expect(event).toMatchObject({
      type: 'InferenceRequested',
      requestId: body.requestId,
      model: 'sentiment',
      contentType: 'application/json',
      sessionId: 's-1',
      priority: 'HIGH',
      zone: 'eu-1',
      tenant: 'acme',
      source: 'GATEWAY',
      parameters: { top_k: '3', raw: 'true' },
      traceId: '0af7651916cd43dd8448eb211c80319c',
      idempotencyKey: null,
      allowFallback: true,
      cacheable: true,
    });
    expect(JSON.parse(Buffer.from(event.input).toString())).toEqual({ text: 'hi' });
    expect(event.deadlineAt! - event.occurredAt).toBe(5_000);

    const get = async () => (await g.app.inject(body.location)).json<StatusJson>();
    expect((await get()).status).toBe('accepted');
    await appendResults(ctx, [started(event)]);
    await waitFor(async () => (await get()).status === 'started', { what: 'started' });
    await appendResults(ctx, [completed(event, Buffer.from('{"label":"positive"}'))]);
    await waitFor(async () => (await get()).status === 'completed', { what: 'completed' });
    expect(await get()).toMatchObject({ model: 'sentiment', result: { outputEncoding: 'json', output: { label: 'positive' } } });
  });

  it('keys a request without a session by its requestId', async () => {
    const g = await gateway();
    const { requestId } = (await post(g, '/v1/requests', { model: 'm', input: 'x', contentType: 'text/plain' })).json<{ requestId: string }>();
    const ends = await log.endOffsets(ctx.topics.requests.name);
    const partition = ends.findIndex((e) => e > 0);
    const [record] = await log.read({ topic: ctx.topics.requests.name, partition, from: 0 });
    expect(record!.key!.toString()).toBe(requestId);
    expect(Buffer.from(((await ctx.codec.decode(record!.value!)) as InferenceRequested).input).toString()).toBe('x');
  });
});

describe('gateway: sync requests', () => {
  it('waits for the worker and answers 200 with the decoded output', async () => {
    const g = await gateway();
    await worker(echo);
    const res = await post(g, '/v1/infer', { model: 'echo', input: { a: 1 } });
    expect(res.statusCode).toBe(200);
    const body = res.json<StatusJson>();
    expect(body).toMatchObject({ status: 'completed', model: 'echo', result: { contentType: 'application/json', outputEncoding: 'json', output: { echo: { a: 1 } }, cacheHit: false } });
    expect(res.headers.location).toBe(`/v1/requests/${body.requestId}`);
    expect((await g.app.inject(`/v1/requests/${body.requestId}`)).json<StatusJson>().status).toBe('completed');
  });

  it("says degraded (a body field and x-switchyard-degraded) when the model's fallback answered, and passes maxAttempts on", async () => {
    const g = await gateway();
    const seen: number[] = [];
    await worker((req) => {
      seen.push(req.maxAttempts ?? -1);
      return [completed(req, Buffer.from('1'), req.model === 'big' ? { model: 'small' } : {})];
    });
    const fellBack = await post(g, '/v1/infer', { model: 'big', input: 1, maxAttempts: 2 });
    expect(fellBack.statusCode).toBe(200);
    expect(fellBack.json<StatusJson>()).toMatchObject({ model: 'small', degraded: true });
    expect(fellBack.headers['x-switchyard-degraded']).toBe('true');
    const direct = await post(g, '/v1/infer', { model: 'small', input: 1 });
    expect(direct.json<StatusJson>()).toMatchObject({ model: 'small', degraded: false });
    expect(direct.headers['x-switchyard-degraded']).toBeUndefined();
    expect(seen).toEqual([2, -1]);
    expect((await post(g, '/v1/infer', { model: 'small', input: 1, maxAttempts: 0 })).statusCode).toBe(400);
  });

  it('decodes text outputs as strings and binary outputs as base64', async () => {
    const g = await gateway();
    await worker((req) => [
      completed(req, req.model === 'text' ? Buffer.from('héllo') : Buffer.from([0, 255, 1]), { contentType: req.model === 'text' ? 'text/plain; charset=utf-8' : 'application/octet-stream' }),
    ]);
    const text = (await post(g, '/v1/infer', { model: 'text', input: 1 })).json<StatusJson>();
    expect(text.result).toMatchObject({ outputEncoding: 'text', output: 'héllo' });
    const bin = (await post(g, '/v1/infer', { model: 'bin', input: 1 })).json<StatusJson>();
    expect(bin.result).toMatchObject({ outputEncoding: 'base64', output: Buffer.from([0, 255, 1]).toString('base64') });
  });

  it('answers 504 with the request id and a Location when no result comes before the deadline', async () => {
    const g = await gateway();
    const started = Date.now();
    const res = await post(g, '/v1/infer', { model: 'slow', input: 1, deadlineMs: 150 });
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
    expect(res.statusCode).toBe(504);
    const { error } = res.json<ErrorJson>();
    expect(error).toMatchObject({ code: 'SY_ERR_GATEWAY_TIMEOUT', retriable: true });
    expect(error.requestId).toMatch(/^[0-9a-f-]{36}$/);
    expect(res.headers.location).toBe(`/v1/requests/${error.requestId}`);
    expect((await g.app.inject(res.headers.location as string)).json<StatusJson>().status).toBe('accepted');
  });

  it('caps the wait at maxSyncWaitMs', async () => {
    const g = await gateway({ maxSyncWaitMs: 100 });
    const res = await post(g, '/v1/infer', { model: 'slow', input: 1, deadlineMs: 60_000 });
    expect(res.statusCode).toBe(504);
  });

  it('maps a shed rejection to 429 with Retry-After, and other outcomes by the table', async () => {
    const g = await gateway();
    await worker((req) => {
      const outcome = JSON.parse(req.input.toString()) as string;
      switch (outcome) {
        case 'shed':
          return [rejected(req, 'SHED', 2_500)];
        case 'no-capacity':
          return [rejected(req, 'NO_CAPACITY')];
        case 'late':
          return [rejected(req, 'DEADLINE_EXCEEDED')];
        case 'unknown-model':
          return [rejected(req, 'UNKNOWN_MODEL')];
        case 'backend':
          return [started(req), failed(req, 'BACKEND_ERROR', false)];
        case 'digest':
          return [failed(req, 'DIGEST_MISMATCH', false)];
        default:
          return [failed(req, 'DEADLINE_EXCEEDED', false)];
      }
    });
    const run = async (input: string) => {
      const res = await post(g, '/v1/infer', { model: 'm', input });
      return { status: res.statusCode, headers: res.headers, error: res.json<ErrorJson>().error };
    };
    const shed = await run('shed');
    expect(shed.status).toBe(429);
    expect(shed.headers['retry-after']).toBe('3');
    expect(shed.error).toMatchObject({ code: 'SY_ERR_REJECTED_OVERLOAD', reason: 'SHED', retriable: true, retryAfterMs: 2_500 });
    expect(shed.headers.location).toBe(`/v1/requests/${shed.error.requestId}`);
    expect(await run('no-capacity')).toMatchObject({ status: 503, error: { code: 'SY_ERR_REJECTED_NO_CAPACITY', retriable: true } });
    expect(await run('late')).toMatchObject({ status: 504, error: { code: 'SY_ERR_REJECTED_DEADLINE_EXCEEDED' } });
    expect(await run('unknown-model')).toMatchObject({ status: 404, error: { code: 'SY_ERR_REJECTED_UNKNOWN_MODEL', retriable: false } });
    expect(await run('backend')).toMatchObject({ status: 502, error: { code: 'SY_ERR_INFERENCE_FAILED', reason: 'BACKEND_ERROR', retriable: false } });
    expect(await run('digest')).toMatchObject({ status: 500, error: { code: 'SY_ERR_INFERENCE_FAILED', reason: 'DIGEST_MISMATCH' } });
    const deadline = await run('worker-deadline');
    expect(deadline).toMatchObject({ status: 504, error: { code: 'SY_ERR_INFERENCE_DEADLINE_EXCEEDED' } });
    // GET shows the same error under status 200.
    const get = (await g.app.inject(`/v1/requests/${shed.error.requestId}`)).json<StatusJson>();
    expect(get).toMatchObject({ status: 'rejected', error: { code: 'SY_ERR_REJECTED_OVERLOAD', reason: 'SHED' } });
  });

  it('answers 503 SY_ERR_GATEWAY_BUSY past maxWaiters, without producing', async () => {
    const g = await gateway({ results: { maxWaiters: 1 } });
    const first = post(g, '/v1/infer', { model: 'slow', input: 1, deadlineMs: 300 });
    await waitFor(() => g.tracker.waiting === 1, { what: 'one waiter' });
    const second = await post(g, '/v1/infer', { model: 'slow', input: 2 });
    expect(second.statusCode).toBe(503);
    expect(second.json<ErrorJson>().error).toMatchObject({ code: 'SY_ERR_GATEWAY_BUSY', retriable: true });
    expect(second.headers['retry-after']).toBe('1');
    expect((await first).statusCode).toBe(504);
    expect(await requestsInLog()).toBe(1);
  });
});

describe('gateway: Idempotency-Key', () => {
  it('produces once for a repeated key and returns the same result', async () => {
    const g = await gateway();
    const w = await worker(echo);
    const body = { model: 'echo', input: { n: 1 }, tenant: 'acme' };
    const key = { 'idempotency-key': 'order-42' };
    const [a, b] = await Promise.all([post(g, '/v1/infer', body, key), post(g, '/v1/infer', { tenant: 'acme', input: { n: 1 }, model: 'echo' }, key)]);
    expect(a.statusCode).toBe(200);
    expect(b.statusCode).toBe(200);
    expect(b.json<StatusJson>()).toEqual(a.json<StatusJson>());
    const again = await post(g, '/v1/infer', body, key);
    expect(again.statusCode).toBe(200);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.json<StatusJson>()).toEqual(a.json<StatusJson>());
    const async = await post(g, '/v1/requests', body, key);
    expect(async.statusCode).toBe(202);
    expect(async.json()).toMatchObject({ requestId: a.json<StatusJson>().requestId, status: 'completed' });
    expect(await requestsInLog()).toBe(1);
    expect(w.seen).toHaveLength(1);
    expect(w.seen[0]!.idempotencyKey).toBe('order-42');
  });

  it('answers 422 for the same key with a different body, and scopes keys by tenant', async () => {
    const g = await gateway();
    const key = { 'idempotency-key': 'k-1' };
    const first = await post(g, '/v1/requests', { model: 'm', input: 1 }, key);
    expect(first.statusCode).toBe(202);
    const other = await post(g, '/v1/requests', { model: 'm', input: 2 }, key);
    expect(other.statusCode).toBe(422);
    expect(other.json<ErrorJson>().error).toMatchObject({ code: 'SY_ERR_GATEWAY_IDEMPOTENCY_MISMATCH', requestId: first.json<{ requestId: string }>().requestId });
    const tenant = await post(g, '/v1/requests', { model: 'm', input: 2, tenant: 'acme' }, key);
    expect(tenant.statusCode).toBe(202);
    expect(tenant.json<{ requestId: string }>().requestId).not.toBe(first.json<{ requestId: string }>().requestId);
    expect(await requestsInLog()).toBe(2);
  });

  it('names the same request from another gateway instance and answers its known result', async () => {
    const g1 = await gateway();
    await worker(echo);
    const body = { model: 'echo', input: 'same' };
    const a = await post(g1, '/v1/infer', body, { 'idempotency-key': 'shared' });
    expect(a.statusCode).toBe(200);
    const g2 = await gateway(); // started after the result: finds it in its lookback
    const b = await post(g2, '/v1/infer', body, { 'idempotency-key': 'shared' });
    expect(b.statusCode).toBe(200);
    expect(b.json<StatusJson>().requestId).toBe(a.json<StatusJson>().requestId);
    expect(b.headers['idempotent-replayed']).toBe('true');
    expect(await requestsInLog()).toBe(1);
  });
});

describe('gateway: operations', () => {
  it('serves the OpenAPI document with every route', async () => {
    const g = await gateway();
    const res = await g.app.inject('/docs/json');
    expect(res.statusCode).toBe(200);
    const doc = res.json<{ openapi: string; paths: Record<string, Record<string, { requestBody?: unknown; responses: Record<string, unknown> }>> }>();
    expect(doc.openapi).toMatch(/^3\./);
    expect(Object.keys(doc.paths).sort()).toEqual(['/healthz', '/metrics', '/readyz', '/v1/infer', '/v1/requests', '/v1/requests/{id}']);
    expect(Object.keys(doc.paths['/v1/infer']!['post']!.responses)).toEqual(expect.arrayContaining(['200', '4XX', '5XX']));
    expect(JSON.stringify(doc.paths['/v1/requests']!['post']!.requestBody)).toContain('deadlineMs');
  });

  it('exposes request counts, latency, outcomes and waiters on /metrics', async () => {
    const g = await gateway();
    await worker(echo);
    await post(g, '/v1/infer', { model: 'echo', input: 1 });
    await post(g, '/v1/requests', { input: 1 });
    const text = (await g.app.inject('/metrics')).body;
    expect(text).toContain('switchyard_gateway_http_requests_total{route="/v1/infer",method="POST",status="200"} 1');
    expect(text).toContain('switchyard_gateway_http_requests_total{route="/v1/requests",method="POST",status="400"} 1');
    expect(text).toMatch(/switchyard_gateway_http_request_duration_seconds_count\{route="\/v1\/infer",method="POST"\} 1/);
    expect(text).toContain('switchyard_gateway_outcomes_total{endpoint="sync",outcome="completed"} 1');
    expect(text).toContain('switchyard_gateway_waiting_requests 0');
    expect(text).toMatch(/switchyard_gateway_tracked_requests [1-9]/);
  });

  it('is healthy, and ready once the log answers and the tracker has caught up', async () => {
    const g = await gateway();
    expect((await g.app.inject('/healthz')).json()).toEqual({ status: 'ok' });
    const ready = await g.app.inject('/readyz');
    expect(ready.statusCode).toBe(200);
    expect(ready.json()).toEqual({ status: 'ready', checks: { log: 'ok', results: 'ok' } });
    await log.close();
    const down = await g.app.inject('/readyz');
    expect(down.statusCode).toBe(503);
    expect(down.json<{ status: string; checks: { log: string } }>()).toMatchObject({ status: 'not_ready', checks: { log: expect.stringMatching(/^unreachable/) } });
  });
});

describe('gateway: results tracker', () => {
  it('knows recent requests after a restart (lookback) and forgets past its bounds', async () => {
    const g1 = await gateway();
    await worker(echo);
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await post(g1, '/v1/infer', { model: 'echo', input: i })).json<StatusJson>().requestId);
    await g1.close();
    gateways.splice(gateways.indexOf(g1), 1);

    const restarted = await gateway();
    for (const id of ids) expect((await restarted.app.inject(`/v1/requests/${id}`)).json<StatusJson>().status).toBe('completed');

    const small = await gateway({ results: { maxEntries: 2 } });
    const known = await Promise.all(ids.map(async (id) => (await small.app.inject(`/v1/requests/${id}`)).statusCode));
    expect(known.filter((s) => s === 200)).toHaveLength(2); // the LRU's bound (lookback folds partitions concurrently)

    const none = await gateway({ results: { lookbackRecords: 0 } });
    expect((await none.app.inject(`/v1/requests/${ids[4]}`)).statusCode).toBe(404);
  });

  it('skips and counts undecodable records of results (their dead letters are the sink\'s) and keeps folding', async () => {
    const g = await gateway();
    await ctx.log.append([{ topic: ctx.topics.results.name, key: 'x', value: Buffer.from('not avro') }]);
    const { requestId } = (await post(g, '/v1/requests', { model: 'm', input: 1 })).json<{ requestId: string }>();
    await appendResults(ctx, [completed({ requestId, model: 'm' }, Buffer.from('1'))]);
    await waitFor(async () => (await g.app.inject(`/v1/requests/${requestId}`)).json<StatusJson>().status === 'completed', { what: 'completed' });
    expect(g.tracker.stats().undecodable).toBe(1);
    expect((await log.endOffsets(ctx.topics.deadletter.name))[0]).toBe(0);
  });
});
