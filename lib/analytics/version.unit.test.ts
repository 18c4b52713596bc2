import { describe, expect, it } from 'vitest';
import { codec, instantType, lowCardinality, ttl } from '../../schemas/clickhouse/migrations/gates.js';
import { migrations } from '../../schemas/clickhouse/migrations/index.js';
import type { Migration } from '../../schemas/clickhouse/migrations/types.js';
import { checkMigrations, features } from './migrations.js';
import { atLeast, compareVersion, parseServerVersion } from './version.js';

describe('parseServerVersion', () => {
  it.each([
    ['18.16.1', 18, 16, 1],
    ['26.7.2.1', 26, 7, 2],
    ['24.3.1.2672', 24, 3, 1],
    [' 23.8.1.1-lts\n', 23, 8, 1],
    ['21.8.10.1 (official build)', 21, 8, 10],
    ['v22.2', 22, 2, 0],
    ['1.1.54394', 1, 1, 54394],
  ])('%j → %i.%i.%i', (raw, major, minor, patch) => {
    const v = parseServerVersion(raw);
    expect(v).toEqual({ major, minor, patch, raw: raw.trim() });
  });

  it.each(['', 'unknown', '18', 'x.1.2', '.16.1'])('refuses %j rather than guess', (raw) => {
    expect(() => parseServerVersion(raw)).toThrow(expect.objectContaining({ code: 'SY_ERR_ANALYTICS' }));
  });

  it('compares major, then minor, then patch', () => {
    const v = parseServerVersion('19.11.3.11');
    expect(compareVersion(v, 19, 11, 3)).toBe(0);
    expect(compareVersion(v, 19, 11)).toBeGreaterThan(0);
    expect(compareVersion(v, 19, 12)).toBeLessThan(0);
    expect(compareVersion(v, 20)).toBeLessThan(0);
    expect(compareVersion(v, 18, 99)).toBeGreaterThan(0);
    expect(atLeast(v, 19, 11)).toBe(true);
    expect(atLeast(v, 19, 11, 4)).toBe(false);
  });
});

describe('features', () => {
  const at = (raw: string) => features(parseServerVersion(raw));

  it("Debian's 18.16 has none of the gated features", () => {
    expect(Object.values(at('18.16.1')).some(Boolean)).toBe(false);
  });

  it('chDB 26.7 has them all', () => {
    expect(Object.values(at('26.7.2.1')).every(Boolean)).toBe(true);
  });

  // Thresholds from ClickHouse's changelogs (see the table in migrations.ts): the release
  // before each stays closed, the release itself opens.
  it.each([
    ['codecs', '18.16.1', '19.1.6'],
    ['lowCardinality', '19.1.14', '19.3.3'],
    ['toStartOfInterval', '19.1.14', '19.3.3'],
    ['ttl', '19.5.4', '19.6.2.11'],
    ['simpleAggregateFunction', '19.7.5', '19.8.3.8'],
    ['specializedCodecs', '19.10.1.5', '19.11.3.11'],
    ['withFill', '19.13.7', '19.14.3.3'],
    ['dateTime64', '19.17.6.36', '20.1.2.4'],
    ['queryParameters', '19.17.6.36', '20.1.2.4'],
    ['dataSkippingIndices', '19.17.6.36', '20.1.2.4'],
    ['insertDedupToken', '22.1.4', '22.2.2.1'],
  ] as const)('%s: closed on %s, open from %s', (feature, before, since) => {
    expect(at(before)[feature]).toBe(false);
    expect(at(since)[feature]).toBe(true);
  });
});

describe('DDL gates for migrations', () => {
  const old = features(parseServerVersion('18.16.1'));
  const modern = features(parseServerVersion('26.7.2.1'));

  it('use the richer form where the server has it and a plain equivalent where not', () => {
    expect(lowCardinality(modern, 'String')).toBe('LowCardinality(String)');
    expect(lowCardinality(old, 'String')).toBe('String');
    expect(instantType(modern)).toBe("DateTime64(3, 'UTC')");
    expect(instantType(old)).toBe("DateTime('UTC')");
    expect(codec(modern, 'ZSTD(1)')).toBe(' CODEC(ZSTD(1))');
    expect(codec(old, 'ZSTD(1)')).toBe('');
    expect(ttl(modern, 'at + INTERVAL 30 DAY')).toBe(' TTL at + INTERVAL 30 DAY');
    expect(ttl(old, 'at + INTERVAL 30 DAY')).toBe('');
  });
});

describe('checkMigrations', () => {
  const m = (version: number, name = `m${version}`): Migration => ({ version, name, up: () => [] });

  it('accepts the shipped list', () => {
    expect(() => checkMigrations(migrations)).not.toThrow();
    expect(migrations[0]!.version).toBe(1);
  });

  it.each([
    ['a list not starting at 1', [m(2)]],
    ['an empty list', []],
    ['a repeated version', [m(1), m(2), m(2)]],
    ['versions out of order', [m(1), m(3), m(2)]],
    ['a non-integer version', [m(1), m(1.5)]],
    ['a name that is not snake_case', [m(1), m(2, 'Add Events')]],
  ])('refuses %s', (_, list) => {
    expect(() => checkMigrations(list)).toThrow(expect.objectContaining({ code: 'SY_ERR_ANALYTICS' }));
  });
});
