import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { cpuDeltaMs, type LoadJob, type LoadResult } from './measure.js';
import { TICKS_PER_SECOND, treeTimes } from './proc.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const LOADGEN = join(ROOT, 'bench', 'peers', 'loadgen.ts');

/** One window of load and what the system spent on it. */
export interface Measured {
  result: LoadResult;
  /** CPU (user + system) of the system's process tree over the window, ms. */
  cpuMs: number;
  /** Of which user mode, ms. */
  userCpuMs: number;
  /** The broker's, counted apart (when its pid is known). */
  brokerCpuMs: number | undefined;
  /** The names of the processes measured (at the window's end). */
  processes: string[];
  /** Wall clock (ms since the epoch) when the window opened: events on the log from then on are the window's. */
  startedAt: number;
}

const pick = (m: Map<number, { user: number; all: number }>, f: 'user' | 'all'): Map<number, number> => new Map([...m].map(([pid, t]) => [pid, t[f]]));

/**
 * One run of the load generator (loadgen.ts, a process of its own) with the CPU of the process
 * tree under `rootPid` (and of `brokerPid`'s) sampled at the edges of the measured window, which
 * opens after the generator's warm-up.
 */
export function measureLoad(job: LoadJob, rootPid: number, brokerPid?: number, window: { onStart?(): void; onDone?(): void } = {}): Promise<Measured> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', LOADGEN, JSON.stringify(job)], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => void (stderr += c.toString()));
    let before: Map<number, { user: number; all: number }> | undefined;
    let brokerBefore: Map<number, number> | undefined;
    let startedAt = 0;
    let measured: Measured | undefined;
    createInterface({ input: child.stdout }).on('line', (line) => {
      const msg = JSON.parse(line) as { event: string; at?: number } & LoadResult;
      if (msg.event === 'start') {
        startedAt = msg.at ?? Date.now();
        before = treeTimes(rootPid);
        if (brokerPid !== undefined) brokerBefore = pick(treeTimes(brokerPid), 'all');
        window.onStart?.();
      } else if (msg.event === 'done' && before !== undefined) {
        const after = treeTimes(rootPid);
        const brokerAfter = brokerPid === undefined ? undefined : pick(treeTimes(brokerPid), 'all');
        measured = {
          result: msg,
          cpuMs: cpuDeltaMs(pick(before, 'all'), pick(after, 'all'), TICKS_PER_SECOND),
          userCpuMs: cpuDeltaMs(pick(before, 'user'), pick(after, 'user'), TICKS_PER_SECOND),
          brokerCpuMs: brokerBefore === undefined || brokerAfter === undefined ? undefined : cpuDeltaMs(brokerBefore, brokerAfter, TICKS_PER_SECOND),
          processes: [...after.keys()].map(processName),
          startedAt,
        };
        window.onDone?.();
      }
    });
    child.once('close', (code) => {
      if (code === 0 && measured !== undefined) resolve(measured);
      else reject(new Error(`load generator exited ${code}: ${stderr.trim().split('\n').at(-1) ?? ''}`));
    });
  });
}

function processName(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return String(pid);
  }
}
