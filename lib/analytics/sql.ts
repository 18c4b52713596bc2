/**
 * SQL text helpers shared by the adapters: statement clean-up, table-name checks, and the
 * literal fallback for `{name:Type}` query parameters on servers that cannot bind them
 * (ClickHouse before 20.1, e.g. Debian's 18.16).
 *
 * The fallback is the only place where a parameter value becomes SQL text, so it is
 * deliberately narrow: the value is checked against the placeholder's declared type,
 * strings are escaped byte-for-byte as ClickHouse's lexer reads them, and the result is
 * wrapped in `CAST(<literal> AS <Type>)` so the expression has the declared type exactly
 * as a bound parameter would. Placeholders inside string literals, quoted identifiers and
 * comments are left alone, as the server's own lexer would.
 */
import { INTEGER_TYPES, parseType, skipQuoted, unwrapped, type ChType } from './chtype.js';
import { analyticsError } from './errors.js';
import type { QueryParamValue, QueryParams } from './port.js';

/** Trims whitespace and trailing semicolons; one statement per call. */
export function cleanStatement(sql: string): string {
  const s = sql.trim().replace(/[;\s]+$/, '');
  if (s === '') throw analyticsError('empty SQL statement');
  return s;
}

const IDENT = '[A-Za-z_][A-Za-z0-9_]*';
const TABLE = new RegExp(`^(?:${IDENT}\\.)?${IDENT}$`);
const IDENTIFIER = new RegExp(`^${IDENT}$`);

export const isIdentifier = (s: string): boolean => IDENTIFIER.test(s);

/** Table names reach SQL text unquoted, so only `name` or `database.name` of word characters. */
export function checkTable(table: string): string {
  if (typeof table !== 'string' || !TABLE.test(table)) {
    throw analyticsError(`bad table name ${JSON.stringify(table)}: expected name or database.name of [A-Za-z0-9_]`, { table });
  }
  return table;
}

export interface Placeholder {
  /** Index of `{` in the SQL. */
  start: number;
  /** Index just past `}`. */
  end: number;
  name: string;
  type: string;
}

const PLACEHOLDER_HEAD = /\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*:\s*/y;

/** Finds `{name:Type}` placeholders outside string literals, quoted identifiers and comments. */
export function findPlaceholders(sql: string): Placeholder[] {
  const found: Placeholder[] = [];
  for (let i = 0; i < sql.length; i++) {
    const c = sql[i];
    if (c === "'" || c === '"' || c === '`') {
      const close = skipQuoted(sql, i);
      if (close < 0) return found; // unterminated: the server will report the syntax error
      i = close;
    } else if (c === '-' && sql[i + 1] === '-') {
      const nl = sql.indexOf('\n', i);
      if (nl < 0) return found;
      i = nl;
    } else if (c === '/' && sql[i + 1] === '*') {
      const close = sql.indexOf('*/', i + 2);
      if (close < 0) return found;
      i = close + 1;
    } else if (c === '{') {
      const p = readPlaceholder(sql, i);
      if (p) {
        found.push(p);
        i = p.end - 1;
      }
    }
  }
  return found;
}

function readPlaceholder(sql: string, start: number): Placeholder | undefined {
  PLACEHOLDER_HEAD.lastIndex = start;
  const head = PLACEHOLDER_HEAD.exec(sql);
  if (!head) return undefined;
  let depth = 0;
  for (let i = start + head[0].length; i < sql.length; i++) {
    const c = sql[i];
    if (c === "'" || c === '"' || c === '`') {
      const close = skipQuoted(sql, i);
      if (close < 0) return undefined;
      i = close;
    } else if (c === '(') depth++;
    else if (c === ')') depth--;
    else if (c === '}' && depth === 0) {
      const type = sql.slice(start + head[0].length, i).trim();
      return type === '' ? undefined : { start, end: i + 1, name: head[1]!, type };
    }
  }
  return undefined;
}

/**
 * Replaces every placeholder with `CAST(<literal> AS <Type>)`. A placeholder without a
 * value is an error (as on a server that binds: code 456); unused values are ignored.
 */
export function inlineParams(sql: string, params: QueryParams = {}): string {
  const placeholders = findPlaceholders(sql);
  if (placeholders.length === 0) return sql;
  let out = '';
  let at = 0;
  for (const p of placeholders) {
    if (!Object.hasOwn(params, p.name) || params[p.name] === undefined) {
      throw analyticsError(`query parameter "${p.name}" was not given`, { parameter: p.name, type: p.type });
    }
    out += sql.slice(at, p.start) + typedLiteral(p.type, params[p.name]!, p.name);
    at = p.end;
  }
  return out + sql.slice(at);
}

/**
 * Parameter values ready for an engine that binds them itself. Values are sent as text and
 * parsed by the server with the placeholder's type, and the clients' own renderings of a
 * JS `Date` do not fit every type (a fraction of a second breaks `DateTime`, chDB drops the
 * milliseconds of `DateTime64` and cannot bind a `Date`), nor does chDB bind NaN or ±∞.
 * So those values are rendered here, by declared type: unix seconds zero-padded to ten
 * digits (a time-zone-free form every version parses), with the type's decimals for
 * `DateTime64`, the UTC day for `Date`, `nan`/`inf`/`-inf` for floats. Everything else is
 * passed through for the client to encode.
 */
export function bindableParams(sql: string, params: QueryParams = {}): Record<string, QueryParamValue> {
  const out: Record<string, QueryParamValue> = { ...params };
  for (const p of findPlaceholders(sql)) {
    const value = params[p.name];
    if (value !== undefined && Object.hasOwn(params, p.name)) out[p.name] = bindValue(parseType(p.type), value, p.name);
  }
  return out;
}

function bindValue(declared: ChType, value: QueryParamValue, name: string): QueryParamValue {
  if (value === null) return null;
  const { type } = unwrapped(declared);
  if (type.name === 'Array' && type.args.length === 1 && Array.isArray(value)) {
    const inner = parseType(type.args[0]!);
    return (value as readonly QueryParamValue[]).map((v) => bindValue(inner, v, name));
  }
  if (value instanceof Date) {
    if (type.name === 'DateTime') return paddedSeconds(secondsText(instantMs(value, name, declared), 0));
    if (type.name === 'DateTime64') return paddedSeconds(secondsText(instantMs(value, name, declared), precisionOf(type)));
    if (type.name === 'Date' || type.name === 'Date32') return utcDay(value, name, declared);
  }
  if (typeof value === 'number' && !Number.isFinite(value) && (type.name === 'Float32' || type.name === 'Float64')) {
    return Number.isNaN(value) ? 'nan' : value > 0 ? 'inf' : '-inf';
  }
  return value;
}

const paddedSeconds = (text: string): string => {
  const dot = text.indexOf('.');
  const whole = dot < 0 ? text : text.slice(0, dot);
  return whole.padStart(10, '0') + (dot < 0 ? '' : text.slice(dot));
};

/** `CAST(<literal> AS <type>)` for one parameter value. */
export function typedLiteral(type: string, value: QueryParamValue, name = 'value'): string {
  const t = parseType(type);
  return `CAST(${literal(t, value, name)} AS ${t.text})`;
}

/**
 * ClickHouse string literal: backslash escapes for the quote, the backslash and control
 * characters; everything else (including any UTF-8) as is.
 */
export function quoteString(s: string): string {
  let out = "'";
  for (let i = 0; i < s.length; i++) {
    const ch = s.charCodeAt(i);
    switch (ch) {
      case 0x27: out += "\\'"; break;
      case 0x5c: out += '\\\\'; break;
      case 0x0a: out += '\\n'; break;
      case 0x0d: out += '\\r'; break;
      case 0x09: out += '\\t'; break;
      case 0x00: out += '\\0'; break;
      case 0x08: out += '\\b'; break;
      case 0x0c: out += '\\f'; break;
      default:
        out += ch < 0x20 || ch === 0x7f ? `\\x${ch.toString(16).padStart(2, '0')}` : s[i];
    }
  }
  return `${out}'`;
}

const INTEGER_TEXT = /^-?\d+$/;
const DECIMAL_TEXT = /^-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$/;

const badValue = (name: string, type: ChType, value: unknown, why: string) =>
  analyticsError(`query parameter "${name}": ${why} for ${type.text}, got ${describe(value)}`, { parameter: name, type: type.text });

const describe = (v: unknown): string => {
  if (v === null) return 'null';
  if (v instanceof Date) return `Date(${Number.isNaN(v.getTime()) ? 'invalid' : v.toISOString()})`;
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`;
  return `${typeof v} ${String(v)}`;
};

function literal(declared: ChType, value: QueryParamValue, name: string): string {
  const { type, nullable } = unwrapped(declared);
  if (value === null) {
    if (nullable) return 'NULL';
    throw badValue(name, declared, value, 'null needs a Nullable type');
  }
  const kind = type.name;
  if (kind === 'Array') {
    if (!Array.isArray(value) || type.args.length !== 1) throw badValue(name, declared, value, 'an array is needed');
    const inner = parseType(type.args[0]!);
    return `[${(value as readonly QueryParamValue[]).map((v) => literal(inner, v, name)).join(', ')}]`;
  }
  if (Array.isArray(value)) throw badValue(name, declared, value, 'an array fits only Array(T)');
  if (INTEGER_TYPES.has(kind)) {
    if (typeof value === 'number' && Number.isSafeInteger(value)) return String(value);
    if (typeof value === 'bigint') return value.toString();
    if (typeof value === 'string' && INTEGER_TEXT.test(value)) return value;
    if (typeof value === 'boolean') return value ? '1' : '0';
    throw badValue(name, declared, value, 'an integer (safe number, bigint or digits) is needed');
  }
  if (kind === 'Float32' || kind === 'Float64') {
    if (typeof value === 'number') {
      if (Number.isFinite(value)) return numberText(value);
      return Number.isNaN(value) ? 'nan' : value > 0 ? 'inf' : '-inf';
    }
    if (typeof value === 'string' && DECIMAL_TEXT.test(value)) return value;
    throw badValue(name, declared, value, 'a number is needed');
  }
  if (kind.startsWith('Decimal')) {
    if (typeof value === 'number' && Number.isFinite(value)) return quoteString(numberText(value));
    if (typeof value === 'bigint') return value.toString();
    if (typeof value === 'string' && DECIMAL_TEXT.test(value)) return quoteString(value);
    throw badValue(name, declared, value, 'a finite number or decimal text is needed');
  }
  if (kind === 'Bool') {
    if (typeof value === 'boolean') return value ? '1' : '0';
    throw badValue(name, declared, value, 'a boolean is needed');
  }
  if (kind === 'String' || kind === 'FixedString' || kind === 'UUID' || kind === 'IPv4' || kind === 'IPv6' || kind === 'Enum8' || kind === 'Enum16' || kind === 'Enum') {
    if (typeof value === 'string') return quoteString(value);
    if (typeof value === 'number' || typeof value === 'bigint') return quoteString(String(value));
    throw badValue(name, declared, value, 'a string is needed');
  }
  if (kind === 'Date' || kind === 'Date32') {
    if (value instanceof Date) return quoteString(utcDay(value, name, declared));
    if (typeof value === 'string') return quoteString(value);
    throw badValue(name, declared, value, "a Date or 'YYYY-MM-DD' is needed");
  }
  if (kind === 'DateTime') {
    if (value instanceof Date) return String(Math.floor(instantMs(value, name, declared) / 1000));
    if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) return String(value);
    if (typeof value === 'string') return quoteString(value);
    throw badValue(name, declared, value, 'a Date, unix seconds or a date-time string is needed');
  }
  if (kind === 'DateTime64') {
    if (value instanceof Date) return quoteString(secondsText(instantMs(value, name, declared), precisionOf(type)));
    if (typeof value === 'number' && Number.isFinite(value)) return quoteString(numberText(value));
    if (typeof value === 'string') return quoteString(value);
    throw badValue(name, declared, value, 'a Date, unix seconds or a date-time string is needed');
  }
  throw analyticsError(`query parameter "${name}": type ${declared.text} is not supported without server-side parameters (ClickHouse < 20.1)`, {
    parameter: name,
    type: declared.text,
  });
}

/** `String(n)` (exponent form included: ClickHouse reads `1e-7`), with -0 as 0. */
const numberText = (n: number): string => (Object.is(n, -0) ? '0' : String(n));

export function instantMs(d: Date, name: string, type: ChType | string): number {
  const ms = d.getTime();
  if (Number.isNaN(ms)) throw analyticsError(`"${name}": invalid Date for ${typeof type === 'string' ? type : type.text}`, { name });
  if (ms < 0) throw analyticsError(`"${name}": instants before 1970 are not supported (${d.toISOString()})`, { name });
  return ms;
}

export const utcDay = (d: Date, name: string, type: ChType | string): string => new Date(instantMs(d, name, type)).toISOString().slice(0, 10);

/** `DateTime64(p, …)`'s precision; 3 when absent. */
export function precisionOf(type: ChType): number {
  const p = Number(type.args[0] ?? 3);
  return Number.isInteger(p) && p >= 0 && p <= 9 ? p : 3;
}

/** Unix seconds with exactly `precision` decimals, from milliseconds (≥ 0). */
export function secondsText(ms: number, precision: number): string {
  const whole = Math.floor(ms / 1000);
  if (precision === 0) return String(whole);
  const frac = String(ms % 1000).padStart(3, '0');
  return `${whole}.${precision <= 3 ? frac.slice(0, precision) : frac.padEnd(precision, '0')}`;
}
