import { describe, expect, it } from 'vitest';
import { SwitchyardError } from '../errors.js';
import { parseType } from './chtype.js';
import { bindableParams, checkTable, cleanStatement, findPlaceholders, inlineParams, quoteString, secondsText, typedLiteral } from './sql.js';

/**
 * Reads a ClickHouse single-quoted literal back the way ClickHouse's lexer does
 * (backslash escapes, doubled quotes); returns the value and where the literal ended.
 * Used to prove that `quoteString` output is one literal that decodes to the input.
 */
function readLiteral(sql: string, at: number): { value: string; end: number } {
  expect(sql[at]).toBe("'");
  let out = '';
  for (let i = at + 1; i < sql.length; i++) {
    const c = sql[i]!;
    if (c === '\\') {
      const n = sql[++i]!;
      const simple: Record<string, string> = { n: '\n', r: '\r', t: '\t', '0': '\0', b: '\b', f: '\f', '\\': '\\', "'": "'" };
      if (n === 'x') {
        out += String.fromCharCode(parseInt(sql.slice(i + 1, i + 3), 16));
        i += 2;
      } else out += simple[n] ?? n;
    } else if (c === "'") {
      if (sql[i + 1] === "'") {
        out += "'";
        i++;
      } else return { value: out, end: i + 1 };
    } else out += c;
  }
  throw new Error(`unterminated literal in ${sql}`);
}

describe('quoteString', () => {
  const cases = [
    '',
    'plain',
    "it's",
    "''",
    '\\',
    "\\'",
    "end with backslash \\",
    'line\nbreak\r\nand\ttab',
    'nul\0byte',
    Array.from({ length: 32 }, (_, i) => String.fromCharCode(i)).join('') + '\x7f',
    "'; DROP TABLE users; --",
    "') OR ('1'='1",
    'ünïcødé ✓ 日本 🚀',
    '{s:String}',
  ];

  it.each(cases)('produces one literal that decodes to the input: %j', (s) => {
    const q = quoteString(s);
    const { value, end } = readLiteral(q, 0);
    expect(value).toBe(s);
    expect(end).toBe(q.length); // nothing after the literal: no way out of the string
  });

  it('escapes exactly the characters that need it', () => {
    expect(quoteString("a'b\\c")).toBe("'a\\'b\\\\c'");
    expect(quoteString('\n\r\t\0\b\f')).toBe("'\\n\\r\\t\\0\\b\\f'");
    expect(quoteString('\x01\x1f\x7f')).toBe("'\\x01\\x1f\\x7f'");
    expect(quoteString('é')).toBe("'é'");
  });

  it('never leaves a bare quote: every quote in the output is escaped or a delimiter', () => {
    for (const s of cases) {
      const inner = quoteString(s).slice(1, -1);
      expect(inner.replace(/\\\\/g, '').replace(/\\'/g, '')).not.toContain("'");
    }
  });
});

describe('findPlaceholders', () => {
  it('finds {name:Type}, including types with arguments and spaces', () => {
    const sql = "SELECT {a:String}, { b : UInt64 }, {c:DateTime('UTC')}, {d:Array(Nullable(String))}, {e:Decimal(10, 2)}";
    expect(findPlaceholders(sql).map((p) => [p.name, p.type])).toEqual([
      ['a', 'String'],
      ['b', 'UInt64'],
      ['c', "DateTime('UTC')"],
      ['d', 'Array(Nullable(String))'],
      ['e', 'Decimal(10, 2)'],
    ]);
  });

  it('skips string literals, quoted identifiers and comments', () => {
    const sql = [
      "SELECT '{a:String}', 'it''s {b:String}', 'esc\\' {c:String}'",
      '"{d:String}"',
      '`{e:String}`',
      '-- {f:String}',
      '/* {g:String} */ {h:String}',
    ].join('\n');
    expect(findPlaceholders(sql).map((p) => p.name)).toEqual(['h']);
  });

  it('ignores braces that are not placeholders', () => {
    expect(findPlaceholders("SELECT {'k': 1}, {1:String}, {x}, {y:}")).toEqual([]);
  });

  it('a brace inside a quoted type argument does not end the placeholder', () => {
    expect(findPlaceholders("SELECT {e:Enum8('a}' = 1)} AS e").map((p) => p.type)).toEqual(["Enum8('a}' = 1)"]);
  });

  it('gives up at an unterminated quote, leaving the server to report it', () => {
    expect(findPlaceholders("SELECT 'oops {a:String}")).toEqual([]);
  });
});

describe('typedLiteral / inlineParams (the fallback for servers without parameter binding)', () => {
  it('wraps every value in CAST(… AS <declared type>)', () => {
    expect(typedLiteral('String', "it's")).toBe("CAST('it\\'s' AS String)");
    expect(typedLiteral('UInt64', 18_446_744_073_709_551_615n)).toBe('CAST(18446744073709551615 AS UInt64)');
    expect(typedLiteral('UInt64', '42')).toBe('CAST(42 AS UInt64)');
    expect(typedLiteral('Int32', -7)).toBe('CAST(-7 AS Int32)');
    expect(typedLiteral('UInt8', true)).toBe('CAST(1 AS UInt8)');
    expect(typedLiteral('Float64', 0.125)).toBe('CAST(0.125 AS Float64)');
    expect(typedLiteral('Float64', Number.NaN)).toBe('CAST(nan AS Float64)');
    expect(typedLiteral('Float64', -Infinity)).toBe('CAST(-inf AS Float64)');
    expect(typedLiteral('Decimal(10, 2)', 1.25)).toBe("CAST('1.25' AS Decimal(10, 2))");
    expect(typedLiteral('Nullable(String)', null)).toBe('CAST(NULL AS Nullable(String))');
    expect(typedLiteral('LowCardinality(Nullable(String))', 'x')).toBe("CAST('x' AS LowCardinality(Nullable(String)))");
    expect(typedLiteral('Array(String)', ["a'", 'b'])).toBe("CAST(['a\\'', 'b'] AS Array(String))");
    expect(typedLiteral('Array(String)', [])).toBe('CAST([] AS Array(String))');
    expect(typedLiteral('Array(Nullable(UInt32))', [1, null])).toBe('CAST([1, NULL] AS Array(Nullable(UInt32)))');
    expect(typedLiteral('Array(Array(String))', [['x'], []])).toBe("CAST([['x'], []] AS Array(Array(String)))");
    expect(typedLiteral('UUID', '018f2a7e-0000-7000-8000-000000000001')).toBe("CAST('018f2a7e-0000-7000-8000-000000000001' AS UUID)");
  });

  it('turns instants into the declared unit, whatever the local time zone', () => {
    const d = new Date(Date.UTC(2023, 10, 14, 22, 13, 20, 999));
    expect(typedLiteral("DateTime('UTC')", d)).toBe("CAST(1700000000 AS DateTime('UTC'))");
    expect(typedLiteral('DateTime', 1_700_000_000)).toBe('CAST(1700000000 AS DateTime)');
    expect(typedLiteral('DateTime', '2024-01-02 03:04:05')).toBe("CAST('2024-01-02 03:04:05' AS DateTime)");
    expect(typedLiteral("DateTime64(3, 'UTC')", d)).toBe("CAST('1700000000.999' AS DateTime64(3, 'UTC'))");
    expect(typedLiteral('DateTime64(6)', d)).toBe("CAST('1700000000.999000' AS DateTime64(6))");
    expect(typedLiteral('Date', d)).toBe("CAST('2023-11-14' AS Date)");
  });

  it('rejects values that do not fit the declared type, naming the parameter', () => {
    const bad: [string, unknown][] = [
      ['UInt64', 1.5],
      ['UInt64', 2 ** 53],
      ['UInt64', '12abc'],
      ['UInt64', '1; DROP TABLE t'],
      ['Int32', 'NaN'],
      ['Float64', '1e5; --'],
      ['String', null],
      ['String', true],
      ['String', ['a']],
      ['Array(String)', 'a'],
      ['DateTime', new Date(Number.NaN)],
      ['DateTime', new Date(-1000)],
      ['DateTime', -5],
      ['Date', 19_000],
      ['Bool', 1],
    ];
    for (const [type, value] of bad) {
      expect(() => typedLiteral(type, value as never, 'p'), `${type} ← ${String(value)}`).toThrow(SwitchyardError);
      expect(() => typedLiteral(type, value as never, 'p')).toThrow(/"p"/);
    }
  });

  it('refuses types it cannot write as a literal rather than guess', () => {
    expect(() => typedLiteral('Tuple(String, UInt8)', 'x')).toThrow(/not supported without server-side parameters/);
    expect(() => typedLiteral('Map(String, UInt8)', 'x')).toThrow(/not supported/);
    expect(() => typedLiteral('Identifier', 'users')).toThrow(/not supported/);
  });

  it('substitutes every occurrence, leaves the rest of the SQL as it was', () => {
    const sql = "SELECT * FROM t WHERE a = {a:String} AND b IN {list:Array(UInt8)} AND c = '{a:String}' OR a = {a:String}";
    expect(inlineParams(sql, { a: "x'", list: [1, 2] })).toBe(
      "SELECT * FROM t WHERE a = CAST('x\\'' AS String) AND b IN CAST([1, 2] AS Array(UInt8)) AND c = '{a:String}' OR a = CAST('x\\'' AS String)",
    );
    expect(inlineParams('SELECT 1', { unused: 'x' })).toBe('SELECT 1');
  });

  it('a placeholder without a value is an error (like the server’s code 456)', () => {
    expect(() => inlineParams('SELECT {a:String}', {})).toThrow(/"a" was not given/);
    expect(() => inlineParams('SELECT {a:String}', { a: undefined as never })).toThrow(/was not given/);
  });

  it('an injected value stays one literal: the SQL around it is unchanged', () => {
    const evil = "'); DROP TABLE users; SELECT ('";
    const out = inlineParams('SELECT {v:String} AS v FROM t', { v: evil });
    const start = out.indexOf("'");
    const { value, end } = readLiteral(out, start);
    expect(value).toBe(evil);
    expect(out.slice(0, start)).toBe('SELECT CAST(');
    expect(out.slice(end)).toBe(' AS String) AS v FROM t');
  });
});

describe('bindableParams (values for engines that bind parameters themselves)', () => {
  it('renders instants and non-finite floats by declared type, passes the rest through', () => {
    const d = new Date(Date.UTC(2023, 10, 14, 22, 13, 20, 999));
    const sql = `SELECT {t:DateTime('UTC')}, {t64:DateTime64(3, 'UTC')}, {t6:Nullable(DateTime64(6))}, {day:Date}, {epoch:DateTime},
      {ts:Array(DateTime)}, {f:Float64}, {g:Float32}, {s:String}, {n:Nullable(DateTime)}, {i:UInt64}, '{x:DateTime}'`;
    expect(
      bindableParams(sql, { t: d, t64: d, t6: d, day: d, epoch: new Date(0), ts: [d, null], f: Number.NaN, g: -Infinity, s: "it's", n: null, i: 5n, x: d, unused: d }),
    ).toEqual({
      t: '1700000000',
      t64: '1700000000.999',
      t6: '1700000000.999000',
      day: '2023-11-14',
      epoch: '0000000000',
      ts: ['1700000000', null],
      f: 'nan',
      g: '-inf',
      s: "it's",
      n: null,
      i: 5n,
      x: d, // only referenced inside a string literal: not a placeholder
      unused: d,
    });
  });

  it('pads short unix seconds to ten digits, keeping the fraction', () => {
    expect(bindableParams("SELECT {a:DateTime64(3, 'UTC')}", { a: new Date(5) })).toEqual({ a: '0000000000.005' });
  });
});

describe('statement helpers', () => {
  it('cleanStatement trims and drops trailing semicolons, refuses empty SQL', () => {
    expect(cleanStatement('  SELECT 1 ;\n ; ')).toBe('SELECT 1');
    expect(() => cleanStatement(' ; ')).toThrow(/empty/);
  });

  it('checkTable accepts name and database.name only', () => {
    expect(checkTable('events_v1')).toBe('events_v1');
    expect(checkTable('db.events')).toBe('db.events');
    for (const bad of ['', '1abc', 'a-b', 'a.b.c', 'a b', 't; DROP TABLE x', '`t`', 'db.']) {
      expect(() => checkTable(bad)).toThrow(expect.objectContaining({ code: 'SY_ERR_ANALYTICS' }));
    }
  });

  it('secondsText gives exactly the requested decimals', () => {
    expect(secondsText(1_700_000_000_007, 0)).toBe('1700000000');
    expect(secondsText(1_700_000_000_007, 1)).toBe('1700000000.0');
    expect(secondsText(1_700_000_000_007, 3)).toBe('1700000000.007');
    expect(secondsText(1_700_000_000_007, 9)).toBe('1700000000.007000000');
  });
});

describe('parseType', () => {
  it('splits a type at its top level', () => {
    expect(parseType('UInt64')).toEqual({ name: 'UInt64', args: [], text: 'UInt64' });
    expect(parseType(" DateTime64(3, 'UTC') ")).toEqual({ name: 'DateTime64', args: ['3', "'UTC'"], text: "DateTime64(3, 'UTC')" });
    expect(parseType('Map(String, Array(Tuple(UInt8, String)))').args).toEqual(['String', 'Array(Tuple(UInt8, String))']);
    expect(parseType("Enum8('a,b' = 1, 'c)' = 2)").args).toEqual(["'a,b' = 1", "'c)' = 2"]);
  });

  it('rejects what is not a type', () => {
    for (const bad of ['', '(x)', 'Array(String', 'Array(String))', "Enum8('a = 1)", 'String; DROP']) {
      expect(() => parseType(bad), bad).toThrow(SwitchyardError);
    }
  });
});
