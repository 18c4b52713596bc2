import { describe, expect, it } from 'vitest';
import { AcceleratorProbe, cpuSampler, NVIDIA_SMI_ARGS, parseNvidiaSmi } from './accelerator.js';

describe('accelerator info', () => {
  it('parses nvidia-smi CSV (two GPUs): summed memory, mean utilization, driver', () => {
    const csv = 'NVIDIA A100-SXM4-80GB, 81920, 1024, 30, 535.104.05\nNVIDIA A100-SXM4-80GB, 81920, 3072, 50, 535.104.05\n';
    expect(parseNvidiaSmi(csv)).toEqual({
      kind: 'gpu',
      name: 'NVIDIA A100-SXM4-80GB',
      count: 2,
      memoryTotalBytes: 2 * 81920 * 1024 * 1024,
      memoryUsedBytes: 4096 * 1024 * 1024,
      utilization: 0.4,
      driverVersion: '535.104.05',
    });
  });

  it('treats unknown fields as unknown, and no rows as no GPU', () => {
    expect(parseNvidiaSmi('Tesla T4, 15360, 0, [N/A], 470.82.01')).toMatchObject({ count: 1, utilization: null });
    expect(parseNvidiaSmi('')).toBeNull();
  });

  it('asks nvidia-smi with the query flags and falls back to the CPU when it is absent', async () => {
    const calls: string[][] = [];
    const probe = new AcceleratorProbe(async (file, args) => {
      calls.push([file, ...args]);
      return null;
    });
    await probe.refresh();
    expect(calls).toEqual([['nvidia-smi', ...NVIDIA_SMI_ARGS]]);
    expect(probe.hasGpu).toBe(false);
    const cpu = probe.sample();
    expect(cpu.kind).toBe('cpu');
    expect(cpu.count).toBeGreaterThan(0);
    expect(cpu.memoryTotalBytes).toBeGreaterThan(0);
    const next = probe.sample();
    expect(next.utilization === null || (next.utilization >= 0 && next.utilization <= 1)).toBe(true);
  });

  it('shares one CPU sampler between the probes of a process (one /proc read per interval for every worker)', () => {
    const a = new AcceleratorProbe(async () => null);
    const b = new AcceleratorProbe(async () => null);
    // The same sample object, unless the shared sampler's second ended between two calls (then b's
    // fresh one is what a returns next).
    const [s1, s2, s3] = [a.sample(), b.sample(), a.sample()];
    expect(s2 === s1 || s2 === s3).toBe(true);
    let calls = 0;
    const own = new AcceleratorProbe(
      async () => null,
      () => {
        calls++;
        return { kind: 'cpu', name: 'test', count: 1, memoryTotalBytes: 1, memoryUsedBytes: 0, utilization: null, driverVersion: null };
      },
    );
    expect(own.sample()).toMatchObject({ name: 'test' });
    expect(calls).toBe(1);
  });

  it('reports GPUs when nvidia-smi answers', async () => {
    const probe = new AcceleratorProbe(async () => 'NVIDIA L4, 23034, 500, 12, 550.54.15');
    await probe.refresh();
    expect(probe.sample()).toMatchObject({ kind: 'gpu', name: 'NVIDIA L4', count: 1, utilization: 0.12 });
  });

  it('samples the CPU at most once per interval: a younger sample is the last one again', () => {
    let t = 0;
    const sample = cpuSampler(1_000, () => t);
    const first = sample();
    expect(first).toMatchObject({ kind: 'cpu', utilization: null });
    t = 999;
    expect(sample()).toBe(first);
    // Burn some CPU so the next window has ticks to compare.
    const until = performance.now() + 50;
    while (performance.now() < until);
    t = 1_000;
    const second = sample();
    expect(second).not.toBe(first);
    expect(second.utilization).not.toBeNull();
    expect(second.utilization!).toBeGreaterThanOrEqual(0);
    expect(second.utilization!).toBeLessThanOrEqual(1);
  });
});
