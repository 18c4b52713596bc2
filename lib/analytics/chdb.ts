/**
 * The embedded `AnalyticsStore`: ClickHouse's engine in this process (npm `chdb`), its data
 * in a directory that survives restarts. Zero setup; the default in embedded mode.
 *
 * libchdb serves one data directory per process: while a store is open, a store at another
 * path cannot be (opening one fails with `SY_ERR_ANALYTICS`), and `close()` waits until the
 * engine has really let go, so the next open — at any path — succeeds.
 */
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Session } from 'chdb';
import { SwitchyardError } from '../errors.js';
import { analyticsError } from './errors.js';
import type { AnalyticsStore, QueryParams, Row } from './port.js';
import { storeOver, type Engine } from './store.js';
import type { JsonResult } from './values.js';

export interface ChdbAnalyticsOptions {
  /**
   * Directory holding the database; created if missing, reopened as it was on the next
   * start. Relative paths resolve against the working directory.
   * @default '.switchyard/analytics'
   */
  path?: string;
}

export interface ChdbAnalyticsConfig {
  path: string;
}

/** Validates and fills in the options (fail fast, before touching the engine). */
export function chdbAnalyticsConfig({ path = '.switchyard/analytics' }: ChdbAnalyticsOptions = {}): ChdbAnalyticsConfig {
  if (typeof path !== 'string' || path.trim() === '') {
    throw new SwitchyardError('SY_ERR_CONFIG', `chdb analytics: path must be a non-empty directory path, got ${JSON.stringify(path)}`);
  }
  return { path: resolve(path) };
}

// 64-bit integers must arrive as JSON strings, or JSON.parse rounds them before we can tell.
// chDB's default (unlike a server's) is to write them as bare numbers.
const CONNECTION_ARGS = ['--output_format_json_quote_64bit_integers=1'];

/** Opens (creating if needed) the embedded database at `options.path`. */
export async function createChdbAnalyticsStore(options: ChdbAnalyticsOptions = {}): Promise<AnalyticsStore> {
  const config = chdbAnalyticsConfig(options);
  // Loaded on first use: the engine is a large native library that server mode never needs.
  const chdb = await import('chdb');
  try {
    mkdirSync(config.path, { recursive: true });
  } catch (err) {
    throw analyticsError(`chdb analytics: cannot create ${config.path}: ${(err as Error).message}`, { path: config.path }, err);
  }
  let session: Session;
  try {
    session = new chdb.Session(config.path, { connectionArgs: CONNECTION_ARGS });
  } catch (err) {
    // The engine locks its directory: a second process (a running `switchyard up` or `sink`)
    // cannot open it, and libchdb reports only that the connection failed.
    throw analyticsError(
      `chdb analytics: cannot open ${config.path}: ${(err as Error).message} (chDB serves a directory to one process at a time: is a switchyard process with analytics running? Stop it, or use a ClickHouse server with --clickhouse)`,
      { path: config.path },
      err,
    );
  }

  const engine: Engine = {
    kind: 'chdb',
    bindsParams: true,
    async queryJson(sql: string, params?: QueryParams): Promise<JsonResult> {
      const result = params === undefined ? await session.queryAsync(sql, { format: 'JSON' }) : await session.queryBindAsync(sql, params, { format: 'JSON' });
      const text = result.text();
      return text.trim() === '' ? {} : (JSON.parse(text) as JsonResult);
    },
    async exec(sql: string) {
      await session.queryAsync(sql);
    },
    async insert(table: string, rows: Row[]) {
      await session.insert({
        table,
        // JSONEachRow also reads a JSON array of objects; one stringify of the array is about
        // three times faster than a stringify per row and a join.
        values: JSON.stringify(rows),
        format: 'JSONEachRow',
        settings: { date_time_input_format: 'best_effort' },
      });
    },
    async insertCompact(table: string, columns: string[], rows: unknown[][]) {
      await session.insert({
        table,
        columns,
        // JSONCompactEachRow reads rows separated by commas: the array's text without its brackets.
        values: JSON.stringify(rows).slice(1, -1),
        format: 'JSONCompactEachRow',
        settings: { date_time_input_format: 'best_effort' },
      });
    },
    async close() {
      session.close();
      await chdb.drainPending();
    },
  };

  const store = storeOver(engine);
  try {
    const probe = await engine.queryJson('SELECT toUInt64(18446744073709551615) AS x');
    if (probe.data?.[0]?.x !== '18446744073709551615') {
      throw analyticsError('chdb analytics: the engine does not quote 64-bit integers in JSON; refusing to return rounded numbers', { probe: probe.data });
    }
    await store.serverVersion();
  } catch (err) {
    await store.close();
    if (err instanceof SwitchyardError) throw err;
    throw analyticsError(`chdb analytics: ${(err as Error).message}`, { path: config.path }, err);
  }
  return store;
}
