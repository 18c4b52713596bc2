/**
 * The analytics schema, in order. `migrate(store)` (lib/analytics/migrations.ts) applies
 * whatever a store has not recorded yet.
 *
 * Adding a migration:
 * 1. Create `NNN_snake_name.ts` here exporting a `Migration` with the next version number
 *    (never renumber or edit one that has shipped: the recorded name is checked).
 * 2. Build its statements from `ctx.features` with the helpers in `gates.ts`, e.g.
 *    `model ${lowCardinality(ctx.features, 'String')}` or `occurred_at ${instantType(ctx.features)}`,
 *    so the table works on ClickHouse 18.16 as well as on chDB.
 * 3. Append it to the list below.
 *
 * Changing a table that exists: `ALTER TABLE … MODIFY COLUMN` to a type that only widens
 * (re-running it is a no-op), and new columns as an `AddColumns` step, never a bare
 * `ADD COLUMN` (it fails when re-run, and 18.16 has no `IF NOT EXISTS` for it).
 */
import { schemaMigrations } from './001_schema_migrations.js';
import { eventTables } from './002_event_tables.js';
import { minuteRollups } from './003_minute_rollups.js';
import { logArchive } from './004_log_archive.js';
import { controller } from './005_controller.js';
import type { Migration } from './types.js';

export type { AddColumns, ColumnSpec, Features, Migration, MigrationContext, MigrationStep, ServerVersion } from './types.js';
export { codec, instantType, lowCardinality, ttl } from './gates.js';

export const migrations: readonly Migration[] = [schemaMigrations, eventTables, minuteRollups, logArchive, controller];
