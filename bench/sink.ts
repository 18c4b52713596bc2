import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createChdbAnalyticsStore } from '../lib/analytics/chdb.js';
import { migrate } from '../lib/analytics/migrations.js';
import type { AnalyticsStore } from '../lib/analytics/port.js';
import { createServerAnalyticsStore } from '../lib/analytics/server.js';
import { openEmbeddedLog } from '../lib/log/embedded/index.js';
import { openKafkaLog } from '../lib/log/kafka/index.js';
import type { AppendRecord, EventLog } from '../lib/log/port.js';
import { topicLayout } from '../lib/log/topics.js';
import { InMemoryRegistry } from '../lib/registry/core.js';
import { EventCodec } from '../schemas/codec.js';
import { startSink } from '../services/sink/service.js';
import { recordFor } from '../test/support/event-topics.js';
import { eventStream } from '../test/support/event-stream.js';
import type { BenchContext, BenchResult } from './main.js';
import { median, msSince, round } from './stats.js';

/**
 * `npm run bench -- sink [--quick] [--brokers host:port]`: sink throughput from the log into
 * ClickHouse — the embedded chDB engine and the ClickHouse server (SWITCHYARD_BENCH_CLICKHOUSE_URL,
 * default http://127.0.0.1:8123) — with the default batch bounds. The log is filled first; the
 * clock runs from starting the sink until ClickHouse has acknowledged the last event, so it
 * covers decoding, row mapping, batching, inserting (with the materialized rollups) and
 * committing. Events: per request InferenceRequested, RequestRouted (2 candidates, a 2-entry
 * clock), InferenceStarted and InferenceCompleted/Failed, plus heartbeats.
 */
const BATCH_ROWS = 10_000;
const BATCH_DELAY_MS = 200;
const LANES = 64;

interface Target {
  name: string;
  requests: number;
  log: () => Promise<{ log: EventLog; cleanup: () => Promise<void> }>;
  store: () => Promise<{ store: AnalyticsStore; cleanup: () => Promise<void> }>;
}

async function reachable(url: string): Promise<boolean> {
  try {
    return (await fetch(new URL('/ping', url), { signal: AbortSignal.timeout(2_000) })).ok;
  } catch {
    return false;
  }
}

async function run(target: Target, codec: EventCodec, seed: number): Promise<{ events: number; seconds: number; cpuSeconds: number; batches: number }> {
  const { log, cleanup: closeLog } = await target.log();
  const { store, cleanup: closeStore } = await target.store();
  try {
    await migrate(store);
    const prefix = `bench-${Date.now().toString(36)}-${seed}.`;
    const layout = topicLayout({ prefix, lanes: LANES });
    await log.ensureTopics(Object.values(layout));
    const { events } = eventStream({ requests: target.requests, start: Date.now() - 600_000, seed });
    const records: AppendRecord[] = events.map((e) => recordFor(layout, e, codec.encode(e)));
    for (let i = 0; i < records.length; i += 5_000) await log.append(records.slice(i, i + 5_000));

    const start = process.hrtime.bigint();
    const cpu0 = process.cpuUsage();
    const sink = await startSink({ log, store, codec, topicPrefix: prefix, lanes: LANES, batchRows: BATCH_ROWS, batchDelayMs: BATCH_DELAY_MS, migrate: false, ensureTopics: false });
    while (sink.stats().events < events.length) await new Promise((r) => setTimeout(r, 5));
    const seconds = msSince(start) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const { batches } = sink.stats();
    await sink.close();
    return { events: events.length, seconds, cpuSeconds: (cpu.user + cpu.system) / 1e6, batches };
  } finally {
    await closeStore();
    await closeLog();
  }
}

export async function benchSink(ctx: BenchContext): Promise<BenchResult[]> {
  const runs = ctx.quick ? 1 : 3;
  const codec = await EventCodec.create({ registry: new InMemoryRegistry() });
  const embeddedLog = async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sy-bench-sink-log-'));
    const log = await openEmbeddedLog({ dir, fsync: 'never' });
    return { log, cleanup: async () => { await log.close(); rmSync(dir, { recursive: true, force: true }); } };
  };
  const chdb = async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sy-bench-sink-chdb-'));
    const store = await createChdbAnalyticsStore({ path: dir });
    return { store, cleanup: async () => { await store.close(); rmSync(dir, { recursive: true, force: true }); } };
  };
  const url = process.env.SWITCHYARD_BENCH_CLICKHOUSE_URL ?? 'http://127.0.0.1:8123';
  const server = async () => {
    const database = `switchyard_bench_${Date.now().toString(36)}`;
    const store = await createServerAnalyticsStore({ url, database });
    return { store, cleanup: async () => { await store.exec(`DROP DATABASE IF EXISTS ${database}`); await store.close(); } };
  };

  const requests = ctx.quick ? 10_000 : 50_000;
  const targets: Target[] = [{ name: 'embedded log → chDB (embedded)', requests, log: embeddedLog, store: chdb }];
  if (await reachable(url)) {
    const version = (await (await fetch(new URL('/?query=SELECT%20version()', url))).text()).trim();
    targets.push({ name: `embedded log → ClickHouse ${version} server`, requests, log: embeddedLog, store: server });
    if (ctx.brokers.length > 0) {
      targets.push({
        name: `Kafka → ClickHouse ${version} server`,
        requests: ctx.quick ? 5_000 : 25_000,
        log: async () => {
          const log = await openKafkaLog({ brokers: ctx.brokers });
          return { log, cleanup: () => log.close() };
        },
        store: server,
      });
    }
  } else {
    ctx.progress(`no ClickHouse server at ${url} (SWITCHYARD_BENCH_CLICKHOUSE_URL): server skipped`);
  }

  const rows: (string | number)[][] = [];
  let seed = 1;
  for (const target of targets) {
    const rates: number[] = [];
    const perCpu: number[] = [];
    let events = 0;
    let batches = 0;
    for (let i = 0; i < runs; i++) {
      ctx.progress(`${target.name}: run ${i + 1}/${runs}`);
      const r = await run(target, codec, seed++);
      rates.push(r.events / r.seconds);
      perCpu.push(r.events / r.cpuSeconds);
      events = r.events;
      batches = r.batches;
      ctx.progress(`${target.name}: ${Math.round(r.events / r.seconds)} events/s (${r.events} events in ${round(r.seconds, 2)} s, ${round(r.cpuSeconds, 2)} CPU-s, ${r.batches} flushes)`);
    }
    rows.push([target.name, events, Math.round(median(rates)), `${Math.round(Math.min(...rates))}–${Math.round(Math.max(...rates))}`, Math.round(median(perCpu)), Math.round(events / Math.max(1, batches))]);
  }
  return [
    {
      title: `Sink: log → ClickHouse throughput (batch bounds ${BATCH_ROWS} rows / ${BATCH_DELAY_MS} ms, median of ${runs} runs)`,
      columns: ['path', 'events per run', 'events/s', 'events/s range', 'events per CPU-s', 'rows per flush'],
      rows,
      notes: [
        `Batch size bound ${BATCH_ROWS} rows, time bound ${BATCH_DELAY_MS} ms (the sink's defaults); ${LANES} lanes; the log is filled before the sink starts.`,
        'Time from startSink until ClickHouse acknowledged the last event: decode (Avro), row mapping, batching, inserts into 4 tables with their materialized rollups, offset commits.',
        'events per CPU-s: events over this process\'s user+system CPU time — chDB\'s insert threads included, a ClickHouse server\'s own CPU not.',
        'Targets (issue 5): ≥ 50k events/s into the embedded engine, ≥ 20k events/s into the server.',
      ],
    },
  ];
}
