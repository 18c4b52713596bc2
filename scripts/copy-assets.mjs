// Copies what the compiled code reads at run time beside it in dist/: the shipped models
// (services/worker/publish.ts resolves ../../models) and the ClickHouse query pack
// (schemas/clickhouse/queries/*.sql, read next to its index module). Last, dist/BUILD: its
// time is the build's, which bin/switchyard.js compares with the sources' to run dist/ only
// while it is current.
import { cpSync, mkdirSync, writeFileSync } from 'node:fs';

mkdirSync('dist/schemas/clickhouse/queries', { recursive: true });
cpSync('models', 'dist/models', { recursive: true });
cpSync('schemas/clickhouse/queries', 'dist/schemas/clickhouse/queries', { recursive: true, filter: (src) => !src.endsWith('.ts') });
writeFileSync('dist/BUILD', `${new Date().toISOString()}\n`);
