import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { renderTable } from '../lib/table.js';

/**
 * `npx tsx bench/profile-summary.ts <file.cpuprofile> [--window FROM-TO] [--top N] [--json]`: where a
 * V8 CPU profile of a loaded server spends its busy time (idle excluded), by area and by function
 * (self time), over the whole profile or a window of it (seconds from its start). With two
 * `--window`s, the functions side by side, the largest change first: what grew as a run went on.
 * Made for the soak's profile: `SWITCHYARD_SOAK_CPU_PROF=<dir> npm run bench -- soak --minutes 1
 * --rate 400`. V8 samples the main thread only, and a sample taken while the thread is descheduled
 * is charged to the native call it was in (an `fdatasync` or `writev` binding) — read those rows
 * as time the main thread was not running, and take the thread pool's and the kernel's share from
 * `perf` (docs/BENCHMARKS.md says how).
 */

export interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
}
export interface Profile {
  /** Profile clock (µs, monotonic) of the first and last sample. */
  startTime: number;
  endTime: number;
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const ROOT = new URL('..', import.meta.url).pathname;

/** A file of this checkout or of another (bench/cpu.ts --baseline): its path below the checkout's root or its dist/. */
function sourcePath(url: string): string {
  const file = url.replace(/^file:\/\//, '');
  const nm = file.lastIndexOf('/node_modules/');
  if (nm >= 0) return file.slice(nm + 1);
  const dist = file.lastIndexOf('/dist/');
  return dist >= 0 ? file.slice(dist + 6) : file.replace(ROOT, '');
}

/** A frame as `name path:line` (path below a checkout's root, its dist/ or node_modules/). */
export function functionOf(frame: CallFrame): string {
  const { url } = frame;
  const where = url === '' ? '' : ` ${url.startsWith('node:') ? url : sourcePath(url)}:${frame.lineNumber + 1}`;
  return `${frame.functionName || '(anonymous)'}${where}`;
}

/** An area of the code a frame belongs to: our directories, a package, a Node subsystem. */
export function areaOf(frame: CallFrame): string {
  const { url, functionName } = frame;
  if (functionName === '(garbage collector)') return 'GC';
  if (functionName === '(program)') return 'V8 (program)';
  if (url === '') return `native: ${functionName}`;
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) return `npm: ${url.slice(nm + 13).split('/').slice(0, url.slice(nm + 13).startsWith('@') ? 2 : 1).join('/')}`;
  if (url.startsWith('node:')) return url.startsWith('node:internal/') ? `node: ${url.slice(14).split('/')[0]}` : `node: ${url.slice(5)}`;
  const path = sourcePath(url);
  return path.split('/').slice(0, path.startsWith('lib/log/') || path.startsWith('services/') ? 3 : 2).join('/');
}

/**
 * Self time by area and by function. `window` keeps only the samples taken within it (profile
 * clock, µs; e.g. a load window, leaving out start-up and shutdown).
 */
export function summarize(profile: Profile, top: number, window?: { from: number; to: number }): { busyMs: number; idleMs: number; areas: [string, number][]; functions: [string, number][] } {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  let t = profile.startTime;
  profile.samples.forEach((id, i) => {
    const dt = profile.timeDeltas[i] ?? 0;
    t += dt;
    if (window !== undefined && (t < window.from || t > window.to)) return;
    self.set(id, (self.get(id) ?? 0) + dt);
  });
  const areas = new Map<string, number>();
  const functions = new Map<string, number>();
  let idle = 0;
  let busy = 0;
  for (const [id, us] of self) {
    const frame = byId.get(id)!.callFrame;
    if (frame.functionName === '(idle)') {
      idle += us;
      continue;
    }
    busy += us;
    const area = areaOf(frame);
    areas.set(area, (areas.get(area) ?? 0) + us);
    const fn = functionOf(frame);
    functions.set(fn, (functions.get(fn) ?? 0) + us);
  }
  const sorted = (m: Map<string, number>) => [...m].sort((a, b) => b[1] - a[1]).slice(0, top);
  return { busyMs: busy / 1000, idleMs: idle / 1000, areas: sorted(areas), functions: sorted(functions) };
}

/** `a-b` in seconds from the profile's first sample → a window on the profile clock (µs). */
function windowOf(profile: Profile, spec: string): { from: number; to: number } {
  const m = /^(\d+(?:\.\d+)?)-(\d+(?:\.\d+)?)$/.exec(spec);
  if (m === null || Number(m[1]) >= Number(m[2])) throw new Error(`--window takes FROM-TO in seconds from the profile's start (FROM < TO), got ${JSON.stringify(spec)}`);
  return { from: profile.startTime + Number(m[1]) * 1e6, to: profile.startTime + Number(m[2]) * 1e6 };
}

/**
 * Two windows of one profile side by side, function by function (self time, ms), the largest
 * change first: what grew as a run went on (e.g. a soak's minutes 1–3 against its minutes 8–10).
 */
export function compareWindows(profile: Profile, a: { from: number; to: number }, b: { from: number; to: number }, top: number): { busyMs: [number, number]; functions: [string, number, number][] } {
  const all = Number.MAX_SAFE_INTEGER;
  const [sa, sb] = [summarize(profile, all, a), summarize(profile, all, b)];
  const before = new Map(sa.functions);
  const after = new Map(sb.functions);
  const names = new Set([...before.keys(), ...after.keys()]);
  const rows = [...names].map((f): [string, number, number] => [f, (before.get(f) ?? 0) / 1000, (after.get(f) ?? 0) / 1000]);
  rows.sort((x, y) => Math.abs(y[2] - y[1]) - Math.abs(x[2] - x[1]));
  return { busyMs: [sa.busyMs, sb.busyMs], functions: rows.slice(0, top) };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { top: { type: 'string', default: '25' }, json: { type: 'boolean', default: false }, window: { type: 'string', multiple: true } },
  });
  const windows = values.window ?? [];
  if (positionals.length !== 1 || windows.length > 2) {
    process.stderr.write('usage: tsx bench/profile-summary.ts <file.cpuprofile> [--window FROM-TO [--window FROM-TO]] [--top N] [--json]\n');
    process.exit(2);
  }
  const profile = JSON.parse(readFileSync(positionals[0]!, 'utf8')) as Profile;
  if (windows.length === 2) {
    const c = compareWindows(profile, windowOf(profile, windows[0]!), windowOf(profile, windows[1]!), Number(values.top));
    if (values.json) console.log(JSON.stringify(c, null, 2));
    else {
      console.log(`main thread busy: ${c.busyMs[0].toFixed(0)} ms in ${windows[0]} s, ${c.busyMs[1].toFixed(0)} ms in ${windows[1]} s`);
      const ms = (x: number) => `${x.toFixed(0)} ms`;
      console.log(renderTable(['function', `self ${windows[0]} s`, `self ${windows[1]} s`, 'change'], c.functions.map(([f, x, y]) => [f, ms(x), ms(y), `${y >= x ? '+' : ''}${ms(y - x)}`])));
    }
  } else {
    const s = summarize(profile, Number(values.top), windows.length === 1 ? windowOf(profile, windows[0]!) : undefined);
    if (values.json) console.log(JSON.stringify(s, null, 2));
    else {
      const pct = (us: number) => `${((us / 1000 / s.busyMs) * 100).toFixed(1)}%`;
      console.log(`main thread busy ${s.busyMs.toFixed(0)} ms, idle ${s.idleMs.toFixed(0)} ms`);
      console.log(renderTable(['area', 'self time', 'share of busy'], s.areas.map(([a, us]) => [a, `${(us / 1000).toFixed(0)} ms`, pct(us)])));
      console.log(renderTable(['function', 'self time', 'share of busy'], s.functions.map(([f, us]) => [f, `${(us / 1000).toFixed(0)} ms`, pct(us)])));
    }
  }
}
