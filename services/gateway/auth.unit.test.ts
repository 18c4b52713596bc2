import { describe, expect, it } from 'vitest';
import { hashSecret } from '../../lib/auth/secret.js';
import { captureLogger } from '../../test/support/log-dir.js';
import { ApiKeyRing, modelAllowed, parseApiKeys, type ApiKey } from './auth.js';
import { startGateway, checkGatewayBinding } from './service.js';
import { useGatewayFixture, type ErrorJson } from './test-fixture.js';
import { completed, started } from './testing.js';
import { TokenBucket } from './token-bucket.js';

const SEARCH_KEY = 'sy_search_4f1c0e8a9b7d6c5e4f3a2b1c';
const BATCH_KEY = 'sy_batch_0a1b2c3d4e5f60718293a4b5';
const KEYS: ApiKey[] = [
  { id: 'search', sha256: hashSecret(SEARCH_KEY), allowedModels: ['sentiment-small', 'embed-*'] },
  { id: 'batch', sha256: hashSecret(BATCH_KEY), ratePerSecond: 0.01, burst: 2 },
];

describe('API key files', () => {
  it('reads YAML and JSON, a list or { keys }, and lower-cases the hashes', () => {
    const yaml = `keys:\n  - id: search\n    sha256: ${KEYS[0]!.sha256.toUpperCase()}\n    allowedModels: [sentiment-small, "embed-*"]\n  - id: batch\n    sha256: ${KEYS[1]!.sha256}\n    ratePerSecond: 0.01\n    burst: 2\n`;
    expect(parseApiKeys(yaml, 'keys.yaml')).toEqual(KEYS);
    expect(parseApiKeys(JSON.stringify(KEYS), 'keys.json')).toEqual(KEYS);
  });

  it('refuses plain keys, duplicates, bad hashes and unknown fields, naming the file', () => {
    expect(() => parseApiKeys(JSON.stringify([{ id: 'a', key: SEARCH_KEY }]), 'k.json')).toThrowError(/k\.json.*plain "key".*hash-key/);
    expect(() => parseApiKeys(JSON.stringify([KEYS[0], { ...KEYS[1], id: 'search' }]), 'k.json')).toThrowError(/"search" appears twice/);
    expect(() => parseApiKeys(JSON.stringify([KEYS[0], { ...KEYS[0], id: 'other' }]), 'k.json')).toThrowError(/same sha256/);
    expect(() => parseApiKeys(JSON.stringify([{ id: 'a', sha256: 'abc' }]), 'k.json')).toThrowError(expect.objectContaining({ code: 'SY_ERR_CONFIG' }));
    expect(() => parseApiKeys(JSON.stringify([{ ...KEYS[0], rate: 5 }]), 'k.json')).toThrowError(/expected/);
    expect(() => parseApiKeys('keys: [', 'k.yaml')).toThrowError(/not JSON or YAML/);
  });

  it('matches models by name, prefix* and *', () => {
    expect(modelAllowed(undefined, 'anything')).toBe(true);
    expect(modelAllowed(['a', 'embed-*'], 'embed-small')).toBe(true);
    expect(modelAllowed(['a', 'embed-*'], 'embedx')).toBe(false);
    expect(modelAllowed(['*'], 'x')).toBe(true);
    expect(modelAllowed(['a'], 'ab')).toBe(false);
  });
});

describe('token bucket (pure)', () => {
  it('admits a burst, then one per 1/rate, and says how long to wait', () => {
    const b = new TokenBucket(2, 3, 0);
    expect([b.take(0), b.take(0), b.take(0)]).toEqual([0, 0, 0]);
    expect(b.take(0)).toBe(500);
    expect(b.take(250)).toBe(250);
    expect(b.take(500)).toBe(0);
    expect(b.available(10_000)).toBe(3); // never more than the burst
    expect(() => new TokenBucket(0, 1, 0)).toThrow(RangeError);
    expect(() => new TokenBucket(1, 0, 0)).toThrow(RangeError);
  });

  it('ring: 403 for a model outside the list before any token is taken; 429 past the burst', () => {
    const ring = new ApiKeyRing(KEYS, 0);
    const batch = ring.authenticate({ authorization: `Bearer ${BATCH_KEY}` });
    const search = ring.authenticate({ 'x-api-key': SEARCH_KEY });
    expect(() => ring.admit(search, 'llama', 0)).toThrowError(expect.objectContaining({ statusCode: 403, reason: 'MODEL_NOT_ALLOWED' }));
    ring.admit(batch, 'llama', 0);
    ring.admit(batch, 'llama', 0);
    expect(() => ring.admit(batch, 'llama', 0)).toThrowError(expect.objectContaining({ statusCode: 429, retryAfterMs: 100_000 }));
    expect(() => ring.admit(batch, 'llama', 100_000)).not.toThrow();
  });
});

describe('gateway with API keys', () => {
  const fx = useGatewayFixture();
  const post = (g: Awaited<ReturnType<typeof fx.gateway>>, body: unknown, headers: Record<string, string> = {}, url = '/v1/requests') =>
    g.app.inject({ method: 'POST', url, payload: JSON.stringify(body), headers: { 'content-type': 'application/json', ...headers } });

  it('answers 401 with the reason for no key, an unknown key or another scheme, and produces nothing', async () => {
    const g = await fx.gateway({ apiKeys: KEYS });
    const none = await post(g, { model: 'sentiment-small', input: 1 });
    expect(none.statusCode).toBe(401);
    expect(none.headers['www-authenticate']).toBe('Bearer realm="switchyard"');
    expect(none.json<ErrorJson>().error).toMatchObject({ code: 'SY_ERR_AUTH_REQUIRED', reason: 'MISSING_KEY', retriable: false });
    const unknown = await post(g, { model: 'sentiment-small', input: 1 }, { authorization: 'Bearer sy_not_a_key_at_all_000000' });
    expect(unknown.statusCode).toBe(401);
    expect(unknown.json<ErrorJson>().error).toMatchObject({ code: 'SY_ERR_AUTH_INVALID', reason: 'UNKNOWN_KEY' });
    expect(unknown.body).not.toContain('sy_not_a_key');
    const basic = await post(g, { model: 'sentiment-small', input: 1 }, { authorization: `Basic ${Buffer.from(`u:${SEARCH_KEY}`).toString('base64')}` });
    expect(basic.json<ErrorJson>().error).toMatchObject({ code: 'SY_ERR_AUTH_REQUIRED', reason: 'MALFORMED_CREDENTIAL' });
    expect((await g.app.inject('/v1/requests/some-id')).statusCode).toBe(401);
    expect(await fx.requestsInLog()).toBe(0);
    // Operations routes stay open.
    expect((await g.app.inject('/healthz')).statusCode).toBe(200);
  });

  it('admits a valid key (Bearer or X-API-Key) and answers 403 for a model it may not use', async () => {
    const g = await fx.gateway({ apiKeys: KEYS });
    expect((await post(g, { model: 'sentiment-small', input: 1 }, { authorization: `Bearer ${SEARCH_KEY}` })).statusCode).toBe(202);
    expect((await post(g, { model: 'embed-large', input: 1 }, { 'x-api-key': SEARCH_KEY })).statusCode).toBe(202);
    const forbidden = await post(g, { model: 'llama', input: 1 }, { 'x-api-key': SEARCH_KEY });
    expect(forbidden.statusCode).toBe(403);
    expect(forbidden.json<ErrorJson>().error).toMatchObject({ code: 'SY_ERR_AUTH_FORBIDDEN', reason: 'MODEL_NOT_ALLOWED', message: 'API key "search" may not use model "llama"' });
    expect(await fx.requestsInLog()).toBe(2);
  });

  it('answers 429 with Retry-After when a key is over its rate, and other keys are unaffected', async () => {
    const g = await fx.gateway({ apiKeys: KEYS });
    const auth = { authorization: `Bearer ${BATCH_KEY}` };
    expect((await post(g, { model: 'm', input: 1 }, auth)).statusCode).toBe(202);
    expect((await post(g, { model: 'm', input: 2 }, auth)).statusCode).toBe(202);
    const limited = await post(g, { model: 'm', input: 3 }, auth);
    expect(limited.statusCode).toBe(429);
    expect(Number(limited.headers['retry-after'])).toBeGreaterThanOrEqual(99);
    expect(limited.json<ErrorJson>().error).toMatchObject({ code: 'SY_ERR_AUTH_RATE_LIMITED', reason: 'KEY_RATE', retriable: true });
    expect(limited.json<ErrorJson>().error.retryAfterMs).toBeGreaterThan(99_000);
    expect((await post(g, { model: 'sentiment-small', input: 4 }, { authorization: `Bearer ${SEARCH_KEY}` })).statusCode).toBe(202);
    expect(await fx.requestsInLog()).toBe(3);
  });

  it('lets a key see only requests of models it may use', async () => {
    const g = await fx.gateway({ apiKeys: KEYS });
    await fx.worker((req) => [started(req), completed(req, Buffer.from('1'))]);
    const { requestId } = (await post(g, { model: 'llama', input: 1 }, { authorization: `Bearer ${BATCH_KEY}` })).json<{ requestId: string }>();
    expect((await g.app.inject({ url: `/v1/requests/${requestId}`, headers: { authorization: `Bearer ${BATCH_KEY}` } })).statusCode).toBe(200);
    const hidden = await g.app.inject({ url: `/v1/requests/${requestId}`, headers: { authorization: `Bearer ${SEARCH_KEY}` } });
    expect(hidden.statusCode).toBe(404);
    expect(hidden.json<ErrorJson>().error.code).toBe('SY_ERR_GATEWAY_NOT_FOUND');
  });

  it('never writes a key to the log, even with request logging on and headers logged', async () => {
    const { logger, lines } = captureLogger();
    const g = await fx.gateway({ apiKeys: KEYS, logger, logRequests: true });
    await post(g, { model: 'sentiment-small', input: 1 }, { authorization: `Bearer ${SEARCH_KEY}` });
    await post(g, { model: 'llama', input: 1 }, { 'x-api-key': SEARCH_KEY });
    await post(g, { model: 'm', input: 1 }, { authorization: 'Bearer sy_wrong_key_wrong_key_00' });
    await g.app.inject({ url: '/v1/requests/x', headers: { 'x-api-key': BATCH_KEY } });
    // fastify's request serializer leaves headers out; whatever logs them itself gets them censored.
    g.app.log.info({ headers: { authorization: `Bearer ${SEARCH_KEY}`, 'x-api-key': BATCH_KEY, 'x-admin-token': 'tok' } }, 'a handler logging headers');
    const text = JSON.stringify(lines);
    expect(lines.length).toBeGreaterThan(4);
    for (const secret of [SEARCH_KEY, BATCH_KEY, 'sy_wrong_key_wrong_key_00']) expect(text).not.toContain(secret);
    expect(lines.at(-1)).toMatchObject({ headers: { authorization: '[redacted]', 'x-api-key': '[redacted]', 'x-admin-token': '[redacted]' } });
  });

  it('documents the security schemes in OpenAPI', async () => {
    const g = await fx.gateway({ apiKeys: KEYS });
    const doc = (await g.app.inject('/docs/json')).json<{ components: { securitySchemes: object }; paths: Record<string, { post?: { security?: unknown } }> }>();
    expect(Object.keys(doc.components.securitySchemes).sort()).toEqual(['apiKey', 'bearer']);
    expect(doc.paths['/v1/infer']!.post!.security).toEqual([{ bearer: [] }, { apiKey: [] }]);
  });
});

describe('gateway admin routes', () => {
  const fx = useGatewayFixture();
  const TOKEN = 'gateway-admin-token-0123456789';

  it('mounts a route behind app.gateway.requireAdmin: 401 without the token, through with it, API keys not accepted for it', async () => {
    const g = await fx.gateway({ apiKeys: KEYS, admin: { tokenHash: hashSecret(TOKEN) } });
    g.app.post('/admin/v1/ping', { onRequest: g.app.gateway.requireAdmin }, async () => ({ pong: true }));
    const none = await g.app.inject({ method: 'POST', url: '/admin/v1/ping' });
    expect(none.statusCode).toBe(401);
    expect(none.json<ErrorJson>().error).toMatchObject({ code: 'SY_ERR_AUTH_REQUIRED', reason: 'MISSING_ADMIN_TOKEN' });
    const apiKey = await g.app.inject({ method: 'POST', url: '/admin/v1/ping', headers: { authorization: `Bearer ${SEARCH_KEY}` } });
    expect(apiKey.json<ErrorJson>().error).toMatchObject({ code: 'SY_ERR_AUTH_INVALID', reason: 'INVALID_ADMIN_TOKEN' });
    expect((await g.app.inject({ method: 'POST', url: '/admin/v1/ping', headers: { authorization: `Bearer ${TOKEN}` } })).json()).toEqual({ pong: true });
  });
});

describe('gateway binding', () => {
  const fx = useGatewayFixture();

  it('refuses a non-loopback address without keys unless insecure', () => {
    expect(() => checkGatewayBinding({ host: '0.0.0.0' })).toThrowError(/refusing to listen on 0\.0\.0\.0 with authentication off.*--insecure/);
    expect(() => checkGatewayBinding({ host: '10.1.2.3', apiKeys: [] })).toThrowError(expect.objectContaining({ code: 'SY_ERR_CONFIG' }));
    expect(() => checkGatewayBinding({ host: '0.0.0.0', insecure: true })).not.toThrow();
    expect(() => checkGatewayBinding({ host: '0.0.0.0', apiKeys: KEYS })).not.toThrow();
    expect(() => checkGatewayBinding({ host: '127.0.0.1' })).not.toThrow();
    expect(() => checkGatewayBinding({ host: 'localhost' })).not.toThrow();
  });

  it('startGateway refuses before listening, and says at start that auth is off and where it is bound', async () => {
    const { logger, lines } = captureLogger();
    const ctx = { ...fx.ctx, logger };
    await expect(startGateway(ctx, { host: '0.0.0.0', port: 0 })).rejects.toThrowError(/refusing to listen/);
    const local = await startGateway(ctx, { port: 0 });
    await local.close();
    expect(lines.find((l) => l.auth === 'off')?.msg).toMatch(/^gateway: authentication is OFF \(no API keys configured\); bound to 127\.0\.0\.1 only/);
    const open = await startGateway(ctx, { host: '0.0.0.0', port: 0, insecure: true });
    await open.close();
    expect(lines.find((l) => l.insecure === true)?.msg).toMatch(/listening on 0\.0\.0\.0 \(--insecure\): anyone who reaches/);
    const keyed = await startGateway(ctx, { host: '0.0.0.0', port: 0, apiKeys: KEYS });
    await keyed.close();
    expect(lines.find((l) => l.auth === 'api-keys')?.msg).toMatch(/API keys required \(2 configured\)/);
  });
});
