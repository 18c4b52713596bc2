// Copies what the compiled code reads at run time beside it in dist/: the shipped models
// (services/worker/publish.ts resolves ../../models) and the ClickHouse query pack
// (schemas/clickhouse/queries/*.sql, read next to its index module).
import { cpSync, mkdirSync } from 'node:fs';

mkdirSync('dist/schemas/clickhouse/queries', { recursive: true });
cpSync('models', 'dist/models', { recursive: true });
cpSync('schemas/clickhouse/queries', 'dist/schemas/clickhouse/queries', { recursive: true, filter: (src) => !src.endsWith('.ts') });
