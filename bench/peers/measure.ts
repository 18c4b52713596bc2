/**
 * The pure parts of the peers benchmark: the open-loop schedule, the load generator's job and
 * result shapes, and CPU time from /proc/<pid>/stat. No I/O here; `proc.ts` reads /proc and
 * `loadgen.ts` sends the requests.
 */

/** One run of the load generator (`loadgen.ts`), passed to it as JSON in argv[2]. */
export interface LoadJob {
  /** Where every request is POSTed. */
  url: string;
  /** Makes every request's input unique across runs (no cache hits). */
  tag: string;
  /**
   * `open`: request i is due at start + i/rate, sent then whatever is still in flight, and its
   * latency runs from that due time. `closed`: `connections` loops, each sending its next
   * request when the previous one answered, latency from the send.
   */
  mode: 'open' | 'closed';
  /** Requests per second (open loop). */
  rate: number;
  /** Keep-alive connections (open: the most it opens; closed: the loops). */
  connections: number;
  /** Length of the measured window, s. */
  seconds: number;
  /** Requests sent before the window opens (not measured): connections, JIT. */
  warmup: number;
  /** A request that has not answered after this long fails, ms. */
  timeoutMs: number;
}

/** What the load generator prints when the window's requests have all finished. */
export interface LoadResult {
  /** 200s. */
  ok: number;
  /** 429s (Switchyard's admission shedding). */
  shed: number;
  /** Any other status, or no answer. */
  failed: number;
  /** Count per status (`"0"`: no answer), to say what failed. */
  statuses: Record<string, number>;
  /** Latency of the 200s, ms (open loop: from the due time). */
  p50: number;
  p99: number;
  /** From the window's start until the last request finished, s. */
  elapsedS: number;
  /** 200s per second of `elapsedS`. */
  okPerSec: number;
  /** Open loop: the latest the generator sent a request after its due time, ms. */
  maxSendLagMs: number;
  /** The load generator's own CPU time over the window, ms. */
  cpuMs: number;
}

/** When request `i` is due, in the clock of `start`, ms. */
export const dueAt = (start: number, i: number, rate: number): number => start + (i * 1000) / rate;

/** How many requests are due by `now`: those with `dueAt(i) <= now` (request 0 is due at `start`). */
export function dueBy(start: number, now: number, rate: number): number {
  if (now < start) return 0;
  let n = Math.floor(((now - start) * rate) / 1000) + 1;
  // The estimate can be one off where floating point rounds dueAt the other way: agree with dueAt.
  while (dueAt(start, n, rate) <= now) n++;
  while (n > 0 && dueAt(start, n - 1, rate) > now) n--;
  return n;
}

/** The fields of /proc/<pid>/stat this benchmark needs. */
export interface ProcStat {
  pid: number;
  ppid: number;
  /** utime + stime, clock ticks (all threads of the process). */
  ticks: number;
  /** utime alone (user mode), clock ticks. */
  userTicks: number;
}

/**
 * Parses one /proc/<pid>/stat line. The command name (field 2) is in parentheses and may hold
 * spaces and parentheses itself, so fields are counted from the last ')'.
 */
export function parseStat(text: string): ProcStat {
  const close = text.lastIndexOf(')');
  if (close < 0) throw new Error(`not a /proc/<pid>/stat line: ${text.slice(0, 80)}`);
  const pid = Number.parseInt(text, 10);
  // After ") ": state is field 3; ppid field 4; utime 14 and stime 15 (proc(5)).
  const rest = text.slice(close + 2).split(' ');
  const ppid = Number(rest[1]);
  const userTicks = Number(rest[11]);
  const ticks = userTicks + Number(rest[12]);
  if (!Number.isInteger(pid) || !Number.isInteger(ppid) || !Number.isFinite(ticks)) throw new Error(`unreadable /proc/<pid>/stat line: ${text.slice(0, 80)}`);
  return { pid, ppid, ticks, userTicks };
}

/** `root` and every process below it, from a table of all processes. */
export function processTree(table: ReadonlyMap<number, ProcStat>, root: number): number[] {
  const children = new Map<number, number[]>();
  for (const p of table.values()) {
    const list = children.get(p.ppid) ?? [];
    list.push(p.pid);
    children.set(p.ppid, list);
  }
  if (!table.has(root)) return [];
  const tree: number[] = [];
  const queue = [root];
  while (queue.length > 0) {
    const pid = queue.shift()!;
    tree.push(pid);
    queue.push(...(children.get(pid) ?? []));
  }
  return tree;
}

/**
 * CPU time spent between two samples (ticks per pid), ms. A process in `after` only was born
 * during the window and counts from zero; one in `before` only ended during it, and what it
 * spent after `before` is lost (the figure is then a lower bound).
 */
export function cpuDeltaMs(before: ReadonlyMap<number, number>, after: ReadonlyMap<number, number>, ticksPerSecond: number): number {
  let ticks = 0;
  for (const [pid, t] of after) ticks += Math.max(0, t - (before.get(pid) ?? 0));
  return (ticks * 1000) / ticksPerSecond;
}
