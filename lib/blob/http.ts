import type { IncomingMessage } from 'node:http';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyPluginAsync } from 'fastify';
import { Type, type Static } from '@sinclair/typebox';
import { requireAdmin, type AdminAuthOptions } from '../auth/admin.js';
import { isAuthError } from '../auth/errors.js';
import { redactingLogger } from '../auth/redact.js';
import { SwitchyardError, errorMessage } from '../errors.js';
import { parseDigest } from './digest.js';
import type { BlobInfo, BlobStore, PutOptions } from './port.js';

/**
 * The blob store over HTTP, as a fastify plugin (mount it in any app, e.g. the controller's
 * admin API) or a standalone server:
 *
 * - `GET  /v1/blobs/sha256:<hex>` → 200 with the bytes (`application/octet-stream`), verified
 *   against the digest before sending; 404 when absent.
 * - `HEAD /v1/blobs/sha256:<hex>` → 200 with `content-length`, or 404; reads nothing.
 * - `PUT  /v1/blobs` with the bytes as `application/octet-stream`, and the expected digest in the
 *   `x-blob-digest` header (or `?digest=`) → 201 `{ digest, sizeBytes }`; 400 when the bytes do
 *   not hash to it (nothing is stored). The digest is optional; send it so a corrupted upload
 *   is refused rather than stored under another name. PUT is an admin route (the admin token,
 *   or a loopback client when none is configured: `lib/auth/admin.ts`), checked before the body
 *   is read. The body is streamed to the store — hashed and written as it arrives, never held
 *   whole — when the store can take a stream (`FsBlobStore`); 413 past `maxBlobBytes`, at once
 *   when Content-Length says so, else when the stream gets there.
 *
 * Errors are `{ code, message }` with the stable `SY_ERR_BLOB_…` codes (and `SY_ERR_AUTH_…`
 * with a `reason` for 401/403).
 */
export interface BlobPluginOptions {
  store: BlobStore;
  /** Largest blob a PUT accepts, bytes. @default 2 GiB */
  maxBlobBytes?: number;
  /** The admin token guarding PUT. @default none: PUT only from loopback clients */
  admin?: AdminAuthOptions;
}

/** A store that takes a blob as a stream of chunks (`FsBlobStore`): uploads to it are never held whole in memory. */
export interface StreamingBlobStore extends BlobStore {
  putStream(source: AsyncIterable<Uint8Array>, options?: PutOptions): Promise<BlobInfo>;
}

export const canPutStream = (store: BlobStore): store is StreamingBlobStore => typeof (store as Partial<StreamingBlobStore>).putStream === 'function';

export const DIGEST_HEADER = 'x-blob-digest';

/** Default of `maxBlobBytes`: 2 GiB. */
export const DEFAULT_MAX_BLOB_BYTES = 2 * 1024 ** 3;

const BlobParams = Type.Object({ ref: Type.String({ pattern: '^sha256:[0-9a-fA-F]{64}$' }) });
const PutQuery = Type.Object({ digest: Type.Optional(Type.String()) });
const PutHeaders = Type.Object({ [DIGEST_HEADER]: Type.Optional(Type.String()) });
const BlobInfoBody = Type.Object({ digest: Type.String(), sizeBytes: Type.Integer() });
const ErrorBody = Type.Object({ code: Type.String(), message: Type.String(), reason: Type.Optional(Type.String()) });

const STATUS: Record<string, number> = {
  SY_ERR_BLOB_BAD_DIGEST: 400,
  SY_ERR_BLOB_NOT_FOUND: 404,
  SY_ERR_BLOB_UNAVAILABLE: 503,
};

const tooLarge = (maxBlobBytes: number): Error => Object.assign(new Error(`the blob is larger than the limit of ${maxBlobBytes} bytes`), { statusCode: 413 });

/** The chunks of `source`, failing with 413 once more than `maxBytes` have come. */
async function* limited(source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, maxBytes: number): AsyncGenerator<Uint8Array> {
  let seen = 0;
  for await (const chunk of source) {
    seen += chunk.byteLength;
    if (seen > maxBytes) throw tooLarge(maxBytes);
    yield chunk;
  }
}

export const blobPlugin: FastifyPluginAsync<BlobPluginOptions> = async (app, { store, maxBlobBytes = DEFAULT_MAX_BLOB_BYTES, admin = {} }) => {
  if (!Number.isSafeInteger(maxBlobBytes) || maxBlobBytes < 1) throw new SwitchyardError('SY_ERR_CONFIG', `blob store: maxBlobBytes must be a positive integer, got ${maxBlobBytes}`);
  // Only octet-stream bodies, handed over unread: the PUT route streams them.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/octet-stream', (req, payload, done) => {
    const announced = Number(req.headers['content-length']);
    if (Number.isFinite(announced) && announced > maxBlobBytes) done(tooLarge(maxBlobBytes), undefined);
    else done(null, payload);
  });
  app.setErrorHandler((err, req, reply) => {
    // An upload refused before its end: close rather than read the rest of it.
    if (req.method === 'PUT') reply.header('connection', 'close');
    if (isAuthError(err)) return reply.status(err.statusCode).headers(err.headers).send({ code: err.code, message: err.message, reason: err.reason });
    if (err instanceof SwitchyardError) {
      // A stored blob that fails verification is the server's fault; an upload that does, the client's.
      const status = err.code === 'SY_ERR_BLOB_DIGEST_MISMATCH' ? (req.method === 'PUT' ? 400 : 500) : (STATUS[err.code] ?? 500);
      if (status >= 500) req.log.error({ err }, 'blob request failed');
      return reply.status(status).send({ code: err.code, message: err.message });
    }
    const statusCode = (err as { statusCode?: number }).statusCode ?? 500;
    const code = statusCode === 413 ? 'SY_ERR_BLOB_TOO_LARGE' : statusCode < 500 ? 'SY_ERR_BLOB_BAD_REQUEST' : 'SY_ERR_BLOB_UNAVAILABLE';
    const message = statusCode === 415 ? 'PUT /v1/blobs takes the blob as application/octet-stream' : errorMessage(err);
    return reply.status(statusCode).send({ code, message });
  });

  app.get<{ Params: Static<typeof BlobParams> }>(
    '/v1/blobs/:ref',
    { exposeHeadRoute: false, schema: { params: BlobParams, response: { 404: ErrorBody } } },
    async (req, reply) => {
      const digest = parseDigest(req.params.ref);
      const bytes = await store.get(digest);
      return reply
        .header('content-type', 'application/octet-stream')
        .header('etag', `"sha256:${digest}"`)
        .header(DIGEST_HEADER, `sha256:${digest}`)
        .header('cache-control', 'public, max-age=31536000, immutable')
        .send(bytes);
    },
  );

  app.head<{ Params: Static<typeof BlobParams> }>('/v1/blobs/:ref', { schema: { params: BlobParams } }, async (req, reply) => {
    const digest = parseDigest(req.params.ref);
    const info = await store.stat(digest);
    if (info === undefined) return reply.status(404).send();
    return reply
      .header('content-type', 'application/octet-stream')
      .header('content-length', String(info.sizeBytes))
      .header('etag', `"sha256:${digest}"`)
      .header(DIGEST_HEADER, `sha256:${digest}`)
      .send();
  });

  app.put<{ Querystring: Static<typeof PutQuery>; Headers: Static<typeof PutHeaders>; Body: IncomingMessage | undefined }>(
    '/v1/blobs',
    { onRequest: requireAdmin(admin), schema: { querystring: PutQuery, headers: PutHeaders, response: { 201: BlobInfoBody, '4xx': ErrorBody } } },
    async (req, reply) => {
      const expected = req.headers[DIGEST_HEADER] ?? req.query.digest;
      const options = expected === undefined ? {} : { expectedDigest: expected };
      if (expected !== undefined) parseDigest(expected); // a malformed digest is refused before the upload is read
      // Not destroyed when the limit stops the read: the 413 still has to go out on this socket.
      const body = req.body === undefined ? limited([], maxBlobBytes) : limited(req.body.iterator({ destroyOnReturn: false }), maxBlobBytes);
      let info: BlobInfo;
      if (canPutStream(store)) info = await store.putStream(body, options);
      else {
        // A store without streams (memory, another HTTP store) takes the bytes whole.
        const chunks: Uint8Array[] = [];
        for await (const chunk of body) chunks.push(chunk);
        info = await store.put(Buffer.concat(chunks), options);
      }
      return reply.status(201).header('location', `/v1/blobs/sha256:${info.digest}`).send(info);
    },
  );
};

export interface BlobAppOptions extends BlobPluginOptions {
  /** Request logging goes here. @default none */
  logger?: FastifyBaseLogger;
}

/** An app serving only the blob endpoint (built separately from `listen`, for `inject`). */
export function buildBlobApp({ logger, ...options }: BlobAppOptions): FastifyInstance {
  // Uploads may be long: no whole-request deadline, but a connection idle for 60 s is closed,
  // and the headers must come within 10 s.
  const serverOptions = { connectionTimeout: 60_000, requestTimeout: 0, http: { headersTimeout: 10_000, connectionsCheckingInterval: 1_000 } };
  const app = logger ? Fastify({ ...serverOptions, loggerInstance: redactingLogger(logger) }) : Fastify(serverOptions);
  app.get('/healthz', async () => ({ status: 'ok' }));
  void app.register(blobPlugin, options);
  return app;
}

export interface BlobServerOptions extends BlobAppOptions {
  /** @default '127.0.0.1' */
  host?: string;
  /** 0 picks a free port. @default 0 */
  port?: number;
}

export interface RunningBlobServer {
  /** Base URL, e.g. `http://127.0.0.1:40123`. */
  url: string;
  app: FastifyInstance;
  close(): Promise<void>;
}

/** The blob endpoint listening on its own port. */
export async function startBlobServer({ host = '127.0.0.1', port = 0, ...options }: BlobServerOptions): Promise<RunningBlobServer> {
  const app = buildBlobApp(options);
  const url = await app.listen({ host, port });
  return { url, app, close: () => app.close() };
}
