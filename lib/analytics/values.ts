/**
 * Converting values between JS and ClickHouse's JSON formats, by column type (see the value
 * rules in port.ts). Shared by both adapters so that a row reads and writes the same on
 * chDB and on a server.
 */
import { INT64_TYPES, parseType, unwrapped, type ChType } from './chtype.js';
import { analyticsError } from './errors.js';
import { instantMs, utcDay } from './sql.js';
import type { Row } from './port.js';

type Convert = (v: unknown) => unknown;

/** The `meta` of ClickHouse's `JSON` output format. */
export interface ColumnMeta {
  name: string;
  type: string;
}

/** ClickHouse's `JSON` output format: `{ meta, data, rows, … }`. */
export interface JsonResult {
  meta?: ColumnMeta[];
  data?: Row[];
}

/** Rows of a `JSON`-format result with 64-bit integers turned into numbers (or a clear error). */
export function decodeResult<T>(result: JsonResult, sql: string): T[] {
  const data = result.data ?? [];
  const converters: [string, Convert][] = [];
  for (const col of result.meta ?? []) {
    const c = decoder(parseType(col.type), col.name, sql);
    if (c) converters.push([col.name, c]);
  }
  if (converters.length > 0) {
    for (const row of data) {
      for (const [name, convert] of converters) row[name] = convert(row[name]);
    }
  }
  return data as T[];
}

/** A converter for values of `type`, or undefined when JSON already has the JS value. */
function decoder(declared: ChType, column: string, sql: string): Convert | undefined {
  const { type, nullable } = unwrapped(declared);
  let inner: Convert | undefined;
  if (INT64_TYPES.has(type.name)) inner = (v) => safeInteger(v, column, declared.text, sql);
  else if (type.name === 'Array' && type.args.length === 1) {
    const element = decoder(parseType(type.args[0]!), column, sql);
    if (element) inner = (v) => (Array.isArray(v) ? v.map(element) : v);
  } else if (type.name === 'Map' && type.args.length === 2) {
    const value = decoder(parseType(type.args[1]!), column, sql);
    if (value) {
      inner = (v) =>
        v !== null && typeof v === 'object' ? Object.fromEntries(Object.entries(v as Record<string, unknown>).map(([k, x]) => [k, value(x)])) : v;
    }
  }
  if (!inner) return undefined;
  const convert = inner;
  return nullable ? (v) => (v === null ? null : convert(v)) : convert;
}

function safeInteger(v: unknown, column: string, type: string, sql: string): unknown {
  if (typeof v === 'number') {
    if (Number.isSafeInteger(v)) return v;
  } else if (typeof v === 'string' && /^-?\d+$/.test(v)) {
    const n = Number(v);
    if (Number.isSafeInteger(n)) return n;
  } else return v;
  throw analyticsError(
    `column "${column}" (${type}) holds ${String(v)}, beyond what a JS number holds exactly (±2^53); select toString(${column}) to read it as text`,
    { column, type, value: String(v), sql },
  );
}

/** One column of a table as `DESCRIBE TABLE` shows it. */
export interface TableColumn {
  name: string;
  type: string;
  /** `''`, `DEFAULT`, `MATERIALIZED`, `ALIAS` or `EPHEMERAL`. */
  default_type?: string;
}

/** Turns a caller's row into the object whose JSON is one JSONEachRow line. */
export type RowEncoder = (row: Row, index: number) => Row;

/**
 * Builds the row encoder for a table from its columns. Columns that cannot be inserted
 * (`MATERIALIZED`, `ALIAS`) are unknown to it, so a row naming one fails like a row naming
 * a column the table lacks.
 *
 * A value equal to what the server would store for an omitted field is left out of the
 * line — `null` for a `Nullable` column and `[]` for an `Array` column, when the column has
 * no `DEFAULT` expression — which stores the same row from less JSON (the sink's rows are
 * mostly such values; JSON parsing is most of an insert's cost).
 */
export function rowEncoder(table: string, columns: readonly TableColumn[]): RowEncoder {
  return tableEncoder(table, columns).row;
}

/** Rows as arrays in the order of `columns`: what `JSONCompactEachRow` reads. */
export interface CompactRows {
  columns: string[];
  data: unknown[][];
}

/** Both encodings of a table's rows. */
export interface TableEncoder {
  row: RowEncoder;
  /**
   * The rows as arrays when they all set the same columns (undefined values count as unset);
   * undefined when they do not, so the caller falls back to objects. Nothing is left out:
   * a compact row has a value for every column named.
   */
  compact: (rows: readonly Row[]) => CompactRows | undefined;
}

/** What to do with a key: its converter, and which value is what an omitted field stores. */
interface Plan {
  encode: Convert;
  omitNull: boolean;
  omitEmpty: boolean;
}

export function tableEncoder(table: string, columns: readonly TableColumn[]): TableEncoder {
  const plans = new Map<string, Plan>();
  for (const col of columns) {
    const dt = col.default_type ?? '';
    if (dt === 'MATERIALIZED' || dt === 'ALIAS') continue;
    const declared = parseType(col.type);
    const { type, nullable } = unwrapped(declared);
    plans.set(col.name, {
      encode: encoder(declared, col.name),
      omitNull: dt === '' && nullable,
      omitEmpty: dt === '' && !nullable && type.name === 'Array',
    });
  }
  const unknownColumn = (key: string, index: number) =>
    analyticsError(`insert into ${table}: row ${index} has "${key}", which is not an insertable column of ${table}`, {
      table,
      column: key,
      row: index,
      columns: [...plans.keys()],
    });

  const row: RowEncoder = (input, index) => {
    const out: Row = {};
    for (const key in input) {
      const value = input[key];
      if (value === undefined) continue;
      const plan = plans.get(key);
      if (!plan) throw unknownColumn(key, index);
      if (value === null ? plan.omitNull : plan.omitEmpty && Array.isArray(value) && value.length === 0) continue;
      out[key] = plan.encode(value);
    }
    return out;
  };

  const compact = (rows: readonly Row[]): CompactRows | undefined => {
    const first = rows[0];
    if (first === undefined) return { columns: [], data: [] };
    const names: string[] = [];
    const converters: Convert[] = [];
    for (const key in first) {
      if (first[key] === undefined) continue;
      const plan = plans.get(key);
      if (!plan) throw unknownColumn(key, 0);
      names.push(key);
      converters.push(plan.encode);
    }
    const width = names.length;
    const data: unknown[][] = new Array<unknown[]>(rows.length);
    for (let i = 0; i < rows.length; i++) {
      const input = rows[i]!;
      let set = 0;
      for (const key in input) if (input[key] !== undefined) set++;
      if (set !== width) return undefined;
      const out = new Array<unknown>(width);
      for (let c = 0; c < width; c++) {
        const value = input[names[c]!];
        if (value === undefined) return undefined;
        out[c] = value === null ? null : converters[c]!(value);
      }
      data[i] = out;
    }
    return { columns: names, data };
  };

  return { row, compact };
}

function encoder(declared: ChType, column: string): Convert {
  const { type } = unwrapped(declared);
  const kind = type.name;
  if (kind === 'Array' && type.args.length === 1) {
    const element = encoder(parseType(type.args[0]!), column);
    return (v) => {
      if (!Array.isArray(v)) return generic(v);
      // The array itself when no element changes (the common case): no copy to collect.
      for (let i = 0; i < v.length; i++) {
        const x: unknown = v[i];
        if (x !== null && element(x) !== x) return v.map((y) => (y === null ? null : element(y)));
      }
      return v;
    };
  }
  // Instants go out as ISO 8601 in UTC ('Z'), which `date_time_input_format=best_effort` reads
  // the same on every server whatever the column's or the server's time zone; bare unix
  // seconds are not safe there (best_effort reads '0' or '86400' as something else).
  if (kind === 'DateTime') {
    return (v) => {
      if (v instanceof Date) return isoSeconds(instantMs(v, column, declared));
      if (typeof v === 'number' && Number.isFinite(v) && v >= 0) return isoSeconds(Math.floor(v) * 1000);
      return generic(v);
    };
  }
  if (kind === 'DateTime64') {
    return (v) => {
      if (v instanceof Date) {
        instantMs(v, column, declared);
        return v.toISOString();
      }
      if (typeof v === 'number' && Number.isFinite(v) && v >= 0) return new Date(Math.round(v * 1000)).toISOString();
      return generic(v);
    };
  }
  if (kind === 'Date' || kind === 'Date32') return (v) => (v instanceof Date ? utcDay(v, column, declared) : generic(v));
  if (kind === 'Float32' || kind === 'Float64') {
    return (v) => (typeof v === 'number' && !Number.isFinite(v) ? (Number.isNaN(v) ? 'nan' : v > 0 ? 'inf' : '-inf') : generic(v));
  }
  if (kind === 'Bool') return generic;
  return (v) => (typeof v === 'boolean' ? (v ? 1 : 0) : generic(v));
}

/** `YYYY-MM-DDThh:mm:ssZ`: whole seconds, so a DateTime column reads it without a fraction to reject. */
const isoSeconds = (ms: number): string => `${new Date(ms).toISOString().slice(0, 19)}Z`;

/** Values JSON cannot carry as they are. */
function generic(v: unknown): unknown {
  const t = typeof v;
  if (t === 'string' || t === 'number') return v;
  if (v === null) return null;
  if (typeof v === 'bigint') return v.toString();
  if (v instanceof Date) return v.toISOString();
  if (Array.isArray(v)) return v.map(generic);
  return v;
}
