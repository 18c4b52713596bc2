import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { testAnalyticsPack } from '../../test/contract/analytics-pack.contract.js';
import { createChdbAnalyticsStore } from './chdb.js';

// The schema and query pack on chDB (ClickHouse 26.x in-process).
const dir = mkdtempSync(join(tmpdir(), 'switchyard-pack-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
testAnalyticsPack('chdb', () => createChdbAnalyticsStore({ path: dir }));
