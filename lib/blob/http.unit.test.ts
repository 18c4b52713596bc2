import { createHash } from 'node:crypto';
import { readdir, stat } from 'node:fs/promises';
import { request } from 'node:http';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { hashSecret } from '../auth/secret.js';
import { tempDir } from '../../test/support/log-dir.js';
import { sha256Hex } from './digest.js';
import { FsBlobStore } from './fs.js';
import { HttpBlobStore } from './http-client.js';
import { buildBlobApp, startBlobServer } from './http.js';
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

describe('blob PUT: behind the admin token, streamed to disk with a size limit', () => {
  const TOKEN = 'blob-admin-token-0123456789abcdef';
  const OCTETS = { 'content-type': 'application/octet-stream' };
  let dir: string;
  let remove: () => Promise<void>;
  let store: FsBlobStore;
  beforeEach(async () => {
    ({ dir, remove } = await tempDir('sy-blob-put-'));
    store = new FsBlobStore({ dir });
  });
  afterEach(() => remove());

  /** Files in the store: blobs and partial uploads. */
  const files = async () => ({ blobs: await readdir(join(dir, 'sha256')).catch(() => []), tmp: await readdir(join(dir, 'tmp')).catch(() => []) });

  it('answers 401 without the token or with a wrong one, reading nothing and storing nothing; 201 with it', async () => {
    const app = buildBlobApp({ store, admin: { tokenHash: hashSecret(TOKEN) } });
    const bytes = Buffer.from('weights');
    const none = await app.inject({ method: 'PUT', url: '/v1/blobs', headers: OCTETS, payload: bytes });
    expect(none.statusCode).toBe(401);
    expect(none.json()).toMatchObject({ code: 'SY_ERR_AUTH_REQUIRED', reason: 'MISSING_ADMIN_TOKEN' });
    expect(none.headers.connection).toBe('close');
    const wrong = await app.inject({ method: 'PUT', url: '/v1/blobs', headers: { ...OCTETS, authorization: 'Bearer not-the-token-not-the-token' }, payload: bytes });
    expect(wrong.json()).toMatchObject({ code: 'SY_ERR_AUTH_INVALID' });
    expect((await files()).blobs).toEqual([]);
    const ok = await app.inject({ method: 'PUT', url: '/v1/blobs', headers: { ...OCTETS, authorization: `Bearer ${TOKEN}` }, payload: bytes });
    expect(ok.statusCode).toBe(201);
    expect((await files()).blobs).toEqual([sha256Hex(bytes)]);
    // Reads stay open.
    expect((await app.inject({ method: 'GET', url: `/v1/blobs/sha256:${sha256Hex(bytes)}`, remoteAddress: '203.0.113.1' })).statusCode).toBe(200);
    await app.close();
  });

  it('without a token configured: PUT from loopback only (403 to anyone else)', async () => {
    const app = buildBlobApp({ store });
    const remote = await app.inject({ method: 'PUT', url: '/v1/blobs', headers: OCTETS, payload: Buffer.from('x'), remoteAddress: '198.51.100.2' });
    expect(remote.statusCode).toBe(403);
    expect(remote.json()).toMatchObject({ code: 'SY_ERR_AUTH_FORBIDDEN', reason: 'ADMIN_TOKEN_NOT_CONFIGURED' });
    expect((await app.inject({ method: 'PUT', url: '/v1/blobs', headers: OCTETS, payload: Buffer.from('x') })).statusCode).toBe(201);
    await app.close();
  });

  it('HttpBlobStore sends the token it is given; without one an upload fails saying so', async () => {
    const server = await startBlobServer({ store, admin: { tokenHash: hashSecret(TOKEN) } });
    try {
      const bytes = Buffer.from('pushed over HTTP');
      await expect(new HttpBlobStore({ url: server.url }).put(bytes)).rejects.toThrowError(/HTTP 401.*no admin token was given/);
      expect(await new HttpBlobStore({ url: server.url, token: TOKEN }).put(bytes)).toEqual({ digest: sha256Hex(bytes), sizeBytes: bytes.length });
      expect((await new HttpBlobStore({ url: server.url }).get(sha256Hex(bytes))).toString()).toBe('pushed over HTTP');
    } finally {
      await server.close();
    }
  });

  it('verifies the digest while streaming: a mismatch is 400 and leaves no file, not even a partial one', async () => {
    const app = buildBlobApp({ store });
    const res = await app.inject({ method: 'PUT', url: '/v1/blobs', headers: { ...OCTETS, 'x-blob-digest': `sha256:${sha256Hex('other')}` }, payload: Buffer.alloc(100_000, 7) });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ code: 'SY_ERR_BLOB_DIGEST_MISMATCH' });
    expect(await files()).toEqual({ blobs: [], tmp: [] });
    const bad = await app.inject({ method: 'PUT', url: '/v1/blobs', headers: { ...OCTETS, 'x-blob-digest': 'sha256:nope' }, payload: Buffer.from('x') });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().code).toBe('SY_ERR_BLOB_BAD_DIGEST');
    const json = await app.inject({ method: 'PUT', url: '/v1/blobs', headers: { 'content-type': 'application/json' }, payload: '{}' });
    expect(json.statusCode).toBe(415);
    expect(json.json().message).toMatch(/application\/octet-stream/);
    await app.close();
  });

  it('answers 413 past maxBlobBytes: at once when Content-Length says so, and mid-stream for a chunked upload (nothing kept)', async () => {
    const server = await startBlobServer({ store, maxBlobBytes: 64 * 1024 });
    try {
      const announced = await rawPut(server.url, `PUT /v1/blobs HTTP/1.1\r\nhost: x\r\ncontent-type: application/octet-stream\r\ncontent-length: ${2 * 1024 ** 3}\r\n\r\n`);
      expect(announced).toMatch(/^HTTP\/1\.1 413 /);
      expect(JSON.parse(announced.slice(announced.indexOf('\r\n\r\n') + 4))).toMatchObject({ code: 'SY_ERR_BLOB_TOO_LARGE' });
      const chunk = Buffer.alloc(16 * 1024, 1);
      const chunked = Buffer.concat([
        Buffer.from('PUT /v1/blobs HTTP/1.1\r\nhost: x\r\ncontent-type: application/octet-stream\r\ntransfer-encoding: chunked\r\n\r\n'),
        ...Array.from({ length: 8 }, () => Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n')])),
      ]);
      const midStream = await rawPut(server.url, chunked);
      expect(midStream).toMatch(/^HTTP\/1\.1 413 /);
      expect(midStream).toContain('SY_ERR_BLOB_TOO_LARGE');
      expect(await files()).toEqual({ blobs: [], tmp: [] });
    } finally {
      await server.close();
    }
  });

  it('FsBlobStore.putStream writes chunks to disk as they come (the whole blob is never in memory)', async () => {
    const chunk = Buffer.alloc(1024 * 1024, 3);
    const onDisk: number[] = [];
    async function* source() {
      for (let i = 0; i < 16; i++) {
        if (i >= 4) {
          await new Promise((r) => setTimeout(r, 5));
          const [partial] = await readdir(join(dir, 'tmp'));
          onDisk.push(partial === undefined ? 0 : (await stat(join(dir, 'tmp', partial))).size);
        }
        yield chunk;
      }
    }
    const info = await store.putStream(source());
    expect(info.sizeBytes).toBe(16 * chunk.length);
    // Before the source had given its last chunk, most of what it had given was already in the file.
    expect(onDisk.at(-1)).toBeGreaterThanOrEqual(12 * chunk.length);
    expect(onDisk.every((n, i) => i === 0 || n >= onDisk[i - 1]!)).toBe(true);
    expect((await stat(store.pathOf(info.digest))).size).toBe(16 * chunk.length);
  });

  it('takes a 200 MiB upload over HTTP without growing RSS by its size (< 64 MiB)', async () => {
    const server = await startBlobServer({ store, admin: { tokenHash: hashSecret(TOKEN) } });
    try {
      const chunk = Buffer.alloc(1024 * 1024);
      for (let i = 0; i < chunk.length; i += 4) chunk.writeUInt32BE(i * 2654435761 >>> 0, i);
      const count = 200;
      const hash = createHash('sha256');
      for (let i = 0; i < count; i++) hash.update(chunk);
      const digest = hash.digest('hex');
      global.gc?.();
      const before = process.memoryUsage().rss;
      let peak = before;
      const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
      // A client that honours backpressure, as one streaming a file would (fetch with a stream
      // body buffers ahead on the client side: that would measure the client, not the server).
      const res = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = request(`${server.url}/v1/blobs`, {
          method: 'PUT',
          headers: { ...OCTETS, authorization: `Bearer ${TOKEN}`, 'x-blob-digest': `sha256:${digest}`, 'content-length': String(count * chunk.length) },
        });
        req.on('response', (r) => {
          let text = '';
          r.setEncoding('utf8');
          r.on('data', (d: string) => (text += d));
          r.on('end', () => resolve({ status: r.statusCode ?? 0, body: text }));
        });
        req.on('error', reject);
        let sent = 0;
        const send = () => {
          while (sent < count) {
            sent++;
            if (!req.write(chunk)) return void req.once('drain', send);
          }
          req.end();
        };
        send();
      });
      clearInterval(sampler);
      peak = Math.max(peak, process.memoryUsage().rss);
      expect(res.status).toBe(201);
      expect(JSON.parse(res.body)).toEqual({ digest, sizeBytes: count * chunk.length });
      expect((await stat(store.pathOf(digest))).size).toBe(count * chunk.length);
      expect(peak - before).toBeLessThan(64 * 1024 * 1024);
    } finally {
      await server.close();
    }
  }, 60_000);
});

/** Send raw bytes to a server and read its answer until it closes the connection. */
function rawPut(url: string, data: string | Buffer): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: hostname, port: Number(port) }, () => socket.write(data));
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('the server did not close the connection within 10 s'));
    }, 10_000);
    socket.on('data', (c) => chunks.push(c));
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString('latin1'));
    });
  });
}
