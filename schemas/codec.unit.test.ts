import { readFileSync } from 'node:fs';
import { describe, expect, it, vi } from 'vitest';
import { SwitchyardError } from '../lib/errors.js';
import { InMemoryRegistry } from '../lib/registry/core.js';
import type { SchemaRegistry } from '../lib/registry/port.js';
import { fixturePaths } from '../scripts/gen-fixtures.js';
import { FIXTURES_DIR, readSchemaFiles } from './catalog.js';
import { EventCodec, leaveOut } from './codec.js';
import { EVENT_SCHEMAS, EVENT_TYPES, type InferenceRequested, type RequestRoutedInit, type SwitchyardEvent } from './generated/events.js';
import { SAMPLE_EVENTS } from './samples.js';
import { frame, unframe } from './wire.js';

async function rejection(p: Promise<unknown>): Promise<SwitchyardError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(SwitchyardError);
    return err as SwitchyardError;
  }
  throw new Error('expected a rejection');
}

function thrown(fn: () => unknown): SwitchyardError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(SwitchyardError);
    return err as SwitchyardError;
  }
  throw new Error('expected a throw');
}

/** InferenceRequested v2 as a test-only schema: v1 plus a defaulted field. */
function inferenceRequestedV2(): object {
  const v1 = JSON.parse(EVENT_SCHEMAS.InferenceRequested.schema) as { fields: object[] };
  return { ...v1, fields: [...v1.fields, { name: 'maxOutputTokens', type: ['null', 'int'], default: null }, { name: 'stream', type: 'boolean', default: false }] };
}

describe('EventCodec', () => {
  it('registers every event under its full record name', async () => {
    const registry = new InMemoryRegistry();
    const codec = await EventCodec.create({ registry });
    expect(await registry.listSubjects()).toEqual(EVENT_TYPES.map((t) => `switchyard.events.${t}`).sort());
    for (const t of EVENT_TYPES) expect((await registry.getLatest(`switchyard.events.${t}`)).id).toBe(codec.schemaId(t));
    // Starting again finds the same ids (registration is idempotent).
    const again = await EventCodec.create({ registry });
    for (const t of EVENT_TYPES) expect(again.schemaId(t)).toBe(codec.schemaId(t));
  });

  it.each(EVENT_TYPES.map((t) => [t]))('round-trips %s', async (type) => {
    const codec = await EventCodec.create({ registry: new InMemoryRegistry() });
    const event = SAMPLE_EVENTS[type];
    const bytes = codec.encode(event);
    expect(unframe(bytes).schemaId).toBe(codec.schemaId(type));
    expect(await codec.decode(bytes)).toEqual(event);
  });

  it('writes exactly the golden fixture bytes behind the wire header', async () => {
    const codec = await EventCodec.create({ registry: new InMemoryRegistry() });
    for (const type of EVENT_TYPES) {
      const { bin } = fixturePaths(FIXTURES_DIR, type, EVENT_SCHEMAS[type].version);
      expect(unframe(codec.encode(SAMPLE_EVENTS[type])).payload.equals(readFileSync(bin)), type).toBe(true);
    }
  });

  it('fills Avro defaults for fields a producer leaves out', async () => {
    const codec = await EventCodec.create({ registry: new InMemoryRegistry() });
    const init: RequestRoutedInit = {
      type: 'RequestRouted',
      eventId: '0194d2a1-7c41-7c02-8d33-6a1f0e9b2c99',
      occurredAt: 1_767_225_600_000,
      producer: 'router-1',
      workerId: 'w1',
      lane: 3,
      model: 'm',
      modelVersion: 'v1',
      modelDigest: 'd'.repeat(64),
      reason: 'LEAST_LOADED',
    };
    const decoded = await codec.decode(codec.encode(init));
    expect(decoded).toEqual({
      ...init,
      requestId: null,
      traceId: null,
      causationId: null,
      clock: [],
      zone: null,
      requestedModel: null,
      degraded: false,
      fallback: false,
      sessionId: null,
      priority: 'NORMAL',
      deadlineAt: null,
      candidates: [],
      pendingDecisions: [],
      policyVersion: '',
      attempt: 1,
      previousWorkerId: null,
      input: Buffer.alloc(0),
      contentType: 'application/json',
      parameters: {},
      cacheable: true,
      request: null,
    });
  });

  it('narrows decoded events by their type tag', async () => {
    const codec = await EventCodec.create({ registry: new InMemoryRegistry() });
    const event: SwitchyardEvent = await codec.decode(codec.encode(SAMPLE_EVENTS.WorkerHeartbeat));
    if (event.type !== 'WorkerHeartbeat') throw new Error('wrong type');
    expect(event.accelerator?.name).toBe('NVIDIA L4');
    expect(event.loadedModels).toHaveLength(2);
  });

  it('handles values larger than its scratch buffer', async () => {
    const codec = await EventCodec.create({ registry: new InMemoryRegistry() });
    const big = { ...SAMPLE_EVENTS.InferenceRequested, input: Buffer.alloc(300_000, 7) };
    const decoded = (await codec.decode(codec.encode(big))) as InferenceRequested;
    expect(decoded.input.equals(big.input)).toBe(true);
    // ...and small ones after that.
    expect(await codec.decode(codec.encode(SAMPLE_EVENTS.WorkerDraining))).toEqual(SAMPLE_EVENTS.WorkerDraining);
  });

  describe('schema evolution', () => {
    it('reads v1 data with a v2 reader that added defaulted fields', async () => {
      const registry = new InMemoryRegistry();
      const v1 = await EventCodec.create({ registry });
      const v2 = await EventCodec.create({ registry, schemas: { InferenceRequested: inferenceRequestedV2() } });
      expect(v2.schemaId('InferenceRequested')).not.toBe(v1.schemaId('InferenceRequested'));
      expect(await registry.listVersions('switchyard.events.InferenceRequested')).toEqual([1, 2]);

      const decoded = await v2.decode(v1.encode(SAMPLE_EVENTS.InferenceRequested));
      expect(decoded).toEqual({ ...SAMPLE_EVENTS.InferenceRequested, maxOutputTokens: null, stream: false });
    });

    it('reads v2 data with a v1 reader, which ignores the new fields', async () => {
      const registry = new InMemoryRegistry();
      const v1 = await EventCodec.create({ registry });
      const v2 = await EventCodec.create({ registry, schemas: { InferenceRequested: inferenceRequestedV2() } });
      const written = v2.encode({ ...SAMPLE_EVENTS.InferenceRequested, maxOutputTokens: 256, stream: true } as InferenceRequested);
      expect(await v1.decode(written)).toEqual(SAMPLE_EVENTS.InferenceRequested);
    });

    it('refuses to start with a local schema the registry finds incompatible', async () => {
      const registry = new InMemoryRegistry();
      await EventCodec.create({ registry });
      const v1 = JSON.parse(EVENT_SCHEMAS.InferenceRequested.schema) as { fields: object[] };
      const breaking = { ...v1, fields: [...v1.fields, { name: 'required', type: 'string' }] };
      const err = await rejection(EventCodec.create({ registry, schemas: { InferenceRequested: breaking } }));
      expect(err.code).toBe('SY_ERR_SCHEMA_INCOMPATIBLE');
    });

    it('looks ids up without registering when asked to', async () => {
      const registry = new InMemoryRegistry();
      expect((await rejection(EventCodec.create({ registry, register: false }))).code).toBe('SY_ERR_SCHEMA_NOT_FOUND');
      const writer = await EventCodec.create({ registry });
      const reader = await EventCodec.create({ registry, register: false });
      expect(reader.schemaId('SessionState')).toBe(writer.schemaId('SessionState'));
    });
  });

  describe('caching', () => {
    it('asks the registry once per unknown id, even for concurrent decodes', async () => {
      const registry = new InMemoryRegistry();
      const writer = await EventCodec.create({ registry, schemas: { InferenceRequested: inferenceRequestedV2() } });
      const getById = vi.fn((id: number) => registry.getById(id));
      const reader = await EventCodec.create({ registry: wrap(registry, { getById }) });
      const bytes = writer.encode({ ...SAMPLE_EVENTS.InferenceRequested, maxOutputTokens: 1, stream: false } as InferenceRequested);
      await Promise.all([reader.decode(bytes), reader.decode(bytes), reader.decode(bytes)]);
      await reader.decode(bytes);
      expect(getById).toHaveBeenCalledTimes(1);
      // Its own schemas need no lookup at all.
      await reader.decode(reader.encode(SAMPLE_EVENTS.WorkerJoined));
      expect(getById).toHaveBeenCalledTimes(1);
    });
  });

  describe('decodeKnown', () => {
    it('decodes without a promise once the id is known, and says so when it is not', async () => {
      const registry = new InMemoryRegistry();
      const writer = await EventCodec.create({ registry, schemas: { InferenceRequested: inferenceRequestedV2() } });
      const reader = await EventCodec.create({ registry });
      const own = reader.encode(SAMPLE_EVENTS.RequestRouted);
      expect(reader.decodeKnown(own)).toEqual(await reader.decode(own));
      const newer = writer.encode({ ...SAMPLE_EVENTS.InferenceRequested, maxOutputTokens: 1, stream: false } as InferenceRequested);
      expect(reader.decodeKnown(newer)).toBeUndefined();
      const decoded = await reader.decode(newer);
      expect(reader.decodeKnown(newer)).toEqual(decoded);
    });

    it('throws what decode rejects with', async () => {
      const codec = await EventCodec.create({ registry: new InMemoryRegistry() });
      expect(thrown(() => codec.decodeKnown(Buffer.from([1, 2, 3, 4, 5, 6]))).code).toBe((await rejection(codec.decode(Buffer.from([1, 2, 3, 4, 5, 6])))).code);
      const bytes = codec.encode(SAMPLE_EVENTS.RequestRouted);
      expect(thrown(() => codec.decodeKnown(bytes.subarray(0, 12))).code).toBe('SY_ERR_CODEC_DECODE');
    });
  });

  describe('projections', () => {
    const routed = SAMPLE_EVENTS.RequestRouted;

    it('leaves the named array fields undecoded and reads every other field as the full decode does', async () => {
      expect(routed.candidates.length).toBeGreaterThan(0);
      expect(routed.pendingDecisions.length).toBeGreaterThan(0);
      const codec = await EventCodec.create({ registry: new InMemoryRegistry() });
      const lane = codec.projection({ RequestRouted: ['candidates', 'pendingDecisions'] });
      const bytes = codec.encode(routed);
      const full = await codec.decode(bytes);
      const projected = lane.decodeKnown(bytes)!;
      expect(projected).toEqual({ ...full, candidates: [], pendingDecisions: [] });
      expect(await lane.decode(bytes)).toEqual(projected);
      // A write to a left-out field throws rather than vanishing.
      expect(() => (projected as typeof routed).candidates.push(routed.candidates[0]!)).toThrow(TypeError);
      // Other event types decode in full.
      const done = codec.encode(SAMPLE_EVENTS.InferenceCompleted);
      expect(lane.decodeKnown(done)).toEqual(await codec.decode(done));
    });

    it('reads an older writer version through the registry, like the codec', async () => {
      const registry = new InMemoryRegistry();
      const schemaText = readFileSync(new URL('./avro/RequestRouted.v1.avsc', import.meta.url), 'utf8');
      const old = await EventCodec.create({ registry, schemas: { RequestRouted: schemaText } });
      const codec = await EventCodec.create({ registry });
      const v1 = JSON.parse(schemaText) as { fields: { name: string }[] };
      const oldEvent = Object.fromEntries(v1.fields.map((f) => [f.name, (routed as unknown as Record<string, unknown>)[f.name]]));
      const bytes = old.encode({ ...oldEvent, type: 'RequestRouted' } as RequestRoutedInit);
      const lane = codec.projection(leaveOut(['clock', 'candidates']));
      expect(lane.decodeKnown(bytes)).toBeUndefined();
      const projected = await lane.decode(bytes);
      expect(projected).toEqual({ ...(await codec.decode(bytes)), clock: [], candidates: [] });
      expect(lane.decodeKnown(bytes)).toEqual(projected);
    });

    it('tells a record\'s event type from its schema id without decoding it, once the id is known', async () => {
      const registry = new InMemoryRegistry();
      const codec = await EventCodec.create({ registry });
      const lane = codec.projection(leaveOut(['clock']));
      for (const t of EVENT_TYPES) {
        const bytes = codec.encode(SAMPLE_EVENTS[t]);
        expect(codec.typeOf(bytes)).toBe(t);
        expect(lane.typeOf(bytes)).toBe(t);
      }
      // Written by another version: unknown until decoded once (through the registry).
      const other = await EventCodec.create({ registry, schemas: { InferenceRequested: inferenceRequestedV2() } });
      const v2 = other.encode(SAMPLE_EVENTS.InferenceRequested);
      expect(codec.typeOf(v2)).toBeUndefined();
      await codec.decode(v2);
      expect(codec.typeOf(v2)).toBe('InferenceRequested');
      // Not the wire format, or too short: undefined, and decode says why.
      expect(codec.typeOf(Buffer.from([1, 0, 0, 0, 1, 0]))).toBeUndefined();
      expect(codec.typeOf(Buffer.from([0, 0]))).toBeUndefined();
    });

    it('the shared decoder decodes a record once for all its readers, and freezes what it hands out under the tests', async () => {
      const codec = await EventCodec.create({ registry: new InMemoryRegistry() });
      expect(codec.shared).toBe(codec.shared);
      const bytes = codec.encode(routed);
      const a = codec.shared.decodeKnown(bytes)!;
      expect(codec.shared.decodeKnown(bytes)).toBe(a);
      expect(await codec.shared.decode(bytes)).toBe(a);
      expect(a).toEqual({ ...(await codec.decode(bytes)), candidates: [], pendingDecisions: [] });
      // The same bytes in another buffer (another read of the record): decoded again, equal.
      const copy = Buffer.from(bytes);
      const b = codec.shared.decodeKnown(copy)!;
      expect(b).not.toBe(a);
      expect(b).toEqual(a);
      // Shared, so frozen under the tests: a consumer that writes to one fails its tests.
      expect(Object.isFrozen(a)).toBe(true);
      expect(Object.isFrozen(a.clock)).toBe(true);
      expect(Object.isFrozen(a.clock[0])).toBe(true);
      expect(() => {
        (a as { workerId: string }).workerId = 'another';
      }).toThrow(TypeError);
      // Byte fields cannot be frozen and stay readable views.
      const done = codec.shared.decodeKnown(codec.encode(SAMPLE_EVENTS.InferenceCompleted))!;
      expect(done.type === 'InferenceCompleted' && Buffer.isBuffer(done.output)).toBe(true);
    });

    it('refuses a field that is not an array field of its event', async () => {
      const codec = await EventCodec.create({ registry: new InMemoryRegistry() });
      expect(thrown(() => codec.projection({ RequestRouted: ['workerId'] })).code).toBe('SY_ERR_SCHEMA_INVALID');
      expect(thrown(() => codec.projection({ RequestRouted: ['nope'] })).code).toBe('SY_ERR_SCHEMA_INVALID');
    });

    it('leaveOut names a field in every event that has it, but the kept ones, plus the extra fields', () => {
      const p = leaveOut(['clock', 'candidates'], { keep: ['RequestRouted'], more: { RequestRouted: ['pendingDecisions'] } });
      expect(p.RequestRouted).toEqual(['pendingDecisions']);
      expect(p.RequestRejected).toEqual(['clock', 'candidates']);
      expect(p.InferenceCompleted).toEqual(['clock']);
      for (const t of EVENT_TYPES) if (t !== 'RequestRouted') expect(p[t]).toContain('clock');
      expect(leaveOut(['loadedModels'])).toEqual({ WorkerHeartbeat: ['loadedModels'] });
    });
  });

  describe('writer schemas', () => {
    it('tells the registry\'s text and the record\'s full name of any id, asking once per id', async () => {
      const registry = new InMemoryRegistry();
      const writer = await EventCodec.create({ registry, schemas: { InferenceRequested: inferenceRequestedV2() } });
      const getById = vi.fn((id: number) => registry.getById(id));
      const reader = await EventCodec.create({ registry: wrap(registry, { getById }) });
      const v2 = writer.schemaId('InferenceRequested');
      const [a, b] = await Promise.all([reader.writerSchema(v2), reader.writerSchema(v2)]);
      expect(a).toEqual({ subject: 'switchyard.events.InferenceRequested', schema: await registry.getById(v2) });
      expect(b).toEqual(a);
      const own = reader.schemaId('WorkerJoined');
      expect(await reader.writerSchema(own)).toEqual({ subject: 'switchyard.events.WorkerJoined', schema: await registry.getById(own) });
      await reader.writerSchema(v2);
      expect(getById.mock.calls.map(([id]) => id)).toEqual([v2, own]);
    });

    it('SY_ERR_CODEC_UNKNOWN_SCHEMA for an unknown id; outages stay retriable and are asked again', async () => {
      const registry = new InMemoryRegistry();
      const codec = await EventCodec.create({ registry });
      expect((await rejection(codec.writerSchema(9_999))).code).toBe('SY_ERR_CODEC_UNKNOWN_SCHEMA');
      let down = true;
      const flaky = wrap(registry, {
        getById: (id: number) => (down ? Promise.reject(new SwitchyardError('SY_ERR_REGISTRY_UNAVAILABLE', 'connection refused', { retriable: true })) : registry.getById(id)),
      });
      const reader = await EventCodec.create({ registry: flaky });
      const id = reader.schemaId('SessionState');
      expect((await rejection(reader.writerSchema(id))).retriable).toBe(true);
      down = false;
      expect((await reader.writerSchema(id)).subject).toBe('switchyard.events.SessionState');
    });
  });

  describe('errors', () => {
    it('SY_ERR_CODEC_MAGIC for bytes not in the wire format', async () => {
      const codec = await EventCodec.create({ registry: new InMemoryRegistry() });
      const err = await rejection(codec.decode(Buffer.from('{"model":"m"}')));
      expect([err.code, err.retriable]).toEqual(['SY_ERR_CODEC_MAGIC', false]);
      expect((await rejection(codec.decode(Buffer.from([0, 0])))).code).toBe('SY_ERR_CODEC_MAGIC');
    });

    it('SY_ERR_CODEC_UNKNOWN_SCHEMA for an id the registry does not have', async () => {
      const codec = await EventCodec.create({ registry: new InMemoryRegistry() });
      const err = await rejection(codec.decode(frame(9_999, Buffer.from([0]))));
      expect([err.code, err.retriable, err.detail['schemaId']]).toEqual(['SY_ERR_CODEC_UNKNOWN_SCHEMA', false, 9_999]);
    });

    it('SY_ERR_CODEC_UNKNOWN_SCHEMA for a schema that is not a Switchyard event', async () => {
      const registry = new InMemoryRegistry();
      const codec = await EventCodec.create({ registry });
      const id = await registry.register('other', JSON.stringify({ type: 'record', name: 'Other', namespace: 'elsewhere', fields: [] }));
      const err = await rejection(codec.decode(frame(id, Buffer.alloc(0))));
      expect(err.code).toBe('SY_ERR_CODEC_UNKNOWN_SCHEMA');
      expect(err.message).toMatch(/elsewhere\.Other/);
    });

    it('SY_ERR_CODEC_DECODE for truncated, trailing or garbage payloads', async () => {
      const codec = await EventCodec.create({ registry: new InMemoryRegistry() });
      const good = codec.encode(SAMPLE_EVENTS.WorkerHeartbeat);
      for (const bad of [good.subarray(0, good.length - 3), Buffer.concat([good, Buffer.from([1, 2])]), frame(unframe(good).schemaId, Buffer.alloc(40, 0xff))]) {
        const err = await rejection(codec.decode(bad));
        expect([err.code, err.retriable, err.detail['type']]).toEqual(['SY_ERR_CODEC_DECODE', false, 'WorkerHeartbeat']);
      }
    });

    it('SY_ERR_CODEC_DECODE when the writer schema cannot be read as the local one', async () => {
      const registry = new InMemoryRegistry();
      const codec = await EventCodec.create({ registry });
      await registry.setCompatibility('NONE', 'switchyard.events.WorkerDraining');
      const renamed = JSON.parse(EVENT_SCHEMAS.WorkerDraining.schema) as { fields: { name: string }[] };
      renamed.fields = renamed.fields.map((f) => (f.name === 'workerId' ? { ...f, name: 'worker' } : f));
      const id = await registry.register('switchyard.events.WorkerDraining', renamed);
      const err = await rejection(codec.decode(frame(id, Buffer.alloc(0))));
      expect(err.code).toBe('SY_ERR_CODEC_DECODE');
      expect(err.message).toMatch(/workerId/);
    });

    it('keeps registry outages retriable', async () => {
      const registry = new InMemoryRegistry();
      const writer = await EventCodec.create({ registry, schemas: { InferenceRequested: inferenceRequestedV2() } });
      const down = wrap(registry, {
        getById: () => Promise.reject(new SwitchyardError('SY_ERR_REGISTRY_UNAVAILABLE', 'connection refused', { retriable: true })),
      });
      const reader = await EventCodec.create({ registry: down });
      const err = await rejection(reader.decode(writer.encode({ ...SAMPLE_EVENTS.InferenceRequested, maxOutputTokens: 1, stream: false } as InferenceRequested)));
      expect([err.code, err.retriable]).toEqual(['SY_ERR_REGISTRY_UNAVAILABLE', true]);
    });

    it('SY_ERR_CODEC_ENCODE with the failing paths for values that do not fit', async () => {
      const codec = await EventCodec.create({ registry: new InMemoryRegistry() });
      const bad = { ...SAMPLE_EVENTS.WorkerHeartbeat, lane: 'seventeen', queueDepth: 1.5 } as unknown as SwitchyardEvent;
      const err = thrown(() => codec.encode(bad));
      expect([err.code, err.retriable]).toEqual(['SY_ERR_CODEC_ENCODE', false]);
      expect(err.detail['paths']).toEqual(['lane', 'queueDepth']);
      expect(thrown(() => codec.encode({ ...SAMPLE_EVENTS.WorkerHeartbeat, type: 'Nope' } as unknown as SwitchyardEvent)).code).toBe('SY_ERR_CODEC_ENCODE');
      const missing = { type: 'WorkerDraining', eventId: 'x', occurredAt: 1, producer: 'p', lane: 1 } as unknown as SwitchyardEvent;
      expect(thrown(() => codec.encode(missing)).detail['paths']).toEqual(['workerId']);
    });

    it('refuses a local schema that is not the event record', async () => {
      const err = await rejection(EventCodec.create({ registry: new InMemoryRegistry(), schemas: { WorkerJoined: { type: 'record', name: 'Wrong', fields: [] } } }));
      expect(err.code).toBe('SY_ERR_SCHEMA_INVALID');
    });
  });

  it('decodes every committed fixture through the wire format', async () => {
    const registry = new InMemoryRegistry();
    const codec = await EventCodec.create({ registry });
    for (const file of readSchemaFiles()) {
      const id = await registry.register(file.fullName, file.text);
      const { bin } = fixturePaths(FIXTURES_DIR, file.event, file.version);
      const event = await codec.decode(frame(id, readFileSync(bin)));
      expect(event.type).toBe(file.event);
    }
  });
});

/** A registry that delegates to `inner`, with some methods replaced. */
function wrap(inner: SchemaRegistry, overrides: Partial<SchemaRegistry> = {}): SchemaRegistry {
  return {
    register: (s, x) => inner.register(s, x),
    lookup: (s, x) => inner.lookup(s, x),
    getById: (id) => inner.getById(id),
    getLatest: (s) => inner.getLatest(s),
    getVersion: (s, v) => inner.getVersion(s, v),
    listSubjects: () => inner.listSubjects(),
    listVersions: (s) => inner.listVersions(s),
    checkCompatibility: (s, x, o) => inner.checkCompatibility(s, x, o),
    getCompatibility: ((s?: string, o?: { overrideOnly?: boolean }) => inner.getCompatibility(s as string, o ?? {})) as SchemaRegistry['getCompatibility'],
    setCompatibility: (l, s) => inner.setCompatibility(l, s),
    deleteSubject: (s) => inner.deleteSubject(s),
    deleteVersion: (s, v) => inner.deleteVersion(s, v),
    ...overrides,
  };
}
