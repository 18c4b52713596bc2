import { SwitchyardError } from '../errors.js';

/**
 * Errors of the analytics area. Two codes:
 * - `SY_ERR_ANALYTICS`: the statement or the data is wrong (bad SQL, unknown table, a value
 *   that does not parse). Retrying the same call cannot help.
 * - `SY_ERR_ANALYTICS_UNAVAILABLE`: the engine could not be reached or was overloaded
 *   (connection refused/reset, timeout, too many queries or parts). Retriable.
 * ClickHouse's own error code and text are kept in `detail` (`clickhouseCode`,
 * `clickhouseType`, `clickhouseMessage`), and the original error in `cause`.
 */

/** ClickHouse error codes that describe a passing condition of the server, not the query. */
const TRANSIENT_CODES = new Set([
  159, // TIMEOUT_EXCEEDED
  202, // TOO_MANY_SIMULTANEOUS_QUERIES
  209, // SOCKET_TIMEOUT
  210, // NETWORK_ERROR
  252, // TOO_MANY_PARTS
]);

/** Node/undici socket errors: the server is down or the network is. */
const TRANSPORT_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
]);

const MAX_MESSAGE = 4000;

export const analyticsError = (message: string, detail: Record<string, unknown> = {}, cause?: unknown): SwitchyardError =>
  new SwitchyardError('SY_ERR_ANALYTICS', message, { detail, cause });

export const unavailableError = (message: string, detail: Record<string, unknown> = {}, cause?: unknown): SwitchyardError =>
  new SwitchyardError('SY_ERR_ANALYTICS_UNAVAILABLE', message, { retriable: true, detail, cause });

export interface ClickHouseErrorInfo {
  code: number | undefined;
  type: string | undefined;
  message: string;
}

/**
 * Reads ClickHouse's code, symbolic type and text out of an error from either client. Both
 * spellings of the server's message are understood:
 * `Code: 62. DB::Exception: … (SYNTAX_ERROR) (version 24.3…)` (ClickHouse ≥ 20) and
 * `Code: 62, e.displayText() = DB::Exception: …, e.what() = DB::Exception` (18.16, where
 * @clickhouse/client cannot parse it and hands over a plain Error).
 */
export function clickHouseErrorInfo(err: unknown): ClickHouseErrorInfo {
  const e = (err ?? {}) as { message?: unknown; code?: unknown; type?: unknown; clickhouseCode?: unknown };
  const message = typeof e.message === 'string' ? e.message : String(err);
  let code: number | undefined;
  if (typeof e.clickhouseCode === 'number') code = e.clickhouseCode;
  else if (typeof e.code === 'string' && /^\d+$/.test(e.code)) code = Number(e.code);
  else {
    const m = /Code:\s*(\d+)/.exec(message);
    if (m) code = Number(m[1]);
  }
  let type = typeof e.type === 'string' && /^[A-Z][A-Z0-9_]+$/.test(e.type) ? e.type : undefined;
  if (type === undefined) {
    // Modern servers end the text with `(TYPE_NAME) (version …)`: the last such marker.
    const all = [...message.matchAll(/\(([A-Z][A-Z0-9_]{2,})\)/g)];
    type = all.at(-1)?.[1];
  }
  return { code, type, message: message.length > MAX_MESSAGE ? `${message.slice(0, MAX_MESSAGE)}…` : message };
}

const transportCode = (err: unknown): string | undefined => {
  for (let e = err as { code?: unknown; cause?: unknown } | undefined, depth = 0; e && depth < 4; e = e.cause as typeof e, depth++) {
    if (typeof e.code === 'string' && TRANSPORT_CODES.has(e.code)) return e.code;
  }
  return undefined;
};

/**
 * Wraps an error from chDB or @clickhouse/client. `what` names the operation
 * (`query`, `insert into t`…) and starts the message; `detail` adds context such as the SQL.
 */
export function fromClickHouse(err: unknown, what: string, detail: Record<string, unknown> = {}): SwitchyardError {
  if (err instanceof SwitchyardError) return err;
  const transport = transportCode(err);
  const info = clickHouseErrorInfo(err);
  const timedOut = /^Timeout error\.?$/i.test(info.message) || /socket hang up/i.test(info.message);
  if (transport !== undefined || (info.code === undefined && timedOut)) {
    return unavailableError(`${what}: ClickHouse is unreachable (${transport ?? info.message})`, { ...detail, transport, clickhouseMessage: info.message }, err);
  }
  const full = { ...detail, clickhouseCode: info.code, clickhouseType: info.type, clickhouseMessage: info.message };
  if (info.code !== undefined && TRANSIENT_CODES.has(info.code)) {
    return unavailableError(`${what}: ClickHouse is overloaded (code ${info.code}): ${firstLine(info.message)}`, full, err);
  }
  return analyticsError(`${what}: ${firstLine(info.message)}`, full, err);
}

const firstLine = (s: string): string => {
  const line = s.split('\n', 1)[0] ?? s;
  return line.length > 500 ? `${line.slice(0, 500)}…` : line;
};

/**
 * ClickHouse codes for a value in inserted data that does not fit its column (what a bad
 * row gets, as opposed to a bad statement, a missing table or an unreachable server).
 */
const REJECTED_DATA_CODES = new Set([
  6, // CANNOT_PARSE_TEXT
  25, // CANNOT_PARSE_ESCAPE_SEQUENCE
  26, // CANNOT_PARSE_QUOTED_STRING
  27, // CANNOT_PARSE_INPUT_ASSERTION_FAILED
  38, // CANNOT_PARSE_DATE
  41, // CANNOT_PARSE_DATETIME
  53, // TYPE_MISMATCH
  69, // ARGUMENT_OUT_OF_BOUND
  70, // CANNOT_CONVERT_TYPE
  72, // CANNOT_PARSE_NUMBER
  117, // INCORRECT_DATA
  131, // TOO_LARGE_STRING_SIZE
  190, // SIZES_OF_ARRAYS_DONT_MATCH (Nested columns of different lengths)
  321, // VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE
  376, // CANNOT_PARSE_UUID
  691, // UNKNOWN_ELEMENT_OF_ENUM
]);

/** How ClickHouse's input formats point at the offending value, old and new spellings. */
const INPUT_POSITION = /\(while read(?:ing)? the value of key |\(at row \d+\)/;

/**
 * Whether an insert failed because of the rows themselves: ClickHouse could not read a value
 * for its column. Such a row will fail every time (the sink dead-letters it); any other
 * failure — the server is down (retriable), a table or column is missing, the statement is
 * wrong — is about the server or the code and must not be blamed on the data. ClickHouse
 * 18.16 reports an unknown Enum element as code 49 (LOGICAL_ERROR), so the text is read too.
 */
export function isRejectedData(err: unknown): boolean {
  if (!(err instanceof SwitchyardError) || err.code !== 'SY_ERR_ANALYTICS' || err.retriable) return false;
  const code = err.detail.clickhouseCode;
  if (typeof code !== 'number') return false;
  const message = typeof err.detail.clickhouseMessage === 'string' ? err.detail.clickhouseMessage : err.message;
  return REJECTED_DATA_CODES.has(code) || INPUT_POSITION.test(message);
}
