import { SchemaRegistry as ConfluentClient, SchemaType } from '@kafkajs/confluent-schema-registry';
import { describe, expect, it } from 'vitest';
import { hashSecret } from '../../lib/auth/secret.js';
import { InMemoryRegistry } from '../../lib/registry/core.js';
import { buildRegistryApp } from './app.js';

const CT = { 'content-type': 'application/vnd.schemaregistry.v1+json' };
const user = (fields: object[] = []) =>
  JSON.stringify({ type: 'record', name: 'User', namespace: 'test', fields: [{ name: 'id', type: 'string' }, ...fields] });

function given() {
  const app = buildRegistryApp({ registry: new InMemoryRegistry() });
  const post = (url: string, body: unknown) => app.inject({ method: 'POST', url, headers: CT, payload: JSON.stringify(body) });
  return { app, post };
}

describe('registry REST API (Confluent-compatible)', () => {
  it('registers with the vendor media type, idempotently, and serves the schema by id and version', async () => {
    const { app, post } = given();
    const first = await post('/subjects/test.User/versions', { schema: user() });
    expect(first.statusCode).toBe(200);
    expect(first.headers['content-type']).toContain('application/vnd.schemaregistry.v1+json');
    const { id } = first.json<{ id: number }>();
    expect((await post('/subjects/test.User/versions', { schema: user() })).json()).toEqual({ id });

    const v2 = user([{ name: 'email', type: ['null', 'string'], default: null }]);
    const second = (await post('/subjects/test.User/versions', { schema: v2 })).json<{ id: number }>();
    expect(second.id).toBeGreaterThan(id);

    expect((await app.inject(`/schemas/ids/${id}`)).json()).toEqual({ schema: user() });
    expect((await app.inject('/subjects')).json()).toEqual(['test.User']);
    expect((await app.inject('/subjects/test.User/versions')).json()).toEqual([1, 2]);
    expect((await app.inject('/subjects/test.User/versions/latest')).json()).toEqual({ subject: 'test.User', version: 2, id: second.id, schema: v2 });
    expect((await app.inject('/subjects/test.User/versions/1/schema')).body).toBe(user());
    expect((await post('/subjects/test.User', { schema: user() })).json()).toMatchObject({ subject: 'test.User', version: 1, id });
  });

  it('answers 409 with the reason for an incompatible schema (BACKWARD by default)', async () => {
    const { post } = given();
    await post('/subjects/test.User/versions', { schema: user() });
    const breaking = user([{ name: 'age', type: 'int' }]); // new field without a default
    const res = await post('/subjects/test.User/versions', { schema: breaking });
    expect(res.statusCode).toBe(409);
    const body = res.json<{ error_code: number; message: string }>();
    expect(body.error_code).toBe(409);
    expect(body.message).toMatch(/age/);
    const check = await post('/compatibility/subjects/test.User/versions/latest?verbose=true', { schema: breaking });
    expect(check.json()).toMatchObject({ is_compatible: false });
    expect(check.json<{ messages: string[] }>().messages.join(' ')).toMatch(/age/);
    const fine = await post('/compatibility/subjects/test.User/versions', { schema: user([{ name: 'age', type: 'int', default: 0 }]) });
    expect(fine.json()).toEqual({ is_compatible: true });
  });

  it('lets the level be set per subject and globally, and rejects unknown levels', async () => {
    const { app, post } = given();
    await post('/subjects/test.User/versions', { schema: user() });
    expect((await app.inject('/config')).json()).toEqual({ compatibilityLevel: 'BACKWARD' });
    const notSet = await app.inject('/config/test.User');
    expect(notSet.statusCode).toBe(404);
    expect(notSet.json()).toMatchObject({ error_code: 40408 });
    const put = await app.inject({ method: 'PUT', url: '/config/test.User', headers: CT, payload: JSON.stringify({ compatibility: 'NONE' }) });
    expect(put.json()).toEqual({ compatibility: 'NONE' });
    expect((await post('/subjects/test.User/versions', { schema: user([{ name: 'age', type: 'int' }]) })).statusCode).toBe(200);
    const bad = await app.inject({ method: 'PUT', url: '/config', headers: CT, payload: JSON.stringify({ compatibility: 'SIDEWAYS' }) });
    expect(bad.statusCode).toBe(422);
    expect(bad.json()).toMatchObject({ error_code: 42203 });
    expect((await app.inject({ method: 'DELETE', url: '/config/test.User' })).json()).toEqual({ compatibilityLevel: 'NONE' });
    expect((await app.inject('/config/test.User?defaultToGlobal=true')).json()).toEqual({ compatibilityLevel: 'BACKWARD' });
  });

  it('gives Confluent error codes for what is missing or malformed', async () => {
    const { app, post } = given();
    expect((await app.inject('/subjects/nope/versions/latest')).json()).toMatchObject({ error_code: 40401 });
    await post('/subjects/test.User/versions', { schema: user() });
    expect((await app.inject('/subjects/test.User/versions/7')).json()).toMatchObject({ error_code: 40402 });
    expect((await app.inject('/subjects/test.User/versions/zero')).json()).toMatchObject({ error_code: 42202 });
    expect((await app.inject('/schemas/ids/99999')).json()).toMatchObject({ error_code: 40403 });
    const invalid = await post('/subjects/x/versions', { schema: '{"type":"record","name":"X","fields":[{"name":"a","type":"nosuchtype"}]}' });
    expect(invalid.statusCode).toBe(422);
    expect(invalid.json()).toMatchObject({ error_code: 42201 });
    const protobuf = await post('/subjects/x/versions', { schema: 'syntax = "proto3";', schemaType: 'PROTOBUF' });
    expect(protobuf.statusCode).toBe(422);
    expect(protobuf.json<{ message: string }>().message).toMatch(/AVRO/);
    const malformed = await app.inject({ method: 'POST', url: '/subjects/x/versions', headers: CT, payload: '{"schema": 12}' });
    expect(malformed.statusCode).toBe(422);
    expect((await app.inject('/no/such/route')).statusCode).toBe(404);
  });

  it('soft-deletes versions and subjects', async () => {
    const { app, post } = given();
    const { id } = (await post('/subjects/test.User/versions', { schema: user() })).json<{ id: number }>();
    await post('/subjects/test.User/versions', { schema: user([{ name: 'n', type: 'int', default: 1 }]) });
    expect((await app.inject({ method: 'DELETE', url: '/subjects/test.User/versions/2' })).json()).toBe(2);
    expect((await app.inject('/subjects/test.User/versions')).json()).toEqual([1]);
    expect((await app.inject({ method: 'DELETE', url: '/subjects/test.User' })).json()).toEqual([1]);
    expect((await app.inject('/subjects')).json()).toEqual([]);
    expect((await app.inject(`/schemas/ids/${id}`)).statusCode).toBe(200); // ids stay readable
  });
});

describe('registry write routes behind the admin token', () => {
  const TOKEN = 'registry-admin-token-0123456789';
  const guarded = () => buildRegistryApp({ registry: new InMemoryRegistry(), admin: { tokenHash: hashSecret(TOKEN) } });
  const writes = [
    { method: 'POST' as const, url: '/subjects/test.User/versions', payload: JSON.stringify({ schema: user() }) },
    { method: 'PUT' as const, url: '/config', payload: JSON.stringify({ compatibility: 'NONE' }) },
    { method: 'PUT' as const, url: '/config/test.User', payload: JSON.stringify({ compatibility: 'NONE' }) },
    { method: 'DELETE' as const, url: '/config/test.User' },
    { method: 'DELETE' as const, url: '/subjects/test.User/versions/1' },
    { method: 'DELETE' as const, url: '/subjects/test.User' },
  ];

  it('answers 401 (Confluent-style, with the reason) to every write without the token or with a wrong one, and changes nothing', async () => {
    const app = guarded();
    for (const w of writes) {
      const res = await app.inject({ ...w, headers: CT });
      expect(res.statusCode, `${w.method} ${w.url}`).toBe(401);
      expect(res.json<{ error_code: number; message: string }>()).toMatchObject({ error_code: 40101, message: expect.stringContaining('SY_ERR_AUTH_REQUIRED') });
      const wrong = await app.inject({ ...w, headers: { ...CT, authorization: 'Bearer not-the-admin-token-at-all' } });
      expect(wrong.statusCode).toBe(401);
      expect(wrong.json<{ message: string }>().message).toContain('SY_ERR_AUTH_INVALID');
    }
    expect((await app.inject('/subjects')).json()).toEqual([]);
    expect((await app.inject('/config')).json()).toEqual({ compatibilityLevel: 'BACKWARD' });
  });

  it('lets the token through (Bearer, X-Admin-Token, Basic) and leaves reads, lookups and compatibility checks open', async () => {
    const app = guarded();
    const bearer = { ...CT, authorization: `Bearer ${TOKEN}` };
    expect((await app.inject({ ...writes[0]!, headers: bearer })).statusCode).toBe(200);
    expect((await app.inject({ ...writes[2]!, headers: { ...CT, 'x-admin-token': TOKEN } })).statusCode).toBe(200);
    const basic = { authorization: `Basic ${Buffer.from(`ci:${TOKEN}`).toString('base64')}` };
    expect((await app.inject({ ...writes[3]!, headers: basic })).statusCode).toBe(200);
    expect((await app.inject('/subjects')).json()).toEqual(['test.User']);
    expect((await app.inject({ method: 'POST', url: '/subjects/test.User', headers: CT, payload: JSON.stringify({ schema: user() }) })).statusCode).toBe(200);
    expect((await app.inject({ method: 'POST', url: '/compatibility/subjects/test.User/versions/latest', headers: CT, payload: JSON.stringify({ schema: user() }) })).json()).toEqual({ is_compatible: true });
    expect((await app.inject({ ...writes[5]!, headers: { authorization: `Bearer ${TOKEN}` } })).json()).toEqual([1]);
  });

  it('without a token: writes from loopback only, 403 to a remote client', async () => {
    const app = buildRegistryApp({ registry: new InMemoryRegistry() });
    const remote = await app.inject({ ...writes[1]!, headers: CT, remoteAddress: '203.0.113.5' });
    expect(remote.statusCode).toBe(403);
    expect(remote.json()).toMatchObject({ error_code: 40301, message: expect.stringContaining('SWITCHYARD_ADMIN_TOKEN') });
    expect((await app.inject({ ...writes[1]!, headers: CT })).statusCode).toBe(200);
  });

  it('works with the real @kafkajs/confluent-schema-registry client given the token as Basic auth; without it, register fails with 401', async () => {
    const app = guarded();
    const url = await app.listen({ host: '127.0.0.1', port: 0 });
    try {
      const schema = { type: SchemaType.AVRO as const, schema: user() };
      const anonymous = new ConfluentClient({ host: url, retry: { retries: 0 } });
      const refused = await anonymous.register(schema, { subject: 'test.User' }).then(
        () => undefined,
        (e: unknown) => e as { status?: number; message: string },
      );
      expect(refused?.status).toBe(401);
      const client = new ConfluentClient({ host: url, auth: { username: 'switchyard', password: TOKEN } });
      const { id } = await client.register(schema, { subject: 'test.User' });
      const bytes = await client.encode(id, { id: 'u-1' });
      // Reads need no token: an anonymous client decodes.
      expect(await anonymous.decode(bytes)).toEqual({ id: 'u-1' });
    } finally {
      await app.close();
    }
  });
});
