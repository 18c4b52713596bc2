import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createChdbAnalyticsStore } from '../lib/analytics/chdb.js';
import { migrate } from '../lib/analytics/migrations.js';
import type { AnalyticsStore } from '../lib/analytics/port.js';
import { createServerAnalyticsStore } from '../lib/analytics/server.js';
import { openEmbeddedLog } from '../lib/log/embedded/index.js';
import { KAFKA_CLIENTS } from '../lib/config.js';
import { openKafkaClientLog } from '../lib/log/open.js';
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
 * `npm run bench -- sink [--quick] [--brokers host:port] [--only <path>]`: sink throughput from
 * the log into ClickHouse — the embedded chDB engine and the ClickHouse server
 * (SWITCHYARD_BENCH_CLICKHOUSE_URL, default http://127.0.0.1:8123) — with the default batch
 * bounds, with the log archive off (the baseline) and on (the default), side by side: the runs
 * alternate which goes first. The log is filled first; the clock runs from starting the sink
 * until ClickHouse has acknowledged the last event (and, with the archive, the last record's
 * `log_records` row), so it covers decoding, row mapping, batching, inserting (with the
 * materialized rollups and `log_ids` views) and committing. Events: per request
 * InferenceRequested, RequestRouted (2 candidates, a 2-entry clock), InferenceStarted and
 * InferenceCompleted/Failed, plus heartbeats.
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

async function run(target: Target, codec: EventCodec, seed: number, archive: boolean): Promise<{ events: number; seconds: number; cpuSeconds: number; batches: number }> {
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
    const sink = await startSink({ log, store, codec, topicPrefix: prefix, lanes: LANES, batchRows: BATCH_ROWS, batchDelayMs: BATCH_DELAY_MS, migrate: false, ensureTopics: false, archive });
    const done = () => {
      const s = sink.stats();
      return s.events >= events.length && (!archive || s.archived >= events.length);
    };
    while (!done()) await new Promise((r) => setTimeout(r, 5));
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
  let targets: Target[] = [{ name: 'embedded log → chDB (embedded)', requests, log: embeddedLog, store: chdb }];
  if (await reachable(url)) {
    const version = (await (await fetch(new URL('/?query=SELECT%20version()', url))).text()).trim();
    targets.push({ name: `embedded log → ClickHouse ${version} server`, requests, log: embeddedLog, store: server });
    if (ctx.brokers.length > 0) {
      // Both Kafka client libraries behind the same port, side by side.
      for (const client of KAFKA_CLIENTS) {
        targets.push({
          name: `Kafka (${client}) → ClickHouse ${version} server`,
          requests: ctx.quick ? 5_000 : 25_000,
          log: async () => {
            const log = await openKafkaClientLog(client, { brokers: ctx.brokers });
            return { log, cleanup: () => log.close() };
          },
          store: server,
        });
      }
    }
  } else {
    ctx.progress(`no ClickHouse server at ${url} (SWITCHYARD_BENCH_CLICKHOUSE_URL): server skipped`);
  }

  if (ctx.only !== undefined) targets = targets.filter((t) => t.name.toLowerCase().includes(ctx.only!.toLowerCase()));

  const rows: (string | number)[][] = [];
  let seed = 1;
  for (const target of targets) {
    const modes = [false, true].map((archive) => ({ archive, rates: [] as number[], perCpu: [] as number[], events: 0, rowsPerFlush: 0 }));
    for (let i = 0; i < runs; i++) {
      // Alternate which mode goes first, so neither always runs on a warmer (or more tired) machine.
      for (const mode of i % 2 === 0 ? modes : [...modes].reverse()) {
        const label = `${target.name}, archive ${mode.archive ? 'on' : 'off'}`;
        ctx.progress(`${label}: run ${i + 1}/${runs}`);
        const r = await run(target, codec, seed++, mode.archive);
        mode.rates.push(r.events / r.seconds);
        mode.perCpu.push(r.events / r.cpuSeconds);
        mode.events = r.events;
        mode.rowsPerFlush = Math.round((r.events * (mode.archive ? 2 : 1)) / Math.max(1, r.batches));
        ctx.progress(`${label}: ${Math.round(r.events / r.seconds)} events/s (${r.events} events in ${round(r.seconds, 2)} s, ${round(r.cpuSeconds, 2)} CPU-s, ${r.batches} flushes)`);
      }
    }
    const baseline = median(modes[0]!.rates);
    for (const mode of modes) {
      const rate = median(mode.rates);
      rows.push([
        target.name,
        mode.archive ? 'on' : 'off',
        mode.events,
        Math.round(rate),
        `${Math.round(Math.min(...mode.rates))}–${Math.round(Math.max(...mode.rates))}`,
        round(rate / baseline, 2),
        Math.round(median(mode.perCpu)),
        mode.rowsPerFlush,
      ]);
    }
  }
  return [
    {
      title: `Sink: log → ClickHouse throughput, log archive off and on (batch bounds ${BATCH_ROWS} rows / ${BATCH_DELAY_MS} ms, median of ${runs} runs)`,
      columns: ['path', 'archive', 'events per run', 'events/s', 'events/s range', 'vs archive off', 'events per CPU-s', 'rows per flush'],
      rows,
      notes: [
        `Batch size bound ${BATCH_ROWS} rows, time bound ${BATCH_DELAY_MS} ms (the sink's defaults); ${LANES} lanes; the log is filled before the sink starts.`,
        'Time from startSink until ClickHouse acknowledged the last event: decode (Avro), row mapping, batching, inserts into 4 tables with their materialized rollups, offset commits; with the archive also a log_records row per record (value base64, ZSTD where the server has codecs), its two log_ids views, and the log_schemas/log_topics rows.',
        'events per CPU-s: events over this process\'s user+system CPU time — chDB\'s insert threads included, a ClickHouse server\'s own CPU not. rows per flush counts archive rows too (about two rows per event with the archive on).',
        'Targets (issue 5): ≥ 50k events/s into the embedded engine, ≥ 20k events/s into the server.',
      ],
    },
  ];
}
