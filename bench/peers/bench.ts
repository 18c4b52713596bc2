import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { BenchContext, BenchResult } from '../main.js';
import { median, round } from '../stats.js';
import { cpuDeltaMs, type LoadJob } from './measure.js';
import { freePort, TICKS_PER_SECOND, treeTicks } from './proc.js';
import { measureLoad, type Measured } from './run.js';
import { installRay, RAY_MAX_ONGOING_REQUESTS, RAY_REQUIREMENT, startRay } from './ray.js';
import { startUp, type UpProcess } from './up.js';

/**
 * `npm run bench -- peers [--quick] [--brokers host:port] [--only <name>]`: Switchyard side by
 * side with a peer, Ray Serve, and with the floor, a bare node:http hop, all serving the same
 * no-op model in one run (issue 11):
 * 1. bare node:http answering with the request body (the floor);
 * 2. `switchyard up`, embedded log, default fsync, the shipped `noop` model;
 * 3. `switchyard up --brokers …` on Kafka (only with --brokers);
 * 4. Ray Serve (pinned, installed into .switchyard/peers/venv), one replica of a no-op deployment.
 * One load generator (bench/peers/loadgen.ts), a process of its own, sends every system the
 * same requests: a single client, open loops at fixed rates (latency from each request's due
 * time), and a closed loop of 32 connections for the maximum throughput. CPU per request is
 * the CPU time of the system's whole process tree over the measured window (from /proc) ÷ the
 * requests it completed.
 */

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

interface Phase {
  label: string;
  mode: LoadJob['mode'];
  rate: number;
  connections: number;
}

const PHASES: Phase[] = [
  { label: 'single client (1 connection)', mode: 'closed', rate: 0, connections: 1 },
  { label: 'open loop 200 req/s', mode: 'open', rate: 200, connections: 64 },
  { label: 'open loop 500 req/s', mode: 'open', rate: 500, connections: 64 },
  { label: 'closed loop, 32 connections (max)', mode: 'closed', rate: 0, connections: 32 },
];

/** A system that is up and answering. */
interface Running {
  /** Where the load generator POSTs. */
  url: string;
  /** Every process below this one (and itself) is the system's. */
  rootPid: number;
  /** Counted apart: the Kafka broker (shared with whoever else uses it). */
  brokerPid?: number;
  stop: () => Promise<void>;
  notes: string[];
}

interface System {
  name: string;
  /** Resolves with the running system, or with the reason it is not measured. */
  start: () => Promise<Running | { notMeasured: string }>;
}

/** A process of our own that runs the floor server (also the CPU bench's floor). */
export async function startFloor(): Promise<Running> {
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'bench', 'peers', 'floor.ts'), String(port)], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (l) => l === 'READY' && resolve());
    child.once('exit', (code) => reject(new Error(`floor server exited ${code}`)));
  });
  const exited = new Promise((r) => child.once('exit', r));
  return {
    url: `http://127.0.0.1:${port}/`,
    rootPid: child.pid!,
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
    },
    notes: ['Floor: node:http in a process of its own, answering each request with its body.'],
  };
}

/** The commit a checkout of Switchyard (this one by default) is at, and whether its sources differ from it. */
export function revision(checkout = ROOT): string {
  const git = (...args: string[]): string => {
    try {
      return execFileSync('git', args, { cwd: checkout, encoding: 'utf8' }).trim();
    } catch {
      return '';
    }
  };
  const head = git('rev-parse', '--short', 'HEAD') || 'an unknown commit';
  const dirty = git('status', '--porcelain', '--', 'lib', 'services', 'cli', 'schemas', 'replay', 'models');
  // Porcelain lines are `XY path`; the trim above took the first line's leading space (` M lib/…`), so the path is the last field.
  const dirs = [...new Set(dirty.split('\n').map((l) => l.trim().split(/\s+/).pop()!.split('/')[0]))];
  return dirty === '' ? head : `${head} with uncommitted changes in ${dirs.join(', ')}/ (work in progress in the shared tree)`;
}

/** The Kafka broker's pid, from scripts/services.sh's pid file, if that is where it runs. */
function brokerPid(): number | undefined {
  const file = join(process.env.SWITCHYARD_SERVICES_DIR ?? join(ROOT, '.switchyard', 'services'), 'kafka.pid');
  if (!existsSync(file)) return undefined;
  const pid = Number(readFileSync(file, 'utf8').trim());
  return Number.isInteger(pid) && existsSync(`/proc/${pid}`) ? pid : undefined;
}

function systems(ctx: BenchContext, runId: string): System[] {
  // bin/switchyard.js runs dist/ when it is fresh, else the sources; both deployments run what the
  // first one ran, so a build or an edit between them (others share this tree) changes nothing.
  let ran: UpProcess['ran'] | undefined;
  const up = async (brokers: string[], prefix?: string): Promise<Running> => {
    const sy = await startUp({ brokers, ...(prefix !== undefined ? { prefix } : {}), fromSource: ran === 'sources through tsx' });
    const mixed = ran !== undefined && sy.ran !== ran;
    ran ??= sy.ran;
    return {
      url: `${sy.url}/v1/infer`,
      rootPid: sy.pid,
      stop: () => sy.stop(),
      notes: [`\`switchyard up\` (bin/switchyard.js, ${brokers.length === 0 ? 'embedded' : 'Kafka'}) ran ${sy.ran}${mixed ? ' — NOT what the other deployment ran (dist/ was built since): compare the two with care' : ''}; its default workers, log level warn, a fresh home under the temp dir.`],
    };
  };
  return [
    { name: 'bare node:http (floor)', start: startFloor },
    { name: 'Switchyard up, embedded (default fsync)', start: () => up([]) },
    {
      name: 'Switchyard up, Kafka',
      start: async () => {
        if (ctx.brokers.length === 0) return { notMeasured: 'not measured: no brokers (give --brokers host:port)' };
        const running = await up(ctx.brokers, `bench-peers-${runId}.`);
        const pid = brokerPid();
        if (pid !== undefined) running.brokerPid = pid;
        running.notes.push(`Kafka: ${ctx.brokers.join(',')}, topic prefix bench-peers-${runId}. (left on the broker); ${pid === undefined ? 'broker not started by scripts/services.sh: its CPU is not measured' : `broker pid ${pid}, its CPU counted apart (it serves whoever else uses it too)`}.`);
        return running;
      },
    },
    {
      name: `Ray Serve`,
      start: async () => {
        const install = await installRay(ctx.progress);
        if (!install.ok) return { notMeasured: `Ray Serve: not installed — ${install.reason}` };
        ctx.progress(`starting Ray Serve (${install.reused ? 'cached venv' : 'fresh venv'}; Ray takes a while to start)`);
        let ray;
        try {
          ray = await startRay(install.python);
        } catch (e) {
          return { notMeasured: `Ray Serve: not started — ${(e as Error).message}` };
        }
        return {
          url: ray.url,
          rootPid: ray.pid,
          stop: ray.stop,
          notes: [
            `Ray Serve: Ray ${ray.ready.ray} (\`${RAY_REQUIREMENT}\` in .switchyard/peers/venv, Python ${ray.ready.python}), a local cluster of ${ray.ready.cpus} CPUs started by the driver bench/peers/ray_app.py (dashboard off), one replica of a no-op deployment that answers with the request's input, max_ongoing_requests ${RAY_MAX_ONGOING_REQUESTS}, access log off (logging_config and RAY_SERVE_ENABLE_ACCESS_LOG=0), the HTTP proxy on 127.0.0.1.`,
          ],
        };
      },
    },
  ];
}

interface Row {
  system: string;
  phase: string;
  runs: Measured[];
  /** The system's CPU with no requests, ms per second. */
  idleMsPerS: number;
}

/** The CPU the system's processes spend with no requests at all (heartbeats, ticks, polls), ms per second. */
async function idleCpu(running: Running, seconds: number): Promise<number> {
  const before = treeTicks(running.rootPid);
  const start = performance.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  return cpuDeltaMs(before, treeTicks(running.rootPid), TICKS_PER_SECOND) / ((performance.now() - start) / 1000);
}

export async function benchPeers(ctx: BenchContext): Promise<BenchResult[]> {
  const runs = ctx.quick ? 1 : 3;
  const seconds = ctx.quick ? 3 : 10;
  const warmup = ctx.quick ? 100 : 300;
  const runId = Date.now().toString(36);
  const loadBefore = loadavg();
  if (loadBefore[0]! > 2) ctx.progress(`the machine is busy (load average ${loadBefore.map((l) => round(l, 2)).join(', ')}): figures may be noisy`);
  const loadDuring: number[] = [];
  const loadBySystem = new Map<string, number[]>();
  const rows: Row[] = [];
  const notMeasured: [string, string][] = [];
  const notes = new Set<string>();
  const processes = new Map<string, string[]>();

  for (const system of systems(ctx, runId).filter((s) => ctx.only === undefined || s.name.toLowerCase().includes(ctx.only.toLowerCase()))) {
    ctx.progress(`${system.name}: starting`);
    let running: Running | { notMeasured: string };
    try {
      running = await system.start();
    } catch (e) {
      running = { notMeasured: `not measured — did not start: ${(e as Error).message}` };
    }
    if ('notMeasured' in running) {
      ctx.progress(`${system.name}: ${running.notMeasured}`);
      notMeasured.push([system.name, running.notMeasured]);
      continue;
    }
    const sys = running;
    for (const n of sys.notes) notes.add(n);
    try {
      const job = (phase: Phase, tag: string): LoadJob => ({ url: sys.url, tag: `${runId} ${tag}`, mode: phase.mode, rate: phase.rate, connections: phase.connections, seconds, warmup, timeoutMs: 30_000 });
      ctx.progress(`${system.name}: warm-up, 8 connections for ${seconds} s`);
      await measureLoad({ ...job(PHASES[3]!, 'warm-up'), connections: 8 }, sys.rootPid, sys.brokerPid);
      ctx.progress(`${system.name}: idle CPU, no requests for ${seconds} s`);
      const idleMsPerS = await idleCpu(sys, seconds);
      const byPhase: Row[] = PHASES.map((phase) => ({ system: system.name, phase: phase.label, runs: [], idleMsPerS }));
      for (let run = 0; run < runs; run++) {
        for (const [p, phase] of PHASES.entries()) {
          ctx.progress(`${system.name} run ${run + 1}/${runs}: ${phase.label} for ${seconds} s`);
          const m = await measureLoad(job(phase, `${system.name} ${run} ${p}`), sys.rootPid, sys.brokerPid);
          const load = loadavg()[0]!;
          loadDuring.push(load);
          loadBySystem.set(system.name, [...(loadBySystem.get(system.name) ?? []), load]);
          ctx.progress(
            `  ${round(m.result.okPerSec, 0)} ok/s, p50 ${round(m.result.p50, 2)} ms, p99 ${round(m.result.p99, 2)} ms, shed ${m.result.shed}, failed ${m.result.failed}, CPU ${round(m.cpuMs / Math.max(1, m.result.ok), 3)} ms/req, load average ${round(load, 2)}`,
          );
          byPhase[p]!.runs.push(m);
          processes.set(system.name, m.processes);
        }
      }
      rows.push(...byPhase);
    } catch (e) {
      // One system failing mid-run still leaves the others' figures.
      ctx.progress(`${system.name}: failed — ${(e as Error).message}`);
      notMeasured.push([system.name, `not measured — failed during the run: ${(e as Error).message}`]);
    } finally {
      await sys.stop();
    }
  }

  const med = (r: Row, f: (m: Measured) => number): number => median(r.runs.map(f));
  const sum = (r: Row, f: (m: Measured) => number): number => r.runs.reduce((n, m) => n + f(m), 0);
  const table = rows.map((r) => [
    r.system,
    r.phase,
    Math.round(med(r, (m) => m.result.okPerSec)),
    round(med(r, (m) => m.result.p50), 2),
    round(med(r, (m) => m.result.p99), 2),
    sum(r, (m) => m.result.shed),
    sum(r, (m) => m.result.failed),
    round(med(r, (m) => m.cpuMs / m.result.ok), 3),
    round(med(r, (m) => (m.cpuMs - r.idleMsPerS * m.result.elapsedS) / m.result.ok), 3),
    r.runs[0]!.brokerCpuMs === undefined ? '—' : round(med(r, (m) => m.brokerCpuMs! / m.result.ok), 3),
  ]);
  for (const [system, reason] of notMeasured) table.push([system, reason, '—', '—', '—', '—', '—', '—', '—', '—']);

  const failures = rows.filter((r) => sum(r, (m) => m.result.failed) > 0).map((r) => `${r.system}, ${r.phase}: ${JSON.stringify(r.runs.map((m) => m.result.statuses))}`);
  const bound = rows
    .filter((r) => r.phase.startsWith('closed loop'))
    .map((r) => ({ r, util: Math.max(...r.runs.map((m) => m.result.cpuMs / (m.result.elapsedS * 1000))) }))
    .filter(({ util }) => util > 0.85)
    .map(({ r, util }) => `${r.system} (${Math.round(util * 100)}% of a core)`);
  const lag = Math.max(0, ...rows.flatMap((r) => r.runs.map((m) => m.result.maxSendLagMs)));
  const la = (xs: number[]): string => xs.map((l) => round(l, 2)).join(' / ');
  return [
    {
      title: `Peers: the same no-op model behind each system, one outside load generator (${runs === 1 ? 'one run' : `median of ${runs} runs`} of ${seconds} s per load)`,
      columns: ['system', 'load', 'completed req/s', 'p50 ms', 'p99 ms', 'shed (429)', 'failed', 'CPU ms/req', 'above idle', 'broker CPU ms/req'],
      rows: table,
      notes: [
        `Load generator: bench/peers/loadgen.ts in a process of its own (node:http, keep-alive), the same for every system: POST of a Switchyard inference request for \`noop\`, input unique per request (cacheable false). Open loop: request i is due at start + i/rate and its latency runs from that due time (queueing counts; up to 64 connections, a request waiting for one waits on the clock); closed loops: latency from the send. ${warmup} warm-up requests before each window, and one ${seconds} s warm-up per system, not counted. The generator sent at most ${round(lag, 1)} ms after a due time.`,
        'CPU ms/req: CPU time (user + system) of every process of the system — the process started and all below it, from /proc/<pid>/stat at the window\'s edges — ÷ the requests it completed (200) in the window. The Kafka broker is counted apart. "above idle" takes off what the system spends with no requests at all (measured for as long as a window before the loads) over the window\'s length: the cost of the requests themselves; at low rates the idle part dominates.',
        ...(rows.length > 0 ? [`Idle CPU, no requests: ${[...new Map(rows.map((r) => [r.system, r.idleMsPerS]))].map(([sy, ms]) => `${sy} ${round(ms, 1)} ms/s`).join(', ')}.`] : []),
        ...notes,
        ...(processes.size > 0 ? [`Processes measured (at the last window's end): ${[...processes].map(([s, names]) => `${s}: ${names.length} (${[...new Set(names)].join(', ')})`).join('; ')}.`] : []),
        ...notMeasured.map(([system, reason]) => `${system}: ${reason}.`),
        ...(bound.length > 0 ? [`Load-generator bound in the closed loop (the generator's own CPU): ${bound.join(', ')}; that system's maximum is higher than shown.`] : []),
        ...(failures.length > 0 ? [`Failed requests by status (0: no answer within 30 s or the connection failed): ${failures.join('; ')}.`] : []),
        `Switchyard from the working tree at ${revision()}.`,
        `Machine: ${cpus().length} vCPUs (${cpus()[0]?.model ?? '?'}), Node ${process.versions.node}; load average ${la(loadBefore)} (1/5/15 min) before the run, ${loadDuring.length === 0 ? 'nothing measured' : `1-min load ${round(Math.min(...loadDuring), 2)}–${round(Math.max(...loadDuring), 2)} during it (this benchmark's own processes included; per system: ${[...loadBySystem].map(([sy, ls]) => `${sy} ${round(Math.min(...ls), 1)}–${round(Math.max(...ls), 1)}`).join(', ')})`}.`,
      ],
    },
  ];
}
