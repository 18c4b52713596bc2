import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { Type, type Static } from '@sinclair/typebox';
import { requireAdmin, type AdminAuthOptions } from '../../lib/auth/admin.js';
import { isAuthError } from '../../lib/auth/errors.js';
import { redactingLogger } from '../../lib/auth/redact.js';
import { SwitchyardError, errorMessage } from '../../lib/errors.js';
import { CONFLUENT_ERROR_CODES, toConfluentError } from '../../lib/registry/http-errors.js';
import { isCompatibilityLevel, type SchemaRegistry, type SchemaVersion } from '../../lib/registry/port.js';

/**
 * The Confluent-compatible Schema Registry REST API over any `SchemaRegistry` (the subset
 * `@kafkajs/confluent-schema-registry` and Confluent's serializers use, plus compatibility
 * checks and config). Avro only. Built separately from `listen` so tests use `inject`.
 *
 * Writes — registering a schema, changing compatibility (global or per subject), deleting a
 * subject or a version — are admin routes (`lib/auth/admin.ts`): they need the admin token
 * (Bearer, X-Admin-Token, or HTTP Basic with the token as password, which is what Confluent
 * clients send), or with no token configured a client on loopback. Reads, lookups and
 * compatibility checks stay open. Refusals are Confluent-style: 401 `{ error_code: 40101 }`,
 * 403 `{ error_code: 40301 }`.
 */
export interface RegistryAppOptions {
  registry: SchemaRegistry;
  /** Request logging goes here (credential headers redacted). @default none */
  logger?: FastifyBaseLogger;
  /** The admin token guarding the write routes. @default none: writes only from loopback clients */
  admin?: AdminAuthOptions;
  /** Time to receive a whole request, ms; then 408 and the connection closes. @default 30_000 */
  requestTimeoutMs?: number;
}

const CONTENT_TYPE = 'application/vnd.schemaregistry.v1+json';

const SchemaBody = Type.Object({
  schema: Type.String({ minLength: 1 }),
  schemaType: Type.Optional(Type.String()),
  references: Type.Optional(Type.Array(Type.Unknown())),
});
type SchemaBody = Static<typeof SchemaBody>;
const SubjectParams = Type.Object({ subject: Type.String({ minLength: 1 }) });
const VersionParams = Type.Object({ subject: Type.String({ minLength: 1 }), version: Type.String() });
const ConfigBody = Type.Object({ compatibility: Type.String() });

const unprocessable = (message: string, code: number) =>
  new SwitchyardError('SY_ERR_SCHEMA_INVALID', message, { detail: { what: code === CONFLUENT_ERROR_CODES.invalidVersion ? 'version' : code === CONFLUENT_ERROR_CODES.invalidCompatibilityLevel ? 'level' : 'schema' } });

/** Only Avro is served; Confluent's default schemaType is AVRO. References are not supported. */
function avroOnly(body: SchemaBody): string {
  if (body.schemaType !== undefined && body.schemaType.toUpperCase() !== 'AVRO') {
    throw unprocessable(`schemaType ${body.schemaType} is not supported; this registry serves AVRO`, CONFLUENT_ERROR_CODES.invalidSchema);
  }
  if (body.references && body.references.length > 0) {
    throw unprocessable('schema references are not supported; register self-contained schemas', CONFLUENT_ERROR_CODES.invalidSchema);
  }
  return body.schema;
}

async function resolveVersion(registry: SchemaRegistry, subject: string, version: string): Promise<SchemaVersion> {
  if (version === 'latest' || version === '-1') return registry.getLatest(subject);
  const n = Number(version);
  if (!/^\d+$/.test(version) || !Number.isSafeInteger(n) || n < 1) {
    throw unprocessable(`The specified version '${version}' is not a valid version id. Allowed values are between [1, 2^31-1] and the string "latest"`, CONFLUENT_ERROR_CODES.invalidVersion);
  }
  return registry.getVersion(subject, n);
}

export function buildRegistryApp({ registry, logger, admin = {}, requestTimeoutMs = 30_000 }: RegistryAppOptions): FastifyInstance {
  const serverOptions = { requestTimeout: requestTimeoutMs, http: { headersTimeout: Math.min(10_000, requestTimeoutMs), connectionsCheckingInterval: 1_000 } };
  const app = logger ? Fastify({ ...serverOptions, loggerInstance: redactingLogger(logger) }) : Fastify(serverOptions);
  const adminOnly = { onRequest: requireAdmin(admin) };
  // Confluent clients send and expect the registry's vendor media types.
  app.addContentTypeParser(/^application\/vnd\.schemaregistry(\.v1)?\+json/, { parseAs: 'string' }, app.getDefaultJsonParser('error', 'ignore'));
  app.addContentTypeParser('application/octet-stream', { parseAs: 'string' }, app.getDefaultJsonParser('error', 'ignore'));
  app.addHook('onSend', async (_req, reply, payload) => {
    if (String(reply.getHeader('content-type') ?? '').startsWith('application/json')) reply.header('content-type', CONTENT_TYPE);
    return payload;
  });
  app.setErrorHandler((err, _req, reply) => {
    if (isAuthError(err)) return reply.status(err.statusCode).headers(err.headers).send({ error_code: err.statusCode * 100 + 1, message: `${err.message} [${err.code}]` });
    const validation = (err as { validation?: unknown }).validation;
    if (validation !== undefined || (err as { statusCode?: number }).statusCode === 400) {
      return reply.status(422).send({ error_code: 422, message: `Unprocessable entity: ${errorMessage(err)}` });
    }
    const { status, body } = toConfluentError(err);
    if (status >= 500) app.log.error({ err }, 'registry request failed');
    return reply.status(status).send(body);
  });
  app.setNotFoundHandler((req, reply) => reply.status(404).send({ error_code: 404, message: `HTTP 404 Not Found: ${req.method} ${req.url}` }));

  app.get('/', async () => ({}));
  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/subjects', async () => registry.listSubjects());

  app.get<{ Params: Static<typeof SubjectParams> }>('/subjects/:subject/versions', { schema: { params: SubjectParams } }, async (req) =>
    registry.listVersions(req.params.subject),
  );

  app.post<{ Params: Static<typeof SubjectParams>; Body: SchemaBody }>(
    '/subjects/:subject/versions',
    { ...adminOnly, schema: { params: SubjectParams, body: SchemaBody } },
    async (req) => ({ id: await registry.register(req.params.subject, avroOnly(req.body)) }),
  );

  // Look a schema up under a subject: which version and id it has there.
  app.post<{ Params: Static<typeof SubjectParams>; Body: SchemaBody }>(
    '/subjects/:subject',
    { schema: { params: SubjectParams, body: SchemaBody } },
    async (req) => registry.lookup(req.params.subject, avroOnly(req.body)),
  );

  app.get<{ Params: Static<typeof VersionParams> }>('/subjects/:subject/versions/:version', { schema: { params: VersionParams } }, async (req) =>
    resolveVersion(registry, req.params.subject, req.params.version),
  );

  app.get<{ Params: Static<typeof VersionParams> }>('/subjects/:subject/versions/:version/schema', { schema: { params: VersionParams } }, async (req, reply) => {
    const { schema } = await resolveVersion(registry, req.params.subject, req.params.version);
    return reply.type(CONTENT_TYPE).send(schema);
  });

  app.delete<{ Params: Static<typeof SubjectParams> }>('/subjects/:subject', { ...adminOnly, schema: { params: SubjectParams } }, async (req) =>
    registry.deleteSubject(req.params.subject),
  );

  app.delete<{ Params: Static<typeof VersionParams> }>('/subjects/:subject/versions/:version', { ...adminOnly, schema: { params: VersionParams } }, async (req) => {
    const { version } = await resolveVersion(registry, req.params.subject, req.params.version);
    return registry.deleteVersion(req.params.subject, version);
  });

  app.get<{ Params: { id: string } }>('/schemas/ids/:id', async (req) => {
    const id = Number(req.params.id);
    if (!/^\d+$/.test(req.params.id) || !Number.isSafeInteger(id)) {
      throw new SwitchyardError('SY_ERR_SCHEMA_NOT_FOUND', `Schema ${req.params.id} not found`, { detail: { what: 'schema' } });
    }
    return { schema: await registry.getById(id) };
  });

  // Compatibility: against one version, or (Confluent 5.5+) against what register checks.
  const compatibility = async (subject: string, body: SchemaBody, version: string | undefined, verbose: boolean) => {
    const options = version === undefined ? {} : { version: (await resolveVersion(registry, subject, version)).version };
    const { compatible, messages } = await registry.checkCompatibility(subject, avroOnly(body), options);
    return verbose ? { is_compatible: compatible, messages } : { is_compatible: compatible };
  };
  app.post<{ Params: Static<typeof VersionParams>; Body: SchemaBody; Querystring: { verbose?: string } }>(
    '/compatibility/subjects/:subject/versions/:version',
    { schema: { params: VersionParams, body: SchemaBody } },
    async (req) => compatibility(req.params.subject, req.body, req.params.version, req.query.verbose === 'true'),
  );
  app.post<{ Params: Static<typeof SubjectParams>; Body: SchemaBody; Querystring: { verbose?: string } }>(
    '/compatibility/subjects/:subject/versions',
    { schema: { params: SubjectParams, body: SchemaBody } },
    async (req) => compatibility(req.params.subject, req.body, undefined, req.query.verbose === 'true'),
  );

  const level = (value: string) => {
    const upper = value.toUpperCase();
    if (!isCompatibilityLevel(upper)) throw unprocessable(`Invalid compatibility level: ${value}`, CONFLUENT_ERROR_CODES.invalidCompatibilityLevel);
    return upper;
  };
  app.get('/config', async () => ({ compatibilityLevel: await registry.getCompatibility() }));
  app.put<{ Body: Static<typeof ConfigBody> }>('/config', { ...adminOnly, schema: { body: ConfigBody } }, async (req) => {
    const compatibility = level(req.body.compatibility);
    await registry.setCompatibility(compatibility);
    return { compatibility };
  });
  app.get<{ Params: Static<typeof SubjectParams>; Querystring: { defaultToGlobal?: string } }>(
    '/config/:subject',
    { schema: { params: SubjectParams } },
    async (req, reply) => {
      if (req.query.defaultToGlobal === 'true') return { compatibilityLevel: await registry.getCompatibility(req.params.subject) };
      const own = await registry.getCompatibility(req.params.subject, { overrideOnly: true });
      if (own === undefined) {
        return reply.status(404).send({
          error_code: CONFLUENT_ERROR_CODES.subjectCompatibilityNotConfigured,
          message: `Subject '${req.params.subject}' does not have subject-level compatibility configured`,
        });
      }
      return { compatibilityLevel: own };
    },
  );
  app.put<{ Params: Static<typeof SubjectParams>; Body: Static<typeof ConfigBody> }>(
    '/config/:subject',
    { ...adminOnly, schema: { params: SubjectParams, body: ConfigBody } },
    async (req) => {
      const compatibility = level(req.body.compatibility);
      await registry.setCompatibility(compatibility, req.params.subject);
      return { compatibility };
    },
  );
  app.delete<{ Params: Static<typeof SubjectParams> }>('/config/:subject', { ...adminOnly, schema: { params: SubjectParams } }, async (req) => {
    const previous = await registry.getCompatibility(req.params.subject);
    await registry.setCompatibility(null, req.params.subject);
    return { compatibilityLevel: previous };
  });

  return app;
}
