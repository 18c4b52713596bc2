import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { sha256Hex } from './digest.js';
import { buildBlobApp } from './http.js';
import { MemoryBlobStore } from './memory.js';
import { CachedBlobStore } from './cached.js';

describe('blob HTTP endpoint (fastify inject)', () => {
  let store: MemoryBlobStore;
  let app: FastifyInstance;
  beforeEach(async () => {
    store = new MemoryBlobStore();
    app = buildBlobApp({ store, maxBlobBytes: 1024 });
    await app.ready();
  });
  afterEach(() => app.close());

  const bytes = Buffer.from('model weights');
  const digest = sha256Hex(bytes);

  it('PUT stores the bytes and answers 201 with the digest and a location', async () => {
    const res = await app.inject({ method: 'PUT', url: '/v1/blobs', headers: { 'content-type': 'application/octet-stream', 'x-blob-digest': `sha256:${digest}` }, payload: bytes });
    expect(res.statusCode).toBe(201);
    expect(res.json()).toEqual({ digest, sizeBytes: bytes.length });
    expect(res.headers.location).toBe(`/v1/blobs/sha256:${digest}`);
    expect(await store.get(digest)).toEqual(bytes);
  });

  it('PUT accepts the digest as a query parameter, or none at all', async () => {
    const q = await app.inject({ method: 'PUT', url: `/v1/blobs?digest=sha256:${digest}`, headers: { 'content-type': 'application/octet-stream' }, payload: bytes });
    expect(q.statusCode).toBe(201);
    const none = await app.inject({ method: 'PUT', url: '/v1/blobs', headers: { 'content-type': 'application/octet-stream' }, payload: Buffer.from('x') });
    expect(none.statusCode).toBe(201);
    expect(none.json().digest).toBe(sha256Hex('x'));
  });

  it('PUT answers 400 when the bytes do not match the digest, and stores nothing', async () => {
    const wrong = sha256Hex('something else');
    const res = await app.inject({ method: 'PUT', url: '/v1/blobs', headers: { 'content-type': 'application/octet-stream', 'x-blob-digest': `sha256:${wrong}` }, payload: bytes });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ code: 'SY_ERR_BLOB_DIGEST_MISMATCH' });
    expect(res.json().message).toContain(digest);
    expect(await store.has(digest)).toBe(false);
  });

  it('PUT answers 400 on a malformed digest and 413 past the size limit', async () => {
    const bad = await app.inject({ method: 'PUT', url: '/v1/blobs', headers: { 'content-type': 'application/octet-stream', 'x-blob-digest': 'md5:abc' }, payload: bytes });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().code).toBe('SY_ERR_BLOB_BAD_DIGEST');
    const big = await app.inject({ method: 'PUT', url: '/v1/blobs', headers: { 'content-type': 'application/octet-stream' }, payload: Buffer.alloc(2048) });
    expect(big.statusCode).toBe(413);
  });

  it('GET returns the bytes with digest headers; HEAD the size without a body', async () => {
    await store.put(bytes);
    const get = await app.inject({ method: 'GET', url: `/v1/blobs/sha256:${digest}` });
    expect(get.statusCode).toBe(200);
    expect(get.rawPayload).toEqual(bytes);
    expect(get.headers['content-type']).toBe('application/octet-stream');
    expect(get.headers['x-blob-digest']).toBe(`sha256:${digest}`);
    expect(get.headers.etag).toBe(`"sha256:${digest}"`);
    const head = await app.inject({ method: 'HEAD', url: `/v1/blobs/sha256:${digest.toUpperCase()}` });
    expect(head.statusCode).toBe(200);
    expect(head.headers['content-length']).toBe(String(bytes.length));
    expect(head.rawPayload.length).toBe(0);
  });

  it('GET and HEAD answer 404 for an absent blob and 400 for a malformed reference', async () => {
    const absent = sha256Hex('absent');
    expect((await app.inject({ method: 'GET', url: `/v1/blobs/sha256:${absent}` })).statusCode).toBe(404);
    expect((await app.inject({ method: 'GET', url: `/v1/blobs/sha256:${absent}` })).json().code).toBe('SY_ERR_BLOB_NOT_FOUND');
    expect((await app.inject({ method: 'HEAD', url: `/v1/blobs/sha256:${absent}` })).statusCode).toBe(404);
    expect((await app.inject({ method: 'GET', url: '/v1/blobs/sha256:xyz' })).statusCode).toBe(400);
  });

  it('GET refuses to serve a stored blob that fails verification (500, not the bytes)', async () => {
    await store.put(bytes);
    store.corrupt(digest, Buffer.from('tampered'));
    const res = await app.inject({ method: 'GET', url: `/v1/blobs/sha256:${digest}` });
    expect(res.statusCode).toBe(500);
    expect(res.json().code).toBe('SY_ERR_BLOB_DIGEST_MISMATCH');
  });
});

describe('CachedBlobStore', () => {
  it('serves from the local store, fetching and keeping remote blobs on a miss', async () => {
    const local = new MemoryBlobStore();
    const remote = new MemoryBlobStore();
    const { digest } = await remote.put(Buffer.from('remote weights'));
    const cached = new CachedBlobStore(local, remote);
    expect(await local.has(digest)).toBe(false);
    expect((await cached.get(digest)).toString()).toBe('remote weights');
    expect(await local.has(digest)).toBe(true);
    remote.corrupt(digest, Buffer.from('changed upstream'));
    expect((await cached.get(digest)).toString()).toBe('remote weights');
  });

  it('puts to both stores', async () => {
    const local = new MemoryBlobStore();
    const remote = new MemoryBlobStore();
    const { digest } = await new CachedBlobStore(local, remote).put(Buffer.from('w'));
    expect(await local.has(digest)).toBe(true);
    expect(await remote.has(digest)).toBe(true);
  });
});
