import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyPluginAsync } from 'fastify';
import { Type, type Static } from '@sinclair/typebox';
import { SwitchyardError, errorMessage } from '../errors.js';
import { parseDigest } from './digest.js';
import type { BlobStore } from './port.js';

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
 *   is refused rather than stored under another name.
 *
 * Errors are `{ code, message }` with the stable `SY_ERR_BLOB_…` codes.
 */
export interface BlobPluginOptions {
  store: BlobStore;
  /** Largest blob a PUT accepts, bytes. @default 1 GiB */
  maxBlobBytes?: number;
}

export const DIGEST_HEADER = 'x-blob-digest';

const BlobParams = Type.Object({ ref: Type.String({ pattern: '^sha256:[0-9a-fA-F]{64}$' }) });
const PutQuery = Type.Object({ digest: Type.Optional(Type.String()) });
const PutHeaders = Type.Object({ [DIGEST_HEADER]: Type.Optional(Type.String()) });
const BlobInfoBody = Type.Object({ digest: Type.String(), sizeBytes: Type.Integer() });
const ErrorBody = Type.Object({ code: Type.String(), message: Type.String() });

const STATUS: Record<string, number> = {
  SY_ERR_BLOB_BAD_DIGEST: 400,
  SY_ERR_BLOB_NOT_FOUND: 404,
  SY_ERR_BLOB_UNAVAILABLE: 503,
};

export const blobPlugin: FastifyPluginAsync<BlobPluginOptions> = async (app, { store, maxBlobBytes = 1024 ** 3 }) => {
  app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer', bodyLimit: maxBlobBytes }, (_req, body, done) => done(null, body));
  app.setErrorHandler((err, req, reply) => {
    if (err instanceof SwitchyardError) {
      // A stored blob that fails verification is the server's fault; an upload that does, the client's.
      const status = err.code === 'SY_ERR_BLOB_DIGEST_MISMATCH' ? (req.method === 'PUT' ? 400 : 500) : (STATUS[err.code] ?? 500);
      if (status >= 500) req.log.error({ err }, 'blob request failed');
      return reply.status(status).send({ code: err.code, message: err.message });
    }
    const statusCode = (err as { statusCode?: number }).statusCode ?? 500;
    const code = statusCode === 413 ? 'SY_ERR_BLOB_TOO_LARGE' : statusCode < 500 ? 'SY_ERR_BLOB_BAD_REQUEST' : 'SY_ERR_BLOB_UNAVAILABLE';
    return reply.status(statusCode).send({ code, message: errorMessage(err) });
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

  app.put<{ Querystring: Static<typeof PutQuery>; Headers: Static<typeof PutHeaders>; Body: Buffer }>(
    '/v1/blobs',
    { schema: { querystring: PutQuery, headers: PutHeaders, response: { 201: BlobInfoBody, 400: ErrorBody } } },
    async (req, reply) => {
      if (!Buffer.isBuffer(req.body)) {
        throw new SwitchyardError('SY_ERR_BLOB_BAD_DIGEST', 'PUT /v1/blobs takes the blob as application/octet-stream');
      }
      const expected = req.headers[DIGEST_HEADER] ?? req.query.digest;
      const info = await store.put(req.body, expected === undefined ? {} : { expectedDigest: expected });
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
  const app = logger ? Fastify({ loggerInstance: logger }) : Fastify();
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
