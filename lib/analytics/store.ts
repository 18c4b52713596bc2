/**
 * The part of an `AnalyticsStore` both adapters share: statement clean-up, parameter
 * handling, value conversion, the per-table insert encoders and error wrapping. An adapter
 * supplies only an `Engine`, which moves SQL and bytes.
 */
import { SwitchyardError } from '../errors.js';
import { analyticsError, fromClickHouse } from './errors.js';
import type { AnalyticsStore, QueryParams, Row, ServerVersion } from './port.js';
import { bindableParams, checkTable, cleanStatement, findPlaceholders, inlineParams } from './sql.js';
import { decodeResult, tableEncoder, type JsonResult, type TableColumn, type TableEncoder } from './values.js';
import { parseServerVersion } from './version.js';

/** How an adapter talks to its ClickHouse. Errors are thrown as the client produced them. */
export interface Engine {
  readonly kind: AnalyticsStore['kind'];
  /**
   * Whether `{name:Type}` placeholders can be sent with `params` for the engine to bind.
   * When false the store inlines typed literals and `params` is never passed.
   */
  readonly bindsParams: boolean;
  /** Runs a statement that returns rows, in ClickHouse's `JSON` output format. */
  queryJson(sql: string, params?: QueryParams): Promise<JsonResult>;
  /** Runs a statement and discards any output. */
  exec(sql: string): Promise<void>;
  /**
   * Inserts objects as JSONEachRow lines, with `date_time_input_format=best_effort` so a
   * date-time string in ISO 8601 (`…T…Z`) reads as well as ClickHouse's own format.
   */
  insert(table: string, rows: Row[]): Promise<void>;
  /**
   * Inserts rows as arrays in `columns` order (JSONCompactEachRow), when the engine can: no
   * column names repeated per row, so less to build, send and parse. Optional.
   */
  insertCompact?(table: string, columns: string[], rows: unknown[][]): Promise<void>;
  close(): Promise<void>;
}

const SQL_IN_DETAIL = 2000;
const clip = (sql: string): string => (sql.length > SQL_IN_DETAIL ? `${sql.slice(0, SQL_IN_DETAIL)}…` : sql);

export function storeOver(engine: Engine, version?: ServerVersion): AnalyticsStore {
  let closed = false;
  let versionPromise: Promise<ServerVersion> | undefined = version ? Promise.resolve(version) : undefined;
  const encoders = new Map<string, Promise<TableEncoder>>();

  const open = (what: string) => {
    if (closed) throw analyticsError(`${what}: the ${engine.kind} analytics store is closed`);
  };

  const wrap = async <T>(what: string, detail: Record<string, unknown>, run: () => Promise<T>): Promise<T> => {
    try {
      return await run();
    } catch (err) {
      if (err instanceof SwitchyardError) throw err;
      throw fromClickHouse(err, what, detail);
    }
  };

  const query = async <T extends object = Row>(sql: string, params?: QueryParams): Promise<T[]> => {
    open('query');
    let text = cleanStatement(sql);
    let bound: QueryParams | undefined;
    if (params !== undefined || findPlaceholders(text).length > 0) {
      if (engine.bindsParams) bound = bindableParams(text, params);
      else text = inlineParams(text, params);
    }
    const result = await wrap('query', { sql: clip(text) }, () => engine.queryJson(text, bound));
    return decodeResult<T>(result, text);
  };

  const encoderFor = (table: string): Promise<TableEncoder> => {
    let e = encoders.get(table);
    if (!e) {
      e = (async () => tableEncoder(table, await query<TableColumn>(`DESCRIBE TABLE ${table}`)))();
      encoders.set(table, e);
      e.catch(() => encoders.delete(table));
    }
    return e;
  };

  return {
    kind: engine.kind,

    serverVersion() {
      open('serverVersion');
      versionPromise ??= (async () => {
        const rows = await query<{ v: string }>('SELECT version() AS v');
        return parseServerVersion(rows[0]?.v ?? '');
      })();
      versionPromise.catch(() => (versionPromise = undefined));
      return versionPromise;
    },

    async exec(sql) {
      open('exec');
      const text = cleanStatement(sql);
      try {
        await wrap('exec', { sql: clip(text) }, () => engine.exec(text));
      } finally {
        // DDL may have changed any table's columns.
        encoders.clear();
      }
    },

    async insert(table, rows) {
      open('insert');
      checkTable(table);
      if (!Array.isArray(rows)) throw analyticsError(`insert into ${table}: rows must be an array`, { table });
      if (rows.length === 0) return;
      const encoder = await encoderFor(table);
      for (const [i, row] of rows.entries()) {
        if (row === null || typeof row !== 'object' || Array.isArray(row)) {
          throw analyticsError(`insert into ${table}: row ${i} is not an object`, { table, row: i });
        }
      }
      const compact = engine.insertCompact ? encoder.compact(rows) : undefined;
      try {
        if (compact) {
          await wrap(`insert into ${table}`, { table, rows: rows.length }, () => engine.insertCompact!(table, compact.columns, compact.data));
        } else {
          const lines = rows.map((row, i) => encoder.row(row, i));
          await wrap(`insert into ${table}`, { table, rows: lines.length }, () => engine.insert(table, lines));
        }
      } catch (err) {
        encoders.delete(table);
        throw err;
      }
    },

    query,

    async close() {
      if (closed) return;
      closed = true;
      encoders.clear();
      await engine.close();
    },
  };
}
