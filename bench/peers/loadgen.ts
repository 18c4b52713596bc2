import { Agent, request } from 'node:http';
import { summarize } from '../stats.js';
import { dueAt, dueBy, type LoadJob, type LoadResult } from './measure.js';

/**
 * The peers benchmark's load generator, a process of its own so that its CPU is not the
 * measured system's: `node --import tsx bench/peers/loadgen.ts '<LoadJob as JSON>'`. Every system
 * gets the same requests from it: POST of a Switchyard inference request for the `noop` model
 * with an input unique to the request. It prints JSON lines on stdout: `{"event":"start","at":<ms>}` when
 * the measured window opens (after the warm-up), and `{"event":"done",...LoadResult}` once every
 * request of the window has finished.
 */

const job = JSON.parse(process.argv[2] ?? '') as LoadJob;
const agent = new Agent({ keepAlive: true, maxSockets: job.connections });

/** POST request `i`; resolves with the status (0: no answer) once the body has been read. */
function post(i: number): Promise<number> {
  const body = Buffer.from(JSON.stringify({ model: 'noop', input: { text: `${job.tag} ${i}` }, cacheable: false, deadlineMs: 30_000 }));
  return new Promise((resolve) => {
    const req = request(job.url, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': body.length } }, (res) => {
      res.on('data', () => {});
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', () => resolve(0));
    });
    // Measured from the call, so a request waiting for a pooled connection times out too.
    const timer = setTimeout(() => req.destroy(new Error('timeout')), job.timeoutMs);
    req.on('close', () => clearTimeout(timer));
    req.on('error', () => resolve(0));
    req.end(body);
  });
}

const emit = (line: object): void => void process.stdout.write(`${JSON.stringify(line)}\n`);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const latencies: number[] = [];
const statuses: Record<string, number> = {};
const record = (status: number, latencyMs: number): void => {
  statuses[status] = (statuses[status] ?? 0) + 1;
  if (status === 200) latencies.push(latencyMs);
};

// Warm-up, not measured: connections open, the paths warm on both sides.
let w = 0;
await Promise.all(
  Array.from({ length: Math.min(job.connections, 8) }, async () => {
    while (w < job.warmup) await post(-1 - w++);
  }),
);

// `at`: the window's opening on the wall clock, before its first request is sent (events on the
// log from then on are the window's).
emit({ event: 'start', at: Date.now() });
const cpu = process.cpuUsage();
const start = performance.now();
let maxSendLagMs = 0;
if (job.mode === 'open') {
  const total = Math.round(job.rate * job.seconds);
  const inFlight: Promise<void>[] = [];
  for (let i = 0; i < total; ) {
    const now = performance.now();
    for (const due = Math.min(total, dueBy(start, now, job.rate)); i < due; i++) {
      const at = dueAt(start, i, job.rate);
      maxSendLagMs = Math.max(maxSendLagMs, now - at);
      inFlight.push(post(i).then((status) => record(status, performance.now() - at)));
    }
    if (i < total) await sleep(Math.max(0, dueAt(start, i, job.rate) - performance.now()));
  }
  await Promise.all(inFlight);
} else {
  const end = start + job.seconds * 1000;
  let next = 0;
  await Promise.all(
    Array.from({ length: job.connections }, async () => {
      while (performance.now() < end) {
        const sent = performance.now();
        const status = await post(next++);
        record(status, performance.now() - sent);
      }
    }),
  );
}
const elapsedS = (performance.now() - start) / 1000;
const used = process.cpuUsage(cpu);
const { p50, p99 } = summarize(latencies);
const result: LoadResult = {
  ok: statuses['200'] ?? 0,
  shed: statuses['429'] ?? 0,
  failed: Object.entries(statuses).reduce((n, [s, c]) => (s === '200' || s === '429' ? n : n + c), 0),
  statuses,
  p50,
  p99,
  elapsedS,
  okPerSec: (statuses['200'] ?? 0) / elapsedS,
  maxSendLagMs,
  cpuMs: (used.user + used.system) / 1000,
};
emit({ event: 'done', ...result });
agent.destroy();
