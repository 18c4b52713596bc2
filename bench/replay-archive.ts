import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createChdbAnalyticsStore } from '../lib/analytics/chdb.js';
import type { AnalyticsStore } from '../lib/analytics/port.js';
import { createServerAnalyticsStore } from '../lib/analytics/server.js';
import { openEmbeddedLog } from '../lib/log/embedded/index.js';
import { LogBackedRegistry } from '../lib/registry/log-backed.js';
import { createServiceContext } from '../lib/runtime.js';
import { findRequests } from '../replay/lookup.js';
import { RequestIndex } from '../replay/request-index.js';
import { planScan, scanRecords } from '../replay/scan.js';
import { logSourceFrom, openArchiveSource, type LogSource } from '../replay/source.js';
import { writeSyntheticLog } from '../replay/synthetic.js';
import { archiveWithSink } from '../replay/test-support.js';
import { verifyDecisions } from '../replay/verify.js';
import { EventCodec } from '../schemas/codec.js';
import type { BenchContext, BenchResult } from './main.js';
import { round, summarize, timed } from './stats.js';

/**
 * `npm run bench -- replay-archive [--quick]` (issue 4, item 6): replay from the log archive in
 * ClickHouse beside replay from the embedded log it archives, in one run, on a generated log
 * (replay/synthetic.ts; 200k events, 50k with --quick) that the real sink archives first:
 * `replay request` lookups (target < 1 s), a scan of every topic, and `verify` (0 divergences on
 * both). On chDB, and on the ClickHouse server at SWITCHYARD_BENCH_CLICKHOUSE_URL (default
 * http://127.0.0.1:8123) when it answers.
 */

interface SourceFigures {
  source: string;
  lookup: { p50: number; p99: number; n: number };
  scanPerSec: number;
  scanned: number;
  verifyPerSec: number;
  verifyPerCpuSec: number;
  decisions: number;
  verified: number;
  diverged: number;
}

async function measure(source: LogSource, ids: readonly string[], index: RequestIndex | undefined, ctx: BenchContext): Promise<SourceFigures> {
  ctx.progress(`${source.description}: ${ids.length} lookups`);
  const lookupMs: number[] = [];
  for (const id of ids) {
    const t = performance.now();
    const found = await findRequests(source, [id], index === undefined ? {} : { index });
    if ((found.events.get(id)?.length ?? 0) === 0) throw new Error(`${source.description}: request ${id} not found`);
    lookupMs.push(performance.now() - t);
  }
  ctx.progress(`${source.description}: scan`);
  const scan = await timed(async () => {
    const { ranges } = await planScan(source, ['requests', 'decisions', 'results', 'heartbeats', 'control']);
    let n = 0;
    for await (const batch of scanRecords(source, ranges)) n += batch.length;
    return n;
  });
  ctx.progress(`${source.description}: verify`);
  const verify = await timed(() => verifyDecisions(source));
  return {
    source: source.description,
    lookup: summarize(lookupMs),
    scanPerSec: (scan.value / scan.ms) * 1000,
    scanned: scan.value,
    verifyPerSec: (verify.value.decisions / verify.ms) * 1000,
    verifyPerCpuSec: (verify.value.decisions / verify.cpu) * 1000,
    decisions: verify.value.decisions,
    verified: verify.value.verified,
    diverged: verify.value.diverged,
  };
}

async function serverStore(url: string, database: string): Promise<AnalyticsStore | undefined> {
  try {
    const res = await fetch(new URL('/ping', url), { signal: AbortSignal.timeout(2_000) });
    if (!res.ok) return undefined;
  } catch {
    return undefined;
  }
  return createServerAnalyticsStore({ url, database });
}

export async function benchReplayArchive(ctx: BenchContext): Promise<BenchResult[]> {
  const events = ctx.quick ? 50_000 : 200_000;
  const home = await mkdtemp(join(tmpdir(), 'sy-bench-archive-'));
  const load = loadavg()[0]!.toFixed(1);
  const log = await openEmbeddedLog({ dir: join(home, 'log'), fsync: 'never', maintenanceIntervalMs: 0 });
  const stores: { name: string; store: AnalyticsStore; drop?: () => Promise<void> }[] = [];
  const rows: (string | number)[][] = [];
  const notes: string[] = [];
  try {
    const registry = await LogBackedRegistry.open({ log, topic: 'switchyard._schemas' });
    const codec = await EventCodec.create({ registry });
    const service = createServiceContext({ log, codec, lanes: 16 });
    await log.ensureTopics(Object.values(service.topics));
    ctx.progress(`generating a log of ${events.toLocaleString('en-US')} events`);
    const written = await writeSyntheticLog(service, { events, routers: 2, seed: 42 });
    const source = await logSourceFrom({ log, registry, codec, indexDir: join(home, 'replay-index'), description: 'embedded log (request index)' });
    const index = await RequestIndex.open(source);
    await index.update();
    const ids = written.sampleRequestIds.slice(0, ctx.quick ? 30 : 100);

    if (ctx.only === undefined || 'chdb'.includes(ctx.only)) stores.push({ name: 'chDB', store: await createChdbAnalyticsStore({ path: join(home, 'analytics') }) });
    const url = process.env.SWITCHYARD_BENCH_CLICKHOUSE_URL ?? 'http://127.0.0.1:8123';
    if (ctx.only === undefined || 'server'.includes(ctx.only)) {
      const database = `switchyard_bench_archive_${Date.now().toString(36)}`;
      const server = await serverStore(url, database);
      if (server === undefined) notes.push(`no ClickHouse server answered at ${url}: server figures left out`);
      else stores.push({ name: `ClickHouse ${(await server.serverVersion()).raw} server`, store: server, drop: () => server.exec(`DROP DATABASE IF EXISTS ${database}`) });
    }

    const onLog = await measure(source, ids, index, ctx);
    rows.push(['embedded log (request index)', round(onLog.lookup.p50), round(onLog.lookup.p99), Math.round(onLog.scanPerSec), Math.round(onLog.verifyPerSec), Math.round(onLog.verifyPerCpuSec), `${onLog.verified}/${onLog.decisions}, ${onLog.diverged} diverged`, '—']);
    await index.close();

    for (const { name, store } of stores) {
      ctx.progress(`${name}: the sink archives the log`);
      const group = `bench-archive-${rows.length}`;
      const archived = await timed(() => archiveWithSink(source, store, { groupId: group, timeoutMs: 3_600_000 }));
      const archive = await openArchiveSource(store, { description: `${name} archive` });
      try {
        const f = await measure(archive, ids, undefined, ctx);
        rows.push([
          `${name} archive (log_ids)`,
          round(f.lookup.p50),
          round(f.lookup.p99),
          Math.round(f.scanPerSec),
          Math.round(f.verifyPerSec),
          Math.round(f.verifyPerCpuSec),
          `${f.verified}/${f.decisions}, ${f.diverged} diverged`,
          `${Math.round((written.events / archived.ms) * 1000)} events/s`,
        ]);
        // The archive must answer what the log answers: a figure over other data would mean nothing.
        if (f.scanned !== onLog.scanned || f.decisions !== onLog.decisions || f.verified !== onLog.verified) {
          throw new Error(`${name}: the archive read ${f.scanned} records and ${f.decisions} decisions (${f.verified} verified), the log ${onLog.scanned} and ${onLog.decisions} (${onLog.verified})`);
        }
      } finally {
        await archive.close();
      }
    }
    notes.push(`${written.events.toLocaleString('en-US')} events (${written.requests} requests), ${ids.length} lookups each; load average ${load} at the start`);
    notes.push('verify per CPU-s counts this process only (not the ClickHouse server\'s own CPU); archive fill = the sink (typed tables + archive) from the embedded log');
    return [
      {
        title: 'replay from the ClickHouse archive vs the embedded log',
        columns: ['source', 'lookup p50 ms', 'lookup p99 ms', 'scan records/s', 'verify decisions/s', 'verify per CPU-s', 'verify result', 'archive fill'],
        rows,
        notes,
      },
    ];
  } finally {
    for (const { store, drop } of stores) {
      await drop?.().catch(() => {});
      await store.close().catch(() => {});
    }
    await log.close().catch(() => {});
    await rm(home, { recursive: true, force: true });
  }
}
