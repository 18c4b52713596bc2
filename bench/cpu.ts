import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openLogSource } from '../replay/source.js';
import { scanEventBatches } from '../replay/scan.js';
import { HopTimings, type HopRow } from './hops.js';
import type { BenchContext, BenchResult } from './main.js';
import { cpuDeltaMs } from './peers/measure.js';
import { TICKS_PER_SECOND, treeTicks } from './peers/proc.js';
import { measureLoad, type Measured } from './peers/run.js';
import { startUp } from './peers/up.js';
import { revision, startFloor } from './peers/bench.js';
import { summarize as summarizeProfile, type Profile } from './profile-summary.js';
import { summarizeAllocations, type AllocationSummary, type HeapSamplingProfile } from './alloc-summary.js';
import { median, round } from './stats.js';

/**
 * `npm run bench -- cpu [--rate N] [--seconds S] [--warmup N] [--runs N] [--skip-profiles] [--baseline <checkout>] [--up-args="<flags>"] [--node-args="<flags>"] [--quick] [--json]`:
 * where the CPU and the time of a request go in `switchyard up` (issue 11). The shipped `noop`
 * model on the embedded log with the default fsync, an open loop at a fixed rate from the peers
 * benchmark's load generator (a process of its own, unique inputs):
 * - CPU per completed request of the whole process tree, user and system apart, and above idle;
 * - every request of the window counted on the log afterwards, and the time between its recorded
 *   events per hop (bench/hops.ts);
 * - a V8 CPU profile (`--cpu-prof`) of one more window, by area (bench/profile-summary.ts);
 * - what a request allocates, garbage included, from V8's sampling heap profiler over one more
 *   window (bench/heap-sampling.mjs, bench/alloc-summary.ts);
 * - the floor: a bare node:http server (the peers benchmark's) under the same load in each run,
 *   so the CPU and latency a request costs are also given as added over a direct call — what
 *   a process pays at this rate for being woken per request, reading and writing a socket.
 * With `--baseline`, another built checkout (e.g. `git worktree add /tmp/before <commit>` then
 * `npm ci && npm run build` there) is measured the same way in the same run, runs alternating,
 * so the two see the same machine. With `--up-args="<flags>"` (e.g. `--up-args="--controllers 0"`), this
 * tree's `switchyard up <flags>` is measured the same way beside its defaults; with
 * `--node-args="<flags>"` (e.g. `--node-args="--max-semi-space-size=64"`), this tree under those node flags.
 * `--warmup N` sends N requests at the rate before each window (default 1,000): e.g. 150,000 at
 * 1,000 req/s measures a process whose bounded memories (the tracker's 100k statuses, the
 * router's 200k decided ids) are full, as after minutes of traffic.
 */

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const HEAP_SAMPLING = fileURLToPath(new URL('./heap-sampling.mjs', import.meta.url));

interface Variant {
  name: string;
  checkout: string;
  /** More flags for its \`switchyard up\`. */
  upArgs?: string[];
  /** Flags for the node process that runs it. */
  nodeArgs?: string[];
}

interface Run {
  m: Measured;
  idleMsPerS: number;
  onLog: { requested: number; completed: number; other: number };
  hops: HopRow[];
  simple: number;
}

/** The recorded events of requests received since `from`: counted, and timed per hop. */
async function readLog(home: string, from: number): Promise<Pick<Run, 'onLog' | 'hops' | 'simple'>> {
  const source = await openLogSource({ brokers: [], home, topicPrefix: 'switchyard.', schemaRegistryUrl: undefined, fsync: 'never' });
  try {
    const hops = new HopTimings();
    const onLog = { requested: 0, completed: 0, other: 0 };
    for await (const batch of scanEventBatches(source, ['requests', 'decisions', 'results'], { from })) {
      for (const { event, record } of batch) {
        if (event.type === 'InferenceRequested') onLog.requested++;
        else if (event.type === 'InferenceCompleted') onLog.completed++;
        else if (event.type === 'InferenceFailed' || event.type === 'RequestRejected' || event.type === 'ResultSuperseded') onLog.other++;
        hops.add(event, record.timestamp);
      }
    }
    return { onLog, hops: hops.rows(), simple: hops.counts().simple };
  } finally {
    await source.close();
  }
}

export async function benchCpu(ctx: BenchContext): Promise<BenchResult[]> {
  const rate = ctx.rate ?? 400;
  const seconds = ctx.seconds ?? (ctx.quick ? 5 : 20);
  const runs = ctx.runs ?? (ctx.quick ? 1 : 3);
  const warmup = ctx.warmup ?? 1_000;
  const idleSeconds = ctx.quick ? 2 : 5;
  const runId = Date.now().toString(36);
  const variants: Variant[] = [{ name: `this tree (${revision()})`, checkout: ROOT }];
  if (ctx.baseline !== undefined) {
    const checkout = resolve(ctx.baseline);
    if (!existsSync(join(checkout, 'dist', 'cli', 'main.js'))) throw new Error(`--baseline ${checkout}: no dist/cli/main.js there (npm ci && npm run build in that checkout first)`);
    variants.unshift({ name: `baseline (${revision(checkout)})`, checkout });
  }
  if (ctx.upArgs !== undefined && ctx.upArgs.length > 0) variants.push({ name: `this tree, up ${ctx.upArgs.join(' ')}`, checkout: ROOT, upArgs: ctx.upArgs });
  if (ctx.nodeArgs !== undefined && ctx.nodeArgs.length > 0) variants.push({ name: `this tree, node ${ctx.nodeArgs.join(' ')}`, checkout: ROOT, nodeArgs: ctx.nodeArgs });
  /** With two variants, the second over the first. */
  const ratioLabel = ctx.baseline !== undefined ? 'this tree ÷ baseline' : variants[1]?.nodeArgs !== undefined ? `node ${ctx.nodeArgs?.join(' ') ?? ''} ÷ defaults` : `up ${ctx.upArgs?.join(' ') ?? ''} ÷ defaults`;
  if (!existsSync(join(ROOT, 'dist', 'BUILD'))) ctx.progress('dist/ is not built: this tree runs from its sources through tsx (npm run build first to measure what ships)');
  const loadBefore = loadavg();
  const byVariant = new Map<string, Run[]>(variants.map((v) => [v.name, []]));
  const floorRuns: Measured[] = [];
  const profiles = new Map<string, ReturnType<typeof summarizeProfile>>();
  const ran = new Map<string, string>();

  const job = (url: string, tag: string, warm = warmup) => ({ url: `${url}/v1/infer`, tag: `${runId} ${tag}`, mode: 'open' as const, rate, connections: 64, seconds, warmup: warm, timeoutMs: 30_000 });

  for (let r = 0; r < runs; r++) {
    for (const v of variants) {
      ctx.progress(`${v.name} run ${r + 1}/${runs}: ${idleSeconds} s idle, then ${rate} req/s for ${seconds} s${warmup > 1_000 ? ` after ${warmup} requests` : ''}`);
      const up = await startUp({ brokers: [], checkout: v.checkout, upArgs: v.upArgs ?? [], nodeArgs: v.nodeArgs ?? [] });
      ran.set(v.name, up.ran);
      try {
        const before = treeTicks(up.pid);
        const t0 = performance.now();
        await new Promise((res) => setTimeout(res, idleSeconds * 1000));
        const idleMsPerS = cpuDeltaMs(before, treeTicks(up.pid), TICKS_PER_SECOND) / ((performance.now() - t0) / 1000);
        const m = await measureLoad(job(up.url, `${v.name} ${r}`), up.pid);
        await up.stop(true);
        const log = await readLog(up.home, m.startedAt);
        byVariant.get(v.name)!.push({ m, idleMsPerS, ...log });
        ctx.progress(`  ${round(m.result.okPerSec, 0)} ok/s, p50 ${round(m.result.p50, 2)} ms, p99 ${round(m.result.p99, 2)} ms, CPU ${round(m.cpuMs / m.result.ok, 3)} ms/req (user ${round(m.userCpuMs / m.result.ok, 3)}), on the log ${log.onLog.requested} requested / ${log.onLog.completed} completed`);
      } finally {
        await up.stop();
      }
    }
    ctx.progress(`bare node:http (floor) run ${r + 1}/${runs}: ${rate} req/s for ${seconds} s`);
    const floor = await startFloor();
    try {
      const m = await measureLoad(job(floor.url.replace(/\/$/, ''), `floor ${r}`, 1_000), floor.rootPid);
      floorRuns.push(m);
      ctx.progress(`  ${round(m.result.okPerSec, 0)} ok/s, p50 ${round(m.result.p50, 2)} ms, p99 ${round(m.result.p99, 2)} ms, CPU ${round(m.cpuMs / m.result.ok, 3)} ms/req`);
    } finally {
      await floor.stop();
    }
  }
  for (const v of ctx.skipProfiles ? [] : variants) {
    ctx.progress(`${v.name}: one more window under the V8 profiler (--cpu-prof)`);
    const dir = mkdtempSync(join(tmpdir(), 'sy-bench-cpu-prof-'));
    const up = await startUp({ brokers: [], checkout: v.checkout, upArgs: v.upArgs ?? [], nodeArgs: [...(v.nodeArgs ?? []), '--cpu-prof', '--cpu-prof-dir', dir] });
    try {
      const m = await measureLoad(job(up.url, `${v.name} profiled`), up.pid);
      const windowEnd = Date.now();
      await up.stop();
      const exited = Date.now();
      const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
      if (file === undefined) ctx.progress(`  no profile written in ${dir}`);
      else {
        // The profile ends as the process exits; its clock is not the wall clock, so the window is
        // placed back from the end (to within the few ms between the exit and our seeing it).
        const profile = JSON.parse(readFileSync(join(dir, file), 'utf8')) as Profile;
        const window = { from: profile.endTime - (exited - m.startedAt) * 1000, to: profile.endTime - (exited - windowEnd) * 1000 };
        profiles.set(v.name, summarizeProfile(profile, 14, window));
      }
    } finally {
      await up.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  }

  const allocations = new Map<string, AllocationSummary & { requests: number }>();
  for (const v of ctx.skipProfiles ? [] : variants) {
    ctx.progress(`${v.name}: one more window under V8's sampling heap profiler`);
    const dir = mkdtempSync(join(tmpdir(), 'sy-bench-cpu-alloc-'));
    const file = join(dir, 'alloc.heapprofile');
    const up = await startUp({ brokers: [], checkout: v.checkout, upArgs: v.upArgs ?? [], nodeArgs: [...(v.nodeArgs ?? []), '--import', HEAP_SAMPLING], env: { SWITCHYARD_HEAP_SAMPLING_FILE: file } });
    try {
      // The profiler runs from the end of the warm-up to the end of the window (bench/heap-sampling.mjs).
      const signal = (): void => void process.kill(up.pid, 'SIGUSR2');
      const m = await measureLoad(job(up.url, `${v.name} allocations`), up.pid, undefined, { onStart: signal, onDone: signal });
      const deadline = performance.now() + 60_000;
      while (!existsSync(file) && performance.now() < deadline) await new Promise((res) => setTimeout(res, 200));
      if (!existsSync(file)) ctx.progress(`  no heap profile written in ${dir}`);
      else allocations.set(v.name, { ...summarizeAllocations(JSON.parse(readFileSync(file, 'utf8')) as HeapSamplingProfile, 12), requests: m.result.ok + m.result.shed + m.result.failed });
    } finally {
      await up.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  }

  const med = (rs: Run[], f: (r: Run) => number): number => median(rs.map(f));
  const perReq = (rs: Run[], f: (r: Run) => number): number => round(med(rs, (r) => f(r) / r.m.result.ok), 3);
  const floorCpu = median(floorRuns.map((m) => m.cpuMs / m.result.ok));
  const floorP50 = median(floorRuns.map((m) => m.result.p50));
  const floorP99 = median(floorRuns.map((m) => m.result.p99));
  const cpuRows = variants.map((v) => {
    const rs = byVariant.get(v.name)!;
    return [
      v.name,
      Math.round(med(rs, (r) => r.m.result.okPerSec)),
      round(med(rs, (r) => r.m.result.p50), 2),
      round(med(rs, (r) => r.m.result.p99), 2),
      rs.reduce((n, r) => n + r.m.result.shed + r.m.result.failed, 0),
      perReq(rs, (r) => r.m.cpuMs),
      perReq(rs, (r) => r.m.userCpuMs),
      perReq(rs, (r) => r.m.cpuMs - r.m.userCpuMs),
      perReq(rs, (r) => r.m.cpuMs - r.idleMsPerS * r.m.result.elapsedS),
      round(med(rs, (r) => r.idleMsPerS), 1),
      `${round(med(rs, (r) => r.m.cpuMs / r.m.result.ok) - floorCpu, 3)} / ${round(med(rs, (r) => r.m.result.p50) - floorP50, 2)} / ${round(med(rs, (r) => r.m.result.p99) - floorP99, 1)}`,
      rs.map((r) => `${r.onLog.requested}/${r.onLog.completed}/${r.onLog.other}`).join(', '),
    ];
  });
  cpuRows.push([
    'bare node:http (floor)',
    Math.round(median(floorRuns.map((m) => m.result.okPerSec))),
    round(floorP50, 2),
    round(floorP99, 2),
    floorRuns.reduce((n, m) => n + m.result.shed + m.result.failed, 0),
    round(floorCpu, 3),
    round(median(floorRuns.map((m) => m.userCpuMs / m.result.ok)), 3),
    round(median(floorRuns.map((m) => (m.cpuMs - m.userCpuMs) / m.result.ok)), 3),
    '',
    '',
    '',
    '',
  ]);
  if (variants.length === 2) {
    const [b, a] = variants.map((v) => byVariant.get(v.name)!);
    const ratio = (f: (r: Run) => number): string => `×${round(med(a!, f) / med(b!, f), 2)}`;
    cpuRows.push([
      ratioLabel,
      ratio((r) => r.m.result.okPerSec),
      ratio((r) => r.m.result.p50),
      ratio((r) => r.m.result.p99),
      '',
      ratio((r) => r.m.cpuMs / r.m.result.ok),
      ratio((r) => r.m.userCpuMs / r.m.result.ok),
      ratio((r) => (r.m.cpuMs - r.m.userCpuMs) / r.m.result.ok),
      ratio((r) => (r.m.cpuMs - r.idleMsPerS * r.m.result.elapsedS) / r.m.result.ok),
      ratio((r) => r.idleMsPerS),
      '',
      '',
    ]);
  }

  // Hops from each variant's last run (the runs agree to within the machine's noise; the CPU table has them all).
  const hopRows = (byVariant.get(variants[0]!.name)!.at(-1)?.hops ?? []).map((h, i) => [
    h.name,
    ...variants.flatMap((v) => {
      const x = byVariant.get(v.name)!.at(-1)!.hops[i]!;
      return [round(x.mean, 2), x.p50, x.p99];
    }),
    h.spans,
  ]);
  const areas = [...new Set(variants.flatMap((v) => (profiles.get(v.name)?.areas ?? []).map(([a]) => a)))];
  const profileRows = areas.map((area) => [
    area,
    ...variants.map((v) => {
      const p = profiles.get(v.name);
      const us = p?.areas.find(([a]) => a === area)?.[1];
      return p === undefined || us === undefined ? '—' : `${round((us / 1000 / p.busyMs) * 100, 1)}%`;
    }),
  ]);
  const kbPerRequest = (name: string, bytes: number | undefined): string => {
    const a = allocations.get(name);
    return a === undefined || bytes === undefined ? '—' : String(round(bytes / a.requests / 1024, 2));
  };
  const allocAreas = [...new Set(variants.flatMap((v) => (allocations.get(v.name)?.areas ?? []).map(([a]) => a)))];
  const allocRows = [
    ['all', ...variants.map((v) => kbPerRequest(v.name, allocations.get(v.name)?.totalBytes))],
    ...allocAreas.map((area) => [area, ...variants.map((v) => kbPerRequest(v.name, allocations.get(v.name)?.areas.find(([a]) => a === area)?.[1]))]),
  ];
  if (variants.length === 2) {
    const [b, a] = variants.map((v) => allocations.get(v.name)?.totalBytes ?? Number.NaN);
    const [rb, ra] = variants.map((v) => allocations.get(v.name)?.requests ?? Number.NaN);
    allocRows[0]!.push(`×${round(a! / ra! / (b! / rb!), 2)}`);
    for (const row of allocRows.slice(1)) row.push('');
  }
  const allocFunctionRows = variants.flatMap((v) => (allocations.get(v.name)?.functions ?? []).slice(0, 10).map(([f, bytes]) => [v.name, f, kbPerRequest(v.name, bytes)]));
  const functionRows = variants.flatMap((v) => (profiles.get(v.name)?.functions ?? []).slice(0, 10).map(([f, us]) => [v.name, f, `${round((us / 1000 / profiles.get(v.name)!.busyMs) * 100, 1)}%`]));
  const machine = `Machine: ${cpus().length} vCPUs (${cpus()[0]?.model ?? '?'}), Node ${process.versions.node}; load average ${loadBefore.map((l) => round(l, 2)).join(' / ')} before the run, ${loadavg().map((l) => round(l, 2)).join(' / ')} after it.`;
  return [
    {
      title: `CPU per request, \`switchyard up\` embedded, no-op model, open loop ${rate} req/s (median of ${runs} run${runs === 1 ? '' : 's'} of ${seconds} s${variants.length === 2 ? ', alternating' : ''})`,
      columns: ['Switchyard', 'completed req/s', 'p50 ms', 'p99 ms', 'shed + failed', 'CPU ms/req', 'user', 'system', 'above idle', 'idle CPU ms/s', 'added over the floor: CPU ms/req / p50 / p99 ms', 'on the log: requested/completed/other per run'],
      rows: cpuRows,
      notes: [
        `\`switchyard up\` (bin/switchyard.js: ${[...ran].map(([n, how]) => `${n} ran ${how}`).join('; ')}) with its defaults — embedded log, fsync \`always\`, the shipped \`noop\` model — a fresh home each run. Load: bench/peers/loadgen.ts in a process of its own, POST /v1/infer with an input unique per request (cacheable false), latency from each request's due time, ${warmup.toLocaleString('en-US')} warm-up requests first (closed loop, 8 connections), not counted${warmup > 1_000 ? ' (the floor: 1,000)' : ''}.`,
        'CPU ms/req: user + system CPU of the whole process tree over the window (/proc) ÷ the requests completed (200). Above idle: less what the same process spends with no requests, measured for a few seconds before the window (heartbeats, ticks, timers).',
        'The floor: bare node:http in a process of its own answering each request with its body (bench/peers/floor.ts), under the same load from the same generator once per run; "added over the floor" is a variant\'s median less the floor\'s — what the issue\'s goals are stated as (added over a direct call).',
        'On the log: after each run the log is opened and every event of the requests received in the window counted — InferenceRequested / InferenceCompleted / anything else terminal or superseded (failed, rejected, superseded).',
        machine,
      ],
    },
    {
      title: 'Where a request\'s time goes, per hop, from its recorded events (ms; each variant\'s last run)',
      columns: ['hop', ...variants.flatMap((v) => [`${v.name} mean`, 'p50', 'p99']), 'spans'],
      rows: hopRows,
      notes: [
        `From the events of the requests on the simple path (routed once, started once, completed): ${variants.map((v) => `${v.name} ${byVariant.get(v.name)!.at(-1)?.simple ?? 0}`).join(', ')} requests. Times are whole milliseconds (the events' resolution): a hop under a millisecond shows in its mean. A record's timestamp is taken when its append is called, before the group commit, so a topic's fsync shows in the hop after its append.`,
      ],
    },
    {
      title: 'Where the main thread\'s busy time goes, by area (V8 CPU profile of one more window at the same rate, share of busy time)',
      columns: ['area', ...variants.map((v) => v.name)],
      rows: profileRows,
      notes: [
        `Samples of the load window only (start-up, warm-up and shutdown left out). ${variants.map((v) => `${v.name}: main thread busy ${round(profiles.get(v.name)?.busyMs ?? 0, 0)} ms, idle ${round(profiles.get(v.name)?.idleMs ?? 0, 0)} ms`).join('; ')}. V8 samples the main thread only; a native row (writeBuffers: socket writes, fdatasync, writev) is time the main thread spent in that call. The thread pool's and the kernel's share are in the system column above.`,
      ],
    },
    {
      title: 'Top functions by self time (same profiles)',
      columns: ['Switchyard', 'function', 'share of busy'],
      rows: functionRows,
      notes: [],
    },
    {
      title: 'What a request allocates, KB, by area (V8 sampling heap profiler over one more window at the same rate, collected objects counted)',
      columns: ['area', ...variants.map((v) => v.name), ...(variants.length === 2 ? [ratioLabel] : [])],
      rows: allocRows,
      notes: [
        `Bytes allocated on the V8 heap in the load window (start-up and warm-up left out), garbage included, ÷ the requests of the window (${variants.map((v) => `${v.name}: ${allocations.get(v.name)?.requests ?? 0}`).join('; ')}). V8 samples an allocation every 8 KiB on average and scales the samples to an estimate of the whole. Buffers' backing stores are outside the V8 heap and not counted. An area outside a variant's 12 largest is — there (counted in "all").`,
      ],
    },
    {
      title: 'Top allocating functions (self, KB per request; same profiles)',
      columns: ['Switchyard', 'function', 'KB per request'],
      rows: allocFunctionRows,
      notes: [],
    },
  ];
}
