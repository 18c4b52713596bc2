/** Analytics storage: the `AnalyticsStore` port, its two adapters, migrations and feature gates. */
export type { AnalyticsStore, QueryParamValue, QueryParams, Row, ServerVersion } from './port.js';
export { createChdbAnalyticsStore, chdbAnalyticsConfig, type ChdbAnalyticsOptions } from './chdb.js';
export { createServerAnalyticsStore, serverAnalyticsConfig, type ServerAnalyticsOptions } from './server.js';
export { appliedMigrations, checkMigrations, features, migrate, type Features, type Migration, type MigrationContext, type MigrateResult } from './migrations.js';
export { parseServerVersion, atLeast, compareVersion } from './version.js';
export { openAnalytics, type AnalyticsLocation } from './open.js';
export { inlineLimits, loadQueryPack, packQuery, parseInstant, parseQuery, resolveParams, runPackQuery, type PackColumn, type PackParam, type PackQuery } from './pack.js';
export { isRejectedData } from './errors.js';
