import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { renderTable } from '../lib/table.js';

/**
 * `npx tsx bench/profile-summary.ts <file.cpuprofile> [--top N] [--json]`: where a V8 CPU profile
 * of a loaded server spends its busy time (idle excluded), by area and by function (self time).
 * Made for the soak's profile: `SWITCHYARD_SOAK_CPU_PROF=<dir> npm run bench -- soak --minutes 1
 * --rate 400`. V8 samples the main thread only, and a sample taken while the thread is descheduled
 * is charged to the native call it was in (an `fdatasync` or `writev` binding) — read those rows
 * as time the main thread was not running, and take the thread pool's and the kernel's share from
 * `perf` (docs/BENCHMARKS.md says how).
 */

interface CallFrame {
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
    const { url } = frame;
    if (frame.functionName === '(idle)') {
      idle += us;
      continue;
    }
    busy += us;
    const area = areaOf(frame);
    areas.set(area, (areas.get(area) ?? 0) + us);
    const where = frame.url === '' ? '' : ` ${url.startsWith('node:') ? url : sourcePath(url)}:${frame.lineNumber + 1}`;
    const fn = `${frame.functionName || '(anonymous)'}${where}`;
    functions.set(fn, (functions.get(fn) ?? 0) + us);
  }
  const sorted = (m: Map<string, number>) => [...m].sort((a, b) => b[1] - a[1]).slice(0, top);
  return { busyMs: busy / 1000, idleMs: idle / 1000, areas: sorted(areas), functions: sorted(functions) };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: 'string', default: '25' }, json: { type: 'boolean', default: false } } });
  if (positionals.length !== 1) {
    process.stderr.write('usage: tsx bench/profile-summary.ts <file.cpuprofile> [--top N] [--json]\n');
    process.exit(2);
  }
  const s = summarize(JSON.parse(readFileSync(positionals[0]!, 'utf8')) as Profile, Number(values.top));
  if (values.json) console.log(JSON.stringify(s, null, 2));
  else {
    const pct = (us: number) => `${((us / 1000 / s.busyMs) * 100).toFixed(1)}%`;
    console.log(`main thread busy ${s.busyMs.toFixed(0)} ms, idle ${s.idleMs.toFixed(0)} ms`);
    console.log(renderTable(['area', 'self time', 'share of busy'], s.areas.map(([a, us]) => [a, `${(us / 1000).toFixed(0)} ms`, pct(us)])));
    console.log(renderTable(['function', 'self time', 'share of busy'], s.functions.map(([f, us]) => [f, `${(us / 1000).toFixed(0)} ms`, pct(us)])));
  }
}
