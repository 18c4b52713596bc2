import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openEmbeddedLog } from '../lib/log/embedded/index.js';
import { openKafkaLog } from '../lib/log/kafka/index.js';
import { openPlatformaticLog } from '../lib/log/platformatic/index.js';
import type { EventLog } from '../lib/log/port.js';
import { InMemoryRegistry } from '../lib/registry/core.js';
import { EventCodec } from '../schemas/codec.js';
import { createEventIdFactory } from '../schemas/event-id.js';
import type { BenchContext, BenchResult } from './main.js';
import { cpuMsSince, median, msSince, round, summarize } from './stats.js';

/**
 * `npm run bench -- log [--only <name part>]`: append throughput, consume throughput,
 * append+consume throughput and produce→consume latency of the embedded log and of Kafka through
 * both client libraries (kafkajs and @platformatic/kafka, the same `EventLog` port), with ~1 KB
 * Avro-encoded InferenceRequested events encoded by the producer and decoded by the consumer (the
 * codec is part of the path), and the CPU time this process spends per event.
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
async function throughput(log: EventLog, encode: () => Buffer, codec: EventCodec, events: number, topic: string, withCodec: boolean): Promise<Rate> {
  const pool = withCodec ? [] : Array.from({ length: 4_096 }, encode);
  const value = withCodec ? encode : (i: number) => pool[i % pool.length]!;
  await log.ensureTopics([{ name: topic, partitions: 12 }]);
  let consumed = 0;
  let done: () => void = () => {};
  const finished = new Promise<void>((r) => (done = r));
  const start = process.hrtime.bigint();
  const cpu = process.cpuUsage();
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
  const cpuMs = cpuMsSince(cpu);
  await sub.close();
  return { perSecond: events / seconds, cpuUsPerEvent: (cpuMs * 1000) / events };
}

interface Rate {
  perSecond: number;
  /** CPU time of this process (user + system, every thread) per event, µs. */
  cpuUsPerEvent: number;
}

/** Appends only (no consumer): `events` pre-encoded events in appends of 500, up to 8 in flight, to a topic of 12 partitions. */
async function appendOnly(log: EventLog, pool: Buffer[], events: number, topic: string): Promise<Rate> {
  await log.ensureTopics([{ name: topic, partitions: 12 }]);
  const batchSize = 500;
  const inFlight = new Set<Promise<unknown>>();
  const start = process.hrtime.bigint();
  const cpu = process.cpuUsage();
  for (let sent = 0; sent < events; sent += batchSize) {
    const records = Array.from({ length: Math.min(batchSize, events - sent) }, (_, i) => ({ topic, key: `k${(sent + i) % 4096}`, value: pool[(sent + i) % pool.length]! }));
    const p: Promise<unknown> = log.append(records).finally(() => inFlight.delete(p));
    inFlight.add(p);
    if (inFlight.size >= 8) await Promise.race(inFlight);
  }
  await Promise.all(inFlight);
  return { perSecond: events / (msSince(start) / 1000), cpuUsPerEvent: (cpuMsSince(cpu) * 1000) / events };
}

/**
 * Consumes only: a new group reads `events` records already on `topic`, from the first batch
 * handed to the last (the group join before it is not counted).
 */
async function consumeOnly(log: EventLog, events: number, topic: string): Promise<Rate> {
  let consumed = 0;
  let first: { at: bigint; cpu: NodeJS.CpuUsage } | undefined;
  let done: (r: Rate) => void = () => {};
  const finished = new Promise<Rate>((r) => (done = r));
  const sub = await log.subscribe({
    groupId: `${topic}-reader`,
    topics: [topic],
    maxBatchRecords: 2_000,
    onBatch: async (batch) => {
      first ??= { at: process.hrtime.bigint(), cpu: process.cpuUsage() };
      consumed += batch.records.length;
      if (consumed >= events) done({ perSecond: events / (msSince(first.at) / 1000), cpuUsPerEvent: (cpuMsSince(first.cpu) * 1000) / events });
    },
  });
  const rate = await finished;
  await sub.close();
  return rate;
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
    const kafka = (client: string, open: () => Promise<EventLog>): Target => ({
      name: `kafka ${ctx.brokers.join(',')} (${client}, idempotent, acks=all)`,
      events: ctx.quick ? 20_000 : 150_000,
      latencySamples: ctx.quick ? 200 : 1_000,
      open: async () => ({ log: await open(), cleanup: async () => {} }),
    });
    targets.push(kafka('kafkajs 2.2.4', () => openKafkaLog({ brokers: ctx.brokers })), kafka('@platformatic/kafka 1.35.0', () => openPlatformaticLog({ brokers: ctx.brokers })));
  } else {
    ctx.progress('no --brokers given (or SWITCHYARD_BENCH_BROKERS): Kafka skipped');
  }

  const chosen = targets.filter((t) => ctx.only === undefined || t.name.includes(ctx.only));
  const pool = Array.from({ length: 4_096 }, encode);
  const rows: (string | number)[][] = [];
  const medians = new Map<string, Record<'append' | 'appendCpu' | 'consume' | 'consumeCpu' | 'both' | 'bothCpu' | 'codec' | 'p50' | 'p99', number>>();
  for (const target of chosen) {
    const m = { append: [], appendCpu: [], consume: [], consumeCpu: [], both: [], bothCpu: [], codec: [], p50: [], p99: [] } as Record<string, number[]>;
    for (let run = 0; run < runs; run++) {
      const { log, cleanup } = await target.open();
      try {
        const tag = `bench-${Date.now().toString(36)}-${run}`;
        ctx.progress(`${target.name}: run ${run + 1}/${runs}, appends only of ${target.events} events`);
        const appended = await appendOnly(log, pool, target.events, `${tag}-append`);
        ctx.progress(`${target.name}: run ${run + 1}/${runs}, consuming them with a new group`);
        const consumed = await consumeOnly(log, target.events, `${tag}-append`);
        ctx.progress(`${target.name}: run ${run + 1}/${runs}, append+consume with ${target.events} events`);
        const both = await throughput(log, encode, codec, target.events, `${tag}-tput`, false);
        ctx.progress(`${target.name}: run ${run + 1}/${runs}, append+consume with encode+decode of ${target.events} events`);
        const withCodec = await throughput(log, encode, codec, target.events, `${tag}-codec`, true);
        ctx.progress(`${target.name}: run ${run + 1}/${runs}, latency with ${target.latencySamples} single-event round trips`);
        const s = summarize(await latency(log, encode, target.latencySamples, `${tag}-lat`));
        m.append!.push(appended.perSecond);
        m.appendCpu!.push(appended.cpuUsPerEvent);
        m.consume!.push(consumed.perSecond);
        m.consumeCpu!.push(consumed.cpuUsPerEvent);
        m.both!.push(both.perSecond);
        m.bothCpu!.push(both.cpuUsPerEvent);
        m.codec!.push(withCodec.perSecond);
        m.p50!.push(s.p50);
        m.p99!.push(s.p99);
        ctx.progress(
          `${target.name}: run ${run + 1}: append ${Math.round(appended.perSecond)}/s ${round(appended.cpuUsPerEvent, 1)} µs, consume ${Math.round(consumed.perSecond)}/s ${round(consumed.cpuUsPerEvent, 1)} µs, both ${Math.round(both.perSecond)}/s ${round(both.cpuUsPerEvent, 1)} µs, codec ${Math.round(withCodec.perSecond)}/s, p50 ${round(s.p50, 3)} p99 ${round(s.p99, 3)} ms`,
        );
      } finally {
        await log.close();
        await cleanup();
      }
    }
    const med = Object.fromEntries(Object.entries(m).map(([k, xs]) => [k, median(xs)])) as Record<'append' | 'appendCpu' | 'consume' | 'consumeCpu' | 'both' | 'bothCpu' | 'codec' | 'p50' | 'p99', number>;
    medians.set(target.name, med);
    const range = (xs: number[]) => `${Math.round(Math.min(...xs))}–${Math.round(Math.max(...xs))}`;
    rows.push([
      target.name,
      Math.round(med.append),
      round(med.appendCpu, 1),
      Math.round(med.consume),
      round(med.consumeCpu, 1),
      Math.round(med.both),
      range(m.both!),
      round(med.bothCpu, 1),
      Math.round(med.codec),
      round(med.p50, 3),
      round(med.p99, 3),
    ]);
  }
  const results: BenchResult[] = [
    {
      title: `Log: append, consume and append+consume throughput, CPU per event, produce→consume latency (${bytes}-byte Avro events, median of ${runs} runs)`,
      columns: ['log', 'append events/s', 'append CPU µs/event', 'consume events/s', 'consume CPU µs/event', 'append+consume events/s', 'range', 'append+consume CPU µs/event', 'events/s (with encode+decode)', 'latency p50 ms', 'latency p99 ms'],
      rows,
      notes: [
        'Append: appends of 500 pre-encoded events (a pool of 4096), up to 8 in flight, to 12 partitions, no consumer. Consume: a new group reads those events back, timed from its first batch to its last (the group join is not counted).',
        'Append+consume: 12 partitions, appends of 500 records with up to 8 in flight, one group consumer in the same process; time from first append to last event consumed. "with encode+decode": each event gets a fresh UUIDv7 and is encoded by the producer and decoded by the consumer, on the same thread as the log.',
        'CPU µs/event: user + system CPU time of the benchmark process (the client library, the adapter, GC; not the broker) divided by the events of the phase.',
        'Latency: one event appended, awaited, and seen by a subscribed consumer; sequential round trips after 20 warm-ups.',
      ],
    },
  ];
  const kafkas = [...medians].filter(([name]) => name.startsWith('kafka '));
  if (kafkas.length === 2) {
    const [[, a], [, b]] = kafkas as [[string, Record<string, number>], [string, Record<string, number>]];
    const ratio = (k: string) => round(b[k]! / a[k]!, 2);
    results.push({
      title: 'Kafka clients: @platformatic/kafka ÷ kafkajs (medians above; > 1 means more for platformatic)',
      columns: ['append events/s', 'append CPU/event', 'consume events/s', 'consume CPU/event', 'append+consume events/s', 'append+consume CPU/event', 'with encode+decode events/s', 'latency p50', 'latency p99'],
      rows: [[ratio('append'), ratio('appendCpu'), ratio('consume'), ratio('consumeCpu'), ratio('both'), ratio('bothCpu'), ratio('codec'), ratio('p50'), ratio('p99')]],
      notes: ['Throughput ratios above 1 favour @platformatic/kafka; CPU and latency ratios below 1 do.'],
    });
  }
  return results;
}
