import { describe, expect, it } from 'vitest';
import { inlineLimits, loadQueryPack, packQuery, parseInstant, parseQuery, resolveParams } from './pack.js';

const NOW = Date.UTC(2026, 0, 2, 12, 0, 0);
const good = `-- Counts things.
--
-- More words
-- over two lines.
--
-- @param since DateTime = -24h  start
-- @param model String = ''      a model
-- @param limit UInt32 = 20      how many
-- @param who String             required
-- @column n  the count
SELECT count() AS n FROM t WHERE at >= {since:DateTime} AND ({model:String} = '' OR m = {model:String}) AND w = {who:String} LIMIT {limit:UInt32}`;

describe('query pack files', () => {
  it('parses the header: summary, prose, params with defaults, columns', () => {
    const q = parseQuery('things', good);
    expect(q).toMatchObject({ name: 'things', summary: 'Counts things.', description: 'More words\nover two lines.' });
    expect(q.params).toEqual([
      { name: 'since', type: 'DateTime', default: '-24h', description: 'start' },
      { name: 'model', type: 'String', default: '', description: 'a model' },
      { name: 'limit', type: 'UInt32', default: '20', description: 'how many' },
      { name: 'who', type: 'String', default: undefined, description: 'required' },
    ]);
    expect(q.columns).toEqual([{ name: 'n', description: 'the count' }]);
  });

  it('refuses a header that does not describe its SQL', () => {
    expect(() => parseQuery('x', 'SELECT 1')).toThrow(/first line/);
    expect(() => parseQuery('x', '-- Something.\nSELECT 1 AS n')).toThrow(/@column/);
    expect(() => parseQuery('x', '-- Something.\n-- @column n n\nSELECT {a:String} AS n')).toThrow(/not declared/);
    expect(() => parseQuery('x', '-- Something.\n-- @param a UInt8 x\n-- @column n n\nSELECT {a:String} AS n')).toThrow(/declared as UInt8/);
    expect(() => parseQuery('x', '-- Something.\n-- @param a String x\n-- @column n n\nSELECT 1 AS n')).toThrow(/not used/);
    expect(() => parseQuery('x', '-- Something.\n-- @colum n n\nSELECT 1 AS n')).toThrow(/unknown header tag/);
  });

  it('every shipped file parses, declares each placeholder, and uses LIMIT only through a parameter', () => {
    const pack = loadQueryPack();
    expect(pack.length).toBe(11);
    for (const q of pack) {
      expect(q.sql, q.name).not.toMatch(/\bLIMIT\s+\d/);
      expect(q.sql, q.name).toMatch(/\bFINAL\b/);
      expect(q.params.find((p) => p.name === 'since')?.type, q.name).toBe('DateTime');
    }
    expect(() => packQuery('nope', pack)).toThrow(/no query named "nope".*latency-by-version/);
  });
});

describe('parameters from text', () => {
  it('reads instants: now, relative, ISO, dates (UTC), unix seconds', () => {
    expect(parseInstant('now', NOW).getTime()).toBe(NOW);
    expect(parseInstant('-24h', NOW).getTime()).toBe(NOW - 86_400_000);
    expect(parseInstant('-15m', NOW).getTime()).toBe(NOW - 900_000);
    expect(parseInstant('-7d', NOW).getTime()).toBe(NOW - 7 * 86_400_000);
    expect(parseInstant('-1w', NOW).getTime()).toBe(NOW - 7 * 86_400_000);
    expect(parseInstant('2026-01-01', NOW).toISOString()).toBe('2026-01-01T00:00:00.000Z');
    expect(parseInstant('2026-01-01 10:30', NOW).toISOString()).toBe('2026-01-01T10:30:00.000Z');
    expect(parseInstant('2026-01-01T10:30:00+02:00', NOW).toISOString()).toBe('2026-01-01T08:30:00.000Z');
    expect(parseInstant('1767225600', NOW).toISOString()).toBe('2026-01-01T00:00:00.000Z');
    for (const bad of ['yesterday', '24h', '2026-13-45', '']) expect(() => parseInstant(bad, NOW)).toThrow(expect.objectContaining({ code: 'SY_ERR_CONFIG' }));
  });

  it('fills defaults, checks types, and names what is missing or unknown', () => {
    const q = parseQuery('things', good);
    expect(resolveParams(q, { who: 'w1', limit: '5' }, NOW)).toEqual({ since: new Date(NOW - 86_400_000), model: '', limit: 5, who: 'w1' });
    expect(() => resolveParams(q, {}, NOW)).toThrow(/needs --who/);
    expect(() => resolveParams(q, { who: 'w', limit: '-1' }, NOW)).toThrow(/--limit: out of range/);
    expect(() => resolveParams(q, { who: 'w', limit: 'ten' }, NOW)).toThrow(/--limit: an integer/);
    expect(() => resolveParams(q, { who: 'w', zone: 'a' }, NOW)).toThrow(/no parameter --zone/);
    expect(resolveParams(q, { who: 'w', zone: undefined }, NOW).who).toBe('w');
  });

  it('inlines LIMIT parameters as checked integers (18.16 takes only a literal there)', () => {
    expect(inlineLimits('SELECT 1 LIMIT {limit:UInt32}', { limit: 7 })).toBe('SELECT 1 LIMIT 7');
    expect(inlineLimits('SELECT {limit:UInt32} AS l', { limit: 7 })).toBe('SELECT {limit:UInt32} AS l');
    expect(() => inlineLimits('SELECT 1 LIMIT {limit:UInt32}', { limit: '7; DROP' })).toThrow(/non-negative integer/);
  });
});
