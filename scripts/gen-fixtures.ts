/**
 * Writes golden fixtures for every schema version that has none yet:
 * `schemas/fixtures/<Event>.v<N>.json` (the sample value in Avro's JSON encoding) and
 * `schemas/fixtures/<Event>.v<N>.bin` (its Avro binary encoding, no wire header).
 *
 *   npx tsx scripts/gen-fixtures.ts
 *
 * Fixtures are history: an existing fixture is never overwritten (files are opened with
 * O_EXCL), so the bytes written by an old schema version stay as they were and keep being
 * decoded by the tests with every later reader. A new schema version gets new files, made
 * from `schemas/samples.ts` (update the sample first).
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { FIXTURES_DIR, latestSchemaFiles, readSchemaFiles, type SchemaFile } from '../schemas/catalog.js';
import { eventType } from '../schemas/codec.js';
import type { EventType } from '../schemas/generated/events.js';
import { SAMPLE_EVENTS } from '../schemas/samples.js';

export const fixturePaths = (dir: string, event: string, version: number) => ({
  json: join(dir, `${event}.v${version}.json`),
  bin: join(dir, `${event}.v${version}.bin`),
});

export interface FixtureResult {
  file: string;
  outcome: 'written' | 'kept';
}

/** Write the missing fixtures of the latest schema versions; returns what happened to each. */
export function generateFixtures(files: readonly SchemaFile[], dir: string = FIXTURES_DIR): FixtureResult[] {
  mkdirSync(dir, { recursive: true });
  const results: FixtureResult[] = [];
  for (const file of latestSchemaFiles(files)) {
    const paths = fixturePaths(dir, file.event, file.version);
    const haveJson = existsSync(paths.json);
    const haveBin = existsSync(paths.bin);
    if (haveJson && haveBin) {
      results.push({ file: `${file.event}.v${file.version}`, outcome: 'kept' });
      continue;
    }
    if (haveJson || haveBin) {
      throw new Error(`${file.event}.v${file.version}: only one of the .json/.bin fixtures exists; restore the other from git rather than regenerating history`);
    }
    const sample = SAMPLE_EVENTS[file.event as EventType];
    if (!sample) throw new Error(`${file.event}: no sample in schemas/samples.ts`);
    const type = eventType(file.text);
    const problems: string[] = [];
    if (!type.isValid(sample, { errorHook: (path) => problems.push(path.join('.')) })) {
      throw new Error(`${file.event}: the sample does not fit schema v${file.version} at ${problems.join(', ')}; update schemas/samples.ts`);
    }
    const json = JSON.stringify(JSON.parse(type.toString(sample)), null, 2) + '\n';
    writeFileSync(paths.json, json, { flag: 'wx' });
    writeFileSync(paths.bin, type.toBuffer(sample), { flag: 'wx' });
    results.push({ file: `${file.event}.v${file.version}`, outcome: 'written' });
  }
  return results;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  for (const { file, outcome } of generateFixtures(readSchemaFiles())) {
    process.stdout.write(`${outcome === 'written' ? 'wrote' : 'kept (fixtures are history)'} ${file}\n`);
  }
}
