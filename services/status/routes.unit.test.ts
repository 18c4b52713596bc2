import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { adminAuthFromToken } from '../../lib/auth/admin.js';
import { heartbeat, joined } from '../router/fixtures.js';
import { useGatewayFixture, type ErrorJson } from '../gateway/test-fixture.js';
import { completed, started } from '../gateway/testing.js';
import type { LiveStatus } from './service.js';

/**
 * The status routes as the gateway serves them (`createGateway` registers them), over an embedded
 * log: the page and its Content-Security-Policy, the document, request lookups, and the admin
 * guard on the data routes.
 */
describe('status routes in the gateway', () => {
  const fx = useGatewayFixture();
  const ADMIN = 'status-admin-token-0123456789';

  it('serves the page with a CSP that names its own inline script and style by hash, and no other source', async () => {
    const { app } = await fx.gateway();
    const res = await app.inject({ method: 'GET', url: '/status' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
    const csp = String(res.headers['content-security-policy']);
    const script = /<script>([\s\S]*)<\/script>/.exec(res.body)![1]!;
    const style = /<style>([\s\S]*?)<\/style>/.exec(res.body)![1]!;
    const hash = (s: string) => `'sha256-${createHash('sha256').update(s).digest('base64')}'`;
    expect(csp).toContain(`script-src ${hash(script)};`);
    expect(csp).toContain(`style-src ${hash(style)};`);
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("connect-src 'self'");
    expect(res.body).not.toMatch(/<(script|link)[^>]+(src|href)="https?:/);
  });

  it('/status.json is the fold of the log: members appear as their events land', async () => {
    await fx.log.ensureTopics(Object.values(fx.ctx.topics));
    const { app } = await fx.gateway();
    const now = Date.now();
    const append = (topic: string, value: Buffer) => fx.log.append([{ topic, value, ...(topic === fx.ctx.topics.control.name ? { partition: 0 } : { key: 'w1' }) }]);
    await append(fx.ctx.topics.control.name, fx.ctx.codec.encode(joined('w1', 2, { zone: 'zone-z', at: now })));
    const first = await app.inject({ method: 'GET', url: '/status.json' });
    expect(first.statusCode).toBe(200);
    const doc = first.json<LiveStatus>();
    expect(doc.members.map((m) => [m.workerId, m.lane, m.zone, m.health])).toEqual([['w1', 2, 'zone-z', 'no heartbeat']]);
    expect(doc.lanes).toMatchObject({ total: 4, held: 1 });
    expect(doc.source).toMatchObject({ kind: 'embedded', error: null });

    await append(fx.ctx.topics.heartbeats.name, fx.ctx.codec.encode(heartbeat('w1', 2, { zone: 'zone-z', at: Date.now(), queueDepth: 7 })));
    await expect
      .poll(async () => (await app.inject({ method: 'GET', url: '/status.json' })).json<LiveStatus>().members[0], { timeout: 5_000, interval: 100 })
      .toMatchObject({ health: 'ok', queueDepth: 7 });
  });

  it('looks a request up by id: its path replayed from the log, as JSON or as a page; an unknown id is 404', async () => {
    const { app } = await fx.gateway();
    await fx.worker((req) => [started(req), completed(req, Buffer.from('{"label":"positive"}'))]);
    const infer = await app.inject({ method: 'POST', url: '/v1/infer', payload: { model: 'm', input: { text: 'hi' } } });
    expect(infer.statusCode).toBe(200);
    const requestId = infer.json<{ requestId: string }>().requestId;

    const path = await app.inject({ method: 'GET', url: `/status/requests/${requestId}` });
    expect(path.statusCode).toBe(200);
    const trace = path.json<{ requestId: string; outcome: string; hops: { kind: string }[] }>();
    expect(trace).toMatchObject({ requestId, outcome: 'completed' });
    expect(trace.hops.map((h) => h.kind)).toEqual(['received', 'started', 'completed']);

    const page = await app.inject({ method: 'GET', url: `/status/requests/${requestId}?format=html` });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(page.headers['content-security-policy']).toContain("default-src 'none'");
    expect(page.body).toContain(`Request ${requestId}`);

    const missing = await app.inject({ method: 'GET', url: '/status/requests/no-such-request' });
    expect(missing.statusCode).toBe(404);
    expect(missing.json<ErrorJson>().error).toMatchObject({ code: 'SY_ERR_STATUS_NOT_FOUND', retriable: false });
    const bad = await app.inject({ method: 'GET', url: `/status/requests/${requestId}?format=xml` });
    expect(bad.statusCode).toBe(400);
    expect(bad.json<ErrorJson>().error.code).toBe('SY_ERR_STATUS_BAD_REQUEST');
  });

  it('the data routes are admin routes: loopback only without a token; with one, 401 without it and 200 with it. The page itself is open', async () => {
    const open = await fx.gateway();
    const remote = await open.app.inject({ method: 'GET', url: '/status.json', remoteAddress: '10.1.2.3' });
    expect(remote.statusCode).toBe(403);
    expect(remote.json<ErrorJson>().error).toMatchObject({ code: 'SY_ERR_AUTH_FORBIDDEN', reason: 'ADMIN_TOKEN_NOT_CONFIGURED' });
    expect((await open.app.inject({ method: 'GET', url: '/status/requests/x', remoteAddress: '10.1.2.3' })).statusCode).toBe(403);
    expect((await open.app.inject({ method: 'GET', url: '/status', remoteAddress: '10.1.2.3' })).statusCode).toBe(200);

    const guarded = await fx.gateway({ admin: adminAuthFromToken(ADMIN) });
    const none = await guarded.app.inject({ method: 'GET', url: '/status.json' });
    expect(none.statusCode).toBe(401);
    expect(none.headers['www-authenticate']).toContain('Bearer');
    expect(none.json<ErrorJson>().error.code).toBe('SY_ERR_AUTH_REQUIRED');
    const wrong = await guarded.app.inject({ method: 'GET', url: '/status.json', headers: { authorization: 'Bearer not-the-token-at-all' } });
    expect(wrong.json<ErrorJson>().error.code).toBe('SY_ERR_AUTH_INVALID');
    const ok = await guarded.app.inject({ method: 'GET', url: '/status.json', headers: { authorization: `Bearer ${ADMIN}` }, remoteAddress: '10.1.2.3' });
    expect(ok.statusCode).toBe(200);
    expect(ok.json<LiveStatus>().members).toEqual([]);
  });
});
