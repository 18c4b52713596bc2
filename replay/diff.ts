/**
 * Field-level differences between two values (events, JSON outputs): each difference names the
 * path (`candidates[2].score`) and both sides. Buffers compare by bytes, numbers by value (NaN
 * equals NaN), objects by the union of their keys (a key missing on one side is `undefined`
 * there), arrays index by index plus their lengths.
 */
export interface FieldDiff {
  path: string;
  recorded: unknown;
  rederived: unknown;
}

function same(a: unknown, b: unknown): boolean {
  return a === b || (typeof a === 'number' && typeof b === 'number' && Number.isNaN(a) && Number.isNaN(b));
}

const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;
const join = (path: string, key: string): string => (IDENTIFIER.test(key) ? (path === '' ? key : `${path}.${key}`) : `${path}[${JSON.stringify(key)}]`);

/**
 * Whether two values are equal in the sense of `diffValues` (no paths built: the fast check
 * `verify` makes for every decision before asking for a diff).
 */
export function deepEqual(a: unknown, b: unknown): boolean {
  if (same(a, b)) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (a instanceof Uint8Array || b instanceof Uint8Array) {
    if (!(a instanceof Uint8Array) || !(b instanceof Uint8Array) || a.byteLength !== b.byteLength) return false;
    return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
  }
  const arrayA = Array.isArray(a);
  if (arrayA !== Array.isArray(b)) return false;
  if (arrayA) {
    const x = a as unknown[];
    const y = b as unknown[];
    if (x.length !== y.length) return false;
    for (let i = 0; i < x.length; i++) if (!deepEqual(x[i], y[i])) return false;
    return true;
  }
  const x = a as Record<string, unknown>;
  const y = b as Record<string, unknown>;
  for (const k in x) if (!deepEqual(x[k], y[k])) return false;
  // A key only `b` has must be undefined there (a missing key and an undefined value are alike).
  for (const k in y) if (!(k in x) && y[k] !== undefined) return false;
  return true;
}

/** Differences of `b` (re-derived) from `a` (recorded), at most `limit`. */
export function diffValues(a: unknown, b: unknown, limit = 200, path = '', out: FieldDiff[] = []): FieldDiff[] {
  if (out.length >= limit) return out;
  if (same(a, b)) return out;
  if (Buffer.isBuffer(a) || Buffer.isBuffer(b) || a instanceof Uint8Array || b instanceof Uint8Array) {
    const ba = a instanceof Uint8Array ? Buffer.from(a.buffer, a.byteOffset, a.byteLength) : undefined;
    const bb = b instanceof Uint8Array ? Buffer.from(b.buffer, b.byteOffset, b.byteLength) : undefined;
    if (ba === undefined || bb === undefined || !ba.equals(bb)) out.push({ path: path || '(value)', recorded: a, rederived: b });
    return out;
  }
  if (Array.isArray(a) && Array.isArray(b)) {
    if (a.length !== b.length) out.push({ path: `${path}.length`, recorded: a.length, rederived: b.length });
    const n = Math.min(a.length, b.length);
    for (let i = 0; i < n && out.length < limit; i++) diffValues(a[i], b[i], limit, `${path}[${i}]`, out);
    return out;
  }
  if (a !== null && b !== null && typeof a === 'object' && typeof b === 'object' && !Array.isArray(a) && !Array.isArray(b)) {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    for (const k of keys) {
      if (out.length >= limit) break;
      diffValues((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], limit, join(path, k), out);
    }
    return out;
  }
  out.push({ path: path || '(value)', recorded: a, rederived: b });
  return out;
}
