import { rmSync } from 'node:fs';
import { join } from 'node:path';
import cliProgress from 'cli-progress';
import type { SwitchyardConfig } from '../lib/config.js';
import { openRuntime, type Runtime } from '../lib/bootstrap.js';
import { createLogger } from '../lib/logger.js';
import { renderTable } from '../lib/table.js';
import { startCluster, setRollout, type Cluster } from './cluster.js';

/** Options of `switchyard demo`. */
export interface DemoOptions {
  /** Requests to send. @default 3000 */
  requests: number;
  /** Requests in flight at once. @default 32 */
  concurrency: number;
  /** Print the summary as JSON. */
  json: boolean;
  /** Keep the cluster's log from a previous demo run instead of starting clean. @default false */
  keep: boolean;
  /** Run the sink into the embedded analytics engine and show a query of the pack. @default true */
  analytics: boolean;
}

const TEXTS = [
  'The rollout went smoothly and latency dropped.',
  'Support fixed the outage quickly, great job.',
  'The model keeps timing out, this is terrible.',
  'Delivery was late and the package was damaged.',
  'I love how fast the new version answers.',
  'Nothing works after the upgrade, very disappointed.',
  'Solid release, no complaints at all.',
  'The canary looked fine, promote it.',
];
const PRIORITIES = ['HIGH', 'NORMAL', 'NORMAL', 'NORMAL', 'NORMAL', 'NORMAL', 'NORMAL', 'LOW', 'LOW', 'BACKGROUND'] as const;

/** A deterministic traffic mix: request i always looks the same (hash-free, index based). */
function requestBody(i: number): Record<string, unknown> {
  const kind = i % 20;
  const text = TEXTS[(i * 7) % TEXTS.length]!;
  const body: Record<string, unknown> = { priority: PRIORITIES[i % PRIORITIES.length], deadlineMs: 10_000 };
  if (kind < 12) {
    Object.assign(body, { model: 'sentiment-small', input: { text }, sessionId: `session-${i % 150}` });
  } else if (kind < 17) {
    Object.assign(body, { model: 'embed-small', input: { text: `${text} #${i % 40}` } });
  } else {
    Object.assign(body, { model: 'sentiment-small', input: { text }, zone: i % 2 === 0 ? 'zone-a' : 'zone-b' });
  }
  return body;
}

interface Sample {
  ms: number;
  status: number;
  requestId: string | undefined;
  model: string | undefined;
  modelVersion: string | undefined;
  workerId: string | undefined;
}

async function sendTraffic(url: string, { requests, concurrency }: DemoOptions, progress: (done: number) => void): Promise<{ samples: Sample[]; seconds: number }> {
  const samples: Sample[] = [];
  let next = 0;
  const start = process.hrtime.bigint();
  const client = async () => {
    while (next < requests) {
      const i = next++;
      const t0 = process.hrtime.bigint();
      const res = await fetch(`${url}/v1/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(requestBody(i)) });
      const body = (await res.json().catch(() => ({}))) as { requestId?: string; modelVersion?: string; model?: string; workerId?: string; error?: { requestId?: string } };
      samples.push({
        ms: Number(process.hrtime.bigint() - t0) / 1e6,
        status: res.status,
        requestId: body.requestId ?? body.error?.requestId,
        model: body.model,
        modelVersion: body.modelVersion,
        workerId: body.workerId,
      });
      progress(samples.length);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, client));
  return { samples, seconds: Number(process.hrtime.bigint() - start) / 1e9 };
}

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? Number.NaN;
const fixed = (x: number, d = 1) => Number(x.toFixed(d));

/** The demo's summary, computed from client-side samples and the services' own counters. */
export function summarize(samples: Sample[], seconds: number, cluster: Cluster) {
  const ok = samples.filter((s) => s.status === 200);
  const latencies = ok.map((s) => s.ms).sort((a, b) => a - b);
  const byStatus: Record<string, number> = {};
  for (const s of samples) byStatus[s.status] = (byStatus[s.status] ?? 0) + 1;
  const versions: Record<string, number> = {};
  for (const s of ok) versions[`${s.model}@${s.modelVersion}`] = (versions[`${s.model}@${s.modelVersion}`] ?? 0) + 1;
  const reasons: Record<string, number> = {};
  for (const r of cluster.routers) for (const [k, v] of Object.entries(r.stats().reasons)) reasons[k] = (reasons[k] ?? 0) + v;
  const workers = cluster.workers.map((w) => {
    const st = w.stats();
    return { worker: st.id, zone: st.zone, lane: st.lane, served: ok.filter((s) => s.workerId === st.id).length, cacheHitRatio: fixed(st.cacheHitRatio, 3), loadedModels: st.loadedModels.length };
  });
  return {
    traffic: {
      requests: samples.length,
      ok: ok.length,
      byStatus,
      seconds: fixed(seconds, 2),
      throughputPerSec: fixed(samples.length / seconds),
      latencyMs: { p50: fixed(pct(latencies, 50), 2), p95: fixed(pct(latencies, 95), 2), p99: fixed(pct(latencies, 99), 2) },
    },
    workers,
    decisionsByReason: reasons,
    routers: cluster.routers.map((r) => ({ router: r.id, ...r.stats(), reasons: undefined })),
    controllers: cluster.controllers.map((c) => {
      const st = c.stats();
      return { controller: st.id, leading: st.leading, epoch: st.epoch, evictions: st.evictions, redispatches: st.redispatches, retries: st.retries, ended: st.failed, superseded: st.superseded };
    }),
    servedByModelVersion: versions,
    sampleRequestId: ok.find((s) => s.model === 'sentiment-small')?.requestId ?? ok[0]?.requestId,
  };
}

/**
 * `switchyard demo` (`npm run demo`): an embedded cluster — 4 workers in 2 zones, 2 routers,
 * the gateway, the shipped models with a 90/10 canary on sentiment-small — and mixed HTTP
 * traffic through the gateway (sessions, priorities, zone preferences, two models). Ends
 * with a summary and one request's recorded path.
 */
export async function runDemo(base: SwitchyardConfig, options: DemoOptions): Promise<void> {
  const home = join(base.home, 'demo');
  if (!options.keep) rmSync(home, { recursive: true, force: true });
  const config: SwitchyardConfig = { ...base, home, brokers: [], schemaRegistryUrl: undefined };
  const say = (line: string) => process.stderr.write(`${line}\n`);
  const rt: Runtime = await openRuntime(config, { logger: createLogger('demo', config.logLevel === 'info' ? 'warn' : config.logLevel) });
  let cluster: Cluster | undefined;
  try {
    say(`demo: starting an embedded cluster under ${home} (4 workers in 2 zones, 2 routers, a controller, gateway)`);
    cluster = await startCluster(rt, { routers: 2, gateway: { port: 0 }, analytics: options.analytics ? {} : false });
    await setRollout(rt, 'sentiment-small', [{ version: 'v1', weight: 90 }, { version: 'v2', weight: 10 }], 'v1', 'v2');
    const url = cluster.gateway!.url;
    say(`demo: gateway at ${url}; sending ${options.requests} requests, ${options.concurrency} at a time`);

    const bar = new cliProgress.SingleBar({ format: 'demo: {bar} {value}/{total} requests | {rate} req/s', stream: process.stderr, noTTYOutput: true, notTTYSchedule: 2_000 }, cliProgress.Presets.shades_classic);
    const started = Date.now();
    bar.start(options.requests, 0, { rate: 0 });
    const { samples, seconds } = await sendTraffic(url, options, (done) => bar.update(done, { rate: Math.round(done / Math.max(0.001, (Date.now() - started) / 1000)) }));
    bar.stop();

    const analytics = cluster.sink ? await analyticsSample(rt, cluster, samples.filter((x) => x.status === 200).length, say) : undefined;
    const summary = { ...summarize(samples, seconds, cluster), home, analytics };
    if (options.json) {
      console.log(JSON.stringify(summary, null, 2));
      return;
    }
    const t = summary.traffic;
    console.log('\nTraffic');
    console.log(renderTable(['requests', 'ok', 'by HTTP status', 'seconds', 'req/s', 'p50 ms', 'p95 ms', 'p99 ms'], [[t.requests, t.ok, JSON.stringify(t.byStatus), t.seconds, t.throughputPerSec, t.latencyMs.p50, t.latencyMs.p95, t.latencyMs.p99]]));
    console.log('\nWorkers');
    console.log(renderTable(['worker', 'zone', 'lane', 'served', 'cache hit ratio', 'models loaded'], summary.workers.map((w) => [w.worker, w.zone, w.lane, w.served, w.cacheHitRatio, w.loadedModels])));
    console.log('\nController (failure detection, re-dispatch, retries)');
    console.log(renderTable(['controller', 'leading', 'epoch', 'evictions', 're-dispatches', 'retries', 'ended by controller', 'superseded'], summary.controllers.map((c) => [c.controller, c.leading ? 'yes' : 'no', c.epoch, c.evictions, c.redispatches, c.retries, c.ended, c.superseded])));
    console.log('\nDecisions by reason');
    console.log(renderTable(['reason', 'decisions'], Object.entries(summary.decisionsByReason).sort((a, b) => b[1] - a[1])));
    console.log('\nServed by model version (canary: sentiment-small v2 at 10%)');
    console.log(renderTable(['model@version', 'requests'], Object.entries(summary.servedByModelVersion).sort()));
    if (analytics) {
      console.log(`\nAnalytics (embedded ClickHouse): switchyard analytics latency-by-version --home ${home}`);
      console.log(renderTable(analytics.columns, analytics.rows.map((r) => analytics.columns.map((c) => fmt(r[c])))));
    }
    if (summary.sampleRequestId) {
      console.log(`\nOne request's recorded path: switchyard replay request ${summary.sampleRequestId} --home ${home}`);
      await printPath(rt, summary.sampleRequestId);
    }
  } finally {
    await cluster?.close();
    await rt.close();
  }
}

/** Prints one request's path with the replay library. */
async function printPath(rt: Runtime, requestId: string): Promise<void> {
  const { printRequestPath } = await import('./demo-path.js');
  await printRequestPath(rt, requestId);
}

const fmt = (v: unknown): string => (typeof v === 'number' ? String(Number(v.toFixed(2))) : v === null || v === undefined ? '' : String(v));

/** Waits for the sink to land every event of the run, then runs the pack's latency-by-version. */
async function analyticsSample(rt: Runtime, cluster: Cluster, answered: number, say: (line: string) => void): Promise<{ columns: string[]; rows: Record<string, unknown>[] }> {
  const sink = cluster.sink!;
  const deadline = Date.now() + 60_000;
  say('demo: waiting for the sink to land every event in the embedded ClickHouse');
  // Caught up when every request the demo saw answered has its InferenceCompleted queryable.
  const landed = async () => {
    const [row] = await cluster.analytics!.query<{ n: number }>("SELECT count() AS n FROM results FINAL WHERE type = 'InferenceCompleted'");
    return Number(row?.n ?? 0);
  };
  while ((await landed()) < answered) {
    if (Date.now() > deadline) throw new Error(`the sink did not land the run's ${answered} results within 60 s (lag ${sink.stats().lag})`);
    await new Promise((r) => setTimeout(r, 200));
  }
  const { loadQueryPack, resolveParams, runPackQuery } = await import('../lib/analytics/pack.js');
  const query = loadQueryPack().find((q) => q.name === 'latency-by-version')!;
  const rows = await runPackQuery(cluster.analytics!, query, resolveParams(query, { since: '-1h', until: String(Math.floor(rt.ctx.now() / 1000) + 60) }, rt.ctx.now()));
  return { columns: query.columns.map((c) => c.name), rows: rows as Record<string, unknown>[] };
}

