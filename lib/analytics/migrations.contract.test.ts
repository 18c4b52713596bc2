import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { testAnalyticsMigrations } from '../../test/contract/analytics-migrations.contract.js';
import { createChdbAnalyticsStore } from './chdb.js';

// The migration runner and migration 005 on chDB (ClickHouse 26.x in-process).
const dir = mkdtempSync(join(tmpdir(), 'switchyard-migrations-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
testAnalyticsMigrations('chdb', () => createChdbAnalyticsStore({ path: dir }));
