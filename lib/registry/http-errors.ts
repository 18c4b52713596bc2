import { SwitchyardError, errorMessage } from '../errors.js';

/**
 * The Confluent Schema Registry REST error body, `{ error_code, message }`, and its HTTP
 * status, mapped to and from the registry port's errors. One table for both directions: the
 * REST service (`services/registry`) answers with `toConfluentError`, the HTTP client adapter
 * reads answers with `fromConfluentError`.
 */
export interface ConfluentErrorBody {
  error_code: number;
  message: string;
}

export interface ConfluentError {
  status: number;
  body: ConfluentErrorBody;
}

/** Confluent's error codes (`io.confluent.kafka.schemaregistry.rest.exceptions`). */
export const CONFLUENT_ERROR_CODES = {
  subjectNotFound: 40401,
  versionNotFound: 40402,
  schemaNotFound: 40403,
  subjectCompatibilityNotConfigured: 40408,
  incompatibleSchema: 409,
  invalidSchema: 42201,
  invalidVersion: 42202,
  invalidCompatibilityLevel: 42203,
  storeError: 50001,
  operationTimeout: 50002,
  forwardingError: 50003,
} as const;

const C = CONFLUENT_ERROR_CODES;

/** The REST answer for an error thrown by a `SchemaRegistry`; anything unknown is a 500. */
export function toConfluentError(err: unknown): ConfluentError {
  const message = errorMessage(err);
  if (!(err instanceof SwitchyardError)) return { status: 500, body: { error_code: C.storeError, message } };
  const what = err.detail['what'];
  switch (err.code) {
    case 'SY_ERR_SCHEMA_NOT_FOUND': {
      const code = what === 'subject' ? C.subjectNotFound : what === 'version' ? C.versionNotFound : C.schemaNotFound;
      return { status: 404, body: { error_code: code, message } };
    }
    case 'SY_ERR_SCHEMA_INVALID': {
      const code = what === 'version' ? C.invalidVersion : what === 'level' ? C.invalidCompatibilityLevel : C.invalidSchema;
      return { status: 422, body: { error_code: code, message } };
    }
    case 'SY_ERR_SCHEMA_INCOMPATIBLE':
      return { status: 409, body: { error_code: C.incompatibleSchema, message } };
    case 'SY_ERR_REGISTRY_UNAVAILABLE':
      return { status: 503, body: { error_code: C.operationTimeout, message } };
    default:
      return { status: 500, body: { error_code: C.storeError, message } };
  }
}

/**
 * The port error for a REST error answer. `body` may be anything the server sent (or
 * nothing); the status decides when the error code is missing.
 */
export function fromConfluentError(status: number, body: unknown, context: Record<string, unknown> = {}): SwitchyardError {
  const b = (typeof body === 'object' && body !== null ? body : {}) as Partial<ConfluentErrorBody>;
  const code = typeof b.error_code === 'number' ? b.error_code : status;
  const message = typeof b.message === 'string' && b.message !== '' ? b.message : `schema registry answered HTTP ${status}`;
  const detail = { ...context, status, errorCode: code };
  switch (code) {
    case C.subjectNotFound:
      return new SwitchyardError('SY_ERR_SCHEMA_NOT_FOUND', message, { detail: { ...detail, what: 'subject' } });
    case C.versionNotFound:
      return new SwitchyardError('SY_ERR_SCHEMA_NOT_FOUND', message, { detail: { ...detail, what: 'version' } });
    case C.schemaNotFound:
      return new SwitchyardError('SY_ERR_SCHEMA_NOT_FOUND', message, { detail: { ...detail, what: 'schema' } });
    case C.incompatibleSchema:
      return new SwitchyardError('SY_ERR_SCHEMA_INCOMPATIBLE', message, { detail: { ...detail, messages: [message] } });
    case C.invalidSchema:
      return new SwitchyardError('SY_ERR_SCHEMA_INVALID', message, { detail: { ...detail, what: 'schema' } });
    case C.invalidVersion:
      return new SwitchyardError('SY_ERR_SCHEMA_INVALID', message, { detail: { ...detail, what: 'version' } });
    case C.invalidCompatibilityLevel:
      return new SwitchyardError('SY_ERR_SCHEMA_INVALID', message, { detail: { ...detail, what: 'level' } });
    default:
      if (status === 404) return new SwitchyardError('SY_ERR_SCHEMA_NOT_FOUND', message, { detail: { ...detail, what: 'schema' } });
      if (status === 409) return new SwitchyardError('SY_ERR_SCHEMA_INCOMPATIBLE', message, { detail: { ...detail, messages: [message] } });
      if (status === 422) return new SwitchyardError('SY_ERR_SCHEMA_INVALID', message, { detail: { ...detail, what: 'schema' } });
      return new SwitchyardError('SY_ERR_REGISTRY_UNAVAILABLE', message, { retriable: status >= 500 || status === 429, detail });
  }
}
