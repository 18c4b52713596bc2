import type { Migration } from './types.js';

/**
 * The bookkeeping table itself: one row per applied migration. `ReplacingMergeTree` keyed
 * by version, so a migration recorded twice (two processes migrating at once) still reads
 * as one row with `FINAL`. `server_version` says which server built the statements, since
 * gated migrations produce different DDL on different servers.
 */
export const schemaMigrations: Migration = {
  version: 1,
  name: 'schema_migrations',
  up: () => [
    `CREATE TABLE IF NOT EXISTS schema_migrations (
  version UInt32,
  name String,
  applied_at DateTime('UTC'),
  server_version String
) ENGINE = ReplacingMergeTree() ORDER BY version`,
  ],
};
