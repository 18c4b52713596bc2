import { createHash } from 'node:crypto';
import type { FastifyError, FastifyPluginAsync, FastifyRequest } from 'fastify';
import { isAuthError } from '../../lib/auth/errors.js';
import { errorMessage } from '../../lib/errors.js';
import type { ServiceContext } from '../../lib/runtime.js';
import { traceHtml } from '../../replay/render-html.js';
import { jsonSafe } from '../../replay/trace.js';
import { StatusError, isStatusError } from './errors.js';
import { STATUS_PAGE_SCRIPT, STATUS_PAGE_STYLE, statusPageHtml } from './page.js';
import { StatusService, statusSourceFromContext, type StatusServiceOptions, type StatusSource } from './service.js';

/** Options of the status routes: a running service, or where to start one. */
export interface StatusRoutesOptions {
  /** A started status service to serve (its lifetime is the caller's). */
  service?: StatusService;
  /** Else where to read: a service is started on the first request to a data route and closed with the app. */
  source?: StatusSource;
  /** Options of the service started from `source`. */
  serviceOptions?: StatusServiceOptions;
  /**
   * Guard of the data routes (`/status.json`, `/status/requests/:id`): an `onRequest` hook, the
   * admin token's (`requireAdmin`). The page itself holds no data and is served to anyone.
   * @default none
   */
  guard?: (req: FastifyRequest) => Promise<void>;
}

const sha256 = (text: string): string => `'sha256-${createHash('sha256').update(text).digest('base64')}'`;

/** The page runs its own inline script and style and talks only to its origin. */
const PAGE_CSP = `default-src 'none'; script-src ${sha256(STATUS_PAGE_SCRIPT)}; style-src ${sha256(STATUS_PAGE_STYLE)}; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`;
/** A request's path as a page (replay/render-html.ts): no script at all, inline styles. */
const TRACE_CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
const PAGE = statusPageHtml();

interface HttpError {
  statusCode: number;
  headers: Record<string, string>;
  body: { error: { code: string; message: string; reason?: string; retriable: boolean } };
}

/** Any error of these routes, in the services' format `{ error: { code, message, … } }`. */
function httpError(err: unknown): HttpError {
  if (isStatusError(err)) return { statusCode: err.statusCode, headers: {}, body: { error: { code: err.code, message: err.message, retriable: err.retriable } } };
  if (isAuthError(err)) return { statusCode: err.statusCode, headers: err.headers, body: { error: { code: err.code, message: err.message, reason: err.reason, retriable: err.retriable } } };
  // An error in the host app's own format (the gateway's hooks: shutting down, URL too long).
  const own = err as { statusCode?: unknown; headers?: unknown; toBody?: unknown };
  if (typeof own?.statusCode === 'number' && typeof own.toBody === 'function') {
    return { statusCode: own.statusCode, headers: (own.headers as Record<string, string> | undefined) ?? {}, body: (own.toBody as () => HttpError['body'])() };
  }
  const fe = err as FastifyError;
  if (fe?.validation !== undefined || (typeof fe?.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500)) {
    return { statusCode: 400, headers: {}, body: { error: { code: 'SY_ERR_STATUS_BAD_REQUEST', message: errorMessage(err), retriable: false } } };
  }
  return { statusCode: 500, headers: {}, body: { error: { code: 'SY_ERR_STATUS_INTERNAL', message: 'internal error', retriable: false } } };
}

/**
 * The status page as a fastify plugin (encapsulated: its error handler covers its routes only):
 * - `GET /status`: the page (services/status/page.ts), with a Content-Security-Policy naming its
 *   inline script and style by hash;
 * - `GET /status.json`: the status document (`LiveStatus`);
 * - `GET /status/requests/:id`: the request's replayed path, JSON (replay's trace) or, with
 *   `?format=html`, replay's HTML page of it. 404 `SY_ERR_STATUS_NOT_FOUND` when no record names it.
 * Registered by the gateway (`statusRoutesFor`) and by `switchyard status --serve`.
 */
export const statusRoutes: FastifyPluginAsync<StatusRoutesOptions> = async (app, opts) => {
  if (opts.service === undefined && opts.source === undefined) throw new StatusError('SY_ERR_STATUS_INTERNAL', 'status routes: give a service or a source');
  let started: Promise<StatusService> | undefined;
  const service = (): Promise<StatusService> => {
    if (opts.service !== undefined) return Promise.resolve(opts.service);
    started ??= (async () => {
      const s = new StatusService(opts.source!, opts.serviceOptions);
      await s.start();
      return s;
    })().catch((err: unknown) => {
      started = undefined;
      throw err;
    });
    return started;
  };
  app.addHook('onClose', async () => {
    const s = await started?.catch(() => undefined);
    await s?.close();
  });
  app.setErrorHandler((err, req, reply) => {
    const e = httpError(err);
    if (e.statusCode >= 500 && e.body.error.code === 'SY_ERR_STATUS_INTERNAL') req.log.error({ err }, 'status route failed');
    return reply.code(e.statusCode).headers(e.headers).send(e.body);
  });
  const guarded = opts.guard === undefined ? {} : { onRequest: opts.guard };

  app.get('/status', { schema: { hide: true, summary: 'The status page (HTML)' } }, async (_req, reply) =>
    reply.type('text/html; charset=utf-8').header('cache-control', 'no-store').header('content-security-policy', PAGE_CSP).header('x-content-type-options', 'nosniff').send(PAGE),
  );

  app.get(
    '/status.json',
    {
      ...guarded,
      schema: {
        hide: true,
        summary: 'The cluster status: members and health, lanes, models and rollouts, controllers, rates, per-second series, recent actions',
        description: 'A fold of the log (control whole; heartbeats, decisions and results over the last minutes). Admin route: the admin token, or loopback when none is configured.',
      },
    },
    async (_req, reply) => reply.header('cache-control', 'no-store').send((await service()).document()),
  );

  app.get<{ Params: { id: string }; Querystring: { format?: 'json' | 'html' } }>(
    '/status/requests/:id',
    {
      ...guarded,
      schema: {
        hide: true,
        summary: "A request's path, replayed from the log",
        description: 'received → routed (candidates, reason, clock) → started → completed/failed/rejected, as `switchyard replay request` shows it, within the lookup window. `?format=html` for a page.',
        params: { type: 'object', properties: { id: { type: 'string', minLength: 1, maxLength: 512 } }, required: ['id'] },
        querystring: { type: 'object', properties: { format: { type: 'string', enum: ['json', 'html'] } }, additionalProperties: false },
      },
    },
    async (req, reply) => {
      const trace = await (await service()).lookup(req.params.id);
      reply.header('cache-control', 'no-store');
      if (req.query.format === 'html') return reply.type('text/html; charset=utf-8').header('content-security-policy', TRACE_CSP).header('x-content-type-options', 'nosniff').send(traceHtml(trace));
      return reply.send(jsonSafe(trace));
    },
  );
};

/** The gateway's status routes: read the gateway's own log, the data routes behind its admin guard. */
export function statusRoutesFor(ctx: Pick<ServiceContext, 'log' | 'codec' | 'topics' | 'now' | 'logger'>, guard: (req: FastifyRequest) => Promise<void>): StatusRoutesOptions {
  return { source: statusSourceFromContext(ctx), serviceOptions: { now: ctx.now, logger: ctx.logger }, guard };
}
