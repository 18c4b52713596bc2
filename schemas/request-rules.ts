import { PRIORITY_SYMBOLS, type InferenceRequested } from './generated/events.js';

const essence = (contentType: string): string => (contentType.split(';')[0] ?? '').trim().toLowerCase();

/** `application/json` and `application/*+json`. */
export const isJsonMediaType = (contentType: string): boolean => {
  const e = essence(contentType);
  return e === 'application/json' || (e.startsWith('application/') && e.endsWith('+json'));
};

/**
 * Rules an `InferenceRequested` must satisfy beyond its Avro schema, in one pure module so the
 * gateway (before it produces) and the router (on requests Kafka clients wrote straight to
 * `requests`) apply the same ones. Pure: time comes in as `now`; no I/O, no clock.
 *
 * The gateway's JSON schemas use the same patterns and limits (exported below), so a request
 * the gateway accepts passes here, and a Kafka client's request that breaks a rule gets the
 * same treatment downstream: the router rejects it with `rejectionReasonFor(problems)` —
 * `DEADLINE_EXCEEDED` when the deadline had passed, else `INVALID_REQUEST`.
 */

/** Limits on what a request may carry. */
export interface RequestLimits {
  /** Longest `requestId`, `sessionId`, `tenant`, `zone`, `modelVersion`, `idempotencyKey`. @default 256 */
  maxIdLength: number;
  /** Longest `model`. @default 256 */
  maxModelLength: number;
  /** Largest `input`, in bytes. @default 1_048_576 (1 MiB) */
  maxInputBytes: number;
  /** Most entries in `parameters` (and in `attributes`). @default 64 */
  maxParameters: number;
  /** Longest parameter (or attribute) name. @default 128 */
  maxParameterKeyLength: number;
  /** Longest parameter (or attribute) value. @default 4096 */
  maxParameterValueLength: number;
}

export const DEFAULT_REQUEST_LIMITS: Readonly<RequestLimits> = Object.freeze({
  maxIdLength: 256,
  maxModelLength: 256,
  maxInputBytes: 1_048_576,
  maxParameters: 64,
  maxParameterKeyLength: 128,
  maxParameterValueLength: 4096,
});

/**
 * Model names, versions, zones and tenants: a letter or digit, then letters, digits and
 * `. _ : / + -` (e.g. `sentiment-small`, `meta-llama/Llama-3.1-8B`, `2024-06-01`, `eu-west-1a`).
 */
export const NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._:/+-]*$';
/** Ids chosen by clients (requestId, sessionId, idempotency keys): printable ASCII, no spaces. */
export const ID_PATTERN = '^[\\x21-\\x7e]+$';
/** A media type `type/subtype` with optional parameters, e.g. `text/plain; charset=utf-8`. */
export const MEDIA_TYPE_PATTERN = "^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*(\\s*;.*)?$";

const NAME = new RegExp(NAME_PATTERN);
const ID = new RegExp(ID_PATTERN);
const MEDIA_TYPE = new RegExp(MEDIA_TYPE_PATTERN);
const PRIORITIES: ReadonlySet<string> = new Set(PRIORITY_SYMBOLS);

/** Which rule a request broke. Stable: the router records it in RequestRejected.detail. */
export type RequestRule =
  | 'REQUIRED'
  | 'FORMAT'
  | 'TOO_LONG'
  | 'TOO_LARGE'
  | 'TOO_MANY'
  | 'UNKNOWN_PRIORITY'
  | 'NOT_JSON'
  | 'DEADLINE_PASSED';

export interface RequestProblem {
  /** Field of InferenceRequested, e.g. `deadlineAt` or `parameters.max_tokens`. */
  field: string;
  rule: RequestRule;
  message: string;
}

/** The fields the rules look at (an InferenceRequested as decoded, or as the gateway built it). */
export type CheckedRequest = Pick<
  InferenceRequested,
  'requestId' | 'model' | 'modelVersion' | 'input' | 'contentType' | 'parameters' | 'sessionId' | 'priority' | 'deadlineAt' | 'zone' | 'idempotencyKey' | 'tenant' | 'attributes'
>;

export interface CheckOptions {
  /**
   * Parse a JSON input to check that it is JSON. The gateway, which serialized the input
   * itself, skips it. @default true
   */
  parseJsonInput?: boolean;
}

/**
 * Every rule `request` breaks at time `now` (ms since the epoch); empty when it is valid.
 * Checks all rules (not only the first) so a client sees every problem at once.
 */
export function checkInferenceRequest(
  request: CheckedRequest,
  now: number,
  limits: RequestLimits = DEFAULT_REQUEST_LIMITS,
  { parseJsonInput = true }: CheckOptions = {},
): RequestProblem[] {
  const problems: RequestProblem[] = [];
  const add = (field: string, rule: RequestRule, message: string) => problems.push({ field, rule, message });

  const id = (field: string, value: string | null, { required = false, pattern = ID, what = 'printable ASCII without spaces' } = {}) => {
    if (value === null || value === '') {
      if (required) add(field, 'REQUIRED', `${field} is required`);
      return;
    }
    if (value.length > limits.maxIdLength) add(field, 'TOO_LONG', `${field} is longer than ${limits.maxIdLength} characters`);
    else if (!pattern.test(value)) add(field, 'FORMAT', `${field} must be ${what}`);
  };
  const nameRule = { pattern: NAME, what: 'a letter or digit followed by letters, digits or . _ : / + -' };

  id('requestId', request.requestId, { required: true });
  if (request.model === '') add('model', 'REQUIRED', 'model is required');
  else if (request.model.length > limits.maxModelLength) add('model', 'TOO_LONG', `model is longer than ${limits.maxModelLength} characters`);
  else if (!NAME.test(request.model)) add('model', 'FORMAT', `model must be ${nameRule.what}`);
  id('modelVersion', request.modelVersion, nameRule);
  id('zone', request.zone, nameRule);
  id('tenant', request.tenant, nameRule);
  id('sessionId', request.sessionId);
  id('idempotencyKey', request.idempotencyKey);

  if (!PRIORITIES.has(request.priority)) add('priority', 'UNKNOWN_PRIORITY', `priority must be one of ${PRIORITY_SYMBOLS.join(', ')}`);

  if (request.deadlineAt !== null) {
    if (!Number.isSafeInteger(request.deadlineAt) || request.deadlineAt <= 0) add('deadlineAt', 'FORMAT', 'deadlineAt must be ms since the Unix epoch');
    else if (request.deadlineAt <= now) add('deadlineAt', 'DEADLINE_PASSED', `deadline ${request.deadlineAt} had passed at ${now}`);
  }

  if (!MEDIA_TYPE.test(request.contentType)) add('contentType', 'FORMAT', 'contentType must be a media type such as application/json');
  if (request.input.length > limits.maxInputBytes) {
    add('input', 'TOO_LARGE', `input is ${request.input.length} bytes, more than ${limits.maxInputBytes}`);
  } else if (parseJsonInput && isJsonMediaType(request.contentType) && !isJson(request.input)) {
    add('input', 'NOT_JSON', `input is not valid UTF-8 JSON, as contentType ${request.contentType} says it is`);
  }

  entries('parameters', request.parameters, limits, add);
  entries('attributes', request.attributes, limits, add);
  return problems;
}

function entries(field: string, map: Record<string, string>, limits: RequestLimits, add: (field: string, rule: RequestRule, message: string) => void): void {
  const keys = Object.keys(map);
  if (keys.length > limits.maxParameters) add(field, 'TOO_MANY', `${field} has ${keys.length} entries, more than ${limits.maxParameters}`);
  for (const key of keys) {
    if (key === '') add(field, 'FORMAT', `${field} names must not be empty`);
    else if (key.length > limits.maxParameterKeyLength) add(`${field}.${key.slice(0, 32)}…`, 'TOO_LONG', `${field} name is longer than ${limits.maxParameterKeyLength} characters`);
    if ((map[key] ?? '').length > limits.maxParameterValueLength) {
      add(`${field}.${key}`, 'TOO_LONG', `${field}.${key} is longer than ${limits.maxParameterValueLength} characters`);
    }
  }
}

const decoder = new TextDecoder('utf-8', { fatal: true });

function isJson(input: Uint8Array): boolean {
  try {
    JSON.parse(decoder.decode(input));
    return true;
  } catch {
    return false;
  }
}

/** The RequestRejected.reason for a request with these problems: DEADLINE_EXCEEDED, INVALID_REQUEST, or null when there are none. */
export function rejectionReasonFor(problems: readonly RequestProblem[]): 'DEADLINE_EXCEEDED' | 'INVALID_REQUEST' | null {
  if (problems.length === 0) return null;
  if (problems.every((p) => p.rule === 'DEADLINE_PASSED')) return 'DEADLINE_EXCEEDED';
  return 'INVALID_REQUEST';
}

/** One line for RequestRejected.detail: `field: message; …`. */
export const describeProblems = (problems: readonly RequestProblem[]): string => problems.map((p) => `${p.field}: ${p.message} [${p.rule}]`).join('; ');
