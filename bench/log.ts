import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openEmbeddedLog } from '../lib/log/embedded/index.js';
import { openKafkaLog } from '../lib/log/kafka/index.js';
import type { EventLog } from '../lib/log/port.js';
import { InMemoryRegistry } from '../lib/registry/core.js';
import { EventCodec } from '../schemas/codec.js';
import { createEventIdFactory } from '../schemas/event-id.js';
import type { BenchContext, BenchResult } from './main.js';
import { median, msSince, round, summarize } from './stats.js';

/**
 * `npm run bench -- log`: append+consume throughput and produce→consume latency of the
 * embedded log and of Kafka via kafkajs, with ~1 KB Avro-encoded InferenceRequested events
 * encoded by the producer and decoded by the consumer (the codec is part of the path).
 */
interface Target {
  name: string;
  open: () => Promise<{ log: EventLog; cleanup: () => Promise<void> }>;
  events: number;
  latencySamples: number;
}

const PAYLOAD = Buffer.alloc(820, 'x');

async function sampleEncoder() {
  const codec = await EventCodec.create({ registry: new InMemoryRegistry() });
  const nextId = createEventIdFactory();
  let n = 0;
  const encode = () => {
    const id = nextId();
    return codec.encode({
      type: 'InferenceRequested',
      eventId: id,
      occurredAt: Date.now(),
      requestId: `req-${n++}`,
      traceId: id,
      producer: 'bench',
      causationId: null,
      clock: [],
      model: 'sentiment-small',
      input: PAYLOAD,
      contentType: 'text/plain',
      sessionId: `session-${n % 1000}`,
      priority: 'NORMAL',
      source: 'KAFKA_CLIENT',
    });
  };
  return { codec, encode, bytes: encode().length };
}

/**
 * Append+consume throughput. `withCodec`: the producer encodes every event (fresh id) and the
 * consumer decodes it, as services do; without it the log carries a pool of pre-encoded
 * Avro events and the consumer only counts them (the log's own cost).
 */
async function throughput(log: EventLog, encode: () => Buffer, codec: EventCodec, events: number, topic: string, withCodec: boolean): Promise<number> {
  const pool = withCodec ? [] : Array.from({ length: 4_096 }, encode);
  const value = withCodec ? encode : (i: number) => pool[i % pool.length]!;
  await log.ensureTopics([{ name: topic, partitions: 12 }]);
  let consumed = 0;
  let done: () => void = () => {};
  const finished = new Promise<void>((r) => (done = r));
  const start = process.hrtime.bigint();
  const sub = await log.subscribe({
    groupId: `${topic}-consumer`,
    topics: [topic],
    maxBatchRecords: 2_000,
    onBatch: async (batch) => {
      if (withCodec) for (const r of batch.records) await codec.decode(r.value!);
      consumed += batch.records.length;
      if (consumed >= events) done();
    },
  });
  const batchSize = 500;
  const inFlight = new Set<Promise<unknown>>();
  for (let sent = 0; sent < events; sent += batchSize) {
    const records = Array.from({ length: Math.min(batchSize, events - sent) }, (_, i) => ({ topic, key: `k${(sent + i) % 4096}`, value: value(sent + i) }));
    const p: Promise<unknown> = log.append(records).finally(() => inFlight.delete(p));
    inFlight.add(p);
    if (inFlight.size >= 8) await Promise.race(inFlight);
  }
  await Promise.all(inFlight);
  await finished;
  const seconds = msSince(start) / 1000;
  await sub.close();
  return events / seconds;
}

async function latency(log: EventLog, encode: () => Buffer, samples: number, topic: string): Promise<number[]> {
  await log.ensureTopics([{ name: topic, partitions: 1 }]);
  let waiting: ((at: bigint) => void) | undefined;
  const sub = await log.subscribe({ groupId: `${topic}-consumer`, topics: [topic], onBatch: async () => waiting?.(process.hrtime.bigint()) });
  const out: number[] = [];
  for (let i = 0; i < samples + 20; i++) {
    const value = encode();
    const seen = new Promise<bigint>((r) => (waiting = r));
    const start = process.hrtime.bigint();
    await log.append([{ topic, partition: 0, value }]);
    const at = await seen;
    if (i >= 20) out.push(Number(at - start) / 1e6); // the first 20 warm up connections and JIT
  }
  await sub.close();
  return out;
}

export async function benchLog(ctx: BenchContext): Promise<BenchResult[]> {
  const runs = ctx.quick ? 1 : 3;
  const { codec, encode, bytes } = await sampleEncoder();
  const embedded = (fsync: 'always' | 'interval' | 'never', label: string): Target => ({
    name: `embedded (fsync ${label})`,
    events: ctx.quick ? 50_000 : 300_000,
    latencySamples: ctx.quick ? 300 : 2_000,
    open: async () => {
      const dir = mkdtempSync(join(tmpdir(), 'sy-bench-log-'));
      const log = await openEmbeddedLog({ dir, fsync });
      return { log, cleanup: async () => rmSync(dir, { recursive: true, force: true }) };
    },
  });
  const targets: Target[] = [embedded('always', 'always: group commit per turn'), embedded('interval', 'interval 5 ms'), embedded('never', 'never')];
  if (ctx.brokers.length > 0) {
    targets.push({
      name: `kafka ${ctx.brokers.join(',')} (kafkajs, idempotent, acks=all)`,
      events: ctx.quick ? 20_000 : 150_000,
      latencySamples: ctx.quick ? 200 : 1_000,
      open: async () => ({ log: await openKafkaLog({ brokers: ctx.brokers }), cleanup: async () => {} }),
    });
  } else {
    ctx.progress('no --brokers given (or SWITCHYARD_BENCH_BROKERS): Kafka skipped');
  }

  const rows: (string | number)[][] = [];
  for (const target of targets) {
    const rates: number[] = [];
    const codecRates: number[] = [];
    const p50s: number[] = [];
    const p99s: number[] = [];
    for (let run = 0; run < runs; run++) {
      const { log, cleanup } = await target.open();
      try {
        const tag = `bench-${Date.now().toString(36)}-${run}`;
        ctx.progress(`${target.name}: run ${run + 1}/${runs}, throughput with ${target.events} events`);
        rates.push(await throughput(log, encode, codec, target.events, `${tag}-tput`, false));
        ctx.progress(`${target.name}: run ${run + 1}/${runs}, throughput with encode+decode of ${target.events} events`);
        codecRates.push(await throughput(log, encode, codec, target.events, `${tag}-codec`, true));
        ctx.progress(`${target.name}: run ${run + 1}/${runs}, latency with ${target.latencySamples} single-event round trips`);
        const s = summarize(await latency(log, encode, target.latencySamples, `${tag}-lat`));
        p50s.push(s.p50);
        p99s.push(s.p99);
      } finally {
        await log.close();
        await cleanup();
      }
    }
    const range = (xs: number[]) => `${Math.round(Math.min(...xs))}–${Math.round(Math.max(...xs))}`;
    rows.push([target.name, Math.round(median(rates)), range(rates), Math.round(median(codecRates)), round(median(p50s), 3), round(median(p99s), 3)]);
  }
  return [
    {
      title: `Log: append+consume throughput and produce→consume latency (${bytes}-byte Avro events, median of ${runs} runs)`,
      columns: ['log', 'events/s (log)', 'range', 'events/s (with encode+decode)', 'latency p50 ms', 'latency p99 ms'],
      rows,
      notes: [
        'Throughput: 12 partitions, appends of 500 records with up to 8 in flight, one group consumer in the same process; time from first append to last event consumed.',
        '"log": pre-encoded ~1 KB Avro InferenceRequested events (a pool of 4096) — the log\'s own cost. "with encode+decode": each event gets a fresh UUIDv7 and is encoded by the producer and decoded by the consumer, on the same thread as the log.',
        'Latency: one event appended, awaited, and seen by a subscribed consumer; sequential round trips after 20 warm-ups.',
      ],
    },
  ];
}
