import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { parseStat, processTree, type ProcStat } from './measure.js';

/** Clock ticks per second of /proc's CPU times (`getconf CLK_TCK`; 100 on Linux). */
export const TICKS_PER_SECOND = ((): number => {
  try {
    const n = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    return Number.isInteger(n) && n > 0 ? n : 100;
  } catch {
    return 100;
  }
})();

/** Every process's /proc/<pid>/stat; a process that ends while being read is left out. */
export function processTable(): Map<number, ProcStat> {
  const table = new Map<number, ProcStat>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const s = parseStat(readFileSync(`/proc/${name}/stat`, 'utf8'));
      table.set(s.pid, s);
    } catch {
      // gone between readdir and read
    }
  }
  return table;
}

/** CPU ticks of `root` and every process below it now, per pid. */
export function treeTicks(root: number): Map<number, number> {
  const table = processTable();
  return new Map(processTree(table, root).map((pid) => [pid, table.get(pid)!.ticks]));
}

/** CPU ticks of `root` and every process below it now, per pid: user mode and in all (user + system). */
export function treeTimes(root: number): Map<number, { user: number; all: number }> {
  const table = processTable();
  return new Map(processTree(table, root).map((pid) => [pid, { user: table.get(pid)!.userTicks, all: table.get(pid)!.ticks }]));
}

/** A port free on 127.0.0.1 just now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}
