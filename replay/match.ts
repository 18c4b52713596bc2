import type avro from 'avsc';

/**
 * Avro binary read in place: an event's bytes checked against a JavaScript value without
 * decoding them, or only some of its fields read.
 *
 * `verify` compares every re-derived decision with the recorded one. Decoding the recorded event
 * in full (16 candidates, a clock of ~35 entries, the request's payload) and comparing it field by
 * field costs about as much as deciding it again, so verify reads only what the command needs
 * (`RecordBytes.read`) and checks the re-derived event against the recorded bytes
 * (`RecordBytes.matches`).
 *
 * The check is sound with respect to `deepEqual` (diff.ts): it answers true only when decoding the
 * bytes with avsc (as the codec does, `type` added) gives a value `deepEqual` to the given one.
 * It may answer false where `deepEqual` would say equal (a non-canonical encoding, a repeated map
 * key, …): the caller then decodes in full and compares as before, so a false answer costs time,
 * never a verdict. `replay/match.unit.test.ts` pins both against avsc.
 *
 * Like avsc, the functions are generated per schema (`new Function`), one per record type, with the
 * read position in a local variable and the common one-byte varint inline: on this path a tree of
 * closures, or a cursor object, was slower than decoding with avsc. Supported: the types
 * Switchyard's event schemas use (record, array, map, unwrapped unions, string, bytes, int, long,
 * double, float, boolean, null, enum); anything else throws at construction, and callers keep the
 * decoding path.
 */

/** Where a helper leaves the position after what it read. */
const at = { pos: 0 };

/**
 * A zig-zag varint at `pos` as avsc reads it (exact below 2^53), its end in `at.pos`; NaN when it
 * runs past `end` or is beyond what avsc accepts as a long (±(2^53 - 2)).
 */
function longAt(buf: Uint8Array, pos: number, end: number): number {
  let n = 0;
  let shift = 0;
  let b: number;
  do {
    if (pos >= end) return NaN;
    b = buf[pos++]!;
    n |= (b & 0x7f) << shift;
    shift += 7;
  } while (b & 0x80 && shift < 28);
  at.pos = pos;
  if (!(b & 0x80)) return (n >> 1) ^ -(n & 1);
  let f = n >>> 0;
  let scale = 268_435_456; // 2^28
  do {
    if (pos >= end) return NaN;
    b = buf[pos++]!;
    f += (b & 0x7f) * scale;
    scale *= 128;
  } while (b & 0x80);
  at.pos = pos;
  const value = (f % 2 ? -(f + 1) : f) / 2;
  // avsc's bound for longs (one short of 2^53 - 1).
  return value >= -9007199254740990 && value <= 9007199254740990 ? value : NaN;
}

/** The slow half of a string check: decode the bytes (as avsc does) and compare. */
function stringIs(buf: Buffer, pos: number, len: number, v: string): boolean {
  return buf.toString('utf8', pos, pos + len) === v;
}

/** What `deepEqual` compares key by key: a non-null object that is neither an array nor bytes. */
function isRecordLike(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

/**
 * Keys of `v` that hold a value (own or inherited, as `for … in` and deepEqual see them). Once
 * every field of a record has matched — so holds a value — `v` has no other key that holds one
 * exactly when this is the number of fields (deepEqual treats a missing key as undefined).
 */
function definedKeys(v: Record<string, unknown>): number {
  let n = 0;
  for (const k in v) if (v[k] !== undefined) n++;
  return n;
}

const FAIL = 'return -1;';

interface AvroNode {
  typeName: string;
  fields?: { name: string; type: AvroNode }[];
  itemsType?: AvroNode;
  valuesType?: AvroNode;
  types?: AvroNode[];
  symbols?: string[];
}

type Mode = 'skip' | 'read' | 'match';

/**
 * Source text of generated functions. Every function takes `(buf, pos, end, dv, …)`: the bytes, the
 * position, the end, a DataView of `buf` (doubles). Skip and match functions return the position
 * after the value, or -1 when the bytes do not read (match: or do not match); read functions
 * return the value and leave the position in `at.pos`, and throw RangeError when they do not read.
 */
class Generator {
  private vars = 0;
  private readonly constants: unknown[] = [];
  /** Some generated code reads a float or double (through the DataView). */
  usesView = false;
  private readonly functions: string[] = [];
  private readonly named = { skip: new Map<AvroNode, string>(), read: new Map<AvroNode, string>(), match: new Map<AvroNode, string>() };

  fresh(prefix: string): string {
    return `${prefix}${this.vars++}`;
  }

  constant(value: unknown): string {
    this.constants.push(value);
    return `k${this.constants.length - 1}`;
  }

  static prop(obj: string, name: string): string {
    return /^[A-Za-z_$][\w$]*$/.test(name) ? `${obj}.${name}` : `${obj}[${JSON.stringify(name)}]`;
  }

  /** Statements reading a varint into `x` (declared); `onFail` when it does not read. */
  long(x: string, onFail: string): string {
    return `${x} = buf[pos]; if (${x} < 128) { pos++; ${x} = (${x} >> 1) ^ -(${x} & 1); } else { ${x} = longAt(buf, pos, end); if (${x} !== ${x}) ${onFail} pos = at.pos; }`;
  }

  /** Statements reading a length into `len` (declared) and checking the bytes are there. */
  private length(len: string, onFail: string): string {
    return `${this.long(len, onFail)} if (${len} < 0 || pos + ${len} > end) ${onFail}`;
  }

  /** Loops over the items of array or map blocks, `body` once per item. */
  private blocks(onFail: string, body: string): string {
    const [n, size] = [this.fresh('n'), this.fresh('size')];
    return `for (;;) { let ${n}; ${this.long(n, onFail)} if (${n} === 0) break;
      if (${n} < 0) { ${n} = -${n}; let ${size}; ${this.long(size, onFail)} }
      for (; ${n} > 0; ${n}--) { ${body} } }`;
  }

  /** A function of its own for a nested record, made once per record and mode. */
  private recordFunction(t: AvroNode, mode: Mode, make: (name: string) => string): string {
    let name = this.named[mode].get(t);
    if (name === undefined) {
      name = this.fresh(`${mode}Record`);
      this.named[mode].set(t, name);
      this.functions.push(make(name));
    }
    return name;
  }

  /** Statements moving `pos` past a value; `onFail` when it does not read. */
  skip(t: AvroNode, onFail: string): string {
    const x = this.fresh('x');
    switch (t.typeName) {
      case 'null':
        return '';
      case 'boolean':
        return `if (pos >= end) ${onFail} pos++;`;
      case 'int':
      case 'long':
      case 'enum':
        return `{ let ${x}; ${this.long(x, onFail)} }`;
      case 'float':
      case 'double': {
        const size = t.typeName === 'double' ? 8 : 4;
        return `if (pos + ${size} > end) ${onFail} pos += ${size};`;
      }
      case 'string':
      case 'bytes':
        return `{ let ${x}; ${this.length(x, onFail)} pos += ${x}; }`;
      case 'union:unwrapped':
        return `{ let ${x}; ${this.long(x, onFail)} switch (${x}) { ${t.types!.map((b, i) => `case ${i}: { ${this.skip(b, onFail)} break; }`).join(' ')} default: ${onFail} } }`;
      case 'array':
        return this.blocks(onFail, this.skip(t.itemsType!, onFail));
      case 'map':
        return this.blocks(onFail, `${this.skip({ typeName: 'string' }, onFail)} ${this.skip(t.valuesType!, onFail)}`);
      case 'record': {
        const fn = this.recordFunction(t, 'skip', (name) => `function ${name}(buf, pos, end) {\n${t.fields!.map((f) => this.skip(f.type, FAIL)).join('\n')}\nreturn pos;\n}`);
        return `pos = ${fn}(buf, pos, end); if (pos < 0) ${onFail}`;
      }
      default:
        throw new TypeError(`replay/match: Avro type ${t.typeName} is not supported`);
    }
  }

  /** Statements reading a value into `out` (declared), as avsc decodes it (records as plain objects); throws RangeError when it does not read. */
  read(t: AvroNode, out: string): string {
    const bad = "throw new RangeError('does not read');";
    switch (t.typeName) {
      case 'null':
        return `${out} = null;`;
      case 'boolean':
        return `if (pos >= end) ${bad} ${out} = buf[pos++] !== 0;`;
      case 'int':
      case 'long':
        return this.long(out, bad);
      case 'float':
        this.usesView = true;
        return `if (pos + 4 > end) ${bad} ${out} = dv.getFloat32(pos, true); pos += 4;`;
      case 'double':
        this.usesView = true;
        return `if (pos + 8 > end) ${bad} ${out} = dv.getFloat64(pos, true); pos += 8;`;
      case 'string':
      case 'bytes': {
        const len = this.fresh('len');
        const value = t.typeName === 'string' ? `buf.toString('utf8', pos, pos + ${len})` : `buf.subarray(pos, pos + ${len})`;
        return `{ let ${len}; ${this.length(len, bad)} ${out} = ${value}; pos += ${len}; }`;
      }
      case 'enum': {
        const x = this.fresh('x');
        return `{ let ${x}; ${this.long(x, bad)} ${out} = ${this.constant(t.symbols)}[${x}]; if (${out} === undefined) ${bad} }`;
      }
      case 'union:unwrapped': {
        const x = this.fresh('x');
        return `{ let ${x}; ${this.long(x, bad)} switch (${x}) { ${t.types!.map((b, i) => `case ${i}: { ${this.read(b, out)} break; }`).join(' ')} default: ${bad} } }`;
      }
      case 'array': {
        const [a, x] = [this.fresh('a'), this.fresh('x')];
        return `{ const ${a} = []; ${this.blocks(bad, `let ${x}; ${this.read(t.itemsType!, x)} ${a}.push(${x});`)} ${out} = ${a}; }`;
      }
      case 'map': {
        const [o, k, x] = [this.fresh('o'), this.fresh('k'), this.fresh('x')];
        return `{ const ${o} = {}; ${this.blocks(bad, `let ${k}; ${this.read({ typeName: 'string' }, k)} let ${x}; ${this.read(t.valuesType!, x)} ${o}[${k}] = ${x};`)} ${out} = ${o}; }`;
      }
      case 'record': {
        const fn = this.recordFunction(t, 'read', (name) => {
          const vars = t.fields!.map(() => this.fresh('f'));
          const reads = t.fields!.map((f, i) => `let ${vars[i]}; ${this.read(f.type, vars[i]!)}`).join('\n');
          return `function ${name}(buf, pos, end, dv) {\n${reads}\nat.pos = pos;\nreturn {${t.fields!.map((f, i) => `${JSON.stringify(f.name)}: ${vars[i]}`).join(', ')}};\n}`;
        });
        return `${out} = ${fn}(buf, pos, end, dv); pos = at.pos;`;
      }
      default:
        throw new TypeError(`replay/match: Avro type ${t.typeName} is not supported`);
    }
  }

  /** Statements that `return -1` unless the next value decodes to something deepEqual to `v` (a variable). */
  match(t: AvroNode, v: string): string {
    const x = this.fresh('x');
    switch (t.typeName) {
      case 'null':
        return `if (${v} !== null) ${FAIL}`;
      case 'boolean':
        return `if (pos >= end || (buf[pos++] !== 0) !== ${v}) ${FAIL}`;
      case 'int':
      case 'long':
        // longAt answers NaN for what avsc refuses, and NaN matches nothing.
        return `{ let ${x}; ${this.long(x, FAIL)} if (${x} !== ${v}) ${FAIL} }`;
      case 'float':
      case 'double': {
        const [size, get] = t.typeName === 'double' ? [8, 'getFloat64'] : [4, 'getFloat32'];
        this.usesView = true;
        // As deepEqual: by value (0 equals -0), and NaN equals NaN.
        return `if (pos + ${size} > end) ${FAIL} { const ${x} = dv.${get}(pos, true); pos += ${size}; if (${x} !== ${v} && !(${x} !== ${x} && ${v} !== ${v})) ${FAIL} }`;
      }
      case 'string': {
        // ASCII compared in place; a non-ASCII byte (or a length that differs) by decoding.
        const [len, i, b] = [this.fresh('len'), this.fresh('i'), this.fresh('b')];
        return `{ let ${len}; ${this.length(len, FAIL)} if (typeof ${v} !== 'string') ${FAIL}
          if (${v}.length !== ${len}) { if (!stringIs(buf, pos, ${len}, ${v})) ${FAIL} }
          else for (let ${i} = 0; ${i} < ${len}; ${i}++) { const ${b} = buf[pos + ${i}]; if (${b} !== ${v}.charCodeAt(${i}) || ${b} >= 128) { if (!stringIs(buf, pos, ${len}, ${v})) ${FAIL} break; } }
          pos += ${len}; }`;
      }
      case 'bytes': {
        const len = this.fresh('len');
        return `{ let ${len}; ${this.length(len, FAIL)}
          if (!(${v} instanceof Uint8Array) || ${v}.byteLength !== ${len} || buf.compare(${v}, 0, ${len}, pos, pos + ${len}) !== 0) ${FAIL}
          pos += ${len}; }`;
      }
      case 'enum':
        return `{ let ${x}; ${this.long(x, FAIL)} if (${v} === undefined || ${this.constant(t.symbols)}[${x}] !== ${v}) ${FAIL} }`;
      case 'union:unwrapped':
        return `{ let ${x}; ${this.long(x, FAIL)} switch (${x}) { ${t.types!.map((b, i) => `case ${i}: { ${this.match(b, v)} break; }`).join(' ')} default: ${FAIL} } }`;
      case 'array': {
        const [i, item] = [this.fresh('i'), this.fresh('item')];
        return `if (!Array.isArray(${v})) ${FAIL} let ${i} = 0;
          ${this.blocks(FAIL, `if (${i} >= ${v}.length) ${FAIL} const ${item} = ${v}[${i}++]; ${this.match(t.itemsType!, item)}`)}
          if (${i} !== ${v}.length) ${FAIL}`;
      }
      case 'map': {
        // Distinct keys, each matching; the value has no other defined key. A repeated key or
        // `__proto__` decodes in ways not worth following here: no match, and the caller decodes.
        const [keys, k, item] = [this.fresh('keys'), this.fresh('k'), this.fresh('item')];
        return `if (!isRecordLike(${v})) ${FAIL} const ${keys} = [];
          ${this.blocks(
            FAIL,
            `let ${k}; ${this.read({ typeName: 'string' }, k).replaceAll("throw new RangeError('does not read');", FAIL)}
            if (${k} === '__proto__' || ${keys}.includes(${k}) || !Object.hasOwn(${v}, ${k})) ${FAIL}
            ${keys}.push(${k}); const ${item} = ${v}[${k}]; ${this.match(t.valuesType!, item)}`,
          )}
          if (definedKeys(${v}) !== ${keys}.length) ${FAIL}`;
      }
      case 'record': {
        const fn = this.recordFunction(t, 'match', (name) => {
          const fields = t.fields!.map((f) => {
            const fv = this.fresh('f');
            return `{ const ${fv} = ${Generator.prop('v', f.name)}; ${this.match(f.type, fv)} }`;
          });
          return `function ${name}(buf, pos, end, dv, v) {\nif (!isRecordLike(v)) ${FAIL}\n${fields.join('\n')}\nreturn definedKeys(v) === ${t.fields!.length} ? pos : -1;\n}`;
        });
        return `pos = ${fn}(buf, pos, end, dv, ${v}); if (pos < 0) ${FAIL}`;
      }
      default:
        throw new TypeError(`replay/match: Avro type ${t.typeName} is not supported`);
    }
  }

  /** The function `main` (source of a function expression) evaluates to, with the helpers and generated functions in scope. */
  build<T>(main: string): T {
    const body = `${this.functions.join('\n')}\nreturn ${main};`;
    const names = this.constants.map((_, i) => `k${i}`);
    const make = new Function('at', 'longAt', 'stringIs', 'isRecordLike', 'definedKeys', ...names, body);
    return make(at, longAt, stringIs, isRecordLike, definedKeys, ...this.constants) as T;
  }
}

/**
 * A top-level record (an event) in the wire format: read some of its fields, or check a value
 * against all of them. The value of an event also carries its `type`, which is not in the bytes.
 */
export class RecordBytes {
  private readonly readWanted: (buf: Buffer, pos: number, end: number, dv: DataView | undefined) => Record<string, unknown>;
  private readonly matchAll: (buf: Buffer, pos: number, end: number, dv: DataView | undefined, v: Record<string, unknown>, same: Readonly<Record<string, unknown>> | undefined) => number;
  /** Whether `read` and `matches` read floats (a DataView of the bytes is made only then). */
  private readonly readView: boolean;
  private readonly matchView: boolean;

  /**
   * @param type the writer schema of the bytes (a record)
   * @param eventType the value's `type`
   * @param wanted the fields `read` returns
   */
  constructor(
    type: avro.Type,
    readonly eventType: string,
    wanted: readonly string[],
  ) {
    const t = type as unknown as AvroNode;
    if (t.typeName !== 'record') throw new TypeError(`replay/match: a record is needed, not ${t.typeName}`);
    const want = new Set(wanted);
    const fields = t.fields!;

    const reader = new Generator();
    const reads = fields.map((f) => {
      if (!want.has(f.name)) return reader.skip(f.type, "throw new RangeError('does not read');");
      const x = reader.fresh('f');
      return `{ let ${x}; ${reader.read(f.type, x)} out[${JSON.stringify(f.name)}] = ${x}; }`;
    });
    this.readView = reader.usesView;
    this.readWanted = reader.build(`function read(buf, pos, end, dv) {\nconst out = { type: ${JSON.stringify(eventType)} };\n${reads.join('\n')}\nif (pos !== end) throw new RangeError('trailing bytes');\nreturn out;\n}`);

    const matcher = new Generator();
    const checks = fields.map((f) => {
      const fv = matcher.fresh('f');
      const name = JSON.stringify(f.name);
      // A field given in `same` was decoded from these bytes: when the value is that very object
      // (or an equal primitive), it is skipped, not compared.
      return `{ const ${fv} = ${Generator.prop('v', f.name)};
        if (same !== undefined && same[${name}] === ${fv} && ${fv} !== undefined) { ${matcher.skip(f.type, FAIL)} }
        else { ${matcher.match(f.type, fv)} } }`;
    });
    this.matchView = matcher.usesView;
    this.matchAll = matcher.build(`function match(buf, pos, end, dv, v, same) {\n${checks.join('\n')}\nreturn pos === end && definedKeys(v) === ${fields.length + 1} ? pos : -1;\n}`);
  }

  /** The wanted fields of the record filling `buf[start..]`, and `type` (throws RangeError when it does not read). */
  read(buf: Buffer, start: number): Record<string, unknown> {
    return this.readWanted(buf, start, buf.length, this.readView ? new DataView(buf.buffer, buf.byteOffset, buf.byteLength) : undefined);
  }

  /**
   * Whether the record filling `buf[start..]` decodes (with avsc, then `type` added) to a value
   * deepEqual to `value`: true only when it does. A field of `same` holds what a faithful decode of
   * these bytes gave for it (`read`, or the clock from envelope.ts): where `value` has exactly that
   * (the same object, or an equal primitive), the field is skipped rather than compared.
   */
  matches(value: unknown, buf: Buffer, start: number, same?: Readonly<Record<string, unknown>>): boolean {
    if (!isRecordLike(value) || value['type'] !== this.eventType) return false;
    return this.matchAll(buf, start, buf.length, this.matchView ? new DataView(buf.buffer, buf.byteOffset, buf.byteLength) : undefined, value, same) >= 0;
  }
}
