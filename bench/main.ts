import { writeFileSync, mkdirSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { renderTable } from '../lib/table.js';

/**
 * `npm run bench -- <name> [--quick] [--brokers host:port] [--json]`
 * Each benchmark measures its figures and their baseline side by side in one run and
 * prints a table (and writes bench/results/<name>.json). docs/BENCHMARKS.md records them.
 */
export interface BenchResult {
  title: string;
  columns: string[];
  rows: (string | number)[][];
  notes: string[];
}

export interface BenchContext {
  quick: boolean;
  /** Only the deployments whose name contains this (`--only kafka`). */
  only: string | undefined;
  brokers: string[];
  /** `--minutes` and `--rate`, for the benchmarks that run for a time at a rate (soak). */
  minutes?: number;
  rate?: number;
  /** `--seconds`: the length of a measured window, for the benchmarks that take one (cpu). */
  seconds?: number;
  /** `--warmup`: requests sent at the rate before each measured window (cpu; its default 1,000). */
  warmup?: number;
  /** `--runs`: measured windows per variant (cpu; its default 3). */
  runs?: number;
  /** `--skip-profiles`: no CPU or allocation profile windows (cpu). */
  skipProfiles?: boolean;
  /** `--baseline <checkout>`: another checkout of Switchyard (built) to measure beside this one (cpu). */
  baseline?: string;
  /** `--up-args="<flags>"`: also measure this tree's \`switchyard up <flags>\` beside its defaults (cpu), e.g. \`--controllers 0\`. */
  upArgs?: string[];
  /** `--node-args="<flags>"`: also measure this tree's \`switchyard up\` under these node flags beside its defaults (cpu), e.g. \`--max-semi-space-size=64\`. */
  nodeArgs?: string[];
  progress: (line: string) => void;
}

type Bench = (ctx: BenchContext) => Promise<BenchResult[]>;

const benches: Record<string, () => Promise<Bench>> = {
  log: async () => (await import('./log.js')).benchLog,
  'log-read': async () => (await import('./log-read.js')).benchLogRead,
  soak: async () => (await import('./soak.js')).benchSoak,
  cpu: async () => (await import('./cpu.js')).benchCpu,
  serve: async () => (await import('./serve.js')).benchServe,
  sink: async () => (await import('./sink.js')).benchSink,
  replay: async () => (await import('./replay.js')).benchReplay,
  'replay-archive': async () => (await import('./replay-archive.js')).benchReplayArchive,
  peers: async () => (await import('./peers/bench.js')).benchPeers,
};

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { quick: { type: 'boolean', default: false }, brokers: { type: 'string' }, json: { type: 'boolean', default: false }, only: { type: 'string' }, minutes: { type: 'string' }, rate: { type: 'string' }, seconds: { type: 'string' }, warmup: { type: 'string' }, runs: { type: 'string' }, 'skip-profiles': { type: 'boolean', default: false }, baseline: { type: 'string' }, 'up-args': { type: 'string' }, 'node-args': { type: 'string' } },
});
// Without a name: every benchmark but those that start \`switchyard up\` as users run it (cpu, the
// soak: 30 minutes by default; peers also installs Ray Serve and wants a broker); run those by name.
const BY_NAME_ONLY = new Set(['cpu', 'soak', 'peers']);
const names = positionals.length > 0 ? positionals : Object.keys(benches).filter((n) => !BY_NAME_ONLY.has(n));
for (const name of names) {
  const load = benches[name];
  if (!load) {
    process.stderr.write(`unknown benchmark "${name}"; one of: ${Object.keys(benches).join(', ')}\n`);
    process.exit(2);
  }
  const bench = await load();
  const brokers = (values.brokers ?? process.env.SWITCHYARD_BENCH_BROKERS ?? '').split(',').filter(Boolean);
  const results = await bench({
    quick: values.quick ?? false,
    only: values.only,
    brokers,
    ...(values.minutes !== undefined ? { minutes: Number(values.minutes) } : {}),
    ...(values.rate !== undefined ? { rate: Number(values.rate) } : {}),
    ...(values.seconds !== undefined ? { seconds: Number(values.seconds) } : {}),
    ...(values.warmup !== undefined ? { warmup: Number(values.warmup) } : {}),
    ...(values.runs !== undefined ? { runs: Number(values.runs) } : {}),
    skipProfiles: values['skip-profiles'] ?? false,
    ...(values.baseline !== undefined ? { baseline: values.baseline } : {}),
    ...(values['up-args'] !== undefined ? { upArgs: values['up-args'].split(/\s+/).filter(Boolean) } : {}),
    ...(values['node-args'] !== undefined ? { nodeArgs: values['node-args'].split(/\s+/).filter(Boolean) } : {}),
    progress: (line) => process.stderr.write(`[${name}] ${line}\n`),
  });
  mkdirSync('bench/results', { recursive: true });
  writeFileSync(`bench/results/${name}.json`, JSON.stringify({ at: new Date().toISOString(), results }, null, 2));
  if (values.json) console.log(JSON.stringify(results, null, 2));
  else {
    for (const r of results) {
      console.log(`\n## ${r.title}\n${renderTable(r.columns, r.rows)}`);
      for (const n of r.notes) console.log(`- ${n}`);
    }
  }
}
