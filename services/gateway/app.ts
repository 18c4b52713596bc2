import type { Socket } from 'node:net';
import { STATUS_CODES } from 'node:http';
import swagger from '@fastify/swagger';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyPluginAsync, type FastifyReply, type FastifyRequest } from 'fastify';
import { requireAdmin, resolveAdminAuth, type AdminAuthOptions } from '../../lib/auth/admin.js';
import { isAuthError } from '../../lib/auth/errors.js';
import { redactingLogger } from '../../lib/auth/redact.js';
import { SwitchyardError, errorMessage } from '../../lib/errors.js';
import type { ServiceContext } from '../../lib/runtime.js';
import type { InferenceRequested } from '../../schemas/generated/events.js';
import { MAX_REQUEST_RECORD_BYTES } from '../../lib/events/subscribe.js';
import { ApiKeyRing, type ApiKey } from './auth.js';
import { GatewayError, type ValidationDetail } from './errors.js';
import { fingerprint, idempotentRequestId } from './idempotency.js';
import { createGatewayMetrics, type GatewayMetrics } from './metrics.js';
import { locationOf, outcomeError, statusView } from './outcome.js';
import { DEFAULT_CONTENT_TYPE, encodeInput, jsonNestingExceeds } from './payload.js';
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
  /**
   * More of this process's metrics for `/metrics`, as exposition text appended to the gateway's
   * own: the registry of another thread (`switchyard up` runs the gateway in a thread of its own,
   * the other services in the main thread). No metric may be in both. @default none
   */
  moreMetrics?: () => Promise<string>;
  /** Where the app logs (errors; and every request when `logRequests`). @default none */
  logger?: FastifyBaseLogger;
  /** Log each request and response (two lines per request: off on the hot path by default). @default false */
  logRequests?: boolean;
  /**
   * API keys (their sha256, never the keys: see `auth.ts`). With any key configured every
   * `/v1` route needs one; none configured = authentication off. @default []
   */
  apiKeys?: readonly ApiKey[];
  /** The admin token guarding admin routes (`app.gateway.requireAdmin`). @default none: loopback clients only */
  admin?: AdminAuthOptions;
  /** Deepest nesting of objects and arrays in a JSON body, levels; deeper is 400. @default 64 */
  maxJsonDepth?: number;
  /** Longest request target (path and query), characters; longer is 414. Node's own header limit (16 KiB) caps it too. @default 8_192 */
  maxUrlLength?: number;
  /** Longest path parameter (a request id, before decoding), characters; longer is 414. @default 1_024 */
  maxParamLength?: number;
  /**
   * Time a client has to send a whole request, headers and body, ms; then 408 and the
   * connection is closed (a client that sends headers and never finishes its body). Waiting
   * for the result of a sync request does not count. @default 30_000
   */
  requestTimeoutMs?: number;
  /** Time a client has to send the headers of a request, ms (≤ requestTimeoutMs); then 408 and the connection is closed. @default 10_000 */
  headersTimeoutMs?: number;
}

export type ResolvedGatewayAppOptions = Required<Omit<GatewayAppOptions, 'logger' | 'limits' | 'admin'>> & {
  limits: RequestLimits;
  logger: FastifyBaseLogger | undefined;
  admin: AdminAuthOptions;
};

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
    moreMetrics: o.moreMetrics ?? (() => Promise.resolve('')),
    logRequests: o.logRequests ?? false,
    logger: o.logger,
    apiKeys: o.apiKeys ?? [],
    admin: resolveAdminAuth(o.admin),
    maxJsonDepth: o.maxJsonDepth ?? 64,
    maxUrlLength: o.maxUrlLength ?? 8_192,
    maxParamLength: o.maxParamLength ?? 1_024,
    requestTimeoutMs: o.requestTimeoutMs ?? 30_000,
    headersTimeoutMs: o.headersTimeoutMs ?? 10_000,
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
  check('maxJsonDepth', r.maxJsonDepth);
  check('maxUrlLength', r.maxUrlLength);
  check('maxParamLength', r.maxParamLength);
  check('requestTimeoutMs', r.requestTimeoutMs);
  check('headersTimeoutMs', r.headersTimeoutMs);
  if (r.headersTimeoutMs > r.requestTimeoutMs) throw new SwitchyardError('SY_ERR_CONFIG', 'gateway: headersTimeoutMs must not exceed requestTimeoutMs');
  for (const [k, v] of Object.entries(r.limits)) check(`limits.${k}`, v);
  if (r.defaultDeadlineMs > r.maxDeadlineMs) throw new SwitchyardError('SY_ERR_CONFIG', 'gateway: defaultDeadlineMs must not exceed maxDeadlineMs');
  if (!r.instanceId) throw new SwitchyardError('SY_ERR_CONFIG', 'gateway: instanceId is required');
  return r;
}

export type GatewayApp = FastifyInstance & {
  gateway: {
    metrics: GatewayMetrics;
    options: ResolvedGatewayAppOptions;
    /** The `onRequest` hook of admin routes (lifecycle routes mount with `{ onRequest: app.gateway.requireAdmin }`). */
    requireAdmin: (req: FastifyRequest) => Promise<void>;
  };
};

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

/** At most `max` characters of `text` (error messages never echo a whole URL or body). */
const clip = (text: string, max = 200): string => (text.length <= max ? text : `${text.slice(0, max)}… (${text.length} characters)`);

/** Any error thrown in a route, a hook or the framework, as a GatewayError with a stable code. */
function toGatewayError(err: unknown, opts: Pick<ResolvedGatewayAppOptions, 'maxParamLength'>): GatewayError {
  if (err instanceof GatewayError) return err;
  if (isAuthError(err)) {
    return new GatewayError(err.statusCode, err.code, err.message, {
      reason: err.reason,
      retriable: err.retriable,
      ...(err.retryAfterMs !== undefined ? { retryAfterMs: err.retryAfterMs } : {}),
      headers: err.headers,
    });
  }
  const e = err as FastifyError;
  if (e?.validation !== undefined) return invalid('the request is invalid', validationDetails(e));
  switch (e?.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new GatewayError(413, 'SY_ERR_GATEWAY_PAYLOAD_TOO_LARGE', e.message);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new GatewayError(415, 'SY_ERR_GATEWAY_UNSUPPORTED_MEDIA_TYPE', `${clip(e.message, 120)}; send application/json`);
    case 'FST_ERR_BAD_URL':
      return invalid('the request is invalid', [{ in: 'url', path: '', message: 'is not a valid URL (a malformed percent-encoding)' }]);
    case 'FST_ERR_MAX_PARAM_LENGTH':
      return new GatewayError(414, 'SY_ERR_GATEWAY_URI_TOO_LONG', `a path segment is longer than ${opts.maxParamLength} characters`);
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return invalid('the request is invalid', [{ in: 'body', path: '', message: 'is empty; send a JSON object' }]);
  }
  const status = typeof e?.statusCode === 'number' ? e.statusCode : 500;
  if (status >= 400 && status < 500) return invalid('the request is invalid', [{ in: 'body', path: '', message: clip(errorMessage(err)) }]);
  return new GatewayError(500, 'SY_ERR_GATEWAY_INTERNAL', 'internal error', { cause: err });
}

const errorResponses = { '4xx': ErrorResponse, '5xx': ErrorResponse };

/** An error answered by Node's HTTP parser or timers, before fastify saw a request, as raw HTTP/1.1 in our format. */
function rawErrorResponse(e: GatewayError): string {
  const body = JSON.stringify(e.toBody());
  const headers = Object.entries(e.headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
  return `HTTP/1.1 ${e.statusCode} ${STATUS_CODES[e.statusCode] ?? ''}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${headers}connection: close\r\n\r\n${body}`;
}

/** What Node's 'clientError' (a request it could not parse or that timed out) becomes. */
function clientErrorOf(err: Error & { code?: string; rawPacket?: unknown }, opts: Pick<ResolvedGatewayAppOptions, 'requestTimeoutMs' | 'headersTimeoutMs'>): GatewayError {
  switch (err.code) {
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return new GatewayError(408, 'SY_ERR_GATEWAY_REQUEST_TIMEOUT', `the request was not received in time (headers within ${opts.headersTimeoutMs} ms, the whole request within ${opts.requestTimeoutMs} ms)`, { retriable: true });
    case 'HPE_HEADER_OVERFLOW': {
      // Node counts the request line against its header limit: when the line never ended, the URL is what was too long.
      const raw = err.rawPacket;
      if (!Buffer.isBuffer(raw) || raw.indexOf('\r\n') < 0) return new GatewayError(414, 'SY_ERR_GATEWAY_URI_TOO_LONG', 'the URL is too long');
      return new GatewayError(431, 'SY_ERR_GATEWAY_HEADERS_TOO_LARGE', 'the request headers are too large');
    }
    default:
      return invalid('the request is invalid', [{ in: 'request', path: '', message: `is not valid HTTP/1.1 (${err.code ?? 'parse error'})` }]);
  }
}

/**
 * The gateway's HTTP API (fastify, TypeBox schemas on every route; built apart from `listen`
 * so tests use `inject`):
 * - `POST /v1/infer`: produce, then wait for the result until the deadline (capped by
 *   `maxSyncWaitMs`); 504 with the request id and a Location to poll when it does not come.
 * - `POST /v1/requests`: produce; 202 with the request id and a Location.
 * - `GET /v1/requests/:id`: what the results tracker knows of a request; 404 when nothing.
 * - `Idempotency-Key` on both POSTs; `/healthz`, `/readyz`, `/metrics`, `/docs/json`.
 * Every error, including the framework's and Node's own (bad URL, 408, 413, 414, 415, 417,
 * 431, shutting down), is answered in the gateway's format `{ error: { code, message, … } }`.
 * Status and error mapping: `outcome.ts`; idempotency: `idempotency.ts`; API keys: `auth.ts`.
 */
export function buildGatewayApp(options: GatewayAppOptions): GatewayApp {
  const opts = resolveGatewayAppOptions(options);
  const { tracker } = opts;
  const logger = opts.logger === undefined ? undefined : redactingLogger(opts.logger);
  const metrics = createGatewayMetrics(tracker, { defaultMetrics: opts.defaultMetrics });
  const reply = (res: FastifyReply, e: GatewayError) => res.code(e.statusCode).headers(e.headers).send(e.toBody());
  const fastifyOptions = {
    bodyLimit: opts.bodyLimit,
    ajv: AJV,
    logController: new LogController({ disableRequestLogging: !opts.logRequests }),
    routerOptions: { maxParamLength: opts.maxParamLength },
    requestTimeout: opts.requestTimeoutMs,
    // Node checks the request and headers timeouts every connectionsCheckingInterval (30 s by default): check often enough to honour them.
    http: { headersTimeout: opts.headersTimeoutMs, connectionsCheckingInterval: Math.max(50, Math.min(1_000, Math.floor(opts.headersTimeoutMs / 4))) },
    // Requests arriving while closing get our 503 (the onRequest hook below), not fastify's.
    return503OnClosing: false,
    frameworkErrors: (err: FastifyError, _req: FastifyRequest, res: FastifyReply) => reply(res, toGatewayError(err, opts)),
    clientErrorHandler(err: Error & { code?: string }, socket: Socket) {
      if (err.code === 'ECONNRESET' || socket.destroyed) return;
      // A response already started on this socket cannot be followed by another (Node checks the same).
      const current = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
      if (socket.writable && current?.headersSent !== true) socket.write(rawErrorResponse(clientErrorOf(err, opts)), () => socket.destroy());
      else socket.destroy();
    },
  };
  const app = (logger ? Fastify({ ...fastifyOptions, loggerInstance: logger }) : Fastify(fastifyOptions)).withTypeProvider<TypeBoxTypeProvider>() as unknown as GatewayApp;
  app.decorate('gateway', { metrics, options: opts, requireAdmin: requireAdmin(opts.admin) });

  // Node answers an unknown `Expect` with a bare 417 unless someone listens.
  app.server.on('checkExpectation', (_req, res) => {
    const e = new GatewayError(417, 'SY_ERR_GATEWAY_EXPECTATION_FAILED', 'only Expect: 100-continue is supported');
    const body = JSON.stringify(e.toBody());
    res.writeHead(e.statusCode, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body), connection: 'close' }).end(body);
  });

  // JSON only (text/plain and the rest are 415), nested no deeper than maxJsonDepth: a deep
  // body would otherwise overflow the stack of whatever walks it next (500).
  app.removeAllContentTypeParsers();
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (req, body, done) => {
    if (jsonNestingExceeds(String(body), opts.maxJsonDepth)) {
      done(invalid('the request is invalid', [{ in: 'body', path: '', message: `is nested deeper than ${opts.maxJsonDepth} levels` }]), undefined);
      return;
    }
    parseJson(req, body as string, done);
  });

  app.setErrorHandler((err, req, res) => {
    const e = toGatewayError(err, opts);
    if (e.code === 'SY_ERR_GATEWAY_INTERNAL') req.log.error({ err, requestId: e.requestId, code: e.code }, 'gateway request failed');
    else if (e.statusCode === 504) req.log.warn({ requestId: e.requestId, code: e.code }, 'gateway: no outcome within the deadline');
    return reply(res, e);
  });
  app.setNotFoundHandler((req, res) => reply(res, new GatewayError(404, 'SY_ERR_GATEWAY_NOT_FOUND', `no route ${req.method} ${clip(req.url.split('?')[0]!, 100)}`)));

  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  // The hooks every request runs take fastify's callback form: an async hook costs a promise
  // and its microtasks per request, on the hot path of every inference.
  app.addHook('onRequest', (req, res, done) => {
    if (closing) {
      res.header('connection', 'close');
      done(
        new GatewayError(503, 'SY_ERR_GATEWAY_SHUTTING_DOWN', 'this gateway instance is shutting down; retry (another instance may answer)', {
          retriable: true,
          retryAfterMs: 1_000,
          headers: { 'retry-after': '1' },
        }),
      );
      return;
    }
    if (req.url.length > opts.maxUrlLength) done(new GatewayError(414, 'SY_ERR_GATEWAY_URI_TOO_LONG', `the URL is longer than ${opts.maxUrlLength} characters`));
    else done();
  });
  // While closing, answers end their connection: a kept-alive one would hold close() up for keepAliveTimeout.
  app.addHook('onSend', (_req, res, payload, done) => {
    if (closing) res.header('connection', 'close');
    done(null, payload);
  });
  app.addHook('onResponse', (req, res, done) => {
    const route = req.routeOptions.url ?? 'unmatched';
    metrics.requests.inc({ route, method: req.method, status: res.statusCode });
    metrics.latency.observe({ route, method: req.method }, res.elapsedTime / 1000);
    done();
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
      ...(opts.apiKeys.length > 0
        ? { components: { securitySchemes: { bearer: { type: 'http' as const, scheme: 'bearer' }, apiKey: { type: 'apiKey' as const, in: 'header' as const, name: 'X-API-Key' } } } }
        : {}),
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
      maxAttempts: body.maxAttempts ?? null,
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
    const value = ctx.codec.encode(event);
    // A request the routers would dead-letter as too large (its decision could not fit a Kafka record) is refused here, not accepted and left to its deadline.
    if (value.length > MAX_REQUEST_RECORD_BYTES) {
      throw new GatewayError(413, 'SY_ERR_GATEWAY_PAYLOAD_TOO_LARGE', `the request encodes to ${value.length} bytes; at most ${MAX_REQUEST_RECORD_BYTES} fit the requests topic`);
    }
    const state = acceptedStatus(requestId, body.model, now, bodyFingerprint);
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

  // API keys: who (onRequest, before the body is read: 401), then for each inference the
  // model and the key's rate (preHandler, once the body is valid: 403, 429).
  const ring = opts.apiKeys.length > 0 ? new ApiKeyRing(opts.apiKeys, ctx.now()) : undefined;
  const keyOf = new WeakMap<FastifyRequest, ApiKey>();
  const admitKey = async (req: FastifyRequest<{ Body: InferBody }>) => {
    const key = keyOf.get(req);
    if (ring !== undefined && key !== undefined) ring.admit(key, req.body.model, ctx.now());
  };
  // Without API keys there is nothing to admit: no hook at all (each one runs per request).
  const keyCheck = ring === undefined ? {} : { preHandler: admitKey };

  return async (app) => {
    const r = app.withTypeProvider<TypeBoxTypeProvider>();
    if (ring !== undefined) {
      r.addHook('onRequest', async (req) => {
        keyOf.set(req, ring.authenticate(req.headers));
      });
    }
    const security: { security?: { [scheme: string]: readonly string[] }[] } = ring === undefined ? {} : { security: [{ bearer: [] }, { apiKey: [] }] };

    r.post(
      '/infer',
      {
        schema: {
          tags: ['inference'],
          summary: 'Run an inference and wait for its result',
          description:
            'Produces the request, then waits for its result until its deadline (deadlineMs, default 30 s; at most maxSyncWaitMs). Outcomes: 200 completed; 429 shed under overload (Retry-After); 503 no capacity; 504 deadline or wait exceeded (with the request id and a Location to poll); 502/500 the worker failed; 422 the model refused the input (INVALID_INPUT), or an Idempotency-Key reused with a different body; 404 unknown model; with API keys configured, 401 no or unknown key, 403 the key may not use the model, 429 the key is over its rate (Retry-After).',
          body: InferBody,
          headers: IdempotencyHeaders,
          response: { 200: StatusResponse, ...errorResponses },
          ...security,
        },
        ...keyCheck,
      },
      async (req, reply) => {
        const a = await admit(req.body, req.headers, true);
        common(reply, a);
        let state = a.state;
        if (!isTerminal(state.status)) {
          const waitMs = Math.min(opts.maxSyncWaitMs, (a.deadlineAt ?? Number.MAX_SAFE_INTEGER) - ctx.now());
          const waiting = tracker.waitFor(a.requestId, waitMs);
          const onClose = () => {
            if (!reply.raw.writableFinished) waiting.cancel();
          };
          reply.raw.once('close', onClose);
          try {
            state = (await waiting.outcome) ?? state;
          } finally {
            reply.raw.off('close', onClose);
          }
        }
        const labels = { model: state.model ?? '', version: state.modelVersion ?? '', zone: req.body.zone ?? '' };
        metrics.inference.inc({ requested_model: req.body.model, ...(isTerminal(state.status) ? labels : { model: '', version: '', zone: labels.zone }), outcome: isTerminal(state.status) ? state.status : 'timeout' });
        if (state.status === 'completed' && state.acceptedAt !== null) metrics.inferenceDuration.observe(labels, Math.max(0, ctx.now() - state.acceptedAt) / 1000);
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
        const view = statusView(state);
        if (view.degraded) reply.header('x-switchyard-degraded', 'true');
        return reply.code(200).send(view);
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
          ...security,
        },
        ...keyCheck,
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
          ...security,
        },
      },
      async (req, reply) => {
        let state = tracker.get(req.params.id);
        // A key sees only requests for models it may use: to it, the others do not exist.
        const key = keyOf.get(req);
        if (state !== undefined && ring !== undefined && key !== undefined && state.model !== null && !ring.allows(key, state.model)) state = undefined;
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
      reply.type(metrics.registry.contentType).send((await metrics.registry.metrics()) + (await opts.moreMetrics())),
    );

    r.get('/docs/json', { schema: { hide: true } }, async () => app.swagger());
  };
}
