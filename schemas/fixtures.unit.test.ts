import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fixturePaths, generateFixtures } from '../scripts/gen-fixtures.js';
import { FIXTURES_DIR, latestSchemaFiles, readSchemaFiles } from './catalog.js';
import { eventType } from './codec.js';
import { EVENT_SCHEMAS, type EventType } from './generated/events.js';

/**
 * Golden fixtures: the bytes each schema version wrote stay readable by the current reader
 * schema of their event, forever. Fixture files are never regenerated (scripts/gen-fixtures.ts
 * refuses); a new schema version adds new files.
 */

const files = readSchemaFiles();
const latest = new Map(latestSchemaFiles(files).map((f) => [f.event, f]));

describe('golden fixtures', () => {
  it('exist for every schema version, and only for those', () => {
    const expected = files.flatMap((f) => [`${f.event}.v${f.version}.bin`, `${f.event}.v${f.version}.json`]).sort();
    expect(readdirSync(FIXTURES_DIR).sort()).toEqual(expected);
  });

  describe.each(files.map((f) => [`${f.event}.v${f.version}`, f] as const))('%s', (_label, file) => {
    const paths = fixturePaths(FIXTURES_DIR, file.event, file.version);
    const bin = existsSync(paths.bin) ? readFileSync(paths.bin) : Buffer.alloc(0);
    const writer = eventType(file.text);
    const reader = eventType(EVENT_SCHEMAS[file.event as EventType].schema);
    const isLatest = latest.get(file.event)!.version === file.version;

    it('the .json and the .bin agree under the schema that wrote them', () => {
      const value: unknown = writer.fromString(readFileSync(paths.json, 'utf8'));
      expect(writer.toBuffer(value).equals(bin)).toBe(true);
    });

    it('decodes with the current reader schema of its event', () => {
      const resolver = isLatest ? undefined : reader.createResolver(writer);
      const value: unknown = reader.fromBuffer(bin, resolver);
      expect(reader.isValid(value)).toBe(true);
    });

    // Only the latest version is written by the current schema; older ones are checked above.
    if (isLatest) {
      it('re-encodes to identical bytes with the current schema', () => {
        const value: unknown = reader.fromBuffer(bin);
        expect(reader.toBuffer(value).equals(bin)).toBe(true);
        expect(value).toEqual(writer.fromString(readFileSync(paths.json, 'utf8')));
      });
    }
  });

  it('are not overwritten by the generator, which writes only missing versions', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fixtures-'));
    try {
      cpSync(FIXTURES_DIR, dir, { recursive: true });
      const [kept, missing, halved] = ['WorkerDraining', 'WorkerEvicted', 'WorkerJoined'].map((e) => fixturePaths(dir, e, latest.get(e)!.version));
      writeFileSync(kept!.bin, 'history');
      rmSync(missing!.json);
      rmSync(missing!.bin);
      const results = generateFixtures(files, dir);
      expect(results.filter((r) => r.outcome === 'written').map((r) => r.file)).toEqual([`WorkerEvicted.v${latest.get('WorkerEvicted')!.version}`]);
      expect(readFileSync(kept!.bin, 'utf8')).toBe('history');
      expect(existsSync(missing!.bin) && existsSync(missing!.json)).toBe(true);
      rmSync(halved!.json);
      expect(() => generateFixtures(files, dir)).toThrow(/only one of/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
