import swagger from '@fastify/swagger';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyPluginAsync, type FastifyReply } from 'fastify';
import { SwitchyardError, errorMessage } from '../../lib/errors.js';
import type { ServiceContext } from '../../lib/runtime.js';
import type { InferenceRequested } from '../../schemas/generated/events.js';
import { GatewayError, type ValidationDetail } from './errors.js';
import { fingerprint, idempotentRequestId } from './idempotency.js';
import { createGatewayMetrics, type GatewayMetrics } from './metrics.js';
import { locationOf, outcomeError, statusView } from './outcome.js';
import { DEFAULT_CONTENT_TYPE, encodeInput } from './payload.js';
import type { ResultsTracker } from './results.js';
import { AcceptedResponse, ErrorResponse, HealthResponse, IdempotencyHeaders, InferBody, ReadyResponse, RequestIdParams, StatusResponse } from './schemas.js';
import { acceptedStatus, isTerminal, type RequestStatus } from './state.js';
import { DEFAULT_REQUEST_LIMITS, checkInferenceRequest, type RequestLimits, type RequestProblem } from '../../schemas/request-rules.js';

/** Options of the gateway's HTTP app. Every default is applied once, in `resolveGatewayAppOptions`. */
export interface GatewayAppOptions {
  ctx: ServiceContext;
  /** The started results tracker of this instance. */
  tracker: ResultsTracker;
  /** This instance's id: the `producer` of its InferenceRequested events. */
  instanceId: string;
  /** Deadline of a sync request that gives no deadlineMs, ms. @default 30_000 */
  defaultDeadlineMs?: number;
  /** Deadline of an async request that gives no deadlineMs, ms; null = none. @default null */
  defaultAsyncDeadlineMs?: number | null;
  /** Largest deadlineMs accepted, ms. @default 3_600_000 */
  maxDeadlineMs?: number;
  /** Longest a sync request waits (then 504 with a Location to poll), ms. @default 60_000 */
  maxSyncWaitMs?: number;
  /** Largest request body, bytes. @default 2_097_152 (2 MiB: a 1 MiB input as base64, with room) */
  bodyLimit?: number;
  /** Request limits (shared with the router's checks). @default DEFAULT_REQUEST_LIMITS */
  limits?: Partial<RequestLimits>;
  /** How long /readyz waits for the log, ms. @default 2_000 */
  readyTimeoutMs?: number;
  /** Also export prom-client's process metrics. @default false */
  defaultMetrics?: boolean;
  /** Where the app logs (errors; and every request when `logRequests`). @default none */
  logger?: FastifyBaseLogger;
  /** Log each request and response (two lines per request: off on the hot path by default). @default false */
  logRequests?: boolean;
}

export type ResolvedGatewayAppOptions = Required<Omit<GatewayAppOptions, 'logger' | 'limits'>> & { limits: RequestLimits; logger: FastifyBaseLogger | undefined };

export function resolveGatewayAppOptions(o: GatewayAppOptions): ResolvedGatewayAppOptions {
  const r: ResolvedGatewayAppOptions = {
    ...o,
    defaultDeadlineMs: o.defaultDeadlineMs ?? 30_000,
    defaultAsyncDeadlineMs: o.defaultAsyncDeadlineMs ?? null,
    maxDeadlineMs: o.maxDeadlineMs ?? 3_600_000,
    maxSyncWaitMs: o.maxSyncWaitMs ?? 60_000,
    bodyLimit: o.bodyLimit ?? 2_097_152,
    limits: { ...DEFAULT_REQUEST_LIMITS, ...o.limits },
    readyTimeoutMs: o.readyTimeoutMs ?? 2_000,
    defaultMetrics: o.defaultMetrics ?? false,
    logRequests: o.logRequests ?? false,
    logger: o.logger,
  };
  const check = (name: string, v: number | null, nullable = false) => {
    if ((v === null && nullable) || (Number.isSafeInteger(v) && (v as number) > 0)) return;
    throw new SwitchyardError('SY_ERR_CONFIG', `gateway: ${name} must be a positive integer${nullable ? ' or null' : ''}, got ${v}`);
  };
  check('defaultDeadlineMs', r.defaultDeadlineMs);
  check('defaultAsyncDeadlineMs', r.defaultAsyncDeadlineMs, true);
  check('maxDeadlineMs', r.maxDeadlineMs);
  check('maxSyncWaitMs', r.maxSyncWaitMs);
  check('bodyLimit', r.bodyLimit);
  check('readyTimeoutMs', r.readyTimeoutMs);
  for (const [k, v] of Object.entries(r.limits)) check(`limits.${k}`, v);
  if (r.defaultDeadlineMs > r.maxDeadlineMs) throw new SwitchyardError('SY_ERR_CONFIG', 'gateway: defaultDeadlineMs must not exceed maxDeadlineMs');
  if (!r.instanceId) throw new SwitchyardError('SY_ERR_CONFIG', 'gateway: instanceId is required');
  return r;
}

export type GatewayApp = FastifyInstance & { gateway: { metrics: GatewayMetrics; options: ResolvedGatewayAppOptions } };

const TRACEPARENT = /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/;
const traceIdOf = (traceparent: string | undefined): string | null => {
  const m = traceparent === undefined ? null : TRACEPARENT.exec(traceparent);
  return m && !/^0+$/.test(m[1]!) ? m[1]! : null;
};

const invalid = (message: string, details: ValidationDetail[]) =>
  new GatewayError(400, 'SY_ERR_GATEWAY_INVALID_REQUEST', `${message}: ${details.map((d) => `${d.in}${d.path} ${d.message}`).join('; ')}`, { details });

/** Where a rule of validate.ts points in the HTTP request. */
function problemDetail(p: RequestProblem): ValidationDetail {
  if (p.field === 'idempotencyKey' || p.field === 'requestId') return { in: 'headers', path: '/idempotency-key', message: p.message };
  if (p.field === 'deadlineAt') return { in: 'body', path: '/deadlineMs', message: p.message };
  return { in: 'body', path: `/${p.field.replaceAll('.', '/')}`, message: p.message };
}

interface AjvError {
  instancePath: string;
  keyword: string;
  message?: string;
  params: Record<string, unknown>;
}

/** Fastify's validation error (ajv's errors) as details a client can act on. */
function validationDetails(err: FastifyError): ValidationDetail[] {
  const where = (err as { validationContext?: string }).validationContext ?? 'body';
  const errors = (err.validation ?? []) as AjvError[];
  const out: ValidationDetail[] = [];
  const seen = new Set<string>();
  for (const e of errors) {
    let path = e.instancePath;
    let message = e.message ?? e.keyword;
    if (e.keyword === 'required') {
      path = `${path}/${String(e.params['missingProperty'])}`;
      message = 'is required';
    } else if (e.keyword === 'additionalProperties') {
      path = `${path}/${String(e.params['additionalProperty'])}`;
      message = 'is not a known field';
    } else if (e.keyword === 'enum') {
      message = `must be one of ${(e.params['allowedValues'] as unknown[]).join(', ')}`;
    }
    const key = `${where}${path} ${message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ in: where, path, message });
  }
  return out;
}

/** Any error thrown in a route, as a GatewayError with a stable code. */
function toGatewayError(err: unknown): GatewayError {
  if (err instanceof GatewayError) return err;
  const e = err as FastifyError;
  if (e?.validation !== undefined) return invalid('the request is invalid', validationDetails(e));
  switch (e?.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new GatewayError(413, 'SY_ERR_GATEWAY_PAYLOAD_TOO_LARGE', e.message);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new GatewayError(415, 'SY_ERR_GATEWAY_UNSUPPORTED_MEDIA_TYPE', `${e.message}; send application/json`);
  }
  const status = typeof e?.statusCode === 'number' ? e.statusCode : 500;
  if (status >= 400 && status < 500) return invalid('the request is invalid', [{ in: 'body', path: '', message: errorMessage(err) }]);
  return new GatewayError(500, 'SY_ERR_GATEWAY_INTERNAL', 'internal error', { cause: err });
}

const errorResponses = { '4xx': ErrorResponse, '5xx': ErrorResponse };

/**
 * The gateway's HTTP API (fastify, TypeBox schemas on every route; built apart from `listen`
 * so tests use `inject`):
 * - `POST /v1/infer`: produce, then wait for the result until the deadline (capped by
 *   `maxSyncWaitMs`); 504 with the request id and a Location to poll when it does not come.
 * - `POST /v1/requests`: produce; 202 with the request id and a Location.
 * - `GET /v1/requests/:id`: what the results tracker knows of a request; 404 when nothing.
 * - `Idempotency-Key` on both POSTs; `/healthz`, `/readyz`, `/metrics`, `/docs/json`.
 * Status and error mapping: `outcome.ts`; idempotency: `idempotency.ts`.
 */
export function buildGatewayApp(options: GatewayAppOptions): GatewayApp {
  const opts = resolveGatewayAppOptions(options);
  const { tracker, logger } = opts;
  const metrics = createGatewayMetrics(tracker, { defaultMetrics: opts.defaultMetrics });
  const fastifyOptions = { bodyLimit: opts.bodyLimit, ajv: AJV, logController: new LogController({ disableRequestLogging: !opts.logRequests }) };
  const app = (logger ? Fastify({ ...fastifyOptions, loggerInstance: logger }) : Fastify(fastifyOptions)).withTypeProvider<TypeBoxTypeProvider>() as unknown as GatewayApp;
  app.decorate('gateway', { metrics, options: opts });

  app.setErrorHandler((err, req, reply) => {
    const e = toGatewayError(err);
    if (e.code === 'SY_ERR_GATEWAY_INTERNAL') req.log.error({ err }, 'gateway request failed');
    return reply.code(e.statusCode).headers(e.headers).send(e.toBody());
  });
  app.setNotFoundHandler((req, reply) =>
    reply.code(404).send(new GatewayError(404, 'SY_ERR_GATEWAY_NOT_FOUND', `no route ${req.method} ${req.url.split('?')[0]}`).toBody()),
  );
  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url ?? 'unmatched';
    metrics.requests.inc({ route, method: req.method, status: reply.statusCode });
    metrics.latency.observe({ route, method: req.method }, reply.elapsedTime / 1000);
  });

  app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Switchyard gateway',
        version: '1',
        description: 'HTTP facade of Switchyard: produces InferenceRequested to the log and answers from the results topic.',
      },
      tags: [
        { name: 'inference', description: 'Inference requests' },
        { name: 'operations', description: 'Health, readiness, metrics' },
      ],
    },
  });
  app.register(inferenceRoutes(opts, metrics), { prefix: '/v1' });
  app.register(operationRoutes(opts, metrics));
  return app;
}

const AJV = { customOptions: { allErrors: true, allowUnionTypes: true, removeAdditional: false as const, coerceTypes: false as const, useDefaults: false } };

interface Admission {
  requestId: string;
  state: RequestStatus;
  deadlineAt: number | null;
  replayed: boolean;
}

function inferenceRoutes(opts: ResolvedGatewayAppOptions, metrics: GatewayMetrics): FastifyPluginAsync {
  const { ctx, tracker, instanceId, limits } = opts;
  const requestsTopic = ctx.topics.requests.name;

  /** Validate, apply Idempotency-Key, produce: what both POSTs share. */
  async function admit(body: InferBody, headers: { 'idempotency-key'?: string; traceparent?: string }, sync: boolean): Promise<Admission> {
    if (body.deadlineMs !== undefined && body.deadlineMs > opts.maxDeadlineMs) {
      throw invalid('the request is invalid', [{ in: 'body', path: '/deadlineMs', message: `must be ≤ ${opts.maxDeadlineMs}` }]);
    }
    const now = ctx.now();
    const contentType = body.contentType ?? DEFAULT_CONTENT_TYPE;
    const input = encodeInput(body.input, contentType);
    if (!input.ok) throw invalid('the request is invalid', [{ in: 'body', path: '/input', message: input.message }]);
    const deadlineMs = body.deadlineMs ?? (sync ? opts.defaultDeadlineMs : opts.defaultAsyncDeadlineMs);
    const key = headers['idempotency-key'];
    const requestId = key === undefined ? ctx.newEventId() : idempotentRequestId(body.tenant, key);
    const parameters: Record<string, string> = {};
    for (const [k, v] of Object.entries(body.parameters ?? {})) parameters[k] = String(v);
    const event: InferenceRequested = {
      type: 'InferenceRequested',
      eventId: ctx.newEventId(),
      occurredAt: now,
      requestId,
      traceId: traceIdOf(headers.traceparent),
      producer: instanceId,
      causationId: null,
      clock: [],
      model: body.model,
      modelVersion: body.modelVersion ?? null,
      input: input.bytes,
      contentType,
      parameters,
      sessionId: body.sessionId ?? null,
      priority: body.priority ?? 'NORMAL',
      deadlineAt: deadlineMs === null ? null : now + deadlineMs,
      zone: body.zone ?? null,
      idempotencyKey: key ?? null,
      tenant: body.tenant ?? null,
      source: 'GATEWAY',
      replyTopic: null,
      allowFallback: body.allowFallback ?? true,
      maxAttempts: null,
      cacheable: body.cacheable ?? true,
      attributes: {},
    };
    // The input was serialized here from parsed JSON: no need to parse it again.
    const problems = checkInferenceRequest(event, now, limits, { parseJsonInput: false });
    if (problems.length > 0) throw invalid('the request is invalid', problems.map(problemDetail));

    const bodyFingerprint = key === undefined ? null : fingerprint(body);
    if (key !== undefined) {
      const known = tracker.get(requestId);
      if (known !== undefined) {
        if (known.fingerprint !== null && known.fingerprint !== bodyFingerprint) {
          throw new GatewayError(422, 'SY_ERR_GATEWAY_IDEMPOTENCY_MISMATCH', 'this Idempotency-Key was used for a request with a different body', { requestId });
        }
        await awaitAppend(tracker.appending(requestId), requestId);
        return { requestId, state: tracker.get(requestId) ?? known, deadlineAt: event.deadlineAt, replayed: true };
      }
    }
    if (sync && !tracker.canWait()) {
      throw new GatewayError(503, 'SY_ERR_GATEWAY_BUSY', `too many requests waiting (${tracker.waiting}); retry, or use POST /v1/requests`, {
        retriable: true,
        retryAfterMs: 1_000,
        headers: { 'retry-after': '1' },
      });
    }
    const state = acceptedStatus(requestId, body.model, now, bodyFingerprint);
    const value = ctx.codec.encode(event);
    await awaitAppend(tracker.accept(state, ctx.log.append([{ topic: requestsTopic, key: event.sessionId ?? requestId, value }])), requestId);
    return { requestId, state: tracker.get(requestId) ?? state, deadlineAt: event.deadlineAt, replayed: false };
  }

  async function awaitAppend(append: Promise<void> | undefined, requestId: string): Promise<void> {
    try {
      await append;
    } catch (err) {
      throw new GatewayError(503, 'SY_ERR_GATEWAY_LOG_UNAVAILABLE', `the request could not be written to the log: ${errorMessage(err)}`, {
        requestId,
        retriable: true,
        cause: err,
      });
    }
  }

  const common = (reply: FastifyReply, a: Admission) => {
    reply.header('location', locationOf(a.requestId));
    if (a.replayed) reply.header('idempotent-replayed', 'true');
  };

  return async (app) => {
    const r = app.withTypeProvider<TypeBoxTypeProvider>();

    r.post(
      '/infer',
      {
        schema: {
          tags: ['inference'],
          summary: 'Run an inference and wait for its result',
          description:
            'Produces the request, then waits for its result until its deadline (deadlineMs, default 30 s; at most maxSyncWaitMs). Outcomes: 200 completed; 429 shed under overload (Retry-After); 503 no capacity; 504 deadline or wait exceeded (with the request id and a Location to poll); 502/500 the worker failed; 404 unknown model; 422 Idempotency-Key reused with a different body.',
          body: InferBody,
          headers: IdempotencyHeaders,
          response: { 200: StatusResponse, ...errorResponses },
        },
      },
      async (req, reply) => {
        const a = await admit(req.body, req.headers, true);
        common(reply, a);
        let state = a.state;
        if (!isTerminal(state.status)) {
          const waitMs = Math.min(opts.maxSyncWaitMs, (a.deadlineAt ?? Number.MAX_SAFE_INTEGER) - ctx.now());
          const abort = new AbortController();
          const onClose = () => {
            if (!reply.raw.writableFinished) abort.abort();
          };
          reply.raw.once('close', onClose);
          try {
            state = (await tracker.wait(a.requestId, waitMs, abort.signal)) ?? state;
          } finally {
            reply.raw.off('close', onClose);
          }
        }
        if (!isTerminal(state.status)) {
          metrics.outcomes.inc({ endpoint: 'sync', outcome: 'timeout' });
          throw new GatewayError(504, 'SY_ERR_GATEWAY_TIMEOUT', `no result within the deadline; the request is ${state.status}: poll ${locationOf(a.requestId)}`, {
            requestId: a.requestId,
            retriable: true,
            headers: { location: locationOf(a.requestId) },
          });
        }
        metrics.outcomes.inc({ endpoint: 'sync', outcome: a.replayed ? `${state.status}_replayed` : state.status });
        const failure = outcomeError(state);
        if (failure !== null) throw failure;
        return reply.code(200).send(statusView(state));
      },
    );

    r.post(
      '/requests',
      {
        schema: {
          tags: ['inference'],
          summary: 'Submit an inference; poll for its result',
          description: 'Produces the request and answers 202 with its id and a Location to GET. With an Idempotency-Key already seen, answers 202 with the known status.',
          body: InferBody,
          headers: IdempotencyHeaders,
          response: { 202: AcceptedResponse, ...errorResponses },
        },
      },
      async (req, reply) => {
        const a = await admit(req.body, req.headers, false);
        common(reply, a);
        metrics.outcomes.inc({ endpoint: 'async', outcome: a.replayed ? 'replayed' : 'accepted' });
        return reply.code(202).send({ requestId: a.requestId, status: a.state.status, location: locationOf(a.requestId) });
      },
    );

    r.get(
      '/requests/:id',
      {
        schema: {
          tags: ['inference'],
          summary: 'Status and result of a request',
          description:
            'accepted → started → completed | failed | rejected, with the result (output decoded per contentType) or the error. 404 when this gateway knows nothing of the id (never accepted here, or no result seen within the tracker’s window).',
          params: RequestIdParams,
          response: { 200: StatusResponse, ...errorResponses },
        },
      },
      async (req, reply) => {
        const state = tracker.get(req.params.id);
        if (state === undefined) throw new GatewayError(404, 'SY_ERR_GATEWAY_NOT_FOUND', `request ${req.params.id} is not known to this gateway`, { requestId: req.params.id });
        return reply.code(200).send(statusView(state));
      },
    );
  };
}

function operationRoutes(opts: ResolvedGatewayAppOptions, metrics: GatewayMetrics): FastifyPluginAsync {
  const { ctx, tracker } = opts;
  return async (app) => {
    const r = app.withTypeProvider<TypeBoxTypeProvider>();
    r.get('/healthz', { schema: { tags: ['operations'], summary: 'The process is up', response: { 200: HealthResponse } } }, async () => ({ status: 'ok' }));

    r.get(
      '/readyz',
      { schema: { tags: ['operations'], summary: 'The log is reachable and the results tracker has caught up', response: { 200: ReadyResponse, 503: ReadyResponse } } },
      async (_req, reply) => {
        const checks = { log: 'ok', results: tracker.isCaughtUp() ? 'ok' : 'catching up' };
        let timer: NodeJS.Timeout | undefined;
        try {
          await Promise.race([
            ctx.log.endOffsets(ctx.topics.results.name),
            new Promise((_, reject) => {
              timer = setTimeout(() => reject(new Error(`no answer within ${opts.readyTimeoutMs} ms`)), opts.readyTimeoutMs);
            }),
          ]);
        } catch (err) {
          checks.log = `unreachable: ${errorMessage(err)}`;
        } finally {
          clearTimeout(timer);
        }
        const ready = checks.log === 'ok' && checks.results === 'ok';
        return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not_ready', checks });
      },
    );

    r.get('/metrics', { schema: { tags: ['operations'], summary: 'Prometheus metrics' } }, async (_req, reply) =>
      reply.type(metrics.registry.contentType).send(await metrics.registry.metrics()),
    );

    r.get('/docs/json', { schema: { hide: true } }, async () => app.swagger());
  };
}
