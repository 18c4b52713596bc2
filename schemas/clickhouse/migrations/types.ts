/**
 * The vocabulary of analytics migrations. Pure types: migration files import these and
 * nothing from `lib/`, so the dependency arrow points from the store machinery
 * (`lib/analytics/migrations.ts`) inward to the schemas, never back.
 */

/** A ClickHouse server version as `SELECT version()` reports it, e.g. `18.16.1` or `26.7.2.1`. */
export interface ServerVersion {
  major: number;
  minor: number;
  patch: number;
  /** The text the server returned, untouched (keeps the build number and any suffix). */
  raw: string;
}

/**
 * What the connected server supports, derived from its version alone (see `features()` in
 * `lib/analytics/migrations.ts`, which documents where each threshold comes from).
 */
export interface Features {
  /** `LowCardinality(T)` without `allow_experimental_low_cardinality_type`. */
  lowCardinality: boolean;
  /** Per-column `CODEC(LZ4|ZSTD|Delta|NONE…)`. */
  codecs: boolean;
  /** The `DoubleDelta` and `Gorilla` codecs (and `T64`). */
  specializedCodecs: boolean;
  /** Column and table `TTL` expressions on MergeTree. */
  ttl: boolean;
  /** `DateTime64(precision[, tz])`; without it, time is whole seconds (`DateTime`). */
  dateTime64: boolean;
  /** Server-side `{name:Type}` query parameters, sent in the escaped format clients use today. */
  queryParameters: boolean;
  /** The `insert_deduplication_token` setting. */
  insertDedupToken: boolean;
  /** `toStartOfInterval(t, INTERVAL n unit)`; without it use `toStartOfMinute`/`toStartOfHour`… */
  toStartOfInterval: boolean;
  /** `ORDER BY … WITH FILL`. */
  withFill: boolean;
  /** The `SimpleAggregateFunction(f, T)` column type. */
  simpleAggregateFunction: boolean;
  /** `INDEX … TYPE minmax|set|bloom_filter` without `allow_experimental_data_skipping_indices`. */
  dataSkippingIndices: boolean;
}

/** What a migration may look at when it builds its statements. */
export interface MigrationContext {
  serverVersion: ServerVersion;
  features: Features;
}

/** A column a migration adds to a table that already exists (see `AddColumns`). */
export interface ColumnSpec {
  name: string;
  /**
   * The type exactly as ClickHouse prints it in `system.columns` (`Nullable(Int64)`,
   * `LowCardinality(Nullable(String))`, `Array(Float64)`): a column that already exists is
   * checked against it, so write it in ClickHouse's canonical form.
   */
  type: string;
  /** A `DEFAULT` expression for the rows written before the column existed; none = the type's zero (null, 0, '', []). */
  default?: string;
}

/**
 * Adds the columns a table lacks, idempotently on every server: ClickHouse 18.16 has no
 * `ADD COLUMN IF NOT EXISTS` (a syntax error there), so the runner (`addColumns` in
 * `lib/analytics/migrations.ts`) reads `system.columns` first, adds only what is missing in
 * one `ALTER TABLE`, and refuses a column that exists with another type.
 */
export interface AddColumns {
  kind: 'add_columns';
  table: string;
  columns: ColumnSpec[];
}

/** A statement (one SQL string, run as it is) or a step the runner carries out itself. */
export type MigrationStep = string | AddColumns;

/**
 * One step of the analytics schema. `up` returns the statements to run, in order, one
 * statement per string (ClickHouse runs one statement per request), or an `AddColumns`
 * step for columns added to an existing table. It may branch on
 * `ctx.features` to use what the server has (e.g. `LowCardinality(String)` or plain
 * `String`), so the same migration yields a working schema on ClickHouse 18.16 and on
 * chDB.
 *
 * Statements must be safe to run again (`CREATE TABLE IF NOT EXISTS`, `DROP … IF EXISTS`,
 * `MODIFY COLUMN` to the type it already has, `AddColumns` rather than `ADD COLUMN`):
 * a crash between running a migration and recording it re-runs it, and two processes
 * migrating at once may both run it. ClickHouse has no transactions or locks to prevent
 * either.
 */
export interface Migration {
  /** Positive integer; migrations run in ascending order and each version runs once. */
  version: number;
  /** `snake_case`; recorded beside the version and checked on every run. */
  name: string;
  up: (ctx: MigrationContext) => MigrationStep[];
}
