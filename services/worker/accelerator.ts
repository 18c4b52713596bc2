import { execFile } from 'node:child_process';
import { cpus, freemem, totalmem } from 'node:os';
import type { Accelerator } from '../../schemas/generated/events.js';

/**
 * What the worker computes on, for WorkerJoined and heartbeats: the GPUs `nvidia-smi` reports
 * when it is installed and answers, else the CPU (`os.cpus()`).
 */
export const NVIDIA_SMI_ARGS = ['--query-gpu=name,memory.total,memory.used,utilization.gpu,driver_version', '--format=csv,noheader,nounits'];

/** GPUs from `nvidia-smi --query-gpu=name,memory.total,memory.used,utilization.gpu,driver_version --format=csv,noheader,nounits`. */
export function parseNvidiaSmi(csv: string): Accelerator | null {
  const rows = csv
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .map((l) => l.split(',').map((f) => f.trim()));
  const gpus = rows.filter((r) => r.length >= 5 && r[0] !== '');
  if (gpus.length === 0) return null;
  const num = (s: string | undefined): number | null => {
    const n = Number(s);
    return s === undefined || s === '' || !Number.isFinite(n) ? null : n;
  };
  const MiB = 1024 * 1024;
  let total = 0;
  let used = 0;
  const utils: number[] = [];
  for (const g of gpus) {
    total += (num(g[1]) ?? 0) * MiB;
    used += (num(g[2]) ?? 0) * MiB;
    const u = num(g[3]);
    if (u !== null) utils.push(u / 100);
  }
  const names = [...new Set(gpus.map((g) => g[0]!))];
  return {
    kind: 'gpu',
    name: names.join(' + '),
    count: gpus.length,
    memoryTotalBytes: total,
    memoryUsedBytes: used,
    utilization: utils.length > 0 ? utils.reduce((a, b) => a + b, 0) / utils.length : null,
    driverVersion: gpus[0]![4] || null,
  };
}

/** Runs a command and returns its stdout, or null when it is missing or fails. */
export type CommandRunner = (file: string, args: readonly string[]) => Promise<string | null>;

export const runCommand: CommandRunner = (file, args) =>
  new Promise((resolve) => {
    execFile(file, args, { timeout: 3_000, windowsHide: true }, (err, stdout) => resolve(err ? null : stdout));
  });

/**
 * Samples the CPU: busy share of all cores since the previous sample (null on the first),
 * memory from the OS. A sample younger than `everyMs` is returned again: `os.cpus()` reads
 * /proc on every call, heartbeats come every 100 ms from each worker, and the call showed in the
 * serving path's profile (~1% of the main thread); a utilization over a second is the useful one.
 */
export function cpuSampler(everyMs = 1_000, now: () => number = () => performance.now()): () => Accelerator {
  let prev: { idle: number; total: number } | null = null;
  let last: { at: number; sample: Accelerator } | null = null;
  return () => {
    const t = now();
    if (last !== null && t - last.at < everyMs) return last.sample;
    const cores = cpus();
    let idle = 0;
    let total = 0;
    for (const c of cores) {
      idle += c.times.idle;
      total += c.times.idle + c.times.user + c.times.nice + c.times.sys + c.times.irq;
    }
    const utilization = prev !== null && total > prev.total ? Math.min(1, Math.max(0, 1 - (idle - prev.idle) / (total - prev.total))) : null;
    prev = { idle, total };
    const memoryTotalBytes = totalmem();
    const sample: Accelerator = {
      kind: 'cpu',
      name: cores[0]?.model.trim() || 'cpu',
      count: cores.length,
      memoryTotalBytes,
      memoryUsedBytes: memoryTotalBytes - freemem(),
      utilization,
      driverVersion: null,
    };
    last = { at: t, sample };
    return sample;
  };
}

/**
 * The host's CPU, sampled once for every worker of the process: the workers of `switchyard up`
 * share one machine, and each sampling on its own read /proc (stat, cpuinfo, meminfo) four times
 * as often for the same figures — a third of an idle `up`'s file opens.
 */
let hostCpu: (() => Accelerator) | undefined;
const sharedCpuSampler = (): Accelerator => (hostCpu ??= cpuSampler())();

/**
 * A probe of the worker's device: GPUs when `nvidia-smi` answers, else the CPU. `sample()` is
 * cheap and synchronous (heartbeats call it); `refresh()` re-queries nvidia-smi.
 */
export class AcceleratorProbe {
  private gpu: Accelerator | null = null;

  constructor(
    private readonly run: CommandRunner = runCommand,
    /** The CPU's sample. @default one sampler shared by the process's probes */
    private readonly cpu: () => Accelerator = sharedCpuSampler,
  ) {}

  /** Query nvidia-smi (absent or failing: the CPU is reported). */
  async refresh(): Promise<void> {
    const out = await this.run('nvidia-smi', NVIDIA_SMI_ARGS);
    this.gpu = out === null ? null : parseNvidiaSmi(out);
  }

  get hasGpu(): boolean {
    return this.gpu !== null;
  }

  sample(): Accelerator {
    return this.gpu ?? this.cpu();
  }
}
