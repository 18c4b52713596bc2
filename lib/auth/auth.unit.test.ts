import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import { adminScope, isLoopbackAddress, requireAdmin } from './admin.js';
import { AuthError, isAuthError } from './errors.js';
import { generateSecret, hashConfiguredSecret, hashSecret, parseSecretHash, presentedCredential, secretMatches } from './secret.js';

const TOKEN = 'admin-token-0123456789abcdef';

/** A tiny app with one admin route, rendering AuthErrors as `{ code, reason }`. */
function app(tokenHash: string | undefined) {
  const a = Fastify();
  a.setErrorHandler((err, _req, reply) => {
    if (isAuthError(err)) return reply.code(err.statusCode).headers(err.headers).send({ code: err.code, reason: err.reason, message: err.message });
    return reply.code(500).send({ code: 'other' });
  });
  a.post('/write', { onRequest: requireAdmin({ tokenHash }) }, async () => ({ ok: true }));
  a.get('/read', async () => ({ ok: true }));
  a.register(
    adminScope({ tokenHash }, async (scope) => {
      scope.delete('/scoped', async () => ({ ok: true }));
    }),
  );
  return a;
}

describe('secrets', () => {
  it('hashes to 64 hex characters and compares by hash', () => {
    const h = hashSecret('s3cret-s3cret-s3cret');
    expect(h).toMatch(/^[0-9a-f]{64}$/);
    expect(secretMatches('s3cret-s3cret-s3cret', h)).toBe(true);
    expect(secretMatches('s3cret-s3cret-s3creT', h)).toBe(false);
    expect(secretMatches('x', 'not hex')).toBe(false);
    expect(parseSecretHash(h.toUpperCase(), 'h')).toBe(h);
    expect(() => parseSecretHash('abc', 'the hash')).toThrowError(expect.objectContaining({ code: 'SY_ERR_CONFIG' }));
    expect(() => hashConfiguredSecret('short', 'SWITCHYARD_ADMIN_TOKEN')).toThrowError(/at least 16 characters/);
    expect(generateSecret()).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(generateSecret()).not.toBe(generateSecret());
  });

  it('reads Bearer, a named header, and Basic (password) when allowed', () => {
    expect(presentedCredential({})).toEqual({ kind: 'none' });
    expect(presentedCredential({ authorization: 'Bearer abc' })).toEqual({ kind: 'secret', secret: 'abc' });
    expect(presentedCredential({ authorization: 'bearer   abc ' })).toEqual({ kind: 'secret', secret: 'abc' });
    expect(presentedCredential({ 'x-api-key': 'k' }, { header: 'x-api-key' })).toEqual({ kind: 'secret', secret: 'k' });
    const basic = `Basic ${Buffer.from('anyone:the-token').toString('base64')}`;
    expect(presentedCredential({ authorization: basic }, { basic: true })).toEqual({ kind: 'secret', secret: 'the-token' });
    expect(presentedCredential({ authorization: basic })).toMatchObject({ kind: 'malformed' });
    expect(presentedCredential({ authorization: 'Token abc' })).toEqual({ kind: 'malformed', message: 'the Authorization header must be Bearer <secret>' });
  });

  it('carries status, reason and headers on AuthError', () => {
    const e = new AuthError('SY_ERR_AUTH_RATE_LIMITED', 'slow down', { reason: 'KEY_RATE', retryAfterMs: 1_200 });
    expect(e).toMatchObject({ statusCode: 429, retriable: true, headers: { 'retry-after': '2' } });
    expect(new AuthError('SY_ERR_AUTH_INVALID', 'no', { reason: 'X' }).headers).toEqual({ 'www-authenticate': 'Bearer realm="switchyard"' });
    expect(new AuthError('SY_ERR_AUTH_FORBIDDEN', 'no', { reason: 'X' }).statusCode).toBe(403);
  });
});

describe('requireAdmin', () => {
  it('knows loopback addresses', () => {
    for (const a of ['127.0.0.1', '127.1.2.3', '::1', '::ffff:127.0.0.1', 'localhost', '[::1]']) expect(isLoopbackAddress(a), a).toBe(true);
    for (const a of ['0.0.0.0', '10.0.0.1', '::', '::ffff:10.0.0.1', '128.0.0.1', 'example.com', undefined]) expect(isLoopbackAddress(a), String(a)).toBe(false);
  });

  it('with a token: 401 without it or with a wrong one, 200 with it (Bearer, X-Admin-Token, Basic), from anywhere', async () => {
    const a = app(hashSecret(TOKEN));
    const none = await a.inject({ method: 'POST', url: '/write' });
    expect(none.statusCode).toBe(401);
    expect(none.json()).toMatchObject({ code: 'SY_ERR_AUTH_REQUIRED', reason: 'MISSING_ADMIN_TOKEN' });
    expect(none.headers['www-authenticate']).toBe('Bearer realm="switchyard"');
    const wrong = await a.inject({ method: 'POST', url: '/write', headers: { authorization: 'Bearer wrong-token-wrong-token' } });
    expect(wrong.statusCode).toBe(401);
    expect(wrong.json()).toMatchObject({ code: 'SY_ERR_AUTH_INVALID', reason: 'INVALID_ADMIN_TOKEN' });
    expect(wrong.body).not.toContain('wrong-token');
    const remote = '203.0.113.9';
    expect((await a.inject({ method: 'POST', url: '/write', remoteAddress: remote, headers: { authorization: `Bearer ${TOKEN}` } })).statusCode).toBe(200);
    expect((await a.inject({ method: 'POST', url: '/write', remoteAddress: remote, headers: { 'x-admin-token': TOKEN } })).statusCode).toBe(200);
    const basic = `Basic ${Buffer.from(`admin:${TOKEN}`).toString('base64')}`;
    expect((await a.inject({ method: 'POST', url: '/write', remoteAddress: remote, headers: { authorization: basic } })).statusCode).toBe(200);
    expect((await a.inject({ method: 'DELETE', url: '/scoped', remoteAddress: remote })).statusCode).toBe(401);
    expect((await a.inject({ method: 'DELETE', url: '/scoped', remoteAddress: remote, headers: { 'x-admin-token': TOKEN } })).statusCode).toBe(200);
    expect((await a.inject({ method: 'GET', url: '/read', remoteAddress: remote })).statusCode).toBe(200);
  });

  it('without a token: open to loopback clients, 403 with the reason to anyone else', async () => {
    const a = app(undefined);
    expect((await a.inject({ method: 'POST', url: '/write', remoteAddress: '127.0.0.1' })).statusCode).toBe(200);
    expect((await a.inject({ method: 'POST', url: '/write', remoteAddress: '::1' })).statusCode).toBe(200);
    const remote = await a.inject({ method: 'POST', url: '/write', remoteAddress: '198.51.100.7', headers: { 'x-forwarded-for': '127.0.0.1' } });
    expect(remote.statusCode).toBe(403);
    expect(remote.json()).toMatchObject({ code: 'SY_ERR_AUTH_FORBIDDEN', reason: 'ADMIN_TOKEN_NOT_CONFIGURED' });
    expect(remote.json<{ message: string }>().message).toMatch(/SWITCHYARD_ADMIN_TOKEN/);
    expect((await a.inject({ method: 'DELETE', url: '/scoped', remoteAddress: '198.51.100.7' })).statusCode).toBe(403);
  });

  it('refuses a malformed token hash at construction', () => {
    expect(() => requireAdmin({ tokenHash: 'nope' })).toThrowError(expect.objectContaining({ code: 'SY_ERR_CONFIG' }));
  });
});
