import type avro from 'avsc';
import type { SchemaRegistry } from '../lib/registry/port.js';
import { eventType } from '../schemas/codec.js';
import { EVENT_SCHEMAS, EVENT_TYPES, type EventType, type SwitchyardEvent } from '../schemas/generated/events.js';
import { WIRE_HEADER_BYTES } from '../schemas/wire.js';
import { EnvelopePeeker } from './envelope.js';
import { RecordBytes } from './match.js';

/**
 * The router-state fold's decoder: events as `evolve` reads them, decoded without the fields the
 * router state never reads, synchronously once a schema id is prepared.
 *
 * `verify` folds every record of `control`, `heartbeats`, `decisions` and `results` below each
 * decision's clock; a full decode of a RequestRouted (a clock of up to ~80 entries, candidates,
 * the request payload) costs several times what `evolve` does with it. So:
 * - events `evolve` ignores (FOLD_IGNORES) are not decoded at all — their type is in the
 *   schema id;
 * - the others are decoded with their local schema minus PROJECTED_AWAY (avsc skips those bytes
 *   without building values).
 * `replay/decoder.unit.test.ts` pins the equivalence: a fold of projected events and a fold of
 * fully decoded events give deep-equal router states over the golden recordings. A change to
 * `services/router/state.ts` that starts reading a dropped field (or an ignored event) fails it.
 */

/** Events `evolve` (services/router/state.ts) leaves the state unchanged for. */
export const FOLD_IGNORES: ReadonlySet<EventType> = new Set<EventType>(['RequestRejected', 'InferenceRequested', 'InferenceStarted', 'ScaleDecided', 'SessionState', 'DeadLettered', 'ControllerTick', 'ResultSuperseded']);

/** Fields the router state never reads, by event type. */
export const PROJECTED_AWAY: Readonly<Partial<Record<EventType, readonly string[]>>> = {
  // onRouted reads requestId, workerId and attempt.
  RequestRouted: [
    'eventId', 'occurredAt', 'traceId', 'producer', 'causationId', 'clock', 'lane', 'zone', 'model', 'requestedModel', 'modelVersion', 'modelDigest', 'reason', 'degraded',
    'fallback', 'sessionId', 'priority', 'deadlineAt', 'candidates', 'pendingDecisions', 'policyVersion', 'previousWorkerId', 'input', 'contentType', 'parameters', 'cacheable', 'request',
  ],
  // onResult reads occurredAt, requestId, workerId, attempt, and queueMs + computeMs (errorCode when failed).
  InferenceCompleted: [
    'eventId', 'traceId', 'producer', 'causationId', 'clock', 'lane', 'model', 'modelVersion', 'modelDigest', 'output', 'contentType', 'outputSha256', 'cacheHit', 'batchSize',
    'inputTokens', 'outputTokens', 'metrics',
  ],
  InferenceFailed: ['eventId', 'traceId', 'producer', 'causationId', 'clock', 'lane', 'model', 'modelVersion', 'modelDigest', 'errorMessage', 'retriable', 'batchSize', 'queueMs', 'computeMs'],
  // onHeartbeat reads everything else.
  WorkerHeartbeat: ['eventId', 'requestId', 'traceId', 'producer', 'causationId', 'clock', 'cacheHitRatio', 'accelerator', 'cacheHitBuckets', 'bucketMs', 'completed'],
};

/** What a decoder leaves out: the router-state fold's projection, or only some fields (verify's decisions: the clock, read by envelope.ts). */
export interface Projection {
  /** Event types not decoded at all (`decode` answers null). */
  ignore: ReadonlySet<EventType>;
  /** Fields left out, by event type. */
  away: Readonly<Partial<Record<EventType, readonly string[]>>>;
}

export const FOLD_PROJECTION: Projection = { ignore: FOLD_IGNORES, away: PROJECTED_AWAY };
/** Everything but the clock (verify reads decisions this way and the clock with envelope.ts). */
export const ALL_BUT_CLOCK: Projection = { ignore: new Set(), away: { RequestRouted: ['clock'], RequestRejected: ['clock'] } };
/** Every field (a synchronous equivalent of the codec's decode). */
export const FULL: Projection = { ignore: new Set(), away: {} };

interface Prepared {
  type: EventType;
  /** Null: the fold ignores this event type. */
  reader: avro.Type | null;
  resolver: avro.Resolver | undefined;
  /** A projection of the local schema, read in place (match.ts): faster than avsc's resolver, which builds a reader that skips. */
  fields: RecordBytes | undefined;
}

function projectedSchema(type: EventType, projection: Projection): object {
  const schema = JSON.parse(EVENT_SCHEMAS[type].schema) as { fields: { name: string }[] };
  const away = new Set(projection.away[type] ?? []);
  return { ...schema, fields: schema.fields.filter((f) => !away.has(f.name)) };
}

/** An in-place reader of a local event's fields minus `away` (null when match.ts cannot read the schema). */
function keptFields(type: EventType, writer: avro.Type, away: readonly string[]): RecordBytes | undefined {
  const fields = (writer as unknown as { fields: { name: string }[] }).fields.map((f) => f.name).filter((f) => !away.includes(f));
  try {
    return new RecordBytes(writer, type, fields);
  } catch {
    return undefined;
  }
}

export class FoldDecoder {
  private readonly prepared = new Map<number, Prepared | null>();
  private readonly projected = new Map<EventType, avro.Type>();

  constructor(
    private readonly peeker: EnvelopePeeker,
    private readonly registry: SchemaRegistry,
    private readonly localIds: ReadonlyMap<number, EventType>,
    private readonly projection: Projection = FOLD_PROJECTION,
  ) {}

  private projectedType(type: EventType): avro.Type {
    let t = this.projected.get(type);
    if (t === undefined) {
      t = eventType(projectedSchema(type, this.projection));
      this.projected.set(type, t);
    }
    return t;
  }

  /** Learn a schema id (once); false when the value is not a readable event (it is then skipped, as the router skips it). */
  async prepare(value: Buffer | null): Promise<boolean> {
    const id = EnvelopePeeker.schemaId(value);
    if (id < 0) return false;
    if (this.prepared.has(id)) return this.prepared.get(id) !== null;
    const type = await this.peeker.resolve(id);
    let prepared: Prepared | null = null;
    if (type !== null) {
      if (this.projection.ignore.has(type)) prepared = { type, reader: null, resolver: undefined, fields: undefined };
      else {
        const reader = this.projectedType(type);
        try {
          const away = this.projection.away[type];
          const local = this.localIds.get(id) === type;
          const writerText = local ? EVENT_SCHEMAS[type].schema : await this.registry.getById(id);
          const writer = eventType(writerText);
          const fields = local && away !== undefined ? keptFields(type, writer, away) : undefined;
          prepared = { type, reader, resolver: local && away === undefined ? undefined : reader.createResolver(writer), fields };
        } catch {
          prepared = null;
        }
      }
    }
    this.prepared.set(id, prepared);
    return prepared !== null;
  }

  /** Whether `prepare` must run before `decode` for this value. */
  needsPrepare(value: Buffer | null): boolean {
    const id = EnvelopePeeker.schemaId(value);
    return id >= 0 && !this.prepared.has(id);
  }

  /** Whether the fold ignores this (prepared) value's event type. */
  ignores(value: Buffer | null): boolean {
    const id = EnvelopePeeker.schemaId(value);
    return id >= 0 && this.prepared.get(id)?.reader === null;
  }

  /**
   * The event for the fold, or null when the fold ignores it or it does not decode (the router
   * skips undecodable records too). `prepare` must have seen its schema id.
   */
  decode(value: Buffer | null): SwitchyardEvent | null {
    const id = EnvelopePeeker.schemaId(value);
    const p = id < 0 ? null : this.prepared.get(id);
    if (p === null || p === undefined || p.reader === null) return null;
    try {
      if (p.fields !== undefined) return p.fields.read(value!, WIRE_HEADER_BYTES) as unknown as SwitchyardEvent;
      const event = p.reader.fromBuffer(value!.subarray(WIRE_HEADER_BYTES), p.resolver) as Record<string, unknown>;
      event['type'] = p.type;
      return event as unknown as SwitchyardEvent;
    } catch {
      return null;
    }
  }

  /** The local schema ids of a codec, by id. */
  static localIds(schemaId: (t: EventType) => number): Map<number, EventType> {
    return new Map(EVENT_TYPES.map((t) => [schemaId(t), t]));
  }
}
