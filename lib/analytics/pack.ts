/**
 * The query pack (`schemas/clickhouse/queries/*.sql`): reading the files and their header
 * comments, turning CLI-style parameter text into typed values, and running a query on any
 * `AnalyticsStore`. See `schemas/clickhouse/queries/index.ts` for the file format.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { QUERY_DIR } from '../../schemas/clickhouse/queries/index.js';
import { SwitchyardError } from '../errors.js';
import { analyticsError } from './errors.js';
import type { AnalyticsStore, QueryParamValue, QueryParams, Row } from './port.js';
import { findPlaceholders } from './sql.js';

export interface PackParam {
  name: string;
  /** ClickHouse type of the placeholder, e.g. `DateTime`, `String`, `UInt32`. */
  type: string;
  /** Default as written in the header (`-24h`, `now`, `''`, `60`); undefined = required. */
  default: string | undefined;
  description: string;
}

export interface PackColumn {
  name: string;
  description: string;
}

export interface PackQuery {
  /** File name without `.sql`: the CLI command (`switchyard analytics <name>`). */
  name: string;
  /** The header's first line. */
  summary: string;
  /** The header's other prose, paragraphs joined by blank lines. */
  description: string;
  params: PackParam[];
  columns: PackColumn[];
  /** The whole file, header included (comments are harmless to the server). */
  sql: string;
}

const PARAM_LINE = /^@param\s+([A-Za-z_][A-Za-z0-9_]*)\s+([A-Za-z][A-Za-z0-9]*(?:\([^)]*\))?)(?:\s*=\s*('(?:[^'\\]|\\.)*'|\S+))?\s*(.*)$/;
const COLUMN_LINE = /^@column\s+([A-Za-z_][A-Za-z0-9_]*)\s+(.*)$/;
const LIMIT = /\bLIMIT\s+\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*:\s*(UInt(?:8|16|32|64))\s*\}/gi;

/** Parses one query file. Fails on a header that does not describe the SQL below it. */
export function parseQuery(name: string, text: string): PackQuery {
  const fail = (why: string) => analyticsError(`query pack: ${name}.sql: ${why}`, { query: name });
  const header: string[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('--')) break;
    header.push(line.replace(/^--\s?/, '').trimEnd());
  }
  const summary = header[0]?.trim() ?? '';
  if (summary === '') throw fail('the first line must be a comment saying what the query answers');
  const prose: string[] = [];
  const params: PackParam[] = [];
  const columns: PackColumn[] = [];
  for (const line of header.slice(1)) {
    const t = line.trim();
    if (t.startsWith('@param')) {
      const m = PARAM_LINE.exec(t);
      if (!m) throw fail(`bad @param line: ${t}`);
      const raw = m[3];
      params.push({ name: m[1]!, type: m[2]!, default: raw === undefined ? undefined : raw.startsWith("'") ? unquote(raw) : raw, description: m[4]!.trim() });
    } else if (t.startsWith('@column')) {
      const m = COLUMN_LINE.exec(t);
      if (!m) throw fail(`bad @column line: ${t}`);
      columns.push({ name: m[1]!, description: m[2]!.trim() });
    } else if (t.startsWith('@')) {
      throw fail(`unknown header tag: ${t}`);
    } else prose.push(line);
  }
  if (columns.length === 0) throw fail('the header must list the result columns (@column name description)');
  const declared = new Map(params.map((p) => [p.name, p]));
  if (declared.size !== params.length) throw fail('a parameter is declared twice');
  const used = new Map<string, string>();
  for (const p of findPlaceholders(text)) {
    const d = declared.get(p.name);
    if (!d) throw fail(`{${p.name}:${p.type}} is not declared with @param`);
    if (d.type !== p.type) throw fail(`{${p.name}:${p.type}} is declared as ${d.type}`);
    used.set(p.name, p.type);
  }
  for (const p of params) if (!used.has(p.name)) throw fail(`@param ${p.name} is not used in the SQL`);
  return { name, summary, description: paragraphs(prose), params, columns, sql: text };
}

const unquote = (s: string): string => s.slice(1, -1).replace(/\\(.)/g, '$1');

const paragraphs = (lines: string[]): string =>
  lines
    .join('\n')
    .split(/\n\s*\n/)
    .map((p) => p.trim())
    .filter(Boolean)
    .join('\n\n');

/** Every query of the pack, by name order. */
export function loadQueryPack(dir: string = QUERY_DIR): PackQuery[] {
  let files: string[];
  try {
    files = readdirSync(dir).filter((f) => f.endsWith('.sql')).sort();
  } catch (err) {
    throw analyticsError(`query pack: cannot read ${dir}: ${(err as Error).message}`, { dir }, err);
  }
  return files.map((f) => parseQuery(f.slice(0, -'.sql'.length), readFileSync(join(dir, f), 'utf8')));
}

/** One query of the pack by name; a clear error listing the names when there is none. */
export function packQuery(name: string, pack: readonly PackQuery[] = loadQueryPack()): PackQuery {
  const q = pack.find((p) => p.name === name);
  if (!q) throw new SwitchyardError('SY_ERR_CONFIG', `no query named "${name}" in the pack; one of: ${pack.map((p) => p.name).join(', ')}`);
  return q;
}

const RELATIVE = /^-(\d+(?:\.\d+)?)\s*(s|m|h|d|w)$/;
const UNIT_MS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/**
 * A `DateTime` parameter from text: `now`, relative to now (`-15m`, `-24h`, `-7d`, `-2w`), an
 * ISO 8601 instant (`2026-01-01T12:00:00Z`; without a zone it is read as UTC), a date
 * (`2026-01-01`, midnight UTC) or unix seconds.
 */
export function parseInstant(text: string, now: number): Date {
  const t = text.trim();
  if (t === 'now') return new Date(now);
  const rel = RELATIVE.exec(t);
  if (rel) return new Date(now - Number(rel[1]) * UNIT_MS[rel[2]!]!);
  if (/^\d{9,11}$/.test(t)) return new Date(Number(t) * 1000);
  const iso = /^\d{4}-\d{2}-\d{2}$/.test(t) ? `${t}T00:00:00Z` : /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/.test(t) ? `${t.replace(' ', 'T')}Z` : t;
  const d = new Date(iso);
  if (!/^\d{4}-\d{2}-\d{2}/.test(t) || Number.isNaN(d.getTime())) {
    throw new SwitchyardError('SY_ERR_CONFIG', `not a time: ${JSON.stringify(text)} (use now, -24h, -7d, 2026-01-01, 2026-01-01T12:00:00Z or unix seconds)`);
  }
  return d;
}

/** A parameter value from its text, checked against the declared type. */
export function parseParam(param: PackParam, text: string, now: number): QueryParamValue {
  const bad = (why: string) => new SwitchyardError('SY_ERR_CONFIG', `--${param.name.replace(/_/g, '-')}: ${why}, got ${JSON.stringify(text)}`);
  if (param.type === 'DateTime') return parseInstant(text, now);
  if (/^U?Int(8|16|32|64)$/.test(param.type)) {
    if (!/^-?\d+$/.test(text.trim())) throw bad('an integer is needed');
    const n = Number(text.trim());
    if (!Number.isSafeInteger(n) || (param.type.startsWith('U') && n < 0)) throw bad('out of range');
    return n;
  }
  if (param.type === 'String') return text;
  throw bad(`parameters of type ${param.type} are not supported`);
}

/**
 * Typed values for every parameter of `query`: given text where present, else the header's
 * default. A required parameter without a value, or a value for a parameter the query does
 * not have, is an error.
 */
export function resolveParams(query: PackQuery, given: Readonly<Record<string, string | undefined>>, now: number): Record<string, QueryParamValue> {
  for (const [k, v] of Object.entries(given)) {
    if (v !== undefined && !query.params.some((p) => p.name === k)) {
      throw new SwitchyardError('SY_ERR_CONFIG', `${query.name} has no parameter --${k.replace(/_/g, '-')}; it takes ${query.params.map((p) => `--${p.name.replace(/_/g, '-')}`).join(', ') || 'none'}`);
    }
  }
  const out: Record<string, QueryParamValue> = {};
  for (const p of query.params) {
    const text = given[p.name] ?? p.default;
    if (text === undefined) throw new SwitchyardError('SY_ERR_CONFIG', `${query.name} needs --${p.name.replace(/_/g, '-')} (${p.description})`);
    out[p.name] = parseParam(p, text, now);
  }
  return out;
}

/**
 * The SQL with `LIMIT {name:UIntN}` replaced by the checked integer: ClickHouse 18.16 accepts
 * only a literal after LIMIT. Other placeholders are left for the store to bind.
 */
export function inlineLimits(sql: string, params: QueryParams): string {
  return sql.replace(LIMIT, (_all, name: string) => {
    const v = params[name];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
      throw analyticsError(`LIMIT {${name}} needs a non-negative integer, got ${String(v)}`, { parameter: name });
    }
    return `LIMIT ${v}`;
  });
}

/** Runs a pack query with typed parameter values (see `resolveParams`). */
export async function runPackQuery<T extends object = Row>(store: AnalyticsStore, query: PackQuery, params: QueryParams): Promise<T[]> {
  return store.query<T>(inlineLimits(query.sql, params), params);
}
