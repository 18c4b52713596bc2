/**
 * Versioned analytics migrations and feature gates.
 *
 * `migrate(store)` applies, in version order, every migration from
 * `schemas/clickhouse/migrations` that the store's `schema_migrations` table has not
 * recorded, recording each one after its statements succeed. Running it again is a no-op.
 * Migration 1 creates `schema_migrations` itself. Columns added to existing tables go through
 * `addColumns`, which reads `system.columns` first: ClickHouse 18.16 refuses
 * `ADD COLUMN IF NOT EXISTS` as a syntax error (tried on Debian's 18.16.1).
 */
import { migrations as schemaMigrations } from '../../schemas/clickhouse/migrations/index.js';
import type { AddColumns, ColumnSpec, Features, Migration, MigrationContext, MigrationStep } from '../../schemas/clickhouse/migrations/types.js';
import { SwitchyardError } from '../errors.js';
import { analyticsError } from './errors.js';
import { checkTable } from './sql.js';
import type { AnalyticsStore, ServerVersion } from './port.js';
import { atLeast } from './version.js';

export type { AddColumns, ColumnSpec, Features, Migration, MigrationContext, MigrationStep };

/**
 * What a server of this version supports. Each threshold is the first release whose
 * changelog announces the feature (ClickHouse's CHANGELOG.md / docs/en/whats-new/changelog):
 *
 * | feature | since | changelog entry |
 * |---|---|---|
 * | lowCardinality | 19.3 | 19.3.3 (2019-02-13), backward-incompatible changes: "Removed `allow_experimental_low_cardinality_type` setting. `LowCardinality` data types are production ready" (#4323). Experimental behind that setting since 18.12. |
 * | codecs | 19.1 | 19.1.6 (2019-01-24): "Custom per column compression codecs for tables" (#3899, #4111), codec `Delta` (#4052) |
 * | specializedCodecs | 19.11 | 19.11.3.11 (2019-07-18): "DoubleDelta and Gorilla column codecs" (#5600); `T64` came in 19.10.1.5 |
 * | ttl | 19.6 | 19.6.2.11 (2019-05-13): "TTL expressions for columns and tables" (#4212) |
 * | queryParameters | 20.1 | 19.11.3.11 added them ("support for prepared statements", #5331, #5630), but 20.1.2.4 changed values to the escaped format clients send today ("query parameters are represented in escaped format … to pass NULL as \N", #8517) |
 * | dateTime64 | 20.1 | 20.1.2.4 (2020-01-22): "Add DateTime64 datatype with configurable sub-second precision" (#7170) |
 * | insertDedupToken | 22.2 | `insert_deduplication_token` setting, ClickHouse#32304, shipped in 22.2 (ClickHouse/clickhouse-docs#121) |
 * | toStartOfInterval | 19.3 | 19.3.3: "Added function toStartOfInterval" (#4304) |
 * | withFill | 19.14 | 19.14.3.3 (2019-09-10): "WITH FILL modifier for ORDER BY" (#6610) |
 * | simpleAggregateFunction | 19.8 | 19.8.3.8 (2019-06-11): "Added new data type SimpleAggregateFunction" (#4629) |
 * | dataSkippingIndices | 20.1 | 20.1.2.4: "Data skipping indices are production ready and enabled by default" (#7974) |
 *
 * Debian bookworm's ClickHouse 18.16.1 has none of them; chDB 3.4 (ClickHouse 26.7) has all.
 */
export function features(v: ServerVersion): Features {
  return {
    lowCardinality: atLeast(v, 19, 3),
    codecs: atLeast(v, 19, 1),
    specializedCodecs: atLeast(v, 19, 11),
    ttl: atLeast(v, 19, 6),
    dateTime64: atLeast(v, 20, 1),
    queryParameters: atLeast(v, 20, 1),
    insertDedupToken: atLeast(v, 22, 2),
    toStartOfInterval: atLeast(v, 19, 3),
    withFill: atLeast(v, 19, 14),
    simpleAggregateFunction: atLeast(v, 19, 8),
    dataSkippingIndices: atLeast(v, 20, 1),
  };
}

/** Fails fast on a list that could apply in a surprising order or twice. */
export function checkMigrations(list: readonly Migration[]): void {
  let previous = 0;
  for (const m of list) {
    if (!Number.isSafeInteger(m.version) || m.version < 1) throw analyticsError(`migration ${JSON.stringify(m.name)}: version must be a positive integer, got ${m.version}`);
    if (m.version <= previous) throw analyticsError(`migrations out of order: ${m.version} (${m.name}) comes after ${previous}`);
    if (!/^[a-z0-9_]+$/.test(m.name)) throw analyticsError(`migration ${m.version}: name must be snake_case, got ${JSON.stringify(m.name)}`);
    previous = m.version;
  }
  if (list[0]?.version !== 1) throw analyticsError('the first migration must be version 1 (schema_migrations)');
}

export interface AppliedMigration {
  version: number;
  name: string;
}

/** What `schema_migrations` records, in version order; empty before migration 1. */
export async function appliedMigrations(store: AnalyticsStore): Promise<AppliedMigration[]> {
  const exists = await store.query<{ n: number }>(
    "SELECT count() AS n FROM system.tables WHERE database = currentDatabase() AND name = 'schema_migrations'",
  );
  if ((exists[0]?.n ?? 0) === 0) return [];
  return store.query<AppliedMigration>('SELECT version, any(name) AS name FROM schema_migrations GROUP BY version ORDER BY version');
}

export interface MigrateResult {
  /** Versions applied by this call, in order. */
  applied: number[];
  /** The highest recorded version afterwards. */
  current: number;
}

/**
 * Applies pending migrations in order. A recorded version whose name differs from the
 * list's is an error (someone renumbered or replaced a shipped migration), as is a
 * recorded version the list does not know (the store was migrated by newer code).
 */
export async function migrate(store: AnalyticsStore, list: readonly Migration[] = schemaMigrations): Promise<MigrateResult> {
  checkMigrations(list);
  const serverVersion = await store.serverVersion();
  const ctx: MigrationContext = { serverVersion, features: features(serverVersion) };
  const recorded = new Map((await appliedMigrations(store)).map((m) => [m.version, m.name]));
  const known = new Map(list.map((m) => [m.version, m.name]));
  for (const [version, name] of recorded) {
    const expected = known.get(version);
    if (expected === undefined) {
      throw analyticsError(`schema_migrations records version ${version} (${name}), which this code does not know: the store was migrated by newer code`, { version, name });
    }
    if (expected !== name) {
      throw analyticsError(`schema_migrations records version ${version} as "${name}" but the code calls it "${expected}"`, { version, recorded: name, expected });
    }
  }
  const applied: number[] = [];
  for (const m of list) {
    if (recorded.has(m.version)) continue;
    await runMigration(store, m, ctx);
    await store.insert('schema_migrations', [{ version: m.version, name: m.name, applied_at: new Date(), server_version: serverVersion.raw }]);
    applied.push(m.version);
  }
  const versions = [...recorded.keys(), ...applied];
  return { applied, current: versions.length > 0 ? Math.max(...versions) : 0 };
}

/**
 * Runs one migration's steps in order, without recording it (`migrate` records it after).
 * Every step is safe to run again, so running a migration twice changes nothing the second
 * time. A failing step is named in the error, which keeps the store's code and `retriable`.
 */
export async function runMigration(store: AnalyticsStore, m: Migration, ctx: MigrationContext): Promise<void> {
  const steps = m.up(ctx);
  for (const [i, step] of steps.entries()) {
    try {
      if (typeof step === 'string') await store.exec(step);
      else await addColumns(store, step);
    } catch (err) {
      // Keep the store's verdict (an unreachable server stays retriable) and say which step failed.
      if (!(err instanceof SwitchyardError)) throw err;
      throw new SwitchyardError(err.code, `migration ${m.version} (${m.name}), statement ${i + 1} of ${steps.length}: ${err.message}`, {
        retriable: err.retriable,
        cause: err,
        detail: { ...err.detail, migration: m.version, migrationName: m.name, statement: typeof step === 'string' ? step : describeStep(step) },
      });
    }
  }
}

/** A column's definition in an `ALTER TABLE … ADD COLUMN`. */
const columnDefinition = (c: ColumnSpec): string => `${c.name} ${c.type}${c.default === undefined ? '' : ` DEFAULT ${c.default}`}`;

const describeStep = (step: AddColumns): string => `ALTER TABLE ${step.table} ${step.columns.map((c) => `ADD COLUMN ${columnDefinition(c)}`).join(', ')} (only those missing)`;

/** Types compare without whitespace: `Enum8('a' = 1)` and `Enum8('a'=1)` are one type. */
const sameType = (a: string, b: string): boolean => a.replace(/\s+/g, '') === b.replace(/\s+/g, '');

/** A table's columns and their types, from `system.columns`; empty when there is no such table. */
export async function tableColumns(store: AnalyticsStore, table: string): Promise<Map<string, string>> {
  const rows = await store.query<{ name: string; type: string }>(
    'SELECT name, type FROM system.columns WHERE database = currentDatabase() AND table = {table:String}',
    { table },
  );
  return new Map(rows.map((r) => [r.name, r.type]));
}

/**
 * Carries out an `AddColumns` step: adds, in one `ALTER TABLE`, the columns the table lacks,
 * and returns their names (empty when it had them all). Idempotent without
 * `ADD COLUMN IF NOT EXISTS`, which ClickHouse 18.16 does not parse. A column that exists
 * with another type is an error (`SY_ERR_ANALYTICS`), as is a missing table.
 *
 * Two processes migrating at once can both see a column missing; the second `ALTER` then
 * fails ("column … already exists"). So after a failed `ALTER` the columns are read again:
 * if someone else added some of them, the rest are tried again; if none appeared, the
 * failure was not a race and is thrown.
 */
export async function addColumns(store: AnalyticsStore, step: AddColumns): Promise<string[]> {
  checkTable(step.table);
  for (const c of step.columns) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(c.name)) throw analyticsError(`add columns to ${step.table}: bad column name ${JSON.stringify(c.name)}`, { table: step.table });
  }
  let missing = await missingColumns(store, step);
  const added: string[] = [];
  while (missing.length > 0) {
    try {
      await store.exec(`ALTER TABLE ${step.table} ${missing.map((c) => `ADD COLUMN ${columnDefinition(c)}`).join(', ')}`);
      added.push(...missing.map((c) => c.name));
      return added;
    } catch (err) {
      const still = await missingColumns(store, step);
      if (still.length >= missing.length) throw err;
      missing = still;
    }
  }
  return added;
}

async function missingColumns(store: AnalyticsStore, step: AddColumns): Promise<ColumnSpec[]> {
  const existing = await tableColumns(store, step.table);
  if (existing.size === 0) throw analyticsError(`cannot add columns to ${step.table}: no such table`, { table: step.table });
  const missing: ColumnSpec[] = [];
  for (const c of step.columns) {
    const type = existing.get(c.name);
    if (type === undefined) missing.push(c);
    else if (!sameType(type, c.type)) {
      throw analyticsError(`column ${step.table}.${c.name} exists as ${type}, but the migration adds it as ${c.type}`, { table: step.table, column: c.name, existing: type, wanted: c.type });
    }
  }
  return missing;
}
