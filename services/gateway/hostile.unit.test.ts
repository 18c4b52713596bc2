import { describe, expect, it } from 'vitest';
import { waitFor } from '../../test/support/services.js';
import { jsonNestingExceeds } from './payload.js';
import { rawConnection, rawRequest, useGatewayFixture, type ErrorJson } from './test-fixture.js';
import { completed, failed, started } from './testing.js';

// What a hostile client sends, and what it must get: a 4xx in the gateway's own error format
// `{ error: { code, message, … } }` — never a 500, never the framework's or Node's format, never
// the whole URL echoed back — and nothing produced to the log.

const fx = useGatewayFixture();

const json = (payload: string) => ({ method: 'POST' as const, url: '/v1/requests', payload, headers: { 'content-type': 'application/json' } });

/** The body parses as our error format with this code. */
function ourError(body: string, code: string): ErrorJson['error'] {
  const parsed = JSON.parse(body) as ErrorJson;
  expect(Object.keys(parsed)).toEqual(['error']);
  expect(parsed.error.code).toBe(code);
  expect(typeof parsed.error.message).toBe('string');
  expect(typeof parsed.error.retriable).toBe('boolean');
  return parsed.error;
}

describe('gateway under hostile input (inject)', () => {
  it('answers 400 in our format for input nested 4,500+ levels deep, and accepts maxJsonDepth levels', async () => {
    const g = await fx.gateway();
    for (const [open, close] of [['[', ']'], ['{"a":', '}']] as const) {
      const deep = `${open.repeat(5_000)}1${close.repeat(5_000)}`;
      const res = await g.app.inject(json(`{"model":"m","input":${deep}}`));
      expect(res.statusCode).toBe(400);
      const error = ourError(res.body, 'SY_ERR_GATEWAY_INVALID_REQUEST');
      expect(error.details).toEqual([{ in: 'body', path: '', message: 'is nested deeper than 64 levels' }]);
    }
    // The body object is level 1: an input of 63 levels makes 64 in all.
    const ok = await g.app.inject(json(`{"model":"m","input":${'['.repeat(63)}${']'.repeat(63)}}`));
    expect(ok.statusCode).toBe(202);
    const over = await g.app.inject(json(`{"model":"m","input":${'['.repeat(64)}${']'.repeat(64)}}`));
    expect(over.statusCode).toBe(400);
    expect(await fx.requestsInLog()).toBe(1);
  });

  it('counts nesting outside strings only', () => {
    expect(jsonNestingExceeds(`{"a":"${'['.repeat(500)}"}`, 2)).toBe(false);
    expect(jsonNestingExceeds(`{"a":"\\"${'['.repeat(500)}"}`, 2)).toBe(false);
    expect(jsonNestingExceeds('[[[1]]]', 3)).toBe(false);
    expect(jsonNestingExceeds('[[[[1]]]]', 3)).toBe(true);
    expect(jsonNestingExceeds('[[1],[1],[1],[1]]', 2)).toBe(false);
  });

  it('answers 422 SY_ERR_INFERENCE_INVALID_INPUT when the model refuses the input (not 500)', async () => {
    const g = await fx.gateway();
    await fx.worker((req) => [started(req), failed(req, 'INVALID_INPUT', false)]);
    const res = await g.app.inject({ method: 'POST', url: '/v1/infer', payload: JSON.stringify({ model: 'm', input: 'not what the model takes' }), headers: { 'content-type': 'application/json' } });
    expect(res.statusCode).toBe(422);
    const error = ourError(res.body, 'SY_ERR_INFERENCE_INVALID_INPUT');
    expect(error).toMatchObject({ reason: 'INVALID_INPUT', retriable: false });
    const get = await g.app.inject(`/v1/requests/${error.requestId}`);
    expect(get.json<{ status: string; error: ErrorJson['error'] }>()).toMatchObject({ status: 'failed', error: { code: 'SY_ERR_INFERENCE_INVALID_INPUT' } });
  });

  it('answers 415 for a text/plain body, as the README promises (and for a form)', async () => {
    const g = await fx.gateway();
    for (const type of ['text/plain', 'text/plain; charset=utf-8', 'application/x-www-form-urlencoded']) {
      const res = await g.app.inject({ method: 'POST', url: '/v1/requests', payload: '{"model":"m","input":1}', headers: { 'content-type': type } });
      expect(res.statusCode, type).toBe(415);
      expect(ourError(res.body, 'SY_ERR_GATEWAY_UNSUPPORTED_MEDIA_TYPE').message).toMatch(/send application\/json/);
    }
    expect(await fx.requestsInLog()).toBe(0);
  });

  it('answers an empty JSON body, a __proto__ key and malformed JSON with 400 in our format', async () => {
    const g = await fx.gateway();
    expect(ourError((await g.app.inject(json(''))).body, 'SY_ERR_GATEWAY_INVALID_REQUEST').details).toEqual([{ in: 'body', path: '', message: 'is empty; send a JSON object' }]);
    const proto = await g.app.inject(json('{"model":"m","input":{"__proto__":{"polluted":true}}}'));
    expect(proto.statusCode).toBe(400);
    ourError(proto.body, 'SY_ERR_GATEWAY_INVALID_REQUEST');
    const broken = await g.app.inject(json(`{"model":"m","input":"${'x'.repeat(10_000)}`));
    expect(broken.statusCode).toBe(400);
    expect(broken.body.length).toBeLessThan(1_000);
  });

  it('answers an 8 KB id with 414 and a %00 or malformed escape in the path with 400, without echoing them', async () => {
    const g = await fx.gateway();
    const long = await g.app.inject(`/v1/requests/${'a'.repeat(8_192)}`);
    expect(long.statusCode).toBe(414);
    expect(ourError(long.body, 'SY_ERR_GATEWAY_URI_TOO_LONG').message).toBe('a path segment is longer than 1024 characters');
    expect(long.body.length).toBeLessThan(300);
    const nul = await g.app.inject('/v1/requests/a%00b');
    expect(nul.statusCode).toBe(400);
    expect(ourError(nul.body, 'SY_ERR_GATEWAY_INVALID_REQUEST').details?.[0]).toMatchObject({ in: 'params', path: '/id' });
    const escape = await g.app.inject('/v1/requests/a%zzb');
    expect(escape.statusCode).toBe(400);
    expect(ourError(escape.body, 'SY_ERR_GATEWAY_INVALID_REQUEST').message).not.toContain('%zz');
    const nowhere = await g.app.inject(`/${'n'.repeat(5_000)}`);
    expect(nowhere.statusCode).toBe(404);
    expect(nowhere.body.length).toBeLessThan(400);
  });

  it('answers a URL over maxUrlLength with 414 in our format', async () => {
    const g = await fx.gateway();
    const res = await g.app.inject(`/v1/requests/x?${'q'.repeat(10_000)}`);
    expect(res.statusCode).toBe(414);
    expect(ourError(res.body, 'SY_ERR_GATEWAY_URI_TOO_LONG').message).toBe('the URL is longer than 8192 characters');
    expect(res.body).not.toContain('qqqq');
  });

  it('refuses model names that read as paths (.., a leading or doubled /) and accepts org/name', async () => {
    const g = await fx.gateway();
    for (const model of ['a/../../../etc/passwd', '../etc', '/etc/passwd', 'a//b', 'a/b/c', 'a/', 'a..b', 'org/..']) {
      const res = await g.app.inject(json(JSON.stringify({ model, input: 1 })));
      expect(res.statusCode, model).toBe(400);
      expect(ourError(res.body, 'SY_ERR_GATEWAY_INVALID_REQUEST').details?.map((d) => d.path)).toContain('/model');
    }
    const pinned = await g.app.inject(json(JSON.stringify({ model: 'm', modelVersion: '../v1', input: 1 })));
    expect(pinned.statusCode).toBe(400);
    for (const model of ['sentiment-small', 'meta-llama/Llama-3.1-8B', 'embed.v2']) {
      expect((await g.app.inject(json(JSON.stringify({ model, input: 1 })))).statusCode, model).toBe(202);
    }
    expect(await fx.requestsInLog()).toBe(3);
  });
});

describe('gateway under hostile input (a real socket: what Node itself refuses)', () => {
  const listen = async (options: Parameters<typeof fx.gateway>[0] = {}) => {
    const g = await fx.gateway(options);
    const url = await g.app.listen({ host: '127.0.0.1', port: 0 });
    return { g, url };
  };

  it('answers a 100 KB URL with 414 in our format, without echoing it', async () => {
    const { url } = await listen();
    const res = await rawRequest(url, `GET /v1/requests/${'a'.repeat(100_000)} HTTP/1.1\r\nhost: x\r\n\r\n`);
    expect(res.status).toBe(414);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    ourError(res.body, 'SY_ERR_GATEWAY_URI_TOO_LONG');
    expect(res.raw.length).toBeLessThan(500);
  });

  it('answers 20 KB of headers with 431, and bytes that are not HTTP with 400, in our format', async () => {
    const { url } = await listen();
    const big = await rawRequest(url, `GET /healthz HTTP/1.1\r\nhost: x\r\nx-junk: ${'j'.repeat(20_000)}\r\n\r\n`);
    expect(big.status).toBe(431);
    ourError(big.body, 'SY_ERR_GATEWAY_HEADERS_TOO_LARGE');
    const junk = await rawRequest(url, 'HELLO THERE\r\n\r\n');
    expect(junk.status).toBe(400);
    expect(ourError(junk.body, 'SY_ERR_GATEWAY_INVALID_REQUEST').details?.[0]?.in).toBe('request');
  });

  it('answers a 413 in our format when Content-Length announces more than bodyLimit', async () => {
    const { url } = await listen({ bodyLimit: 1_024 });
    const res = await rawRequest(url, `POST /v1/requests HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 52428800\r\nconnection: close\r\n\r\n{"model":`);
    expect(res.status).toBe(413);
    ourError(res.body, 'SY_ERR_GATEWAY_PAYLOAD_TOO_LARGE');
  });

  it('answers an unknown Expect with 417 in our format', async () => {
    const { url } = await listen();
    const res = await rawRequest(url, 'POST /v1/requests HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 2\r\nexpect: 200-maybe\r\n\r\n{}');
    expect(res.status).toBe(417);
    ourError(res.body, 'SY_ERR_GATEWAY_EXPECTATION_FAILED');
  });

  it('closes a connection that sends headers but never finishes its body: 408 in our format after requestTimeoutMs', async () => {
    const { url } = await listen({ requestTimeoutMs: 600, headersTimeoutMs: 300 });
    const res = await rawRequest(url, 'POST /v1/requests HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{"model":"m",', { timeoutMs: 10_000 });
    expect(res.status).toBe(408);
    ourError(res.body, 'SY_ERR_GATEWAY_REQUEST_TIMEOUT');
    expect(res.closedAfterMs).toBeGreaterThanOrEqual(550);
    expect(res.closedAfterMs).toBeLessThan(3_000);
    expect(await fx.requestsInLog()).toBe(0);
  });

  it('closes a connection that never finishes its headers: 408 after headersTimeoutMs', async () => {
    const { url } = await listen({ requestTimeoutMs: 5_000, headersTimeoutMs: 400 });
    const res = await rawRequest(url, 'GET /healthz HTTP/1.1\r\nhost: x\r\nx-slow: ', { timeoutMs: 10_000 });
    expect(res.status).toBe(408);
    ourError(res.body, 'SY_ERR_GATEWAY_REQUEST_TIMEOUT');
    expect(res.closedAfterMs).toBeLessThan(3_000);
  });

  it('answers a request that arrives while it shuts down with 503 in our format, and closes kept-alive connections', async () => {
    const { g, url } = await listen();
    // One request waits for a result that never comes (so closing waits for it); a second
    // connection has begun a request, and finishes it once closing has begun.
    const first = JSON.stringify({ model: 'm', input: 1, deadlineMs: 1_000 });
    const waiting = rawConnection(url);
    waiting.write(`POST /v1/infer HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${first.length}\r\n\r\n${first}`);
    const late = rawConnection(url);
    late.write('GET /v1/requests/x HTTP/1.1\r\nhost: x\r\n');
    await waitFor(async () => (await fx.requestsInLog()) === 1, { what: 'the first request in the log' });
    const closed = g.app.close();
    await new Promise((r) => setTimeout(r, 100));
    late.write('\r\n');
    const refused = await late.answer;
    expect(refused.status).toBe(503);
    expect(refused.headers['retry-after']).toBe('1');
    ourError(refused.body, 'SY_ERR_GATEWAY_SHUTTING_DOWN');
    // The request in flight is answered, with Connection: close, and the close completes.
    const answered = await waiting.answer;
    expect(answered.status).toBe(504);
    expect(answered.headers.connection).toBe('close');
    await closed;
  });

  it('does not count the wait for a sync result against requestTimeoutMs', async () => {
    const { url } = await listen({ requestTimeoutMs: 300, headersTimeoutMs: 200 });
    await fx.worker(async (req) => {
      await new Promise((r) => setTimeout(r, 1_200));
      return [started(req), completed(req, Buffer.from('"late but fine"'))];
    });
    const res = await fetch(`${url}/v1/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'm', input: 1 }) });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { result: { output: unknown } }).result.output).toBe('late but fine');
  });
});
