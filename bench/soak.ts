import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BenchContext, BenchResult } from './main.js';
import { cpuMsSince, percentile, round } from './stats.js';

/**
 * `npm run bench -- soak [--minutes N] [--rate R] [--json]`: a long open-loop run against
 * `switchyard up` (embedded log, default fsync, the shipped no-op model) as a user runs it — its
 * own process, started from bin/switchyard.js — with this process as the outside load
 * generator. Requests are due at a fixed rate (default 300 req/s, half the maximum measured in
 * issue 11) for `--minutes` (default 30); each has a unique input (no cache hits), and its
 * latency runs from its due time (queueing counts).
 *
 * Every minute it prints a line: requests due, completed, shed (429), failed, p50/p99 latency of
 * that minute's requests, the server's RSS and its CPU per completed request. At the end: the
 * table of minutes, the RSS slope after warm-up (MB per 100k requests) and the bytes per request
 * the log took on disk (total and per topic), with the issue's goals beside them.
 * SWITCHYARD_SOAK_CPU_PROF=<dir> makes the server write a CPU profile (`--cpu-prof`) there;
 * SWITCHYARD_SOAK_NODE_ARGS adds node flags to the server (e.g. `--trace-gc`) and
 * SWITCHYARD_SOAK_OUTPUT=<file> sends its output to <file>.
 */

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const MiB = 1024 * 1024;
/**
 * Minutes before the RSS slope is measured: the JIT settles and the bounded memories fill — at
 * 300 req/s the results tracker reaches its 100k requests at ~5.5 min, the controller's outcome
 * memory its 10k per results partition at ~7 min and the router's 200k decided ids at ~11 min
 * (the embedded log's tail caches hold 10 s of records, full within seconds); V8 then sizes its
 * old generation to them over a few more mark-compacts. A third of the run, at least 2 minutes:
 * at the default 30 minutes the slope's first points still see the router's ids filling.
 */
const warmupMinutes = (minutes: number): number => Math.max(2, Math.round(minutes / 3));

interface Minute {
  minute: number;
  due: number;
  ok: number;
  shed: number;
  failed: number;
  pending: number;
  latencies: number[];
  rssMiB: number;
  cpuMs: number;
  /**
   * CPU of this process (the load generator) over the minute, ms: the same work every minute, so
   * it is the control for the machine's speed — when the server's CPU per request rises and this
   * rises with it, the machine slowed down (a neighbour), not the server.
   */
  clientCpuMs: number;
  /** From the gateway's /metrics at the minute's end. */
  server: ServerMetrics | undefined;
  done: boolean;
}

interface ServerMetrics {
  trackedRequests: number;
  trackedMiB: number;
  /** V8's used heap (nodejs_heap_size_used_bytes), MiB. */
  heapMiB: number;
  /** V8's heap as committed (nodejs_heap_size_total_bytes), MiB: the heap's share of RSS. */
  heapTotalMiB: number;
  /** Memory outside V8's heap that V8 knows of, Buffers mostly (nodejs_external_memory_bytes), MiB. */
  externalMiB: number;
  /** GC pause time since the server started, every kind (nodejs_gc_duration_seconds_sum), ms. */
  gcMs: number;
}

/** The results tracker's size, the heap and GC time from the gateway's /metrics (Prometheus text). */
async function serverMetrics(url: string): Promise<ServerMetrics | undefined> {
  try {
    const text = await (await fetch(`${url}/metrics`)).text();
    const value = (name: string): number => Number(new RegExp(`^${name} ([0-9.e+-]+)$`, 'm').exec(text)?.[1] ?? Number.NaN);
    let gcSeconds = 0;
    for (const m of text.matchAll(/^nodejs_gc_duration_seconds_sum\{[^}]*\} ([0-9.e+-]+)$/gm)) gcSeconds += Number(m[1]);
    return {
      trackedRequests: value('switchyard_gateway_tracked_requests'),
      trackedMiB: value('switchyard_gateway_tracked_bytes') / MiB,
      heapMiB: value('nodejs_heap_size_used_bytes') / MiB,
      heapTotalMiB: value('nodejs_heap_size_total_bytes') / MiB,
      externalMiB: value('nodejs_external_memory_bytes') / MiB,
      gcMs: gcSeconds * 1000,
    };
  } catch {
    return undefined;
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

/** RSS (MiB) and CPU time (user + system, ms) of a process, from /proc (Linux). */
function processFigures(pid: number): { rssMiB: number; cpuMs: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rssKiB = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? Number.NaN);
  // /proc/<pid>/stat: fields after the command name; utime and stime are the 12th and 13th, in ticks.
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  return { rssMiB: rssKiB / 1024, cpuMs: ticks * 10 }; // CLK_TCK is 100 on Linux
}

/** Least-squares slope of RSS (MiB) against requests completed, as MB per 100k requests. */
function rssSlope(points: { x: number; y: number }[]): number {
  if (points.length < 2) return Number.NaN;
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const mx = mean(points.map((p) => p.x));
  const my = mean(points.map((p) => p.y));
  const slope = points.reduce((n, p) => n + (p.x - mx) * (p.y - my), 0) / points.reduce((n, p) => n + (p.x - mx) ** 2, 0);
  return (slope * MiB * 100_000) / 1e6;
}

/** Bytes of the files under `dir`, per top-level entry below `topics/` (and the rest by name). */
async function diskUsage(dir: string): Promise<Map<string, number>> {
  const usage = new Map<string, number>();
  const walk = async (path: string, label: string): Promise<void> => {
    for (const e of await readdir(path, { withFileTypes: true })) {
      const p = join(path, e.name);
      if (e.isDirectory()) await walk(p, label);
      else usage.set(label, (usage.get(label) ?? 0) + (await stat(p)).size);
    }
  };
  for (const e of await readdir(dir, { withFileTypes: true })) {
    if (e.name === 'topics') {
      for (const t of await readdir(join(dir, 'topics'), { withFileTypes: true })) await walk(join(dir, 'topics', t.name), t.name);
    } else if (e.isDirectory()) await walk(join(dir, e.name), e.name);
    else usage.set(e.name, (usage.get(e.name) ?? 0) + (await stat(join(dir, e.name))).size);
  }
  return usage;
}

/** `switchyard up` in a process of its own; resolves once /readyz answers 200. */
async function startServer(home: string, port: number, progress: (line: string) => void): Promise<{ child: ChildProcess; url: string; exited: Promise<number | string> }> {
  // SWITCHYARD_SOAK_OUTPUT=<file>: the server's output goes there rather than to up.log in its home.
  const out = createWriteStream(process.env.SWITCHYARD_SOAK_OUTPUT || join(home, 'up.log'));
  // SWITCHYARD_SOAK_CPU_PROF=<dir>: the server writes a V8 CPU profile there when it exits.
  const prof = process.env.SWITCHYARD_SOAK_CPU_PROF;
  // SWITCHYARD_SOAK_NODE_ARGS: more node flags for the server (e.g. --trace-gc --heapsnapshot-signal=SIGUSR2).
  const extra = (process.env.SWITCHYARD_SOAK_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);
  const nodeArgs = [...(prof ? ['--cpu-prof', `--cpu-prof-dir=${prof}`] : []), ...extra];
  const child = spawn(process.execPath, [...nodeArgs, join(ROOT, 'bin', 'switchyard.js'), 'up', '--port', String(port), '--home', home], {
    cwd: ROOT,
    env: { ...process.env, SWITCHYARD_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.pipe(out);
  child.stderr!.pipe(out);
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')));
  const url = `http://127.0.0.1:${port}`;
  const deadline = performance.now() + 180_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`switchyard up exited ${child.exitCode}; see ${join(home, 'up.log')}`);
    try {
      if ((await fetch(`${url}/readyz`)).status === 200) break;
    } catch {
      // not listening yet
    }
    if (performance.now() > deadline) throw new Error(`switchyard up not ready after 180 s; see ${join(home, 'up.log')}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  progress(`switchyard up ready at ${url} (pid ${child.pid})`);
  return { child, url, exited };
}

export async function benchSoak(ctx: BenchContext): Promise<BenchResult[]> {
  const minutes = ctx.minutes ?? (ctx.quick ? 1 : 30);
  const rate = ctx.rate ?? 300;
  if (!Number.isInteger(minutes) || minutes < 1 || !(rate > 0)) throw new Error(`soak: --minutes must be a positive integer and --rate positive, got ${minutes}, ${rate}`);
  const home = mkdtempSync(join(tmpdir(), 'sy-soak-'));
  const { child, url, exited } = await startServer(home, await freePort(), ctx.progress);
  const pid = child.pid!;
  const run = Date.now().toString(36);
  const send = async (i: number): Promise<number> => {
    const res = await fetch(`${url}/v1/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'noop', input: { text: `soak ${run} ${i}` }, cacheable: false, deadlineMs: 30_000 }),
    });
    await res.arrayBuffer();
    return res.status;
  };
  const rows: Minute[] = [];
  let succeeded = false;
  try {
    // Warm-up (not counted): JIT, connections, the model loaded on every worker.
    ctx.progress('warm-up: 600 requests, 16 in flight');
    let w = 0;
    await Promise.all(Array.from({ length: 16 }, async () => {
      while (w < 600) await send(-1 - w++).catch(() => 0);
    }));

    ctx.progress(`soak: ${rate} req/s for ${minutes} min (open loop)`);
    const perMinute = Math.round(rate * 60);
    const total = perMinute * minutes;
    const start = performance.now();
    const startCpu = processFigures(pid).cpuMs;
    let lastCpu = startCpu;
    let lastClientCpu = process.cpuUsage();
    const windows: Minute[] = Array.from({ length: minutes }, (_, m) => ({ minute: m + 1, due: 0, ok: 0, shed: 0, failed: 0, pending: 0, latencies: [], rssMiB: 0, cpuMs: 0, clientCpuMs: 0, server: undefined, done: false }));
    const sampling = new Set<Promise<void>>();
    const inFlight = new Set<Promise<void>>();
    const report = (m: Minute): void => {
      if (m.done || m.pending > 0 || m.due < perMinute || m.rssMiB === 0 || m.server === undefined) return;
      m.done = true;
      m.latencies.sort((a, b) => a - b);
      rows.push(m);
      ctx.progress(
        `minute ${m.minute}: ${m.due} due, ${m.ok} ok, ${m.shed} shed, ${m.failed} failed, p50 ${round(percentile(m.latencies, 50), 1)} ms, p99 ${round(percentile(m.latencies, 99), 1)} ms, RSS ${round(m.rssMiB, 0)} MiB, heap ${round(m.server.heapMiB, 0)} MiB of ${round(m.server.heapTotalMiB, 0)} committed, external ${round(m.server.externalMiB, 0)} MiB (tracker: ${m.server.trackedRequests} requests, ${round(m.server.trackedMiB, 0)} MiB), CPU ${round(m.cpuMs / Math.max(1, m.ok), 2)} ms/req (load generator ${round(m.clientCpuMs / Math.max(1, m.due), 2)})`,
      );
    };
    for (let i = 0; i < total; ) {
      const now = performance.now();
      for (; i < total && start + (i * 1000) / rate <= now; i++) {
        const due = start + (i * 1000) / rate;
        const m = windows[Math.floor(i / perMinute)]!;
        m.due++;
        m.pending++;
        const p: Promise<void> = send(i).then(
          (status) => {
            if (status === 200) {
              m.ok++;
              m.latencies.push(performance.now() - due);
            } else if (status === 429) m.shed++;
            else m.failed++;
          },
          () => void m.failed++,
        );
        const tracked = p.finally(() => {
          m.pending--;
          inFlight.delete(tracked);
          report(m);
        });
        inFlight.add(tracked);
        if (m.due === perMinute) {
          // The minute's last request is out: its server figures are taken now.
          const f = processFigures(pid);
          m.rssMiB = f.rssMiB;
          m.cpuMs = f.cpuMs - lastCpu;
          lastCpu = f.cpuMs;
          m.clientCpuMs = cpuMsSince(lastClientCpu);
          lastClientCpu = process.cpuUsage();
          const sample: Promise<void> = serverMetrics(url).then((x) => {
            m.server = x ?? { trackedRequests: Number.NaN, trackedMiB: Number.NaN, heapMiB: Number.NaN, heapTotalMiB: Number.NaN, externalMiB: Number.NaN, gcMs: Number.NaN };
            sampling.delete(sample);
            report(m);
          });
          sampling.add(sample);
        }
      }
      const next = start + (i * 1000) / rate;
      await new Promise((r) => setTimeout(r, Math.max(0, Math.min(5, next - performance.now()))));
    }
    await Promise.all(inFlight);
    await Promise.all(sampling);
    rows.sort((a, b) => a.minute - b.minute);
    const elapsedS = (performance.now() - start) / 1000;
    const cpuMsTotal = processFigures(pid).cpuMs - startCpu;

    child.kill('SIGTERM');
    await exited;
    const disk = await diskUsage(join(home, 'log'));
    const completed = rows.reduce((n, m) => n + m.ok, 0) + 600;
    const diskTotal = [...disk.values()].reduce((a, b) => a + b, 0);

    // RSS slope after warm-up: least squares of RSS against requests completed so far.
    let cumulative = 0;
    const all = rows.map((m) => ({ x: (cumulative += m.ok), y: m.rssMiB }));
    const warmup = warmupMinutes(minutes);
    const mbPer100k = rssSlope(all.slice(Math.min(warmup, Math.max(0, all.length - 2))));
    const lastTen = rssSlope(all.slice(Math.max(0, all.length - 10)));
    const shed = rows.reduce((n, m) => n + m.shed, 0);
    const failed = rows.reduce((n, m) => n + m.failed, 0);
    const second = rows[1];
    const last = rows.at(-1)!;
    const ratio = (a: number, b: number) => (b > 0 ? round(a / b, 2) : Number.NaN);
    // The same drift over three minutes a side (latencies pooled): one GC pause or scheduling
    // stall in a single minute moves its p99 by ×2, and the goal compares two single minutes.
    const earlyRows = rows.length >= 7 ? rows.slice(1, 4) : undefined;
    const lateRows = rows.length >= 7 ? rows.slice(-3) : undefined;
    const early = earlyRows?.flatMap((m) => m.latencies).sort((x, y) => x - y);
    const late = lateRows?.flatMap((m) => m.latencies).sort((x, y) => x - y);
    // CPU per request over a few minutes, and how it moved from the early minutes to the late ones.
    const perRequest = (ms: Minute[], cpu: (m: Minute) => number, count: (m: Minute) => number) => ms.reduce((n, m) => n + cpu(m), 0) / Math.max(1, ms.reduce((n, m) => n + count(m), 0));
    const drift = (a: Minute[], b: Minute[], cpu: (m: Minute) => number, count: (m: Minute) => number) => ratio(perRequest(b, cpu, count), perRequest(a, cpu, count));
    const cpuDrift =
      earlyRows !== undefined && lateRows !== undefined
        ? { server: drift(earlyRows, lateRows, (m) => m.cpuMs, (m) => m.ok), client: drift(earlyRows, lateRows, (m) => m.clientCpuMs, (m) => m.due) }
        : undefined;

    succeeded = true;
    return [
      {
        title: `Soak: switchyard up (embedded, default fsync, no-op model), HTTP open loop at ${rate} req/s for ${minutes} min`,
        columns: ['minute', 'due', 'ok', 'shed', 'failed', 'p50 ms', 'p99 ms', 'RSS MiB', 'heap MiB', 'heap committed MiB', 'external MiB', 'GC ms', 'tracker requests', 'tracker MiB', 'CPU ms/req', 'load generator CPU ms/req'],
        rows: rows.map((m, i) => [
          m.minute,
          m.due,
          m.ok,
          m.shed,
          m.failed,
          round(percentile(m.latencies, 50), 1),
          round(percentile(m.latencies, 99), 1),
          Math.round(m.rssMiB),
          Math.round(m.server!.heapMiB),
          Math.round(m.server!.heapTotalMiB),
          Math.round(m.server!.externalMiB),
          // GC pauses during the minute (from the previous minute's sample; the first from start-up)
          Math.round(m.server!.gcMs - (i > 0 ? rows[i - 1]!.server!.gcMs : 0)),
          m.server!.trackedRequests,
          Math.round(m.server!.trackedMiB),
          round(m.cpuMs / Math.max(1, m.ok), 2),
          round(m.clientCpuMs / Math.max(1, m.due), 2),
        ]),
        notes: [
          `Load generator: this process (fetch, keep-alive), latency from each request's due time; unique inputs, cacheable false. Server: \`switchyard up\` as its own process (bin/switchyard.js), RSS and CPU from /proc at the end of each minute; the gateway results tracker's requests and counted bytes, V8's used and committed heap, external memory (Buffers) and the GC pause time of the minute from its /metrics then. Achieved ${round(rows.reduce((n, m) => n + m.due, 0) / elapsedS, 1)} req/s.`,
          `Shed ${shed}, failed ${failed} of ${rows.reduce((n, m) => n + m.due, 0)} (goal: 0 shed).`,
          second === undefined ? 'One minute only: no drift figures.' : `Last minute vs second: p50 ×${ratio(percentile(last.latencies, 50), percentile(second.latencies, 50))}, p99 ×${ratio(percentile(last.latencies, 99), percentile(second.latencies, 99))} (goal: ≤ 1.2).`,
          ...(early !== undefined && late !== undefined
            ? [`Last three minutes vs minutes 2–4, latencies pooled (${late.length} and ${early.length} requests): p50 ×${ratio(percentile(late, 50), percentile(early, 50))}, p99 ×${ratio(percentile(late, 99), percentile(early, 99))}.`]
            : []),
          `RSS slope after minute ${warmup}: ${round(mbPer100k, 1)} MB per 100k requests (goal: ≤ 5); over the last ${Math.min(10, all.length)} minutes: ${round(lastTen, 1)}. RSS ${Math.round(rows[0]!.rssMiB)} → ${Math.round(last.rssMiB)} MiB (max ${Math.round(Math.max(...rows.map((m) => m.rssMiB)))}).`,
          `Server CPU: ${round(cpuMsTotal / Math.max(1, completed - 600), 3)} ms per completed request over the run.${cpuDrift === undefined ? '' : ` Last three minutes ÷ minutes 2–4: server CPU per request ×${cpuDrift.server}, the load generator's ×${cpuDrift.client} (the same work each minute, so the machine's own speed: when both rise, the machine slowed, not the server).`}`,
          `Disk: ${round(diskTotal / MiB, 1)} MiB of log for ${completed} requests (600 warm-up included) = ${Math.round(diskTotal / completed)} bytes per request; by topic: ${[...disk].sort((a, b) => b[1] - a[1]).map(([t, b]) => `${t} ${Math.round(b / completed)}`).join(', ')} bytes/request.`,
        ],
      },
    ];
  } finally {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await exited;
    }
    if (succeeded) rmSync(home, { recursive: true, force: true });
    else ctx.progress(`kept ${home} (the server's output is in up.log)`);
  }
}
