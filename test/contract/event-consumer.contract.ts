import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MAX_REQUEST_RECORD_BYTES, deadLetterEventId, deadLetterPolicy, subscribeEvents, type LoggedEvent } from '../../lib/events/subscribe.js';
import type { EventLog, LogRecord } from '../../lib/log/port.js';
import { topicLayout } from '../../lib/log/topics.js';
import { InMemoryRegistry } from '../../lib/registry/core.js';
import { EventCodec } from '../../schemas/codec.js';
import type { DeadLettered, InferenceRequestedInit } from '../../schemas/generated/events.js';
import { uniqueName, waitFor } from '../support/services.js';

/**
 * The typed event consumer over any EventLog adapter: good records are decoded and
 * delivered; bad records go to the dead-letter topic with their original bytes and the
 * error, written by the topic's one owner and skipped by every other consumer, and the
 * partition keeps flowing.
 */
export function testEventConsumer(name: string, factory: () => Promise<{ log: EventLog; cleanup: () => Promise<void> }>): void {
  describe(`event consumer with dead-lettering [${name}]`, () => {
    let log: EventLog;
    let cleanup: () => Promise<void>;
    let codec: EventCodec;
    beforeEach(async () => {
      ({ log, cleanup } = await factory());
      codec = await EventCodec.create({ registry: new InMemoryRegistry() });
    });
    afterEach(async () => {
      await log.close();
      await cleanup();
    });

    const heartbeat = (seq: number) =>
      codec.encode({ type: 'WorkerHeartbeat', eventId: `hb-${seq}`, occurredAt: 1_700_000_000_000 + seq, producer: 'w1', workerId: 'w1', lane: 0, zone: 'a', seq, load: 0.5, queueDepth: 0, inFlight: 0, capacity: 4, cacheHitRatio: 0, loadedModels: [] });

    it('delivers good events in order and dead-letters bad records with their original bytes', async () => {
      const topic = uniqueName('events');
      const deadLetterTopic = uniqueName('deadletter');
      await log.ensureTopics([{ name: topic, partitions: 1 }, { name: deadLetterTopic, partitions: 1 }]);
      const notAvro = Buffer.from('{"json":"is not the wire format"}');
      const unknownSchema = Buffer.from([0, 0, 0, 0x7f, 0x7f, 1, 2, 3]);
      const truncated = heartbeat(99).subarray(0, 12);
      await log.append([
        { topic, partition: 0, value: heartbeat(1) },
        { topic, partition: 0, key: 'bad-1', value: notAvro, headers: { origin: 'test' } },
        { topic, partition: 0, value: heartbeat(2) },
        { topic, partition: 0, value: unknownSchema },
        { topic, partition: 0, value: truncated },
        { topic, partition: 0, value: null },
        { topic, partition: 0, value: heartbeat(3) },
      ]);
      const seen: LoggedEvent[] = [];
      const groupId = uniqueName('consumer');
      const sub = await subscribeEvents(log, {
        groupId,
        topics: [topic],
        codec,
        deadLetterTopic,
        deadLetter: 'write',
        producer: 'test-consumer',
        now: () => 42,
        onEvents: async (batch) => void seen.push(...batch.events),
      });
      await waitFor(() => seen.length === 3, { what: 'three good events' });
      expect(seen.map((e) => (e.event.type === 'WorkerHeartbeat' ? e.event.seq : -1))).toEqual([1, 2, 3]);
      expect(seen.map((e) => e.record.offset)).toEqual([0, 2, 6]);
      await waitFor(async () => (await log.committedOffsets(groupId, topic))[0] === 7, { what: 'the batch to commit past the bad records' });
      await sub.close();

      const dead = await Promise.all((await log.read({ topic: deadLetterTopic, partition: 0, from: 0 })).map((r) => codec.decode(r.value!)));
      expect(dead).toHaveLength(4);
      const [first, second, third, fourth] = dead as DeadLettered[];
      expect(first).toMatchObject({ originalTopic: topic, originalPartition: 0, originalOffset: 1, consumerGroup: groupId, errorCode: 'SY_ERR_CODEC_MAGIC', producer: 'test-consumer', occurredAt: 42 });
      expect(Buffer.from(first!.originalValue!)).toEqual(notAvro);
      expect(Buffer.from(first!.originalKey!).toString()).toBe('bad-1');
      expect(Buffer.from(first!.originalHeaders['origin']!).toString()).toBe('test');
      expect(first!.eventId).toBe(deadLetterEventId({ topic, partition: 0, offset: 1 }));
      expect(second).toMatchObject({ originalOffset: 3, errorCode: 'SY_ERR_CODEC_UNKNOWN_SCHEMA' });
      expect(Buffer.from(second!.originalValue!)).toEqual(unknownSchema);
      expect(third).toMatchObject({ originalOffset: 4, errorCode: 'SY_ERR_CODEC_DECODE' });
      expect(fourth).toMatchObject({ originalOffset: 5, errorCode: 'SY_ERR_CODEC_DECODE', originalValue: null });
    });

    it('with deliverUndecodable, hands over the records that did not decode too, after their dead letters', async () => {
      const topic = uniqueName('events');
      const deadLetterTopic = uniqueName('deadletter');
      await log.ensureTopics([{ name: topic, partitions: 1 }, { name: deadLetterTopic, partitions: 1 }]);
      const notAvro = Buffer.from('not the wire format');
      await log.append([
        { topic, partition: 0, value: heartbeat(1) },
        { topic, partition: 0, key: 'bad-1', value: notAvro },
        { topic, partition: 0, value: null },
      ]);
      const groupId = uniqueName('consumer');
      const events: number[] = [];
      const undecodable: LogRecord[] = [];
      let deadLettersFirst = true;
      const sub = await subscribeEvents(log, {
        groupId,
        topics: [topic],
        codec,
        deadLetterTopic,
        deadLetter: 'write',
        producer: 'test',
        now: () => 0,
        deliverUndecodable: true,
        onEvents: async (batch) => {
          events.push(...batch.events.map((e) => e.record.offset));
          for (const r of batch.undecodable ?? []) {
            deadLettersFirst &&= (await log.endOffsets(deadLetterTopic))[0]! > 0;
            undecodable.push(r);
          }
        },
      });
      await waitFor(() => undecodable.length === 2, { what: 'the two undecodable records' });
      // A batch of nothing but bad records is handed over as well.
      await log.append([{ topic, partition: 0, value: Buffer.from('also bad') }]);
      await waitFor(async () => (await log.committedOffsets(groupId, topic))[0] === 4, { what: 'the commit past the last bad record' });
      await sub.close();
      expect(events).toEqual([0]);
      expect(undecodable.map((r) => [r.offset, r.key?.toString() ?? null, r.value])).toEqual([
        [1, 'bad-1', notAvro],
        [2, null, null],
        [3, null, Buffer.from('also bad')],
      ]);
      expect(deadLettersFirst).toBe(true);
    });

    it('redelivers (does not dead-letter) when the handler fails, then commits once it succeeds', async () => {
      const topic = uniqueName('events');
      const deadLetterTopic = uniqueName('deadletter');
      await log.ensureTopics([{ name: topic, partitions: 1 }, { name: deadLetterTopic, partitions: 1 }]);
      await log.append([{ topic, partition: 0, value: heartbeat(1) }]);
      let calls = 0;
      const groupId = uniqueName('consumer');
      const sub = await subscribeEvents(log, {
        groupId,
        topics: [topic],
        codec,
        deadLetterTopic,
        deadLetter: 'write',
        producer: 'test',
        now: () => 0,
        onEvents: async () => {
          calls++;
          if (calls === 1) throw new Error('transient handler failure');
        },
      });
      await waitFor(() => calls >= 2, { what: 'redelivery' });
      await waitFor(async () => (await log.committedOffsets(groupId, topic))[0] === 1, { what: 'commit after success' });
      await sub.close();
      expect((await log.endOffsets(deadLetterTopic))[0]).toBe(0);
    });

    it('one dead letter per bad record: the owner writes it, every other consumer of the topic skips and counts it', async () => {
      const topic = uniqueName('events');
      const deadLetterTopic = uniqueName('deadletter');
      await log.ensureTopics([{ name: topic, partitions: 2 }, { name: deadLetterTopic, partitions: 1 }]);
      const bad = [Buffer.from('not avro'), Buffer.from([0, 0, 0, 0x7f, 0x7e, 9]), heartbeat(7).subarray(0, 10)];
      await log.append([
        { topic, partition: 0, value: heartbeat(1) },
        { topic, partition: 0, value: bad[0]! },
        { topic, partition: 1, value: bad[1]! },
        { topic, partition: 1, value: heartbeat(2) },
        { topic, partition: 1, value: bad[2]! },
      ]);
      const consume = async (deadLetter: 'write' | 'skip') => {
        const groupId = uniqueName(`consumer-${deadLetter}`);
        const seen: number[] = [];
        const skipped: [number, number, string][] = [];
        const sub = await subscribeEvents(log, {
          groupId,
          topics: [topic],
          codec,
          deadLetterTopic,
          deadLetter,
          producer: `test-${deadLetter}`,
          now: () => 1,
          onSkipped: (r, code) => skipped.push([r.partition, r.offset, code]),
          onEvents: async (batch) => void seen.push(...batch.events.map((e) => (e.event.type === 'WorkerHeartbeat' ? e.event.seq : -1))),
        });
        await waitFor(async () => (await log.committedOffsets(groupId, topic)).join() === '2,3', { what: `the ${deadLetter} consumer to commit past the bad records` });
        await sub.close();
        return { seen: seen.sort(), skipped: skipped.sort(), counts: sub.undecodable() };
      };
      const [writer, skipper, another] = await Promise.all([consume('write'), consume('skip'), consume('skip')]);
      expect(writer).toEqual({ seen: [1, 2], skipped: [], counts: { deadLettered: 3, skipped: 0 } });
      const skippedAll = [
        [0, 1, 'SY_ERR_CODEC_MAGIC'],
        [1, 0, 'SY_ERR_CODEC_UNKNOWN_SCHEMA'],
        [1, 2, 'SY_ERR_CODEC_DECODE'],
      ];
      expect(skipper).toEqual({ seen: [1, 2], skipped: skippedAll, counts: { deadLettered: 0, skipped: 3 } });
      expect(another).toEqual(skipper);

      const dead = await Promise.all((await log.read({ topic: deadLetterTopic, partition: 0, from: 0 })).map((r) => codec.decode(r.value!) as Promise<DeadLettered>));
      expect(dead.map((d) => [d.originalPartition, d.originalOffset, d.producer]).sort()).toEqual([
        [0, 1, 'test-write'],
        [1, 0, 'test-write'],
        [1, 2, 'test-write'],
      ]);
      expect(dead.map((d) => Buffer.from(d.originalValue!)).sort(Buffer.compare)).toEqual([...bad].sort(Buffer.compare));
    });

    it("a dead letter's id is its record's position only: a second writer (another group) writes the same id", async () => {
      const topic = uniqueName('events');
      const deadLetterTopic = uniqueName('deadletter');
      await log.ensureTopics([{ name: topic, partitions: 1 }, { name: deadLetterTopic, partitions: 1 }]);
      await log.append([{ topic, partition: 0, value: Buffer.from('bad') }]);
      for (const groupId of [uniqueName('first'), uniqueName('second')]) {
        const sub = await subscribeEvents(log, { groupId, topics: [topic], codec, deadLetterTopic, deadLetter: 'write', producer: groupId, now: () => 0, onEvents: async () => {} });
        await waitFor(async () => (await log.committedOffsets(groupId, topic))[0] === 1, { what: `${groupId} to commit` });
        await sub.close();
      }
      const dead = await Promise.all((await log.read({ topic: deadLetterTopic, partition: 0, from: 0 })).map((r) => codec.decode(r.value!) as Promise<DeadLettered>));
      expect(dead).toHaveLength(2);
      expect(new Set(dead.map((d) => d.consumerGroup)).size).toBe(2);
      expect(dead.map((d) => d.eventId)).toEqual([deadLetterEventId({ topic, partition: 0, offset: 0 }), deadLetterEventId({ topic, partition: 0, offset: 0 })]);
    });

    it('an oversized request is a bad record: the router dead-letters it with its original bytes, the sink skips it and still gets it raw', async () => {
      const layout = topicLayout({ prefix: `${uniqueName('oversize')}.`, lanes: 2 });
      await log.ensureTopics([layout.requests, layout.deadletter]);
      const request = (requestId: string, inputBytes: number): Buffer => {
        const e: InferenceRequestedInit = { type: 'InferenceRequested', eventId: requestId, occurredAt: 1, requestId, producer: 'client', model: 'm', input: Buffer.alloc(inputBytes, 7) };
        return codec.encode(e);
      };
      const big = request('big', MAX_REQUEST_RECORD_BYTES + 50_000);
      const fits = request('fits', MAX_REQUEST_RECORD_BYTES - 1_000);
      expect(big.length).toBeGreaterThan(MAX_REQUEST_RECORD_BYTES);
      expect(fits.length).toBeLessThanOrEqual(MAX_REQUEST_RECORD_BYTES);
      await log.append([
        { topic: layout.requests.name, partition: 3, key: 'big', value: big },
        { topic: layout.requests.name, partition: 3, key: 'fits', value: fits },
      ]);
      const consume = async (role: 'router' | 'sink') => {
        const groupId = uniqueName(role);
        const decoded: string[] = [];
        const raw: number[] = [];
        const sub = await subscribeEvents(log, {
          groupId,
          topics: [layout.requests.name],
          codec,
          deadLetterTopic: layout.deadletter.name,
          deadLetter: deadLetterPolicy(role, layout),
          producer: role,
          now: () => 5,
          deliverUndecodable: role === 'sink',
          onEvents: async (batch) => {
            decoded.push(...batch.events.map((e) => e.event.requestId ?? ''));
            raw.push(...(batch.undecodable ?? []).map((r) => r.offset));
          },
        });
        await waitFor(async () => (await log.committedOffsets(groupId, layout.requests.name))[3] === 2, { what: `the ${role} to commit past both` });
        await sub.close();
        return { decoded, raw, counts: sub.undecodable() };
      };
      expect(await consume('router')).toEqual({ decoded: ['fits'], raw: [], counts: { deadLettered: 1, skipped: 0 } });
      expect(await consume('sink')).toEqual({ decoded: ['fits'], raw: [0], counts: { deadLettered: 0, skipped: 1 } });
      const dead = await Promise.all((await log.read({ topic: layout.deadletter.name, partition: 0, from: 0 })).map((r) => codec.decode(r.value!) as Promise<DeadLettered>));
      expect(dead).toHaveLength(1);
      expect(dead[0]).toMatchObject({ originalTopic: layout.requests.name, originalPartition: 3, originalOffset: 0, errorCode: 'SY_ERR_CODEC_TOO_LARGE', producer: 'router' });
      expect(Buffer.from(dead[0]!.originalValue!).equals(big)).toBe(true);
    });
  });
}
