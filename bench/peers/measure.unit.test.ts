import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { cpuDeltaMs, dueAt, dueBy, parseStat, processTree, type ProcStat } from './measure.js';

describe('open-loop schedule', () => {
  it('puts request i at start + i/rate', () => {
    expect(dueAt(1000, 0, 200)).toBe(1000);
    expect(dueAt(1000, 1, 200)).toBe(1005);
    expect(dueAt(1000, 200, 200)).toBe(2000);
  });

  it('counts the requests due by a time, request 0 due at the start', () => {
    expect(dueBy(1000, 999, 500)).toBe(0);
    expect(dueBy(1000, 1000, 500)).toBe(1);
    expect(dueBy(1000, 1001.99, 500)).toBe(1);
    expect(dueBy(1000, 1002, 500)).toBe(2);
    expect(dueBy(1000, 2000, 500)).toBe(501);
  });

  it('agrees with dueAt: request i is due by dueAt(i) and not before', () => {
    for (const rate of [1, 200, 500, 3000]) {
      for (let i = 0; i < 1000; i += 37) {
        const at = dueAt(5000, i, rate);
        expect(dueBy(5000, at, rate)).toBeGreaterThan(i);
        expect(dueBy(5000, at - 1e-3, rate)).toBeLessThanOrEqual(i);
      }
    }
  });
});

describe('/proc/<pid>/stat', () => {
  it('reads pid, ppid and utime + stime, whatever the command name holds', () => {
    // Fields after the name: state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime cutime cstime ...
    const line = '4242 (ray::Serve) (x)) S 17 4242 4242 0 -1 4194560 100 0 0 0 250 31 7 9 20 0 12 0 1234 0 0\n';
    expect(parseStat(line)).toEqual({ pid: 4242, ppid: 17, ticks: 281, userTicks: 250 });
  });

  it('reads this process', () => {
    const s = parseStat(readFileSync('/proc/self/stat', 'utf8'));
    expect(s.pid).toBeGreaterThan(0);
    expect(s.ppid).toBe(process.ppid);
    expect(s.ticks).toBeGreaterThanOrEqual(0);
  });

  it('refuses what is not a stat line', () => {
    expect(() => parseStat('garbage')).toThrow(/not a \/proc/);
  });
});

describe('process tree', () => {
  const table = new Map<number, ProcStat>(
    [
      [1, 0],
      [10, 1], // the driver
      [11, 10],
      [12, 10],
      [13, 12], // a worker below the raylet
      [20, 1], // someone else's
      [21, 20],
    ].map(([pid, ppid]) => [pid!, { pid: pid!, ppid: ppid!, ticks: 0, userTicks: 0 }]),
  );

  it('is the root and everything below it', () => {
    expect(processTree(table, 10).sort((a, b) => a - b)).toEqual([10, 11, 12, 13]);
    expect(processTree(table, 13)).toEqual([13]);
  });

  it('is empty when the root is gone', () => {
    expect(processTree(table, 99)).toEqual([]);
  });
});

describe('CPU between two samples', () => {
  it('sums each process’s ticks over the window, a new process from zero', () => {
    const before = new Map([
      [10, 100],
      [11, 50],
      [12, 7], // ends during the window: lost
    ]);
    const after = new Map([
      [10, 130],
      [11, 50],
      [14, 5], // born during the window
    ]);
    expect(cpuDeltaMs(before, after, 100)).toBe(350);
    expect(cpuDeltaMs(before, after, 1000)).toBe(35);
  });
});
