import { Type, type Static } from '@sinclair/typebox';
import { PRIORITY_SYMBOLS, type Priority } from '../../schemas/generated/events.js';
import type { RequestStatusName } from './state.js';
import { DEFAULT_REQUEST_LIMITS as L, ID_PATTERN, MEDIA_TYPE_PATTERN, NAME_PATTERN } from '../../schemas/request-rules.js';

/**
 * JSON schemas of the gateway's HTTP API (TypeBox: one definition for validation, the
 * TypeScript types and the OpenAPI document). Patterns and limits come from `validate.ts`, the
 * rules the router applies to requests written straight to Kafka.
 */

const name = (description: string, maxLength = L.maxIdLength) => Type.String({ minLength: 1, maxLength, pattern: NAME_PATTERN, description });

/**
 * Model names and versions at the gateway: NAME_PATTERN's characters, with `/` only as the one
 * separator of `org/name` (e.g. `meta-llama/Llama-3.1-8B`) and never `..` — these names end up
 * in paths and URLs downstream, so nothing here may read as a path traversal
 * (`a/../../../etc/passwd`, `/etc`, `a//b`). Stricter than the shared rules (the router's),
 * so what the gateway accepts still passes there.
 */
export const MODEL_NAME_PATTERN = '^(?!.*\\.\\.)[A-Za-z0-9][A-Za-z0-9._:+-]*(?:/[A-Za-z0-9][A-Za-z0-9._:+-]*)?$';
const modelName = (description: string, maxLength = L.maxIdLength) => Type.String({ minLength: 1, maxLength, pattern: MODEL_NAME_PATTERN, description });
const id = (description: string) => Type.String({ minLength: 1, maxLength: L.maxIdLength, pattern: ID_PATTERN, description });

export const InferBody = Type.Object(
  {
    model: modelName('Logical model name, e.g. "sentiment-small" or "org/name"; never ".." or a path.', L.maxModelLength),
    input: Type.Unknown({
      description:
        'The payload. For a JSON contentType (the default, application/json or */*+json) any JSON value; for text/* a string; for any other contentType a base64 string of the bytes.',
    }),
    contentType: Type.Optional(
      Type.String({ minLength: 3, maxLength: 255, pattern: MEDIA_TYPE_PATTERN, description: 'Media type of input. @default "application/json"' }),
    ),
    parameters: Type.Optional(
      Type.Record(Type.String({ minLength: 1, maxLength: L.maxParameterKeyLength }), Type.Unsafe<string | number | boolean>({ type: ['string', 'number', 'boolean'], maxLength: L.maxParameterValueLength }), {
        maxProperties: L.maxParameters,
        description: 'Inference parameters for the backend (e.g. max_tokens, temperature); numbers and booleans are sent as strings.',
      }),
    ),
    sessionId: Type.Optional(id('Conversation/session id: requests of a session stick to one worker.')),
    priority: Type.Optional(
      Type.Unsafe<Priority>({ type: 'string', enum: [...PRIORITY_SYMBOLS], description: 'Priority class; under overload the lowest is shed first. @default "NORMAL"' }),
    ),
    zone: Type.Optional(name('Preferred zone; the router fails over to other zones when it has no capacity there.')),
    modelVersion: Type.Optional(modelName('Pin a model version (else the rollout decides).')),
    deadlineMs: Type.Optional(
      Type.Integer({ minimum: 1, description: 'Deadline relative to arrival, ms: work not started by then is dropped; the sync endpoint waits at most this long.' }),
    ),
    allowFallback: Type.Optional(Type.Boolean({ description: "May the router serve the request with the model's fallback model. @default true" })),
    cacheable: Type.Optional(Type.Boolean({ description: 'May a worker answer from its result cache. @default true' })),
    maxAttempts: Type.Optional(Type.Integer({ minimum: 1, maximum: 10, description: "Attempts in all (the first routing, retries of retriable failures, re-dispatches after a lost worker). @default the model's setting in the controller (3)" })),
    tenant: Type.Optional(name('Tenant/account; also scopes Idempotency-Key.')),
  },
  { additionalProperties: false },
);
export type InferBody = Static<typeof InferBody>;

export const IdempotencyHeaders = Type.Object({
  'idempotency-key': Type.Optional(
    Type.String({ minLength: 1, maxLength: 255, pattern: ID_PATTERN, description: 'Same key (per tenant) = same request: never executed twice; the known status or result is returned.' }),
  ),
  traceparent: Type.Optional(Type.String({ maxLength: 55, description: 'W3C trace context; its trace id is recorded on the request.' })),
});

export const RequestIdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: L.maxIdLength, pattern: ID_PATTERN, description: 'Request id (printable ASCII).' }) });

const ErrorDetail = Type.Object({ in: Type.String(), path: Type.String(), message: Type.String() });

export const ErrorObject = Type.Object({
  code: Type.String({ description: 'Stable error code, SY_ERR_…' }),
  message: Type.String(),
  requestId: Type.Optional(Type.String()),
  reason: Type.Optional(Type.String({ description: "The router's rejection reason or the worker's error code." })),
  retriable: Type.Boolean(),
  retryAfterMs: Type.Optional(Type.Number()),
  details: Type.Optional(Type.Array(ErrorDetail)),
});

export const ErrorResponse = Type.Object({ error: ErrorObject });

const Status = Type.Unsafe<RequestStatusName>({ type: 'string', enum: ['accepted', 'started', 'retrying', 'completed', 'failed', 'rejected'] });

export const StatusResponse = Type.Object(
  {
    requestId: Type.String(),
    status: Status,
    attempt: Type.Integer(),
    model: Type.Union([Type.String(), Type.Null()]),
    modelVersion: Type.Union([Type.String(), Type.Null()]),
    workerId: Type.Union([Type.String(), Type.Null()]),
    degraded: Type.Boolean({ description: "True when another model than the one asked for answered (the model's fallback). The response also carries `x-switchyard-degraded: true`." }),
    acceptedAt: Type.Union([Type.Number(), Type.Null()], { description: 'When this gateway accepted it, ms since the epoch.' }),
    updatedAt: Type.Number({ description: 'Time of the last event, ms since the epoch.' }),
    result: Type.Optional(
      Type.Object({
        contentType: Type.String(),
        outputEncoding: Type.Union([Type.Literal('json'), Type.Literal('text'), Type.Literal('base64')]),
        output: Type.Unknown(),
        modelDigest: Type.String(),
        cacheHit: Type.Boolean(),
        batchSize: Type.Integer(),
        queueMs: Type.Number(),
        computeMs: Type.Number(),
      }),
    ),
    error: Type.Optional(ErrorObject),
  },
);

export const AcceptedResponse = Type.Object(
  { requestId: Type.String(), status: Status, location: Type.String({ description: 'Where to poll: GET this path.' }) },
);

export const HealthResponse = Type.Object({ status: Type.String() });
export const ReadyResponse = Type.Object({
  status: Type.Union([Type.Literal('ready'), Type.Literal('not_ready')]),
  checks: Type.Object({ log: Type.String(), results: Type.String() }),
});
