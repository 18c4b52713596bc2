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
 */
import { schemaMigrations } from './001_schema_migrations.js';
import { eventTables } from './002_event_tables.js';
import { minuteRollups } from './003_minute_rollups.js';
import { logArchive } from './004_log_archive.js';
import type { Migration } from './types.js';

export type { Features, Migration, MigrationContext, ServerVersion } from './types.js';
export { codec, instantType, lowCardinality, ttl } from './gates.js';

export const migrations: readonly Migration[] = [schemaMigrations, eventTables, minuteRollups, logArchive];
