/**
 * The distributed `AnalyticsStore`: a ClickHouse server over HTTP via @clickhouse/client.
 *
 * Works with servers as old as 18.16 (Debian bookworm's package, which CI runs):
 * - the client's default settings are left empty and compression off, so nothing is sent
 *   that 18.16 does not know (unknown URL parameters are rejected as unknown settings);
 * - results use the `JSON` format (with `meta`, in 18.16 already) and inserts
 *   `JSONEachRow`, with `date_time_input_format=best_effort` (since 1.1.54388);
 * - 18.16 cannot bind `{name:Type}` parameters (that came in 19.11 and took today's
 *   encoding in 20.1), so below 20.1 the store substitutes typed literals (`sql.ts`);
 * - 18.16's error text (`Code: 62, e.displayText() = …`) is not what the client parses, so
 *   codes are read from the text (`errors.ts`).
 */
import { createClient, type ClickHouseClient } from '@clickhouse/client';
import { SwitchyardError } from '../errors.js';
import { fromClickHouse } from './errors.js';
import { features } from './migrations.js';
import type { AnalyticsStore, QueryParams, Row } from './port.js';
import { isIdentifier } from './sql.js';
import { storeOver, type Engine } from './store.js';
import type { JsonResult } from './values.js';
import { parseServerVersion } from './version.js';

export interface ServerAnalyticsOptions {
  /** HTTP(S) endpoint of the server. @default 'http://127.0.0.1:8123' */
  url?: string;
  /** @default 'default' */
  user?: string;
  /** @default '' */
  password?: string;
  /** Database holding Switchyard's tables. @default 'switchyard' */
  database?: string;
  /** Create `database` when it does not exist. @default true */
  createDatabase?: boolean;
  /** Per-request timeout in ms. @default 30_000 */
  requestTimeoutMs?: number;
  /** Upper bound on concurrent HTTP connections. @default 10 */
  maxOpenConnections?: number;
}

export type ServerAnalyticsConfig = Required<ServerAnalyticsOptions>;

const configError = (message: string) => new SwitchyardError('SY_ERR_CONFIG', `clickhouse analytics: ${message}`);

/** Validates and fills in the options (fail fast, before any request). */
export function serverAnalyticsConfig({
  url = 'http://127.0.0.1:8123',
  user = 'default',
  password = '',
  database = 'switchyard',
  createDatabase = true,
  requestTimeoutMs = 30_000,
  maxOpenConnections = 10,
}: ServerAnalyticsOptions = {}): ServerAnalyticsConfig {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw configError(`url ${JSON.stringify(url)} is not a URL`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw configError(`url must be http(s), got ${JSON.stringify(url)}`);
  if (parsed.username || parsed.password) throw configError('put credentials in user/password, not in the url');
  if (parsed.search || (parsed.pathname !== '/' && parsed.pathname !== '')) throw configError('url must have no path or query; the database goes in `database`');
  if (typeof user !== 'string' || user === '') throw configError('user must be a non-empty string');
  if (typeof password !== 'string') throw configError('password must be a string');
  if (typeof database !== 'string' || !isIdentifier(database)) throw configError(`database must match [A-Za-z_][A-Za-z0-9_]*, got ${JSON.stringify(database)}`);
  if (!Number.isInteger(requestTimeoutMs) || requestTimeoutMs <= 0) throw configError(`requestTimeoutMs must be a positive integer, got ${requestTimeoutMs}`);
  if (!Number.isInteger(maxOpenConnections) || maxOpenConnections <= 0) throw configError(`maxOpenConnections must be a positive integer, got ${maxOpenConnections}`);
  return { url: parsed.origin, user, password, database, createDatabase: Boolean(createDatabase), requestTimeoutMs, maxOpenConnections };
}

function client(config: ServerAnalyticsConfig, database: string | undefined): ClickHouseClient {
  return createClient({
    url: config.url,
    username: config.user,
    password: config.password,
    ...(database === undefined ? {} : { database }),
    request_timeout: config.requestTimeoutMs,
    max_open_connections: config.maxOpenConnections,
    compression: { request: false, response: false },
    application: 'switchyard',
    clickhouse_settings: {},
    // Failures reach the caller as SwitchyardErrors; the client's own console logging would only repeat them.
    log: { level: 127 },
  });
}

/**
 * Connects, creates the database when asked, and reads the server's version. Rejects with
 * `SY_ERR_ANALYTICS_UNAVAILABLE` (retriable) when the server cannot be reached.
 */
export async function createServerAnalyticsStore(options: ServerAnalyticsOptions = {}): Promise<AnalyticsStore> {
  const config = serverAnalyticsConfig(options);
  const detail = { url: config.url, database: config.database };

  if (config.createDatabase) {
    // The database cannot be the session's current one until it exists.
    const bootstrap = client(config, undefined);
    try {
      await bootstrap.command({ query: `CREATE DATABASE IF NOT EXISTS ${config.database}` });
    } catch (err) {
      throw fromClickHouse(err, `create database ${config.database}`, detail);
    } finally {
      await bootstrap.close();
    }
  }

  const ch = client(config, config.database);
  let versionText: string;
  try {
    const rs = await ch.query({ query: 'SELECT version() AS v', format: 'JSON' });
    versionText = ((await rs.json()) as JsonResult).data?.[0]?.v as string;
  } catch (err) {
    await ch.close();
    throw fromClickHouse(err, 'connect', detail);
  }
  const version = parseServerVersion(versionText);

  const engine: Engine = {
    kind: 'server',
    bindsParams: features(version).queryParameters,
    async queryJson(sql: string, params?: QueryParams): Promise<JsonResult> {
      const rs = await ch.query({ query: sql, format: 'JSON', ...(params === undefined ? {} : { query_params: params as Record<string, unknown> }) });
      return (await rs.json()) as JsonResult;
    },
    async exec(sql: string) {
      await ch.command({ query: sql });
    },
    async insert(table: string, rows: Row[]) {
      await ch.insert({ table, values: rows, format: 'JSONEachRow', clickhouse_settings: { date_time_input_format: 'best_effort' } });
    },
    async close() {
      await ch.close();
    },
  };
  return storeOver(engine, version);
}
