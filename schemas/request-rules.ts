import { PRIORITY_SYMBOLS, type InferenceRequested } from './generated/events.js';

const essence = (contentType: string): string => (contentType.split(';')[0] ?? '').trim().toLowerCase();

/** `application/json` and `application/*+json`. */
export const isJsonMediaType = (contentType: string): boolean => {
  if (contentType === 'application/json') return true; // most requests: no strings made
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
 *
 * Called for every decision the router makes and every one `replay verify` re-derives, so a
 * valid request costs no allocation: no closures or option objects per call, the problems array
 * made only when there is a problem (a valid request gets the one frozen empty array).
 */
export function checkInferenceRequest(
  request: CheckedRequest,
  now: number,
  limits: RequestLimits = DEFAULT_REQUEST_LIMITS,
  options?: CheckOptions,
): readonly RequestProblem[] {
  const parseJsonInput = options?.parseJsonInput ?? true;
  let problems: RequestProblem[] | null = null;

  problems = checkId(problems, 'requestId', request.requestId, true, ID, ID_WHAT, limits);
  if (request.model === '') problems = add(problems, 'model', 'REQUIRED', 'model is required');
  else if (request.model.length > limits.maxModelLength) problems = add(problems, 'model', 'TOO_LONG', `model is longer than ${limits.maxModelLength} characters`);
  else if (!NAME.test(request.model)) problems = add(problems, 'model', 'FORMAT', `model must be ${NAME_WHAT}`);
  problems = checkId(problems, 'modelVersion', request.modelVersion, false, NAME, NAME_WHAT, limits);
  problems = checkId(problems, 'zone', request.zone, false, NAME, NAME_WHAT, limits);
  problems = checkId(problems, 'tenant', request.tenant, false, NAME, NAME_WHAT, limits);
  problems = checkId(problems, 'sessionId', request.sessionId, false, ID, ID_WHAT, limits);
  problems = checkId(problems, 'idempotencyKey', request.idempotencyKey, false, ID, ID_WHAT, limits);

  if (!PRIORITIES.has(request.priority)) problems = add(problems, 'priority', 'UNKNOWN_PRIORITY', `priority must be one of ${PRIORITY_SYMBOLS.join(', ')}`);

  if (request.deadlineAt !== null) {
    if (!Number.isSafeInteger(request.deadlineAt) || request.deadlineAt <= 0) problems = add(problems, 'deadlineAt', 'FORMAT', 'deadlineAt must be ms since the Unix epoch');
    else if (request.deadlineAt <= now) problems = add(problems, 'deadlineAt', 'DEADLINE_PASSED', `deadline ${request.deadlineAt} had passed at ${now}`);
  }

  if (!MEDIA_TYPE.test(request.contentType)) problems = add(problems, 'contentType', 'FORMAT', 'contentType must be a media type such as application/json');
  if (request.input.length > limits.maxInputBytes) {
    problems = add(problems, 'input', 'TOO_LARGE', `input is ${request.input.length} bytes, more than ${limits.maxInputBytes}`);
  } else if (parseJsonInput && isJsonMediaType(request.contentType) && !isJson(request.input)) {
    problems = add(problems, 'input', 'NOT_JSON', `input is not valid UTF-8 JSON, as contentType ${request.contentType} says it is`);
  }

  problems = checkEntries(problems, 'parameters', request.parameters, limits);
  problems = checkEntries(problems, 'attributes', request.attributes, limits);
  return problems ?? NO_PROBLEMS;
}

const NO_PROBLEMS: readonly RequestProblem[] = Object.freeze([]);
const ID_WHAT = 'printable ASCII without spaces';
const NAME_WHAT = 'a letter or digit followed by letters, digits or . _ : / + -';

/** `problems` with one more (made on the first). */
function add(problems: RequestProblem[] | null, field: string, rule: RequestRule, message: string): RequestProblem[] {
  const to = problems ?? [];
  to.push({ field, rule, message });
  return to;
}

function checkId(problems: RequestProblem[] | null, field: string, value: string | null, required: boolean, pattern: RegExp, what: string, limits: RequestLimits): RequestProblem[] | null {
  if (value === null || value === '') return required ? add(problems, field, 'REQUIRED', `${field} is required`) : problems;
  if (value.length > limits.maxIdLength) return add(problems, field, 'TOO_LONG', `${field} is longer than ${limits.maxIdLength} characters`);
  if (!pattern.test(value)) return add(problems, field, 'FORMAT', `${field} must be ${what}`);
  return problems;
}

/** The map's own keys in `Object.keys` order, without making the keys array (for…in filtered to own keys gives the same order). */
function checkEntries(problems: RequestProblem[] | null, field: string, map: Record<string, string>, limits: RequestLimits): RequestProblem[] | null {
  let count = 0;
  for (const key in map) if (Object.hasOwn(map, key)) count++;
  if (count > limits.maxParameters) problems = add(problems, field, 'TOO_MANY', `${field} has ${count} entries, more than ${limits.maxParameters}`);
  for (const key in map) {
    if (!Object.hasOwn(map, key)) continue;
    if (key === '') problems = add(problems, field, 'FORMAT', `${field} names must not be empty`);
    else if (key.length > limits.maxParameterKeyLength) problems = add(problems, `${field}.${key.slice(0, 32)}…`, 'TOO_LONG', `${field} name is longer than ${limits.maxParameterKeyLength} characters`);
    if ((map[key] ?? '').length > limits.maxParameterValueLength) {
      problems = add(problems, `${field}.${key}`, 'TOO_LONG', `${field}.${key} is longer than ${limits.maxParameterValueLength} characters`);
    }
  }
  return problems;
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
