import type avro from 'avsc';
import { describe, expect, it } from 'vitest';
import { eventType } from '../schemas/codec.js';
import { EVENT_SCHEMAS, EVENT_TYPES } from '../schemas/generated/events.js';
import { deepEqual } from './diff.js';
import { RecordBytes } from './match.js';
import { mulberry32 } from '../lib/prng.js';

/**
 * The in-place check against avsc, the codec's decoder, on every event schema:
 * - complete on canonical bytes: the decoded value of any encoded event matches its bytes, and
 *   `read` gives the fields avsc decodes;
 * - sound: whatever a value is (mutated leaves, extra or missing keys, other types, -0, NaN,
 *   non-ASCII), `matches` answers true only when `deepEqual(decoded, value)` — so verify's fast
 *   path reaches a verdict only where the full comparison reaches the same one.
 * Values come from a seeded generator walking the schema (every branch, non-ASCII strings, the
 * edges of longs), so runs are repeatable.
 */

interface Node {
  typeName: string;
  fields?: { name: string; type: Node }[];
  itemsType?: Node;
  valuesType?: Node;
  types?: Node[];
  symbols?: string[];
}

const STRINGS = ['', 'a', 'worker-03', 'zone-b', 'switchyard.decisions', 'é', 'ünïcödé', '日本', '🚀x', 'tab\tnl\n', 'x'.repeat(130)];
const LONGS = [0, 1, -1, 63, 64, -64, -65, 127, 128, 2 ** 31 - 1, -(2 ** 31), 2 ** 31 + 5, 2 ** 40 + 3, -(2 ** 45), 2 ** 52 + 7, 9007199254740990, -9007199254740990, 1_735_689_600_000];
const INTS = [0, 1, -1, 63, 64, 2 ** 31 - 1, -(2 ** 31), 17];
const DOUBLES = [0, 1, -1, 0.5, 1 / 3, 1e-300, 1e300, Number.MAX_VALUE, Number.MIN_VALUE, Infinity, -Infinity, 123.456];

/** A value of an Avro type, as avsc accepts it for encoding. */
function generate(t: Node, rnd: () => number, depth = 0): unknown {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  switch (t.typeName) {
    case 'null':
      return null;
    case 'boolean':
      return rnd() < 0.5;
    case 'int':
      return pick(INTS);
    case 'long':
      return pick(LONGS);
    case 'float':
      return Math.fround(pick(DOUBLES.filter((d) => Math.abs(d) < 1e30 && (d === 0 || Math.abs(d) > 1e-30))));
    case 'double':
      return rnd() < 0.1 ? Number.NaN : pick(DOUBLES);
    case 'string':
      return pick(STRINGS);
    case 'bytes':
      return Buffer.from(Array.from({ length: Math.floor(rnd() * 40) }, () => Math.floor(rnd() * 256)));
    case 'enum':
      return pick(t.symbols!);
    case 'union:unwrapped':
      return generate(pick(t.types!), rnd, depth);
    case 'array':
      return Array.from({ length: depth > 2 ? 0 : Math.floor(rnd() * 5) }, () => generate(t.itemsType!, rnd, depth + 1));
    case 'map': {
      const out: Record<string, unknown> = {};
      for (let i = Math.floor(rnd() * 4); i > 0; i--) out[`${pick(STRINGS)}${i}`] = generate(t.valuesType!, rnd, depth + 1);
      return out;
    }
    case 'record': {
      const out: Record<string, unknown> = {};
      for (const f of t.fields!) out[f.name] = generate(f.type, rnd, depth + 1);
      return out;
    }
    default:
      throw new Error(`no generator for ${t.typeName}`);
  }
}

/** Paths to every leaf and container of a value. */
function paths(v: unknown, at: (string | number)[] = [], out: (string | number)[][] = []): (string | number)[][] {
  out.push(at);
  if (Array.isArray(v)) v.forEach((x, i) => paths(x, [...at, i], out));
  else if (v !== null && typeof v === 'object' && !(v instanceof Uint8Array)) for (const k of Object.keys(v)) paths((v as Record<string, unknown>)[k], [...at, k], out);
  return out;
}

function clone(v: unknown): unknown {
  if (v instanceof Uint8Array) return Buffer.from(v);
  if (Array.isArray(v)) return v.map(clone);
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, clone(x)]));
  return v;
}

/** A copy of `v` with one thing changed at a random path. */
function mutate(v: Record<string, unknown>, rnd: () => number): unknown {
  const copy = clone(v) as Record<string, unknown>;
  const all = paths(copy);
  const path = all[Math.floor(rnd() * all.length)]!;
  if (path.length === 0) return { ...copy, extra: rnd() < 0.5 ? undefined : 1 };
  const parent = path.slice(0, -1).reduce<unknown>((o, k) => (o as Record<string | number, unknown>)[k], copy) as Record<string | number, unknown>;
  const key = path[path.length - 1]!;
  const old = parent[key];
  const choices: (() => void)[] = [
    () => (parent[key] = typeof old === 'string' ? `${old}x` : typeof old === 'number' ? old + 1 : 'changed'),
    () => (parent[key] = typeof old === 'string' ? old.slice(1) : typeof old === 'number' ? -old : null),
    () => (parent[key] = typeof old === 'string' ? old.toUpperCase() : typeof old === 'number' ? String(old) : 0),
    () => (parent[key] = typeof old === 'string' ? `${old.slice(0, -1)}é` : Number.NaN),
    () => (parent[key] = old === null ? 'x' : null),
    () => (parent[key] = undefined),
    () => delete parent[key],
    () => (parent[key] = Array.isArray(old) ? [...old, old[0] ?? null] : old instanceof Uint8Array ? Buffer.concat([old, Buffer.from([1])]) : [old]),
    () => (parent[key] = Array.isArray(old) ? old.slice(1) : old !== null && typeof old === 'object' ? { ...old, more: 1 } : { value: old }),
    () => (parent[key] = old instanceof Uint8Array ? new Uint8Array(old.byteLength) : typeof old === 'boolean' ? !old : old === 0 ? -0 : old),
    () => (parent[key] = typeof old === 'string' ? `${old}\uD800` : Buffer.from(String(old))),
  ];
  choices[Math.floor(rnd() * choices.length)]!();
  return copy;
}

describe('RecordBytes (in-place Avro) agrees with avsc', () => {
  for (const event of EVENT_TYPES) {
    const type = eventType(EVENT_SCHEMAS[event].schema);
    const fields = (type as unknown as Node).fields!.map((f) => f.name);
    const all = new RecordBytes(type, event, fields);

    it(`${event}: every encoded value matches its bytes, and read gives what avsc decodes`, () => {
      const rnd = mulberry32(event.length * 7919);
      for (let i = 0; i < 150; i++) {
        const value = generate(type as unknown as Node, rnd);
        const bytes = type.toBuffer(value);
        const decoded: Record<string, unknown> = { ...(type.fromBuffer(bytes) as Record<string, unknown>), type: event };
        expect(all.matches(decoded, bytes, 0)).toBe(true);
        expect(deepEqual(all.read(bytes, 0), decoded)).toBe(true);
        const some = fields.filter((_, k) => (k + i) % 3 === 0);
        const part = new RecordBytes(type, event, some).read(bytes, 0);
        expect(Object.keys(part).sort()).toEqual([...some, 'type'].sort());
        for (const f of some) expect(deepEqual(part[f], decoded[f])).toBe(true);
      }
    });

    it(`${event}: matches only what deepEqual accepts (mutated values)`, () => {
      const rnd = mulberry32(event.length * 104729);
      let matched = 0;
      let rejected = 0;
      for (let i = 0; i < 300; i++) {
        const bytes = type.toBuffer(generate(type as unknown as Node, rnd));
        const decoded: Record<string, unknown> = { ...(type.fromBuffer(bytes) as Record<string, unknown>), type: event };
        for (let m = 0; m < 5; m++) {
          const mutated = mutate(decoded, rnd);
          const equal = deepEqual(decoded, mutated);
          const says = all.matches(mutated, bytes, 0);
          if (says) expect(equal, JSON.stringify(mutated)).toBe(true);
          if (says) matched++;
          else rejected++;
        }
      }
      // Both answers occur (the mutations are not all no-ops, nor all caught for the wrong reason).
      expect(matched).toBeGreaterThan(0);
      expect(rejected).toBeGreaterThan(0);
    });
  }

  const routed = eventType(EVENT_SCHEMAS.RequestRouted.schema);
  const sample = () => {
    const value = generate(routed as unknown as Node, mulberry32(3)) as Record<string, unknown>;
    value.clock = [
      { topic: 'switchyard.control', partition: 0, offset: 12 },
      { topic: 'switchyard.results', partition: 3, offset: 2 ** 40 },
    ];
    const bytes = routed.toBuffer(value);
    return { bytes, decoded: { ...(routed.fromBuffer(bytes) as Record<string, unknown>), type: 'RequestRouted' } };
  };

  it('bytes that do not read are no match: truncated, trailing, a long past 2^53, a bad union branch', () => {
    const rb = new RecordBytes(routed, 'RequestRouted', ['eventId']);
    const { bytes, decoded } = sample();
    expect(rb.matches(decoded, bytes, 0)).toBe(true);
    for (let cut = 0; cut < bytes.length; cut += 7) expect(rb.matches(decoded, bytes.subarray(0, cut), 0)).toBe(false);
    expect(rb.matches(decoded, Buffer.concat([bytes, Buffer.from([0])]), 0)).toBe(false);
    expect(() => rb.read(Buffer.concat([bytes, Buffer.from([0])]), 0)).toThrow(RangeError);

    const longs = eventType({ type: 'record', name: 'L', fields: [{ name: 'n', type: 'long' }] });
    const rl = new RecordBytes(longs, 'L', ['n']);
    const big = Buffer.from([0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]); // zig-zag 2^55 - 1
    expect(() => longs.fromBuffer(big)).toThrow();
    expect(rl.matches({ n: 2 ** 55, type: 'L' }, big, 0)).toBe(false);
    expect(() => rl.read(big, 0)).toThrow(RangeError);

    const unions = eventType({ type: 'record', name: 'U', fields: [{ name: 'u', type: ['null', 'string'] }] });
    const ru = new RecordBytes(unions, 'U', ['u']);
    expect(ru.matches({ u: null, type: 'U' }, Buffer.from([4]), 0)).toBe(false);
    expect(() => ru.read(Buffer.from([4]), 0)).toThrow(RangeError);
  });

  it('array and map blocks with byte sizes (negative counts) read as avsc reads them', () => {
    const t = eventType({ type: 'record', name: 'B', fields: [{ name: 'xs', type: { type: 'array', items: 'int' } }, { name: 'm', type: { type: 'map', values: 'string' } }] });
    // xs: a block of -2 items (2 bytes), then 1 item, then the end; m: one block of -1 entry (5 bytes).
    const bytes = Buffer.from([3, 4, 2, 4, 2, 6, 0, 1, 10, 2, 0x6b, 4, 0x76, 0x76, 0]);
    const decoded = { ...(t.fromBuffer(bytes) as Record<string, unknown>), type: 'B' };
    expect(decoded).toMatchObject({ xs: [1, 2, 3], m: { k: 'vv' } });
    const rb = new RecordBytes(t, 'B', ['xs', 'm']);
    expect(rb.matches(decoded, bytes, 0)).toBe(true);
    expect(rb.matches({ ...decoded, xs: [1, 2] }, bytes, 0)).toBe(false);
    expect(rb.matches({ ...decoded, m: { k: 'vv', j: 'x' } }, bytes, 0)).toBe(false);
    expect(rb.matches({ ...decoded, m: { k: 'vv', j: undefined } }, bytes, 0)).toBe(true);
    expect(deepEqual(rb.read(bytes, 0), decoded)).toBe(true);
  });

  it('a field given in `same` (decoded from these bytes) is skipped when the value holds exactly it', () => {
    const rb = new RecordBytes(routed, 'RequestRouted', ['clock', 'eventId']);
    const { bytes, decoded } = sample();
    const lean = rb.read(bytes, 0);
    // The same clock object: skipped. Another clock: compared, and it differs.
    expect(rb.matches({ ...decoded, clock: lean.clock }, bytes, 0, lean)).toBe(true);
    expect(rb.matches({ ...decoded, clock: [] }, bytes, 0, lean)).toBe(false);
    // An equal primitive: skipped; a different one: compared.
    expect(rb.matches({ ...decoded, eventId: lean.eventId }, bytes, 0, lean)).toBe(true);
    expect(rb.matches({ ...decoded, eventId: `${String(lean.eventId)}x` }, bytes, 0, lean)).toBe(false);
  });

  it('throws at construction for a type it does not handle (callers keep the decoding path)', () => {
    const fixed = eventType({ type: 'record', name: 'F', fields: [{ name: 'f', type: { type: 'fixed', name: 'F16', size: 16 } }] });
    expect(() => new RecordBytes(fixed, 'F', ['f'])).toThrow(TypeError);
    expect(() => new RecordBytes(eventType({ type: 'string' }) as avro.Type, 'S', [])).toThrow(TypeError);
  });
});
