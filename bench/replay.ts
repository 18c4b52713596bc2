import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { openEmbeddedLog } from '../lib/log/embedded/index.js';
import { LogBackedRegistry } from '../lib/registry/log-backed.js';
import { createServiceContext } from '../lib/runtime.js';
import { EventCodec } from '../schemas/codec.js';
import { findRequests } from '../replay/lookup.js';
import { RequestIndex } from '../replay/request-index.js';
import { planScan, scanEventBatches, scanRecords } from '../replay/scan.js';
import { logSourceFrom } from '../replay/source.js';
import { writeSyntheticLog } from '../replay/synthetic.js';
import { buildTrace } from '../replay/trace.js';
import { verifyDecisionsParallel } from '../replay/parallel.js';
import { verifyDecisions, type VerifyReport } from '../replay/verify.js';
import type { BenchContext, BenchResult } from './main.js';
import { median, round, summarize } from './stats.js';

/**
 * `npm run bench -- replay [--quick]` (issue 4): on a generated embedded log of 1M events
 * (100k with --quick) —
 * - `replay request` lookup time with the request index (target < 1 s), beside the index's
 *   one-time build and the keyed lookup (no index, what Kafka uses);
 * - scan throughput (target ≥ 200k events/s): raw records, envelopes, and events decoded by
 *   the codec;
 * - `verify` throughput (target ≥ 50k decisions/s), which must find 0 divergences.
 *
 * The log is written by replay/synthetic.ts: events encoded by the codec straight into the log,
 * decisions made by two simulated routers running the router's pure core with exact clocks
 * (16 workers in 4 zones, sessions, zones, priorities, a canary, a slow worker, failures).
 * Throughputs are given per wall second and per CPU second of this process (the machine is
 * shared, so the wall figure depends on what else runs).
 */

const cpuMs = (since: NodeJS.CpuUsage): number => {
  const u = process.cpuUsage(since);
  return (u.user + u.system) / 1000;
};

async function timed<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number; cpu: number }> {
  const c = process.cpuUsage();
  const t = performance.now();
  const value = await fn();
  return { value, ms: performance.now() - t, cpu: cpuMs(c) };
}

export async function benchReplay(ctx: BenchContext): Promise<BenchResult[]> {
  const events = ctx.quick ? 100_000 : 1_000_000;
  const home = await mkdtemp(join(tmpdir(), 'sy-bench-replay-'));
  const log = await openEmbeddedLog({ dir: join(home, 'log'), fsync: 'never', maintenanceIntervalMs: 0 });
  try {
    const registry = await LogBackedRegistry.open({ log, topic: 'switchyard._schemas' });
    const codec = await EventCodec.create({ registry });
    const service = createServiceContext({ log, codec, lanes: 16 });
    await log.ensureTopics(Object.values(service.topics));

    ctx.progress(`generating a log of ${events.toLocaleString('en-US')} events (simulated routers running the real decide/evolve)`);
    const gen = await timed(() => writeSyntheticLog(service, { events, routers: 2, seed: 42, onProgress: (n, total) => ctx.progress(`  ${n.toLocaleString('en-US')} / ${total.toLocaleString('en-US')}`) }));
    const written = gen.value;
    ctx.progress(`  ${written.events} events (${written.requests} requests, ${written.rejected} rejected, ${written.heartbeats} heartbeats) in ${(gen.ms / 1000).toFixed(1)} s`);
    const source = await logSourceFrom({ log, registry, codec, indexDir: join(home, 'replay-index'), description: 'bench' });

    // The request index: built once, then each lookup brings it up to date (nothing new here).
    ctx.progress('building the request index');
    const index = await RequestIndex.open(source);
    const build = await timed(() => index.update());
    const stats = index.stats();
    const ids = written.sampleRequestIds.slice(0, ctx.quick ? 50 : 200);
    ctx.progress(`${ids.length} lookups with the index`);
    const lookupMs: number[] = [];
    let hops = 0;
    for (const id of ids) {
      const t = performance.now();
      const found = await findRequests(source, [id], { index });
      hops += buildTrace(id, found.events.get(id) ?? []).hops.length;
      lookupMs.push(performance.now() - t);
    }
    await index.close();
    const cold = await timed(async () => {
      // A fresh process's lookup: open the index from disk, check it is current, look up.
      const fresh = await RequestIndex.open(source);
      try {
        return (await findRequests(source, [ids[0]!], { index: fresh })).events.get(ids[0]!)?.length ?? 0;
      } finally {
        await fresh.close();
      }
    });
    const keyedIds = ids.slice(0, 5);
    ctx.progress(`${keyedIds.length} keyed lookups (no index: what a Kafka source does)`);
    const keyedMs: number[] = [];
    for (const id of keyedIds) {
      const t = performance.now();
      await findRequests(source, [id], { index: false });
      keyedMs.push(performance.now() - t);
    }
    await log.close();
    // The CLI end to end, as a user runs it (process start and TypeScript loading included).
    ctx.progress('the CLI: switchyard replay request');
    const cliRun = await timed(() =>
      promisify(execFile)(process.execPath, ['--import', 'tsx', 'cli/main.ts', '--home', home, 'replay', 'request', ids[1]!, '--brief'], { cwd: join(import.meta.dirname, '..'), maxBuffer: 16 * 1024 * 1024 }),
    );
    const reopened = await openEmbeddedLog({ dir: join(home, 'log'), fsync: 'never', maintenanceIntervalMs: 0 });
    const registry2 = await LogBackedRegistry.open({ log: reopened, topic: 'switchyard._schemas' });
    const source2 = await logSourceFrom({ log: reopened, registry: registry2, codec: await EventCodec.create({ registry: registry2 }), indexDir: join(home, 'replay-index'), ownsLog: true });
    try {
      // Scans of every topic.
      ctx.progress('scans');
      const all = ['requests', 'decisions', 'results', 'heartbeats', 'control'];
      const raw = await timed(async () => {
        const { ranges } = await planScan(source2, all);
        let n = 0;
        for await (const batch of scanRecords(source2, ranges)) n += batch.length;
        return n;
      });
      const envelopes = await timed(async () => {
        const { ranges } = await planScan(source2, all);
        let n = 0;
        for await (const batch of scanRecords(source2, ranges)) {
          for (const r of batch) {
            if (source2.peeker.typeOf(r.value) === undefined) await source2.peeker.resolve(r.value!.readInt32BE(1));
            if (source2.peeker.peek(r.value) !== null) n++;
          }
        }
        return n;
      });
      const decoded = await timed(async () => {
        let n = 0;
        for await (const batch of scanEventBatches(source2, all)) n += batch.length;
        return n;
      });

      // verify over the whole log, several times (the machine is shared: the median is quoted).
      const runs = ctx.quick ? 1 : 3;
      const singles: Awaited<ReturnType<typeof timed<VerifyReport>>>[] = [];
      for (let k = 0; k < runs; k++) {
        ctx.progress(`verify, one thread (${k + 1}/${runs})`);
        singles.push(await timed(() => verifyDecisions(source2, { onProgress: ({ phase, done, total }) => done === total && ctx.progress(`  ${phase} ${done}/${total}`) })));
      }
      const threads = Math.min(availableParallelism(), 8);
      const pars: Awaited<ReturnType<typeof timed<VerifyReport>>>[] = [];
      for (let k = 0; k < runs; k++) {
        ctx.progress(`verify on ${threads} threads (${k + 1}/${runs})`);
        pars.push(await timed(() => verifyDecisionsParallel(source2, { threads, minDecisions: 0 })));
      }
      const byWall = (xs: typeof singles) => [...xs].sort((a, b) => a.ms - b.ms);
      const verify = byWall(singles)[Math.floor((runs - 1) / 2)]!;
      const par = byWall(pars)[Math.floor((runs - 1) / 2)]!;
      const v = verify.value;
      const cpuMedian = (xs: typeof singles) => median(xs.map((x) => x.value.decisions / (x.cpu / 1000)));
      const spread = (xs: typeof singles) => xs.map((x) => perSec(x.value.decisions, x.ms).toLocaleString('en-US')).join(', ');

      const lk = summarize(lookupMs);
      const perSec = (n: number, ms: number) => Math.round((n / ms) * 1000);
      const pass = (ok: boolean) => (ok ? 'yes' : 'NO');
      return [
        {
          title: `Replay (issue 4): embedded log of ${written.events.toLocaleString('en-US')} events — ${written.requests.toLocaleString('en-US')} requests, ${written.decisions.toLocaleString('en-US')} decisions by 2 routers, 16 workers`,
          columns: ['measure', 'result', 'per CPU-s', 'target', 'met'],
          rows: [
            ['replay request with the index: p50 / p99 / max (ms)', `${round(lk.p50, 2)} / ${round(lk.p99, 2)} / ${round(Math.max(...lookupMs), 2)}`, '', '< 1000 ms', pass(Math.max(...lookupMs) < 1000)],
            ['replay request, a fresh index handle (open + up-to-date check + lookup), ms', round(cold.ms, 1), '', '< 1000 ms', pass(cold.ms < 1000)],
            ['replay request, the CLI process end to end (tsx start included), ms', round(cliRun.ms, 0), '', '', ''],
            ['replay request without an index (keyed scans: Kafka), p50 ms', round(summarize(keyedMs).p50, 0), '', '', ''],
            ['request index build, once (records/s)', perSec(build.value.scanned, build.ms), perSec(build.value.scanned, build.cpu), '', ''],
            ['scan, raw records (records/s)', perSec(raw.value, raw.ms), perSec(raw.value, raw.cpu), '', ''],
            ['scan, envelopes read (events/s)', perSec(envelopes.value, envelopes.ms), perSec(envelopes.value, envelopes.cpu), '≥ 200k', pass(perSec(envelopes.value, envelopes.ms) >= 200_000)],
            ['scan, events fully decoded (events/s)', perSec(decoded.value, decoded.ms), perSec(decoded.value, decoded.cpu), '≥ 200k', pass(perSec(decoded.value, decoded.ms) >= 200_000)],
            [`verify, one thread (decisions/s, median of ${runs})`, perSec(v.decisions, verify.ms), Math.round(cpuMedian(singles)), '≥ 50k', pass(perSec(v.decisions, verify.ms) >= 50_000)],
            [`verify on ${par.value.threads} threads (decisions/s, median of ${runs})`, perSec(par.value.decisions, par.ms), Math.round(cpuMedian(pars)), '≥ 50k', pass(perSec(par.value.decisions, par.ms) >= 50_000)],
            [
              'verify: decisions / verified / diverged (one thread; threads)',
              `${v.decisions} / ${v.verified} / ${v.diverged}; ${par.value.decisions} / ${par.value.verified} / ${par.value.diverged}`,
              '',
              '0 diverged',
              pass([...singles, ...pars].every((x) => x.value.diverged === 0 && x.value.verified === v.decisions)),
            ],
          ],
          notes: [
            `generation: ${(gen.ms / 1000).toFixed(1)} s (${perSec(written.events, gen.ms).toLocaleString('en-US')} events/s, decide and evolve included); index: ${stats.entries.toLocaleString('en-US')} entries in ${stats.runs} run(s), built in ${(build.ms / 1000).toFixed(2)} s`,
            `lookups: ${lookupMs.length} request ids, ${(hops / lookupMs.length).toFixed(1)} hops each on average; each lookup checks the index is current first`,
            `verify (median run): listing ${(v.listMs / 1000).toFixed(2)} s, verifying ${(v.verifyMs / 1000).toFixed(2)} s, ${v.foldedRecords.toLocaleString('en-US')} records folded for 2 routers, ${v.verifiedInPlace.toLocaleString('en-US')} decisions checked against their recorded bytes (the rest decoded in full); per CPU-s counts this process's user+system time (GC and worker threads included)`,
            `verify runs, decisions/s: one thread ${spread(singles)}; ${par.value.threads} threads ${spread(pars)}`,
            `machine: ${cpus().length} cores shared with other work; load average ${loadavg().map((x) => x.toFixed(1)).join(' ')}`,
          ],
        },
      ];
    } finally {
      await source2.close();
    }
  } finally {
    await log.close().catch(() => {});
    await rm(home, { recursive: true, force: true });
  }
}
