import avro from 'avsc';
import { SwitchyardError, errorMessage } from '../lib/errors.js';
import { IDENTIFIER_FIELDS, identifiers, internIdentifiers } from '../lib/intern.js';
import type { SchemaRegistry } from '../lib/registry/port.js';
import { EVENT_SCHEMAS, EVENT_TYPES, type EventType, type SwitchyardEvent, type SwitchyardEventInit } from './generated/events.js';
import { MAGIC_BYTE, WIRE_HEADER_BYTES, readSchemaId } from './wire.js';
import type { EventDecoder } from '../lib/events/subscribe.js';

/**
 * Parse an event schema the way the codec does (writer and reader alike). Each call gets its
 * own options object: avsc keeps its named-type registry in the options it is given.
 */
export const eventType = (schema: string | object): avro.Type =>
  avro.Type.forSchema((typeof schema === 'string' ? JSON.parse(schema) : schema) as avro.Schema, { omitRecordMethods: true });

export interface EventCodecOptions {
  registry: SchemaRegistry;
  /**
   * Reader (and writer) schemas to use instead of the generated latest ones, by event type:
   * for tests of schema evolution, or a service pinned to an older version. Each must be a
   * record with the event's full name.
   */
  schemas?: Partial<Record<EventType, string | object>>;
  /**
   * Register the local schemas at startup (true), or only look up their ids (false: for
   * producers without write access to the registry; fails if one is not registered).
   * @default true
   */
  register?: boolean;
}

interface Writer {
  id: number;
  type: avro.Type;
}

/** How a schema id's records are read (the codec's own; exported for its projections only). */
export interface Reader {
  event: EventType;
  type: avro.Type;
  /** The schema the record was written with (the reader's own type for the local version). */
  writer: avro.Type;
  /** Undefined when the writer schema is the reader schema. */
  resolver: avro.Resolver | undefined;
  /** The identifier fields of `type` (interned on decode), found once per reader, not per record. */
  identifierFields: readonly string[];
  /** Array fields a projection left out of `type`: each reads as `NOT_DECODED`. */
  omitted?: readonly string[];
}

/**
 * Array fields of an event that a consumer never reads, by event type: its decoder
 * (`EventCodec.projection`) skips them in the bytes instead of building them. A routing decision
 * carries everything its router knew (candidates, pending decisions, a clock entry per consumed
 * partition) so that replay can decide again; the worker that executes it reads a handful of its
 * fields. Only array fields can be left out, so a projected event still has its type's shape.
 */
export type Projection = Partial<Record<EventType, readonly string[]>>;

/** The array fields of each event type's local schema. */
type RecordSchema = { fields: { name: string; type: unknown }[] };
const arrayFieldsOf = ({ fields }: RecordSchema): string[] =>
  fields.filter((f) => typeof f.type === 'object' && f.type !== null && (f.type as { type?: unknown }).type === 'array').map((f) => f.name);
const ARRAY_FIELDS: ReadonlyMap<EventType, readonly string[]> = new Map(EVENT_TYPES.map((event) => [event, arrayFieldsOf(JSON.parse(EVENT_SCHEMAS[event].schema) as RecordSchema)]));

/**
 * A projection that leaves `fields` out of every event type that has them as array fields,
 * except the types in `keep` (whose consumer reads them), plus the fields `more` names.
 */
export function leaveOut(fields: readonly string[], { keep = [], more = {} }: { keep?: readonly EventType[]; more?: Projection } = {}): Projection {
  const out: Projection = {};
  for (const [event, arrays] of ARRAY_FIELDS) {
    const left = keep.includes(event) ? [] : fields.filter((f) => arrays.includes(f));
    const all = [...new Set([...left, ...(more[event] ?? [])])];
    if (all.length > 0) out[event] = all;
  }
  return out;
}

/** What a left-out field reads as: empty, and frozen so that a write to it throws. */
const NOT_DECODED: readonly never[] = Object.freeze([]);

/** Whether `EventCodec.shared` freezes what it hands out (under the tests: a write to a shared event throws there). */
const FREEZE_SHARED = process.env['VITEST'] !== undefined || process.env['SWITCHYARD_FREEZE_SHARED_EVENTS'] === '1';

/** Freezes an event, its arrays and maps, and the records in its arrays; byte fields cannot be frozen and are left as they are. */
function freezeEvent(event: SwitchyardEvent): void {
  const freezeValue = (v: unknown): void => {
    if (v === null || typeof v !== 'object' || ArrayBuffer.isView(v)) return;
    if (Array.isArray(v)) for (const item of v) freezeValue(item);
    else for (const item of Object.values(v)) freezeValue(item);
    Object.freeze(v);
  };
  freezeValue(event);
}

const identifierFieldsOf = (type: avro.Type): readonly string[] => {
  const names = new Set((type as avro.types.RecordType).fields.map((f) => f.name));
  return IDENTIFIER_FIELDS.filter((f) => names.has(f));
};

const INITIAL_SCRATCH_BYTES = 64 * 1024;

/** A writer schema as the registry holds it, with the record's full name (its subject by RecordNameStrategy). */
export interface WriterSchema {
  subject: string;
  schema: string;
}

/**
 * Encodes and decodes Switchyard events in the Confluent wire format (magic byte, schema id,
 * Avro binary), subjects by RecordNameStrategy (`switchyard.events.<Event>`).
 *
 * Decoding resolves the writer's schema (fetched by id once, then cached) to this codec's
 * reader schema of the same record, so data written with older or newer compatible versions
 * reads as the local version. Parsed types and resolvers are cached per schema id; encode and
 * decode on a cached id do no JSON work and no I/O.
 *
 * Errors (all `retriable: false` unless the registry is unreachable):
 * `SY_ERR_CODEC_MAGIC` not in the wire format, `SY_ERR_CODEC_UNKNOWN_SCHEMA` id not in the
 * registry or not a Switchyard event, `SY_ERR_CODEC_DECODE` payload does not decode or the
 * writer schema cannot be read as the local one, `SY_ERR_CODEC_ENCODE` value does not fit the
 * schema (with the failing paths).
 */
export class EventCodec {
  private readonly registry: SchemaRegistry;
  private readonly writers: Map<EventType, Writer>;
  private readonly eventsByName: Map<string, { event: EventType; type: avro.Type; text: string }>;
  private readonly readers = new Map<number, Reader>();
  private readonly pending = new Map<number, Promise<Reader>>();
  private readonly writerSchemas = new Map<number, Promise<WriterSchema>>();
  private scratch = Buffer.allocUnsafe(INITIAL_SCRATCH_BYTES);
  private sharedDecoder: ProjectedDecoder | undefined;

  private constructor(
    registry: SchemaRegistry,
    writers: Map<EventType, Writer>,
    eventsByName: Map<string, { event: EventType; type: avro.Type; text: string }>,
  ) {
    this.registry = registry;
    this.writers = writers;
    this.eventsByName = eventsByName;
    for (const [event, writer] of writers) this.readers.set(writer.id, { event, type: writer.type, writer: writer.type, resolver: undefined, identifierFields: identifierFieldsOf(writer.type) });
  }

  /** Parse the local schemas, register them (or look up their ids), and return a ready codec. */
  static async create({ registry, schemas = {}, register = true }: EventCodecOptions): Promise<EventCodec> {
    const local = EVENT_TYPES.map((event) => {
      const override = schemas[event];
      const text = override === undefined ? EVENT_SCHEMAS[event].schema : typeof override === 'string' ? JSON.stringify(JSON.parse(override)) : JSON.stringify(override);
      let type: avro.Type;
      try {
        type = eventType(text);
      } catch (err) {
        throw new SwitchyardError('SY_ERR_SCHEMA_INVALID', `schema for ${event} is invalid: ${errorMessage(err)}`, { cause: err, detail: { event } });
      }
      const fullName = EVENT_SCHEMAS[event].fullName;
      if (type.name !== fullName) {
        throw new SwitchyardError('SY_ERR_SCHEMA_INVALID', `schema for ${event} must be the record ${fullName}, got ${type.name ?? type.typeName}`, {
          detail: { event },
        });
      }
      return { event, fullName, text, type };
    });
    const ids = await Promise.all(
      local.map(async ({ fullName, text }) => (register ? registry.register(fullName, text) : (await registry.lookup(fullName, text)).id)),
    );
    const writers = new Map<EventType, Writer>();
    const byName = new Map<string, { event: EventType; type: avro.Type; text: string }>();
    local.forEach(({ event, fullName, text, type }, i) => {
      writers.set(event, { id: ids[i]!, type });
      byName.set(fullName, { event, type, text });
    });
    return new EventCodec(registry, writers, byName);
  }

  /** The registry id this codec writes `event` with. */
  schemaId(event: EventType): number {
    const writer = this.writers.get(event);
    if (!writer) throw new SwitchyardError('SY_ERR_CODEC_ENCODE', `unknown event type ${JSON.stringify(event)}`, { detail: { type: event } });
    return writer.id;
  }

  /** An event in the wire format. Fields with Avro defaults may be left out. */
  encode(event: SwitchyardEventInit): Buffer {
    const writer = this.writers.get(event?.type);
    if (!writer) {
      throw new SwitchyardError('SY_ERR_CODEC_ENCODE', `unknown event type ${JSON.stringify(event?.type)}`, { detail: { type: event?.type } });
    }
    let end: number;
    try {
      end = writer.type.encode(event, this.scratch, WIRE_HEADER_BYTES);
      if (end < 0) {
        this.scratch = Buffer.allocUnsafe(2 * (this.scratch.length - end));
        end = writer.type.encode(event, this.scratch, WIRE_HEADER_BYTES);
      }
    } catch (err) {
      const paths: string[] = [];
      writer.type.isValid(event, { errorHook: (path) => paths.push(path.join('.')) });
      throw new SwitchyardError('SY_ERR_CODEC_ENCODE', `${event.type} does not fit its schema${paths.length ? ` at ${paths.join(', ')}` : ''}: ${errorMessage(err)}`, {
        cause: err,
        detail: { type: event.type, paths },
      });
    }
    const out = Buffer.allocUnsafe(end);
    this.scratch.copy(out, 0, 0, end);
    out[0] = MAGIC_BYTE;
    out.writeInt32BE(writer.id, 1);
    return out;
  }

  /**
   * An event from the wire format, as the local schema version of its record. Byte fields are
   * views into `buf`. Asks the registry only for a schema id not seen before.
   */
  async decode(buf: Buffer): Promise<SwitchyardEvent> {
    const id = readSchemaId(buf);
    const reader = this.readers.get(id) ?? (await this.resolve(id));
    return this.read(reader, id, buf);
  }

  /**
   * `decode` without a promise when the record's schema id has been seen (the steady state):
   * undefined when it has not, and the caller awaits `decode`. Throws what `decode` rejects with.
   */
  decodeKnown(buf: Buffer): SwitchyardEvent | undefined {
    const id = readSchemaId(buf);
    const reader = this.readers.get(id);
    return reader === undefined ? undefined : this.read(reader, id, buf);
  }

  /**
   * The event type of a record in the wire format, from its schema id alone (one schema per
   * event type), without decoding it: undefined when the id has not been seen yet or the bytes
   * are not in the wire format (`decode` then says why). A fold skips the types it ignores with it.
   */
  typeOf(buf: Buffer): EventType | undefined {
    if (buf.length < WIRE_HEADER_BYTES || buf[0] !== MAGIC_BYTE) return undefined;
    return this.readers.get(buf.readInt32BE(1))?.event;
  }

  /**
   * A decoder of the same records that leaves out array fields a consumer never reads (see
   * `Projection`): they are skipped in the bytes, not built, and read as an empty frozen array.
   * Throws `SY_ERR_SCHEMA_INVALID` when a named field is not an array field of its event.
   */
  projection(omit: Projection): ProjectedDecoder {
    return new ProjectedDecoder(this, omit);
  }

  /**
   * The decoder the consumers of one process share: a decision's candidates and pending
   * decisions left out (only replay reads them, from the log's bytes), and each record decoded
   * once for all of them. In `switchyard up` a request's records are read by three or four
   * consumers each (the router's view, the controller, the worker, the gateway's tracker); the
   * embedded log hands them the same record objects (`PartitionLog.readCached`), and this
   * decoder remembers what it decoded by the record's bytes (a WeakMap on the value buffer: an
   * entry lives as long as some consumer holds the record; a log's record buffers are never
   * written after they are handed out, by us or by the Kafka clients). The event is shared, so its readers
   * must not change it: under the tests (`VITEST`, or `SWITCHYARD_FREEZE_SHARED_EVENTS=1`) each
   * is frozen, so that a write throws.
   */
  get shared(): ProjectedDecoder {
    this.sharedDecoder ??= new ProjectedDecoder(this, leaveOut(['candidates', 'pendingDecisions']), { memo: true });
    return this.sharedDecoder;
  }

  /** The schema text this codec reads `event` as (the generated latest, or the override it was given). */
  localSchema(event: EventType): string {
    return this.eventsByName.get(EVENT_SCHEMAS[event].fullName)!.text;
  }

  /** The reader of a schema id: cached, or resolved through the registry once (for `ProjectedDecoder`). */
  readerOf(id: number): Reader | Promise<Reader> {
    return this.readers.get(id) ?? this.resolve(id);
  }

  /**
   * The schema text the registry holds under `id`, and its record's full name: what an archive
   * of the log keeps so it decodes without the registry. Asks the registry once per id (a
   * failed ask is asked again next time). `SY_ERR_CODEC_UNKNOWN_SCHEMA` when the id is not
   * there or is not a named record; registry outages stay retriable.
   */
  writerSchema(id: number): Promise<WriterSchema> {
    let known = this.writerSchemas.get(id);
    if (!known) {
      known = this.fetchWriterSchema(id);
      this.writerSchemas.set(id, known);
      known.catch(() => this.writerSchemas.delete(id));
    }
    return known;
  }

  private async fetchWriterSchema(id: number): Promise<WriterSchema> {
    let schema: string;
    try {
      schema = await this.registry.getById(id);
    } catch (err) {
      if (err instanceof SwitchyardError && err.retriable) throw err;
      throw new SwitchyardError('SY_ERR_CODEC_UNKNOWN_SCHEMA', `schema id ${id} is not in the registry: ${errorMessage(err)}`, { cause: err, detail: { schemaId: id } });
    }
    let subject: string | undefined;
    try {
      subject = eventType(schema).name;
    } catch (err) {
      throw new SwitchyardError('SY_ERR_CODEC_UNKNOWN_SCHEMA', `schema id ${id} does not parse: ${errorMessage(err)}`, { cause: err, detail: { schemaId: id } });
    }
    if (subject === undefined) throw new SwitchyardError('SY_ERR_CODEC_UNKNOWN_SCHEMA', `schema id ${id} is not a named record`, { detail: { schemaId: id } });
    return { subject, schema };
  }

  /** `buf` (wire format, schema `id`) decoded with `reader`: the codec's own or a projection's. */
  read(reader: Reader, id: number, buf: Buffer): SwitchyardEvent {
    let value: Record<string, unknown>;
    try {
      value = reader.type.fromBuffer(buf.subarray(WIRE_HEADER_BYTES), reader.resolver) as Record<string, unknown>;
    } catch (err) {
      throw new SwitchyardError('SY_ERR_CODEC_DECODE', `payload with schema id ${id} does not decode as ${reader.event}: ${errorMessage(err)}`, {
        cause: err,
        detail: { schemaId: id, type: reader.event },
      });
    }
    value['type'] = reader.event;
    internIdentifiers(value, identifiers, reader.identifierFields);
    if (reader.omitted !== undefined) for (const field of reader.omitted) value[field] = NOT_DECODED;
    return value as unknown as SwitchyardEvent;
  }

  private resolve(id: number): Promise<Reader> {
    let pending = this.pending.get(id);
    if (!pending) {
      pending = this.fetchReader(id).finally(() => this.pending.delete(id));
      this.pending.set(id, pending);
    }
    return pending;
  }

  private async fetchReader(id: number): Promise<Reader> {
    let text: string;
    try {
      text = await this.registry.getById(id);
    } catch (err) {
      if (err instanceof SwitchyardError && err.retriable) throw err;
      throw new SwitchyardError('SY_ERR_CODEC_UNKNOWN_SCHEMA', `schema id ${id} is not in the registry: ${errorMessage(err)}`, {
        cause: err,
        detail: { schemaId: id },
      });
    }
    let writer: avro.Type;
    try {
      writer = eventType(text);
    } catch (err) {
      throw new SwitchyardError('SY_ERR_CODEC_UNKNOWN_SCHEMA', `schema id ${id} does not parse: ${errorMessage(err)}`, { cause: err, detail: { schemaId: id } });
    }
    const local = writer.name === undefined ? undefined : this.eventsByName.get(writer.name);
    if (!local) {
      throw new SwitchyardError('SY_ERR_CODEC_UNKNOWN_SCHEMA', `schema id ${id} is ${writer.name ?? writer.typeName}, not a Switchyard event`, {
        detail: { schemaId: id, name: writer.name },
      });
    }
    let resolver: avro.Resolver | undefined;
    if (JSON.stringify(JSON.parse(text)) !== local.text) {
      try {
        resolver = local.type.createResolver(writer);
      } catch (err) {
        throw new SwitchyardError('SY_ERR_CODEC_DECODE', `schema id ${id} of ${local.event} cannot be read as the local version: ${errorMessage(err)}`, {
          cause: err,
          detail: { schemaId: id, type: local.event },
        });
      }
    }
    const reader: Reader = { event: local.event, type: local.type, writer, resolver, identifierFields: identifierFieldsOf(local.type) };
    this.readers.set(id, reader);
    return reader;
  }
}

/** `EventCodec.projection`: the codec's decoding with some array fields left out, its encoding as is. */
export class ProjectedDecoder implements EventDecoder {
  /** Readers by schema id: projected, or the codec's own when the id's event has nothing left out. */
  private readonly readers = new Map<number, Reader>();
  /** The projected reader type of each event that has fields left out. */
  private readonly types = new Map<EventType, { type: avro.Type; omitted: readonly string[] }>();

  /** Decoded events by the record bytes they came from (`EventCodec.shared`), when memoizing. */
  private readonly memo: WeakMap<Buffer, SwitchyardEvent> | undefined;

  constructor(
    private readonly codec: EventCodec,
    omit: Projection,
    { memo = false }: { memo?: boolean } = {},
  ) {
    this.memo = memo ? new WeakMap() : undefined;
    for (const [event, fields] of Object.entries(omit) as [EventType, readonly string[]][]) {
      if (fields.length === 0) continue;
      const schema = JSON.parse(codec.localSchema(event)) as RecordSchema;
      const arrays = arrayFieldsOf(schema);
      for (const name of fields) {
        if (!arrays.includes(name)) throw new SwitchyardError('SY_ERR_SCHEMA_INVALID', `a projection of ${event} can leave out array fields only; ${name} is not one`, { detail: { event, field: name } });
      }
      schema.fields = schema.fields.filter((f) => !fields.includes(f.name));
      this.types.set(event, { type: eventType(schema), omitted: [...fields] });
    }
  }

  async decode(buf: Buffer): Promise<SwitchyardEvent> {
    const known = this.decodeKnown(buf);
    if (known !== undefined) return known;
    const id = readSchemaId(buf);
    return this.remember(buf, this.codec.read(this.project(id, await this.codec.readerOf(id)), id, buf));
  }

  decodeKnown(buf: Buffer): SwitchyardEvent | undefined {
    const seen = this.memo?.get(buf);
    if (seen !== undefined) return seen;
    const id = readSchemaId(buf);
    let reader = this.readers.get(id);
    if (reader === undefined) {
      const base = this.codec.readerOf(id);
      if (base instanceof Promise) return undefined;
      reader = this.project(id, base);
    }
    return this.remember(buf, this.codec.read(reader, id, buf));
  }

  private remember(buf: Buffer, event: SwitchyardEvent): SwitchyardEvent {
    if (this.memo === undefined) return event;
    if (FREEZE_SHARED) freezeEvent(event);
    this.memo.set(buf, event);
    return event;
  }

  encode(event: SwitchyardEventInit): Buffer {
    return this.codec.encode(event);
  }

  /** `EventCodec.typeOf`. */
  typeOf(buf: Buffer): EventType | undefined {
    return this.codec.typeOf(buf);
  }

  writerSchema(id: number): Promise<WriterSchema> {
    return this.codec.writerSchema(id);
  }

  private project(id: number, base: Reader): Reader {
    const projected = this.types.get(base.event);
    let reader = base;
    if (projected !== undefined) {
      let resolver: avro.Resolver;
      try {
        resolver = projected.type.createResolver(base.writer);
      } catch (err) {
        throw new SwitchyardError('SY_ERR_CODEC_DECODE', `schema id ${id} of ${base.event} cannot be read as its projection: ${errorMessage(err)}`, { cause: err, detail: { schemaId: id, type: base.event } });
      }
      reader = { ...base, type: projected.type, resolver, identifierFields: identifierFieldsOf(projected.type), omitted: projected.omitted };
    }
    this.readers.set(id, reader);
    return reader;
  }
}
