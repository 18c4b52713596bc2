import avro from 'avsc';
import { SwitchyardError, errorMessage } from '../lib/errors.js';
import { IDENTIFIER_FIELDS, identifiers, internIdentifiers } from '../lib/intern.js';
import type { SchemaRegistry } from '../lib/registry/port.js';
import { EVENT_SCHEMAS, EVENT_TYPES, type EventType, type SwitchyardEvent, type SwitchyardEventInit } from './generated/events.js';
import { MAGIC_BYTE, WIRE_HEADER_BYTES, readSchemaId } from './wire.js';

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

interface Reader {
  event: EventType;
  type: avro.Type;
  /** Undefined when the writer schema is the reader schema. */
  resolver: avro.Resolver | undefined;
  /** The identifier fields of `type` (interned on decode), found once per reader, not per record. */
  identifierFields: readonly string[];
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

  private constructor(
    registry: SchemaRegistry,
    writers: Map<EventType, Writer>,
    eventsByName: Map<string, { event: EventType; type: avro.Type; text: string }>,
  ) {
    this.registry = registry;
    this.writers = writers;
    this.eventsByName = eventsByName;
    for (const [event, writer] of writers) this.readers.set(writer.id, { event, type: writer.type, resolver: undefined, identifierFields: identifierFieldsOf(writer.type) });
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

  private read(reader: Reader, id: number, buf: Buffer): SwitchyardEvent {
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
    const reader: Reader = { event: local.event, type: local.type, resolver, identifierFields: identifierFieldsOf(local.type) };
    this.readers.set(id, reader);
    return reader;
  }
}
