import { describe, expect, it } from 'vitest';
import { clickHouseErrorInfo, fromClickHouse } from './errors.js';
import { decodeResult, rowEncoder, tableEncoder } from './values.js';

describe('decodeResult', () => {
  it('turns quoted 64-bit integers into numbers, everywhere they nest', () => {
    const rows = decodeResult(
      {
        meta: [
          { name: 'u', type: 'UInt64' },
          { name: 'i', type: 'Int64' },
          { name: 'n', type: 'Nullable(UInt64)' },
          { name: 'lc', type: 'LowCardinality(Nullable(Int64))' },
          { name: 'a', type: 'Array(UInt64)' },
          { name: 'm', type: 'Map(String, UInt64)' },
          { name: 's', type: 'String' },
          { name: 'big', type: 'UInt128' },
        ],
        data: [{ u: '42', i: '-9007199254740991', n: null, lc: '7', a: ['1', '2'], m: { x: '3' }, s: '123', big: '340282366920938463463374607431768211455' }],
      },
      'SELECT …',
    );
    expect(rows).toEqual([{ u: 42, i: -9_007_199_254_740_991, n: null, lc: 7, a: [1, 2], m: { x: 3 }, s: '123', big: '340282366920938463463374607431768211455' }]);
  });

  it('accepts unquoted 64-bit integers that are exact, refuses ones already rounded or beyond 2^53', () => {
    expect(decodeResult({ meta: [{ name: 'c', type: 'UInt64' }], data: [{ c: 3 }] }, 'q')).toEqual([{ c: 3 }]);
    for (const c of ['9007199254740992', '18446744073709551615', '-9007199254740993', 2 ** 60]) {
      expect(() => decodeResult({ meta: [{ name: 'c', type: 'UInt64' }], data: [{ c }] }, 'SELECT c')).toThrow(
        expect.objectContaining({ code: 'SY_ERR_ANALYTICS', message: expect.stringContaining('toString(c)') }),
      );
    }
  });

  it('leaves everything else as ClickHouse sent it', () => {
    const data = [{ s: 'x', f: 1.5, d: '2024-01-02 03:04:05', t: [1, 'a'], n: null }];
    const meta = [
      { name: 's', type: 'String' },
      { name: 'f', type: 'Float64' },
      { name: 'd', type: "DateTime('UTC')" },
      { name: 't', type: 'Tuple(UInt8, String)' },
      { name: 'n', type: 'Nullable(String)' },
    ];
    expect(decodeResult({ meta, data }, 'q')).toEqual(data);
    expect(decodeResult({}, 'q')).toEqual([]);
  });
});

describe('rowEncoder', () => {
  const encode = rowEncoder('t', [
    { name: 'id', type: 'String' },
    { name: 'n', type: 'UInt64' },
    { name: 'at', type: "DateTime('UTC')" },
    { name: 'at_ms', type: "DateTime64(3, 'UTC')" },
    { name: 'day', type: 'Date' },
    { name: 'maybe_at', type: 'Nullable(DateTime)' },
    { name: 'times', type: 'Array(DateTime)' },
    { name: 'x', type: 'Float64' },
    { name: 'flag', type: 'UInt8' },
    { name: 'ok', type: 'Bool' },
    { name: 'derived', type: 'String', default_type: 'MATERIALIZED' },
    { name: 'alias', type: 'String', default_type: 'ALIAS' },
    { name: 'with_default', type: 'String', default_type: 'DEFAULT' },
  ]);
  const d = new Date(Date.UTC(2024, 1, 29, 23, 59, 59, 7));

  it('encodes instants as UTC ISO text in the column’s unit', () => {
    expect(encode({ at: d, at_ms: d, day: d, maybe_at: d, times: [d, null] }, 0)).toEqual({
      at: '2024-02-29T23:59:59Z',
      at_ms: '2024-02-29T23:59:59.007Z',
      day: '2024-02-29',
      maybe_at: '2024-02-29T23:59:59Z',
      times: ['2024-02-29T23:59:59Z', null],
    });
    expect(encode({ at: 0, at_ms: 1.5 }, 0)).toEqual({ at: '1970-01-01T00:00:00Z', at_ms: '1970-01-01T00:00:01.500Z' });
    expect(encode({ at: '2024-01-02 03:04:05' }, 0)).toEqual({ at: '2024-01-02 03:04:05' });
  });

  it('keeps every digit of a bigint, spells non-finite floats, writes booleans as the column wants', () => {
    expect(encode({ n: 18_446_744_073_709_551_615n, x: Number.NaN, flag: true, ok: false }, 0)).toEqual({ n: '18446744073709551615', x: 'nan', flag: 1, ok: false });
    expect(encode({ x: Infinity }, 0)).toEqual({ x: 'inf' });
    expect(encode({ x: -Infinity }, 0)).toEqual({ x: '-inf' });
  });

  it('omits undefined (the column default applies), and null or [] where that is what an omitted field stores', () => {
    expect(encode({ id: 'a', n: undefined, maybe_at: null, with_default: undefined }, 0)).toEqual({ id: 'a' });
    expect(encode({ id: 'a', times: [] }, 0)).toEqual({ id: 'a' });
    const withDefaults = rowEncoder('t', [
      { name: 'id', type: 'String' },
      { name: 'tags', type: 'Array(String)', default_type: 'DEFAULT' },
      { name: 'note', type: 'Nullable(String)', default_type: 'DEFAULT' },
      { name: 'n', type: 'UInt8' },
    ]);
    // A DEFAULT expression would apply to an omitted field: null and [] must be sent.
    expect(withDefaults({ id: 'a', tags: [], note: null }, 0)).toEqual({ id: 'a', tags: [], note: null });
    // null for a column that is not Nullable is sent, for the server to refuse.
    expect(withDefaults({ id: 'a', n: null }, 0)).toEqual({ id: 'a', n: null });
  });

  it('refuses a key that is not an insertable column, naming row and column', () => {
    for (const key of ['nope', 'derived', 'alias']) {
      expect(() => encode({ id: 'a', [key]: 'x' }, 3)).toThrow(expect.objectContaining({ code: 'SY_ERR_ANALYTICS', message: expect.stringMatching(new RegExp(`row 3 has "${key}"`)) }));
    }
  });

  it('compact rows: arrays in the first row’s column order, null kept, or undefined when the rows differ in shape', () => {
    const { compact } = tableEncoder('t', [
      { name: 'id', type: 'String' },
      { name: 'at', type: "DateTime('UTC')" },
      { name: 'maybe', type: 'Nullable(String)' },
      { name: 'tags', type: 'Array(String)' },
    ]);
    expect(compact([{ id: 'a', at: d, maybe: null, tags: [] }, { id: 'b', at: d, maybe: 'x', tags: ['t'], extra: undefined }])).toEqual({
      columns: ['id', 'at', 'maybe', 'tags'],
      data: [
        ['a', '2024-02-29T23:59:59Z', null, []],
        ['b', '2024-02-29T23:59:59Z', 'x', ['t']],
      ],
    });
    expect(compact([{ id: 'a' }, { id: 'b', maybe: 'x' }])).toBeUndefined();
    expect(compact([{ id: 'a', maybe: 'x' }, { id: 'b', tags: [] }])).toBeUndefined();
    expect(() => compact([{ id: 'a', nope: 1 }])).toThrow(/row 0 has "nope"/);
  });

  it('refuses instants before 1970 and invalid Dates', () => {
    expect(() => encode({ at: new Date(-1) }, 0)).toThrow(/before 1970/);
    expect(() => encode({ at: new Date(Number.NaN) }, 0)).toThrow(/invalid Date/);
  });
});

describe('ClickHouse errors', () => {
  it('reads code and text from 18.16’s message format', () => {
    const text = "Code: 60, e.displayText() = DB::Exception: Table default.nope doesn't exist., e.what() = DB::Exception\n";
    expect(clickHouseErrorInfo(new Error(text))).toEqual({ code: 60, type: undefined, message: text });
  });

  it('reads code and type from the modern format and from typed client errors', () => {
    const text = 'Code: 62. DB::Exception: Syntax error: failed at position 1. (SYNTAX_ERROR) (version 24.3.1.2672 (official build))';
    expect(clickHouseErrorInfo(new Error(text))).toMatchObject({ code: 62, type: 'SYNTAX_ERROR' });
    expect(clickHouseErrorInfo(Object.assign(new Error('x'), { code: '81', type: 'UNKNOWN_DATABASE' }))).toMatchObject({ code: 81, type: 'UNKNOWN_DATABASE' });
    expect(clickHouseErrorInfo(Object.assign(new Error('Code: 60. DB::Exception: x. (UNKNOWN_TABLE)'), { clickhouseCode: 60, code: 'CHDB_QUERY' }))).toMatchObject({
      code: 60,
      type: 'UNKNOWN_TABLE',
    });
  });

  it('a bad statement is SY_ERR_ANALYTICS, not retriable, with the ClickHouse detail and cause', () => {
    const cause = new Error('Code: 62, e.displayText() = DB::Exception: Syntax error, e.what() = DB::Exception');
    const err = fromClickHouse(cause, 'query', { sql: 'SELEC 1' });
    expect(err).toMatchObject({ code: 'SY_ERR_ANALYTICS', retriable: false, cause });
    expect(err.detail).toMatchObject({ sql: 'SELEC 1', clickhouseCode: 62 });
    expect(err.message).toMatch(/^query: Code: 62/);
  });

  it('an unreachable server is SY_ERR_ANALYTICS_UNAVAILABLE and retriable', () => {
    for (const cause of [
      Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:8123'), { code: 'ECONNREFUSED' }),
      Object.assign(new Error('fetch failed'), { cause: Object.assign(new Error('reset'), { code: 'ECONNRESET' }) }),
      new Error('Timeout error.'),
      new Error('socket hang up'),
    ]) {
      expect(fromClickHouse(cause, 'query')).toMatchObject({ code: 'SY_ERR_ANALYTICS_UNAVAILABLE', retriable: true });
    }
  });

  it('an overloaded server (too many queries or parts, timeouts) is retriable too', () => {
    for (const code of [159, 202, 209, 210, 252]) {
      expect(fromClickHouse(new Error(`Code: ${code}, e.displayText() = DB::Exception: busy`), 'insert')).toMatchObject({
        code: 'SY_ERR_ANALYTICS_UNAVAILABLE',
        retriable: true,
        detail: expect.objectContaining({ clickhouseCode: code }),
      });
    }
  });
});
