import { mkdtempSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openRuntime, type Runtime } from '../lib/bootstrap.js';
import { KAFKA_CLIENTS, type SwitchyardConfig } from '../lib/config.js';
import { startCluster, type Cluster } from '../cli/cluster.js';
import { scanEventBatches } from '../replay/scan.js';
import { openLogSource } from '../replay/source.js';
import { decodeModelFile } from '../services/worker/backends/format.js';
import { SyntheticBackend } from '../services/worker/backends/synthetic.js';
import { SHIPPED_MODELS_DIR } from '../services/worker/publish.js';
import type { BenchContext, BenchResult } from './main.js';
import { HOPS, HopTimings } from './hops.js';
import { benchRouterDecide } from './router-decide.js';
import { median, round, summarize } from './stats.js';

/**
 * `npm run bench -- serve`: what the control plane adds to an inference call. A no-op model
 * (zero service time) served by the whole path — request event on the log, router decision,
 * worker, result event — against the same model called directly in-process (the baseline),
 * side by side in one run:
 * - added latency p50/p99 at fixed request rates (open loop: latency is measured from each
 *   request's scheduled send time, so queueing behind a slow request counts);
 * - maximum sustained throughput (closed loop, many requests in flight);
 * - the router's `decide` alone with 64 workers.
 * Two entry points: a producer client appending InferenceRequested to the log and reading
 * InferenceCompleted from `results` (what Kafka clients do), and HTTP through the gateway.
 * Each open-loop window is also timed per hop from the events it left on the log (bench/hops.ts),
 * with the bench process's CPU per request and event-loop utilization. `--rate N` runs every
 * deployment's windows at N req/s (default: 1000 embedded, 500 Kafka).
 */

type Send = (i: number) => Promise<void>;

interface Driver {
  name: string;
  send: Send;
}

const INPUT = Buffer.from(JSON.stringify({ text: 'noop' }));

/** The baseline: the same no-op model, loaded from its file, called directly. */
async function directDriver(): Promise<Driver> {
  const file = decodeModelFile(await readFile(join(SHIPPED_MODELS_DIR, 'noop-v1.symodel')));
  const model = await new SyntheticBackend().load(file, 'noop');
  return {
    name: 'direct in-process call (baseline)',
    send: async (i) => {
      const [r] = await model.infer([{ requestId: `d-${i}`, input: INPUT, contentType: 'application/json', parameters: {} }]);
      if (!r?.ok) throw new Error('baseline call failed');
    },
  };
}

/** A producer client: append InferenceRequested, resolve when its InferenceCompleted is read. */
async function logDriver(rt: Runtime, tag: string): Promise<{ driver: Driver; close: () => Promise<void> }> {
  const { ctx } = rt;
  const waiting = new Map<string, { resolve: () => void; reject: (e: Error) => void }>();
  const sub = await ctx.log.subscribe({
    groupId: `bench-client-${tag}`,
    topics: [ctx.topics.results.name],
    fromBeginning: false,
    onBatch: async (batch) => {
      for (const r of batch.records) {
        const e = await ctx.codec.decode(r.value!);
        const w = e.requestId === null ? undefined : waiting.get(e.requestId);
        if (!w) continue;
        if (e.type === 'InferenceCompleted') w.resolve();
        else if (e.type === 'InferenceFailed' || e.type === 'RequestRejected') w.reject(new Error(`${e.type}: ${e.type === 'InferenceFailed' ? e.errorCode : e.reason}`));
        else continue;
        waiting.delete(e.requestId!);
      }
    },
  });
  const driver: Driver = {
    name: 'producer client → log → router → worker → results',
    send: (i) =>
      new Promise<void>((resolve, reject) => {
        const requestId = `${tag}-${i}`;
        waiting.set(requestId, { resolve, reject });
        const now = ctx.now();
        ctx.log
          .append([
            {
              topic: ctx.topics.requests.name,
              key: requestId,
              value: ctx.codec.encode({ type: 'InferenceRequested', eventId: ctx.newEventId(), occurredAt: now, requestId, producer: 'bench', model: 'noop', input: INPUT, source: 'KAFKA_CLIENT', cacheable: false, deadlineAt: now + 30_000 }),
            },
          ])
          .catch(reject);
      }),
  };
  return { driver, close: () => sub.close() };
}

/** HTTP through the gateway: POST /v1/infer, resolve on 200. */
function httpDriver(url: string): Driver {
  return {
    name: 'HTTP POST /v1/infer → gateway → log → router → worker → results',
    send: async () => {
      const res = await fetch(`${url}/v1/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'noop', input: { text: 'noop' }, cacheable: false, deadlineMs: 30_000 }) });
      await res.arrayBuffer();
      if (res.status !== 200) throw new Error(`HTTP ${res.status}`);
    },
  };
}

/** Open loop at `rate` req/s for `count` requests; latencies from each scheduled send time. */
async function atRate(send: Send, rate: number, count: number, offset: number): Promise<{ latencies: number[]; failed: number; achieved: number }> {
  const latencies: number[] = [];
  let failed = 0;
  const start = performance.now();
  const pending: Promise<void>[] = [];
  for (let i = 0; i < count; i++) {
    const due = start + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    pending.push(
      send(offset + i).then(
        () => void latencies.push(performance.now() - due),
        () => void failed++,
      ),
    );
  }
  await Promise.all(pending);
  return { latencies, failed, achieved: count / ((performance.now() - start) / 1000) };
}

/** Closed loop: `concurrency` requests in flight until `count` are done; completions/s. */
async function maxThroughput(send: Send, concurrency: number, count: number, offset: number): Promise<{ perSec: number; failed: number }> {
  let next = 0;
  let failed = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        const i = next++;
        await send(offset + i).catch(() => void failed++);
      }
    }),
  );
  return { perSec: (count - failed) / ((performance.now() - start) / 1000), failed };
}

/** Wall-clock bounds of one open-loop window, for the per-hop timings of the requests it sent. */
interface Window {
  driver: string;
  from: number;
  to: number;
}

/** The per-hop means (ms) of each window's requests, from the log the run wrote (read after the run closed it). */
async function hopMeans(config: SwitchyardConfig, windows: readonly Window[]): Promise<Map<string, { means: number[]; simple: number }>> {
  const source = await openLogSource(config);
  const out = new Map<string, { means: number[]; simple: number }>();
  try {
    const hops = new HopTimings();
    const from = Math.min(...windows.map((w) => w.from));
    const to = Math.max(...windows.map((w) => w.to));
    for await (const batch of scanEventBatches(source, ['requests', 'decisions', 'results'], { from, to: to + 5_000 })) {
      for (const { event, record } of batch) hops.add(event, record.timestamp);
    }
    for (const w of windows) out.set(w.driver, { means: hops.rows(w).map((r) => r.mean), simple: hops.counts(w).simple });
  } finally {
    await source.close();
  }
  return out;
}

interface Deployment {
  name: string;
  rate: number;
  open: () => Promise<{ rt: Runtime; cleanup: () => void }>;
}

export async function benchServe(ctx: BenchContext): Promise<BenchResult[]> {
  const runs = ctx.quick ? 1 : 3;
  const seconds = ctx.quick ? 1 : 2;
  const results: BenchResult[] = [];

  ctx.progress('router decide with 64 workers');
  const decides = [];
  for (let r = 0; r < runs; r++) decides.push(await benchRouterDecide({ workers: 64, decisions: ctx.quick ? 50_000 : 200_000 }));
  results.push({
    title: `Router decide, 64 workers (median of ${runs})`,
    columns: ['decisions/s', 'µs per decision', 'decide + fold its result back, /s', 'evolve events/s'],
    rows: [[Math.round(median(decides.map((d) => d.decisionsPerSec))), round(median(decides.map((d) => d.usPerDecision)), 2), Math.round(median(decides.map((d) => d.decideAndFoldPerSec))), Math.round(median(decides.map((d) => d.foldEventsPerSec)))]],
    notes: ['Target ≥ 100k decisions/s. decide is the pure core alone; the second figure folds each decision and a result back into the state, as a live router does.'],
  });

  const baseline = await directDriver();
  const deployments: Deployment[] = [];
  for (const fsync of ['always', 'never'] as const) {
    deployments.push({
      name: `embedded (fsync ${fsync})`,
      rate: 1000,
      open: async () => {
        const home = mkdtempSync(join(tmpdir(), 'sy-bench-serve-'));
        const config: SwitchyardConfig = { brokers: [], home, topicPrefix: 'switchyard.', lanes: 8, schemaRegistryUrl: undefined, clickhouseUrl: undefined, fsync, logLevel: 'warn' };
        return { rt: await openRuntime(config), cleanup: () => rmSync(home, { recursive: true, force: true }) };
      },
    });
  }
  if (ctx.brokers.length > 0) {
    // Both Kafka client libraries behind the same port, side by side.
    for (const kafkaClient of KAFKA_CLIENTS) {
      deployments.push({
        name: `kafka (${kafkaClient}) ${ctx.brokers.join(',')}`,
        rate: 500,
        open: async () => {
          const home = mkdtempSync(join(tmpdir(), 'sy-bench-serve-'));
          const config: SwitchyardConfig = { brokers: ctx.brokers, home, topicPrefix: `bench-${Date.now().toString(36)}.`, lanes: 8, schemaRegistryUrl: undefined, clickhouseUrl: undefined, fsync: 'always', logLevel: 'warn', kafkaClient };
          return { rt: await openRuntime(config), cleanup: () => rmSync(home, { recursive: true, force: true }) };
        },
      });
    }
  } else {
    ctx.progress('no --brokers given: Kafka skipped');
  }

  if (ctx.only !== undefined) deployments.splice(0, deployments.length, ...deployments.filter((d) => d.name.includes(ctx.only!)));
  const latencyRows: (string | number)[][] = [];
  const throughputRows: (string | number)[][] = [];
  const hopRows: (string | number)[][] = [];
  // Baseline, measured in the same run.
  const base = await atRate(baseline.send, 1000, 1000 * seconds, 0);
  const b = summarize(base.latencies);
  latencyRows.push([baseline.name, 1000, round(b.p50, 3), round(b.p99, 3), '—', '—', 0, '—', '—']);
  throughputRows.push([baseline.name, Math.round((await maxThroughput(baseline.send, 64, 100_000, 0)).perSec), 0]);

  for (const d of deployments) {
    if (ctx.rate !== undefined) d.rate = ctx.rate;
    const perDriver = new Map<string, { p50: number[]; p99: number[]; mean: number[]; elu: number[]; cpuMs: number[]; hops: number[][]; simple: number; failed: number; tput: number[]; tputFailed: number }>();
    for (let run = 0; run < runs; run++) {
      const { rt, cleanup } = await d.open();
      let cluster: Cluster | undefined;
      let client: Awaited<ReturnType<typeof logDriver>> | undefined;
      const windows: Window[] = [];
      try {
        cluster = await startCluster(rt, {
          routers: 1,
          workers: [
            { workerId: 'bench-w1', zone: 'zone-a', capacity: 64, maxBatchSize: 32, cacheMaxEntries: 0 },
            { workerId: 'bench-w2', zone: 'zone-b', capacity: 64, maxBatchSize: 32, cacheMaxEntries: 0 },
          ],
          gateway: { port: 0 },
        });
        client = await logDriver(rt, `run${run}-${Date.now().toString(36)}`);
        const drivers = [client.driver, httpDriver(cluster.gateway!.url)];
        // Warm up every path (JIT, connections, model load) before measuring.
        for (const dr of drivers) await maxThroughput(dr.send, 8, 200, 900_000_000);
        let offset = 0;
        for (const dr of drivers) {
          ctx.progress(`${d.name} run ${run + 1}/${runs}: ${dr.name} at ${d.rate} req/s for ${seconds}s`);
          const from = Date.now();
          // The bench process's own CPU and event-loop utilization over the window: every service and the client share its one thread.
          const elu0 = performance.eventLoopUtilization();
          const cpu0 = process.cpuUsage();
          const r = await atRate(dr.send, d.rate, d.rate * seconds, (offset += 1_000_000));
          const elu = performance.eventLoopUtilization(elu0).utilization;
          const cpu = process.cpuUsage(cpu0);
          windows.push({ driver: dr.name, from, to: Date.now() });
          // Every request of the window has completed; the next load starts on a later millisecond than the window's end.
          await new Promise((r) => setTimeout(r, 20));
          const s = summarize(r.latencies);
          ctx.progress(`${d.name} run ${run + 1}/${runs}: ${dr.name} max throughput`);
          const t = await maxThroughput(dr.send, 96, ctx.quick ? 2_000 : 5_000, (offset += 1_000_000));
          const acc = perDriver.get(dr.name) ?? { p50: [], p99: [], mean: [], elu: [], cpuMs: [], hops: [], simple: 0, failed: 0, tput: [], tputFailed: 0 };
          acc.elu.push(elu);
          acc.cpuMs.push((cpu.user + cpu.system) / 1000 / Math.max(1, r.latencies.length));
          acc.p50.push(s.p50);
          acc.mean.push(r.latencies.reduce((a, x) => a + x, 0) / Math.max(1, r.latencies.length));
          acc.p99.push(s.p99);
          acc.failed += r.failed;
          acc.tput.push(t.perSec);
          acc.tputFailed += t.failed;
          perDriver.set(dr.name, acc);
        }
      } finally {
        await client?.close();
        await cluster?.close();
        await rt.close();
      }
      try {
        ctx.progress(`${d.name} run ${run + 1}/${runs}: per-hop timings from the log`);
        for (const [driver, h] of await hopMeans(rt.config, windows)) {
          const acc = perDriver.get(driver);
          if (acc === undefined) continue;
          acc.hops.push(h.means);
          acc.simple += h.simple;
        }
      } finally {
        cleanup();
      }
    }
    for (const [name, acc] of perDriver) {
      const p50 = median(acc.p50);
      const p99 = median(acc.p99);
      latencyRows.push([`${d.name}: ${name}`, d.rate, round(p50, 3), round(p99, 3), round(p50 - b.p50, 3), round(p99 - b.p99, 3), acc.failed, round(median(acc.cpuMs), 3), round(median(acc.elu), 2)]);
      throughputRows.push([`${d.name}: ${name}`, Math.round(median(acc.tput)), acc.tputFailed]);
      hopRows.push([`${d.name}: ${name}`, ...HOPS.map((_, i) => round(median(acc.hops.map((h) => h[i]!)), 2)), round(median(acc.mean), 2), acc.simple]);
    }
  }
  results.push({
    title: `Serving: latency at a fixed request rate, no-op model (median of ${runs} runs of ${seconds}s)`,
    columns: ['path', 'req/s', 'p50 ms', 'p99 ms', 'added p50 ms', 'added p99 ms', 'failed', 'process CPU ms/req', 'event loop busy'],
    rows: latencyRows,
    notes: [
      'Open loop: request i is due at start + i/rate; its latency runs from that due time to its completion, so queueing counts.',
      'Added = the path minus the direct in-process call of the same no-op model measured in the same run.',
      'Process CPU and event loop busy: the bench process (client, gateway, router, workers, log client) over the window; an event loop busy near 1 means the one thread is saturated and the latency is queueing behind it.',
      'One process: gateway, 1 router, 2 workers (capacity 64, batches up to 32, result cache off), the client, 8 lanes. Targets: embedded 1k req/s p50 ≤ 1 ms, p99 ≤ 3 ms added; Kafka 500 req/s p50 ≤ 10 ms, p99 ≤ 25 ms added.',
    ],
  });
  results.push({
    title: `Serving: where the time of a request goes, per hop from the recorded events (mean ms, median of ${runs} runs)`,
    columns: ['path', ...HOPS.map((h) => h.name), 'client sees (mean)', 'requests timed'],
    rows: hopRows,
    notes: [
      'The open-loop windows above, timed from each request\'s events on the log (bench/hops.ts): occurredAt is the producing service\'s clock, a record\'s timestamp the time its append was called.',
      'Client sees − end to end on the log = the outcome\'s durability wait, the client\'s results consumer and (HTTP) the response; whole-millisecond clocks, so means.',
    ],
  });
  results.push({
    title: `Serving: maximum sustained throughput, no-op model (median of ${runs} runs)`,
    columns: ['path', 'completed req/s', 'failed'],
    rows: throughputRows,
    notes: ['Closed loop with 96 requests in flight (below the 1.5 × capacity at which the router sheds NORMAL requests). Target: embedded ≥ 5k req/s.'],
  });
  return results;
}
