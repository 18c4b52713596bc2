import type { SchemaRegistry } from '../lib/registry/port.js';
import type { EventCodec } from '../schemas/codec.js';
import { EVENT_SCHEMAS, EVENT_TYPES, type ClockEntry, type EventEnvelope, type EventType } from '../schemas/generated/events.js';
import { WIRE_HEADER_BYTES, schemaIdOf } from '../schemas/wire.js';

/**
 * Reading the envelope of an event without decoding the event.
 *
 * Every Switchyard event schema begins with the same seven fields (ARCHITECTURE.md, "Events and
 * the wire"): eventId, occurredAt, requestId, traceId, producer, causationId, clock. Avro binary
 * has no field tags, so those fields are the first bytes after the wire header of every event,
 * whatever its type and version. Scans that need only the envelope (the request index, the
 * ordering pass of `verify`, time filters) read it here at a fraction of a full decode's cost:
 * no object per clock entry, no candidates, no payload.
 *
 * The type of an event comes from its schema id: the ids this codec writes are known; any other
 * id is looked up in the registry once and accepted only if its schema is a Switchyard event
 * whose first seven fields are the envelope (otherwise `peek` answers null and callers decode).
 */

/** The envelope fields, read in place. `clockSum` is Σ clock offsets (clocks of one producer only grow, so it orders them). */
export interface PeekedEnvelope extends Omit<EventEnvelope, 'clock'> {
  type: EventType;
  clockEntries: number;
  clockSum: number;
}

const ENVELOPE: readonly [string, string][] = [
  ['eventId', 'string'],
  ['occurredAt', 'long'],
  ['requestId', 'null|string'],
  ['traceId', 'null|string'],
  ['producer', 'string'],
  ['causationId', 'null|string'],
  ['clock', 'array'],
];

function typeTag(t: unknown): string {
  if (typeof t === 'string') return t;
  if (Array.isArray(t)) return t.map(typeTag).join('|');
  if (t !== null && typeof t === 'object') return typeTag((t as { type?: unknown }).type);
  return '?';
}

/** Whether a parsed schema is a record that begins with the Switchyard envelope. */
export function beginsWithEnvelope(schema: unknown): boolean {
  const fields = (schema as { fields?: { name?: unknown; type?: unknown }[] } | null)?.fields;
  if (!Array.isArray(fields) || fields.length < ENVELOPE.length) return false;
  return ENVELOPE.every(([name, tag], i) => fields[i]!.name === name && typeTag(fields[i]!.type) === tag);
}

const BY_FULL_NAME = new Map<string, EventType>(EVENT_TYPES.map((t) => [EVENT_SCHEMAS[t].fullName, t]));

/** verify's listing of a decision (EnvelopePeeker.listed). */
export interface ListedEnvelope {
  occurredAt: number;
  /** Interned: EnvelopePeeker.producerName. */
  producer: number;
  clockSum: number;
}

/**
 * Strings interned by their UTF-8 bytes, each with a small id: a string at a reader that was seen
 * before costs a comparison of its bytes (four at a time), no allocation.
 */
class Interner {
  /** By byte length: the bytes (and as little-endian words) and id of each string interned. */
  private readonly buckets: { bytes: Buffer; words: Int32Array; id: number }[][] = [];
  private readonly names: string[] = [];

  /** The id of a string (interned on first sight). */
  id(name: string): number {
    let id = this.names.indexOf(name);
    if (id < 0) {
      id = this.names.length;
      this.names.push(name);
    }
    return id;
  }

  name(id: number): string {
    return this.names[id]!;
  }

  /** The id of the string at the reader; `view` is a DataView of the reader's buffer. */
  at(r: Reader, view: DataView): number {
    const len = r.long();
    const start = r.pos;
    const end = start + len;
    if (len < 0 || end > r.buf.length) throw new RangeError('truncated string');
    r.pos = end;
    const buf = r.buf;
    let bucket = this.buckets[len];
    if (bucket !== undefined) {
      for (const t of bucket) {
        const words = t.words;
        let w = 0;
        while (w < words.length && view.getInt32(start + 4 * w, true) === words[w]) w++;
        if (w < words.length) continue;
        const b = t.bytes;
        let i = 4 * w;
        while (i < len && b[i] === buf[start + i]) i++;
        if (i === len) return t.id;
      }
    } else if (len < 256) this.buckets[len] = bucket = [];
    const id = this.id(buf.toString('utf8', start, end));
    if (bucket !== undefined && bucket.length < 8) {
      const bytes = Buffer.from(buf.subarray(start, end));
      const words = new Int32Array(len >> 2);
      for (let w = 0; w < words.length; w++) words[w] = bytes.readInt32LE(4 * w);
      bucket.push({ bytes, words, id });
    }
    return id;
  }
}

/**
 * A clock read without an object per entry (verify reads one per decision): entry i names the
 * interned topic `topic[i]` (EnvelopePeeker.topicName), `partition[i]` and `offset[i]`. Reused.
 */
export class CompactClock {
  n = 0;
  /** Σ offsets. */
  sum = 0;
  topic: number[] = [];
  partition: number[] = [];
  offset: number[] = [];

  push(topic: number, partition: number, offset: number): void {
    const i = this.n++;
    this.topic[i] = topic;
    this.partition[i] = partition;
    this.offset[i] = offset;
    this.sum += offset;
  }
}

/** A cursor over Avro binary (zig-zag varints, length-prefixed strings). Throws RangeError past the end. */
class Reader {
  pos = 0;
  constructor(public buf: Buffer) {}

  long(): number {
    const buf = this.buf;
    let n = 0;
    let shift = 0;
    let b: number;
    do {
      if (this.pos >= buf.length) throw new RangeError('truncated varint');
      b = buf[this.pos++]!;
      n |= (b & 0x7f) << shift;
      shift += 7;
    } while (b & 0x80 && shift < 28);
    if (!(b & 0x80)) return (n >>> 1) ^ -(n & 1);
    // Beyond 28 bits: continue in floating point (exact up to 2^53, like every long here).
    let f = n >>> 0;
    let scale = 268_435_456; // 2^28
    do {
      if (this.pos >= buf.length) throw new RangeError('truncated varint');
      b = buf[this.pos++]!;
      f += (b & 0x7f) * scale;
      scale *= 128;
    } while (b & 0x80);
    return f % 2 ? -(f + 1) / 2 : f / 2;
  }

  string(): string {
    const len = this.long();
    const end = this.pos + len;
    if (len < 0 || end > this.buf.length) throw new RangeError('truncated string');
    const s = this.buf.toString('utf8', this.pos, end);
    this.pos = end;
    return s;
  }

  skipString(): void {
    const len = this.long();
    if (len < 0 || this.pos + len > this.buf.length) throw new RangeError('truncated string');
    this.pos += len;
  }

  skipNullableString(): void {
    const branch = this.long();
    if (branch === 1) this.skipString();
    else if (branch !== 0) throw new RangeError(`bad union branch ${branch}`);
  }

  nullableString(): string | null {
    const branch = this.long();
    if (branch === 0) return null;
    if (branch !== 1) throw new RangeError(`bad union branch ${branch}`);
    return this.string();
  }
}

/**
 * Reads envelopes. `create` learns the ids the codec writes; ids of other schema versions are
 * resolved through the registry on first sight (`resolve`), after which `peek` knows them.
 */
export class EnvelopePeeker {
  private readonly types = new Map<number, EventType | null>();

  private constructor(private readonly registry: SchemaRegistry | undefined) {}

  static create(codec: EventCodec, registry?: SchemaRegistry): EnvelopePeeker {
    const peeker = new EnvelopePeeker(registry);
    for (const t of EVENT_TYPES) peeker.types.set(codec.schemaId(t), t);
    return peeker;
  }

  /** The event type a schema id names: known ids at once, others from the registry (null: not an event with the envelope). */
  async resolve(schemaId: number): Promise<EventType | null> {
    const known = this.types.get(schemaId);
    if (known !== undefined) return known;
    let type: EventType | null = null;
    if (this.registry !== undefined) {
      try {
        const schema = JSON.parse(await this.registry.getById(schemaId)) as { name?: string; namespace?: string };
        const fullName = schema.name?.includes('.') ? schema.name : `${schema.namespace ?? ''}.${schema.name ?? ''}`;
        const candidate = BY_FULL_NAME.get(fullName);
        if (candidate !== undefined && beginsWithEnvelope(schema)) type = candidate;
      } catch {
        type = null; // unknown id: the record is not readable as an event (the caller's decode reports why)
      }
    }
    this.types.set(schemaId, type);
    return type;
  }

  /** The schema id of a wire-format value, or -1 when it is not in the wire format. */
  static schemaId(value: Buffer | null): number {
    return schemaIdOf(value);
  }

  /**
   * The type of a record's event when its schema id is already known; undefined when the id
   * must first be `resolve`d; null when it is not an event with the envelope.
   */
  typeOf(value: Buffer | null): EventType | null | undefined {
    const id = EnvelopePeeker.schemaId(value);
    if (id < 0) return null;
    return this.types.get(id);
  }

  /**
   * The envelope of a wire-format event whose schema id is known (call `resolve` first for new
   * ids). Null when the value is not a readable event: callers fall back to the codec, which
   * says why.
   */
  peek(value: Buffer | null): PeekedEnvelope | null {
    const type = this.typeOf(value);
    if (type === null || type === undefined) return null;
    const r = new Reader(value!);
    r.pos = WIRE_HEADER_BYTES;
    try {
      const eventId = r.string();
      const occurredAt = r.long();
      const requestId = r.nullableString();
      const traceId = r.nullableString();
      const producer = r.string();
      const causationId = r.nullableString();
      let clockEntries = 0;
      let clockSum = 0;
      for (;;) {
        let count = r.long();
        if (count === 0) break;
        if (count < 0) {
          count = -count;
          r.long(); // block size in bytes
        }
        for (let i = 0; i < count; i++) {
          r.skipString(); // topic
          r.long(); // partition
          clockSum += r.long();
        }
        clockEntries += count;
      }
      return { type, eventId, occurredAt, requestId, traceId, producer, causationId, clockEntries, clockSum };
    } catch {
      return null;
    }
  }

  /**
   * The clock of a wire-format event whose schema id is known, as ClockEntry objects (topic
   * names interned: a clock names the same few topics over and over). Null when not readable.
   */
  clock(value: Buffer | null): ClockEntry[] | null {
    const c = new CompactClock();
    return this.readClock(value, c) ? this.entries(c) : null;
  }

  /** A compact clock as ClockEntry objects. */
  /**
   * A compact clock as ClockEntry objects. Entries equal to the same entry of `previous` are that
   * very object (clocks are never modified; one router's consecutive clocks differ in a few
   * partitions only, and verify makes one per decision).
   */
  entries(c: CompactClock, previous?: readonly ClockEntry[]): ClockEntry[] {
    const out: ClockEntry[] = new Array<ClockEntry>(c.n);
    const topics = this.topics;
    for (let i = 0; i < c.n; i++) {
      const topic = topics.name(c.topic[i]!);
      const partition = c.partition[i]!;
      const offset = c.offset[i]!;
      const last = previous?.[i];
      out[i] = last !== undefined && last.offset === offset && last.partition === partition && last.topic === topic ? last : { topic, partition, offset };
    }
    return out;
  }

  /** Topic names of clocks, interned: a clock names the same few topics over and over. */
  private readonly topics = new Interner();
  /** Producers of listed decisions, interned. */
  private readonly producers = new Interner();

  /** The id of a topic name (interned on first sight). */
  topicId(name: string): number {
    return this.topics.id(name);
  }

  /** The name of an interned topic id (`CompactClock.topic`). */
  topicName(id: number): string {
    return this.topics.name(id);
  }

  /** The name of an interned producer id (`ListedEnvelope.producer`). */
  producerName(id: number): string {
    return this.producers.name(id);
  }

  /**
   * What verify's listing needs of a decision, into `into`, without making a string: occurredAt,
   * the producer (an interned id), Σ clock offsets. False when the value is not readable.
   */
  listed(value: Buffer | null, into: ListedEnvelope): boolean {
    const type = this.typeOf(value);
    if (type === null || type === undefined) return false;
    const r = new Reader(value!);
    r.pos = WIRE_HEADER_BYTES;
    try {
      r.skipString(); // eventId
      into.occurredAt = r.long();
      r.skipNullableString(); // requestId
      r.skipNullableString(); // traceId
      into.producer = this.producers.at(r, new DataView(value!.buffer, value!.byteOffset, value!.byteLength));
      r.skipNullableString(); // causationId
      let clockSum = 0;
      for (;;) {
        let count = r.long();
        if (count === 0) break;
        if (count < 0) {
          count = -count;
          r.long();
        }
        for (let i = 0; i < count; i++) {
          r.skipString(); // topic
          r.long(); // partition
          clockSum += r.long();
        }
      }
      into.clockSum = clockSum;
      return true;
    } catch {
      return false;
    }
  }

  /**
   * The clock of a wire-format event whose schema id is known, into `into` (reused: no object per
   * entry). False when not readable.
   */
  readClock(value: Buffer | null, into: CompactClock): boolean {
    into.n = 0;
    into.sum = 0;
    const type = this.typeOf(value);
    if (type === null || type === undefined) return false;
    const r = new Reader(value!);
    r.pos = WIRE_HEADER_BYTES;
    try {
      r.skipString(); // eventId
      r.long(); // occurredAt
      for (let i = 0; i < 3; i++) {
        if (i === 2) r.skipString(); // producer (between traceId and causationId)
        if (r.long() === 1) r.skipString();
      }
      const view = new DataView(value!.buffer, value!.byteOffset, value!.byteLength);
      for (;;) {
        let count = r.long();
        if (count === 0) break;
        if (count < 0) {
          count = -count;
          r.long();
        }
        for (let i = 0; i < count; i++) {
          const topic = this.topics.at(r, view);
          const partition = r.long();
          const offset = r.long();
          into.push(topic, partition, offset);
        }
      }
      return true;
    } catch {
      into.n = 0;
      return false;
    }
  }

  /** The requestId alone (the index reads nothing else): cheaper than `peek`. Undefined when the value is not readable. */
  requestId(value: Buffer | null): { type: EventType; requestId: string | null; occurredAt: number } | undefined {
    const type = this.typeOf(value);
    if (type === null || type === undefined) return undefined;
    const r = new Reader(value!);
    r.pos = WIRE_HEADER_BYTES;
    try {
      r.skipString();
      const occurredAt = r.long();
      return { type, requestId: r.nullableString(), occurredAt };
    } catch {
      return undefined;
    }
  }
}
