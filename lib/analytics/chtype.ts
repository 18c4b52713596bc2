import { analyticsError } from './errors.js';

/**
 * A ClickHouse type name split at its top level: `Array(Nullable(String))` is
 * `{ name: 'Array', args: ['Nullable(String)'] }`, `DateTime('UTC')` is
 * `{ name: 'DateTime', args: ["'UTC'"] }`, `UInt64` has no args. Enough to convert values
 * by type; not a validator of ClickHouse's grammar.
 */
export interface ChType {
  name: string;
  args: string[];
  /** The text it was parsed from, trimmed. */
  text: string;
}

const NAME = /^[A-Za-z_][A-Za-z0-9_]*/;

export function parseType(text: string): ChType {
  const t = text.trim();
  const m = NAME.exec(t);
  if (!m) throw analyticsError(`not a ClickHouse type: ${JSON.stringify(text)}`, { type: text });
  const name = m[0];
  const rest = t.slice(name.length).trim();
  if (rest === '') return { name, args: [], text: t };
  if (!rest.startsWith('(') || !rest.endsWith(')')) throw analyticsError(`not a ClickHouse type: ${JSON.stringify(text)}`, { type: text });
  return { name, args: splitArgs(rest.slice(1, -1), text), text: t };
}

/** Splits `a, b(c, d), 'e,f'` at top-level commas, honouring parentheses and quotes. */
function splitArgs(inner: string, whole: string): string[] {
  const args: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < inner.length; i++) {
    const c = inner[i];
    if (c === "'" || c === '"' || c === '`') {
      i = skipQuoted(inner, i);
      if (i < 0) throw analyticsError(`unterminated quote in type ${JSON.stringify(whole)}`, { type: whole });
    } else if (c === '(') depth++;
    else if (c === ')') {
      depth--;
      if (depth < 0) throw analyticsError(`unbalanced parentheses in type ${JSON.stringify(whole)}`, { type: whole });
    } else if (c === ',' && depth === 0) {
      args.push(inner.slice(start, i).trim());
      start = i + 1;
    }
  }
  if (depth !== 0) throw analyticsError(`unbalanced parentheses in type ${JSON.stringify(whole)}`, { type: whole });
  const last = inner.slice(start).trim();
  if (last !== '' || args.length > 0) args.push(last);
  return args;
}

/**
 * Given `s[open]` is a quote character, returns the index of the matching closing quote, or
 * -1 when there is none. Backslash escapes the next character; a doubled quote is a quote.
 */
export function skipQuoted(s: string, open: number): number {
  const q = s[open];
  for (let i = open + 1; i < s.length; i++) {
    const c = s[i];
    if (c === '\\') i++;
    else if (c === q) {
      if (s[i + 1] === q) i++;
      else return i;
    }
  }
  return -1;
}

/** `Nullable(T)` and `LowCardinality(T)` wrap a type without changing how its values look. */
export function unwrapped(type: ChType): { type: ChType; nullable: boolean } {
  let t = type;
  let nullable = false;
  for (;;) {
    if (t.name === 'Nullable' && t.args.length === 1) {
      nullable = true;
      t = parseType(t.args[0]!);
    } else if (t.name === 'LowCardinality' && t.args.length === 1) t = parseType(t.args[0]!);
    else return { type: t, nullable };
  }
}

export const INTEGER_TYPES = new Set([
  'UInt8', 'UInt16', 'UInt32', 'UInt64', 'UInt128', 'UInt256',
  'Int8', 'Int16', 'Int32', 'Int64', 'Int128', 'Int256',
]);

/** Integers that JSON output quotes (with `output_format_json_quote_64bit_integers=1`) and JS numbers can hold only in part. */
export const INT64_TYPES = new Set(['UInt64', 'Int64']);
