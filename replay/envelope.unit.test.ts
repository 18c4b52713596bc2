import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { InMemoryRegistry } from '../lib/registry/core.js';
import { FIXTURES_DIR, readSchemaFiles } from '../schemas/catalog.js';
import { EventCodec, eventType } from '../schemas/codec.js';
import { EVENT_SCHEMAS } from '../schemas/generated/events.js';
import { frame } from '../schemas/wire.js';
import { fixturePaths } from '../scripts/gen-fixtures.js';
import { beginsWithEnvelope, CompactClock, EnvelopePeeker } from './envelope.js';

/**
 * The envelope reader agrees with the codec on every golden schema fixture (every event, every
 * schema version, old versions through the registry), and on the edges of Avro longs.
 */
describe('EnvelopePeeker', () => {
  const files = readSchemaFiles();

  it('every schema of every version begins with the envelope (the invariant the reader relies on)', () => {
    for (const f of files) expect(beginsWithEnvelope(JSON.parse(f.text)), `${f.event}.v${f.version}`).toBe(true);
    expect(beginsWithEnvelope({ type: 'record', name: 'X', fields: [{ name: 'eventId', type: 'string' }] })).toBe(false);
  });

  it.each(files.map((f) => [`${f.event}.v${f.version}`, f] as const))('reads the envelope of the %s fixture as the codec decodes it', async (_label, file) => {
    const registry = new InMemoryRegistry();
    const codec = await EventCodec.create({ registry });
    const id = await registry.register(`switchyard.events.${file.event}`, file.text).catch(async () => registry.register(`replay.test.${file.event}.v${file.version}`, file.text));
    const wire = frame(id, readFileSync(fixturePaths(FIXTURES_DIR, file.event, file.version).bin));
    const peeker = EnvelopePeeker.create(codec, registry);
    expect(await peeker.resolve(id)).toBe(file.event);
    const env = peeker.peek(wire)!;
    const event = await codec.decode(wire);
    expect(env).toEqual({
      type: event.type,
      eventId: event.eventId,
      occurredAt: event.occurredAt,
      requestId: event.requestId,
      traceId: event.traceId,
      producer: event.producer,
      causationId: event.causationId,
      clockEntries: event.clock.length,
      clockSum: event.clock.reduce((a, c) => a + c.offset, 0),
    });
    expect(peeker.requestId(wire)).toEqual({ type: event.type, requestId: event.requestId, occurredAt: event.occurredAt });
    // verify's listing and compact clocks read the same.
    const listed = { occurredAt: 0, producer: -1, clockSum: 0 };
    expect(peeker.listed(wire, listed)).toBe(true);
    expect({ occurredAt: listed.occurredAt, producer: peeker.producerName(listed.producer), clockSum: listed.clockSum }).toEqual({ occurredAt: env.occurredAt, producer: env.producer, clockSum: env.clockSum });
    const compact = new CompactClock();
    expect(peeker.readClock(wire, compact)).toBe(true);
    expect(peeker.entries(compact)).toEqual(event.clock);
    expect(peeker.clock(wire)).toEqual(event.clock);
    expect(compact.sum).toBe(env.clockSum);
  });

  it('reads longs at the edges (negative, past 2^31, up to 2^53) and clocks in several blocks', async () => {
    const registry = new InMemoryRegistry();
    const codec = await EventCodec.create({ registry });
    const peeker = EnvelopePeeker.create(codec, registry);
    const offsets = [0, 1, 63, 64, 2 ** 31 + 5, 2 ** 40 + 3, 2 ** 52 + 7];
    for (const occurredAt of [-1, 0, 1_735_689_600_000, -(2 ** 40), 2 ** 52 + 1]) {
      const wire = codec.encode({
        type: 'WorkerDraining',
        eventId: 'e',
        occurredAt,
        producer: 'p',
        clock: offsets.map((offset, partition) => ({ topic: 't', partition, offset })),
        workerId: 'w',
        lane: 0,
      });
      const env = peeker.peek(wire)!;
      expect(env.occurredAt).toBe(occurredAt);
      expect(env.clockEntries).toBe(offsets.length);
      expect(env.clockSum).toBe(offsets.reduce((a, b) => a + b, 0));
    }
    // Arrays written in blocks with byte sizes (negative counts), as other Avro writers may.
    const type = eventType(EVENT_SCHEMAS.WorkerDraining.schema);
    const one = type.toBuffer({ eventId: 'e', occurredAt: 5, requestId: null, traceId: null, producer: 'p', causationId: null, clock: [], workerId: 'w', lane: 0, reason: 'SIGTERM', drainDeadlineAt: null });
    const entry = Buffer.concat([Buffer.from([2, 0x74]), Buffer.from([4]), Buffer.from([20])]); // topic "t", partition 2, offset 10
    const prefix = one.subarray(0, 8); // eventId "e" (2), occurredAt (1), requestId/traceId null (2), producer "p" (2), causationId null (1)
    expect(one[8]).toBe(0); // the empty clock
    // A block of 2 items given as count -2 with its byte size, then a block of 1, then the end.
    const blocks = Buffer.concat([Buffer.from([3, (2 * entry.length) * 2]), entry, entry, Buffer.from([2]), entry, Buffer.from([0])]);
    const wire = frame(codec.schemaId('WorkerDraining'), Buffer.concat([prefix, blocks, one.subarray(9)]));
    expect(peeker.peek(wire)).toMatchObject({ clockEntries: 3, clockSum: 30 });
    const listed = { occurredAt: 0, producer: -1, clockSum: 0 };
    expect(peeker.listed(wire, listed) && listed.clockSum).toBe(30);
    const compact = new CompactClock();
    expect(peeker.readClock(wire, compact) && peeker.entries(compact)).toEqual([1, 2, 3].map(() => ({ topic: 't', partition: 2, offset: 10 })));
    expect(await codec.decode(wire)).toMatchObject({ clock: [{ partition: 2, offset: 10 }, { partition: 2, offset: 10 }, { partition: 2, offset: 10 }] });
  });

  it('answers null for what is not a readable event, and never throws', async () => {
    const registry = new InMemoryRegistry();
    const codec = await EventCodec.create({ registry });
    const peeker = EnvelopePeeker.create(codec, registry);
    const good = codec.encode({ type: 'WorkerDraining', eventId: 'e', occurredAt: 1, producer: 'p', workerId: 'w', lane: 0 });
    expect(peeker.peek(null)).toBeNull();
    expect(peeker.peek(Buffer.from('not avro'))).toBeNull();
    expect(peeker.peek(good.subarray(0, 8))).toBeNull(); // truncated
    const listed = { occurredAt: 0, producer: -1, clockSum: 0 };
    const compact = new CompactClock();
    for (const bad of [null, Buffer.from('not avro'), good.subarray(0, 8), frame(9999, Buffer.from([0]))]) {
      expect(peeker.listed(bad, listed)).toBe(false);
      expect(peeker.readClock(bad, compact)).toBe(false);
      expect(peeker.clock(bad)).toBeNull();
    }
    // A union branch that is neither null nor a string (requestId) is not an envelope.
    const badBranch = Buffer.from(good);
    badBranch[5 + 2 + 1] = 4;
    expect(peeker.peek(badBranch)).toBeNull();
    expect(peeker.listed(badBranch, listed)).toBe(false);
    expect(peeker.typeOf(frame(9999, Buffer.from([0])))).toBeUndefined(); // unknown id: resolve first
    expect(await peeker.resolve(9999)).toBeNull();
    expect(peeker.peek(frame(9999, Buffer.from([0])))).toBeNull();
    const notEvent = await registry.register('other', JSON.stringify({ type: 'record', name: 'Other', fields: [{ name: 'x', type: 'int' }] }));
    expect(await peeker.resolve(notEvent)).toBeNull();
    expect(peeker.typeOf(good)).toBe('WorkerDraining');
  });
});
