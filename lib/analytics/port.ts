/**
 * The `AnalyticsStore` port: the ClickHouse engine the sink writes to and the query pack
 * reads from. Two adapters implement it — `chdb` (embedded, in-process, `chdb.ts`) and
 * `server` (a ClickHouse server over HTTP, `server.ts`) — and both must pass
 * `test/contract/analytics-store.contract.ts`.
 *
 * SQL is ClickHouse SQL, one statement per call, without a `FORMAT` clause (the adapter
 * picks the format); trailing semicolons are ignored. Write it for the oldest server the
 * project supports (ClickHouse 18.16, Debian's package) or gate it on `features()` from
 * `migrations.ts`.
 *
 * Values, both ways:
 * - Rows come back as plain objects keyed by column name. `String`, `Enum`, `UUID`,
 *   `Date`, `DateTime` (as ClickHouse prints them, e.g. `'2024-01-02 03:04:05'` in the
 *   column's time zone — declare columns `DateTime('UTC')`, or select
 *   `toUnixTimestamp(t)` for a number) and 128/256-bit integers are strings. 8–32-bit
 *   integers and floats are numbers. **64-bit integers are numbers too** (ClickHouse
 *   sends them as strings in JSON so nothing is lost in transit); a value outside ±2^53
 *   fails the query with `SY_ERR_ANALYTICS` rather than come back rounded — select it
 *   with `toString(x)` if you need the full range. `Nullable` gives `null`; `Array` gives
 *   arrays, element types converted the same way. Caveats of the JSON format: NaN and ±∞
 *   floats read back as `null`, and 18.16 prints the zero `DateTime` as
 *   `'0000-00-00 00:00:00'` where newer engines print `'1970-01-01 00:00:00'`.
 * - Inserted values are encoded for the target column's type: a JS `Date` becomes the
 *   column's unit (`DateTime`: whole seconds, `DateTime64`: milliseconds, `Date`: the UTC
 *   day), `bigint` keeps every digit, `undefined` lets the column default apply. A row key
 *   that is not an insertable column of the table is an error, never a silent drop.
 */
import type { ServerVersion } from '../../schemas/clickhouse/migrations/types.js';

export type { ServerVersion };

/** One query parameter value; the placeholder's declared type says how it is read. */
export type QueryParamValue = string | number | bigint | boolean | Date | null | readonly QueryParamValue[];

/**
 * Values for `{name:Type}` placeholders in the SQL, e.g.
 * `query('SELECT * FROM t WHERE model = {model:String}', { model })`. Values never become
 * SQL text on servers that bind parameters themselves (ClickHouse ≥ 20.1, chDB); on older
 * servers the adapter substitutes a typed, escaped literal (`lib/analytics/sql.ts`).
 */
export type QueryParams = Readonly<Record<string, QueryParamValue>>;

export type Row = Record<string, unknown>;

export interface AnalyticsStore {
  /** Adapter name, for logs and reports. */
  readonly kind: 'chdb' | 'server';
  /** The engine's version (asked once, then cached). */
  serverVersion(): Promise<ServerVersion>;
  /** Run one statement that returns no rows: DDL, `OPTIMIZE`, `INSERT … SELECT`. */
  exec(sql: string): Promise<void>;
  /**
   * Insert a batch in one request (JSONEachRow). Resolves once the server has accepted
   * every row; rejects with nothing inserted when any row is malformed. An empty batch is
   * a no-op. `table` is `name` or `database.name`.
   */
  insert(table: string, rows: readonly Row[]): Promise<void>;
  /** Run one `SELECT` (or `SHOW`/`DESCRIBE`/`EXISTS`) and return its rows. */
  query<T extends object = Row>(sql: string, params?: QueryParams): Promise<T[]>;
  /** Release the connection. Idempotent; every other call then fails. */
  close(): Promise<void>;
}
