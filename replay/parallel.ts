import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { pathToFileURL } from 'node:url';
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import type { EventLog, LogRecord, ReadRange, TopicSpec } from '../lib/log/port.js';
import type { SchemaRegistry } from '../lib/registry/port.js';
import type { InferenceRequested } from '../schemas/generated/events.js';
import { ReplayError } from './errors.js';
import type { LogSource } from './source.js';
import { listDecisions, sublist, verifyListed, type DecisionList, type VerifyOptions, type VerifyReport } from './verify.js';

/**
 * `replay verify` on worker threads. Verifying is CPU-bound (decode, fold, decide, compare), so
 * the decisions are shared out: each thread verifies whole routers when there are at least as
 * many routers as threads, else consecutive runs of one router's decisions (in clock order; a run
 * folds the prefix before its first clock itself — folding is far cheaper than verifying).
 *
 * The log stays in this thread: the embedded log is single-process and a Kafka source needs no
 * more connections. Threads read through a small RPC (`read`, offsets, schema lookups) that this
 * thread answers from its own source, records packed in one transferred buffer per read.
 */

export interface ParallelOptions extends VerifyOptions {
  /** Worker threads. @default min(available parallelism, 8) */
  threads?: number | undefined;
  /** Below this many decisions, verify in this thread (starting threads costs more). @default 20_000 */
  minDecisions?: number | undefined;
}

/** How decisions are shared out: groups of indices into the list, one per thread. */
export function shareOut(list: DecisionList, threads: number): number[][] {
  const byProducer = list.producers.map(() => [] as number[]);
  for (let i = 0; i < list.n; i++) byProducer[list.producer[i]!]!.push(i);
  for (const l of byProducer) l.sort((a, b) => list.clockSum[a]! - list.clockSum[b]! || list.offset[a]! - list.offset[b]!);
  const routers = byProducer.filter((l) => l.length > 0).sort((a, b) => b.length - a.length);
  if (routers.length >= threads) {
    // Whole routers, largest first onto the lightest thread.
    const groups: number[][] = Array.from({ length: threads }, () => []);
    for (const r of routers) {
      const lightest = groups.reduce((min, g) => (g.length < min.length ? g : min));
      for (const i of r) lightest.push(i);
    }
    return groups.filter((g) => g.length > 0);
  }
  // Runs of routers' decisions: threads in proportion to each router's count, at least one each.
  const shares = routers.map((r) => Math.max(1, Math.round((r.length / list.n) * threads)));
  while (shares.reduce((a, b) => a + b, 0) > threads) shares[shares.indexOf(Math.max(...shares))]!--;
  const groups: number[][] = [];
  routers.forEach((r, k) => {
    const parts = shares[k]!;
    for (let j = 0; j < parts; j++) groups.push(r.slice(Math.floor((j * r.length) / parts), Math.floor(((j + 1) * r.length) / parts)));
  });
  return groups.filter((g) => g.length > 0);
}

/** Records of one read, packed: count, then per record offset, timestamp, key and value lengths (-1: null) and bytes. */
export function packRecords(records: readonly LogRecord[]): Uint8Array {
  let size = 4;
  for (const r of records) size += 24 + (r.key?.length ?? 0) + (r.value?.length ?? 0);
  const buf = Buffer.alloc(size);
  buf.writeUInt32LE(records.length, 0);
  let at = 4;
  for (const r of records) {
    buf.writeDoubleLE(r.offset, at);
    buf.writeDoubleLE(r.timestamp, at + 8);
    buf.writeInt32LE(r.key === null ? -1 : r.key.length, at + 16);
    buf.writeInt32LE(r.value === null ? -1 : r.value.length, at + 20);
    at += 24;
    if (r.key !== null) at += r.key.copy(buf, at);
    if (r.value !== null) at += r.value.copy(buf, at);
  }
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

export function unpackRecords(bytes: Uint8Array, topic: string, partition: number): LogRecord[] {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = buf.readUInt32LE(0);
  const out: LogRecord[] = [];
  let at = 4;
  for (let i = 0; i < n; i++) {
    const offset = buf.readDoubleLE(at);
    const timestamp = buf.readDoubleLE(at + 8);
    const keyLen = buf.readInt32LE(at + 16);
    const valueLen = buf.readInt32LE(at + 20);
    at += 24;
    const key = keyLen < 0 ? null : buf.subarray(at, (at += keyLen));
    const value = valueLen < 0 ? null : buf.subarray(at, (at += valueLen));
    out.push({ topic, partition, offset, timestamp, key, value, headers: {} });
  }
  return out;
}

interface Call {
  id: number;
  op: 'read' | 'startOffsets' | 'endOffsets' | 'partitionCount' | 'getById' | 'lookup' | 'register';
  args: unknown[];
}

/** Answer a thread's calls from this thread's source. */
function serve(port: MessagePort, source: LogSource): void {
  port.on('message', (m: Call) => {
    void (async () => {
      try {
        switch (m.op) {
          case 'read': {
            const range = m.args[0] as ReadRange;
            const packed = packRecords(await source.log.read(range));
            port.postMessage({ id: m.id, result: packed }, [packed.buffer as ArrayBuffer]);
            return;
          }
          case 'startOffsets':
            return port.postMessage({ id: m.id, result: await source.log.startOffsets(m.args[0] as string) });
          case 'endOffsets':
            return port.postMessage({ id: m.id, result: await source.log.endOffsets(m.args[0] as string) });
          case 'partitionCount':
            return port.postMessage({ id: m.id, result: await source.log.partitionCount(m.args[0] as string) });
          case 'getById':
            return port.postMessage({ id: m.id, result: await source.registry.getById(m.args[0] as number) });
          case 'lookup':
            return port.postMessage({ id: m.id, result: await source.registry.lookup(m.args[0] as string, m.args[1] as string) });
          case 'register':
            return port.postMessage({ id: m.id, result: await source.registry.register(m.args[0] as string, m.args[1] as string) });
        }
      } catch (err) {
        const e = err as { message?: string; code?: string; retriable?: boolean };
        port.postMessage({ id: m.id, error: { message: e.message ?? String(err), code: e.code, retriable: e.retriable ?? false } });
      }
    })();
  });
}

/** The thread side: a read-only EventLog and SchemaRegistry that ask the main thread. */
export function remoteSource(port: MessagePort): { log: EventLog; registry: SchemaRegistry } {
  let next = 0;
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: unknown) => void }>();
  port.on('message', (m: { id: number; result?: unknown; error?: { message: string; code?: string; retriable: boolean } }) => {
    const p = pending.get(m.id);
    if (p === undefined) return;
    pending.delete(m.id);
    if (m.error) p.reject(Object.assign(new Error(m.error.message), { code: m.error.code, retriable: m.error.retriable }));
    else p.resolve(m.result);
  });
  const call = <T>(op: Call['op'], ...args: unknown[]): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const id = next++;
      pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      port.postMessage({ id, op, args } satisfies Call);
    });
  const readOnly = (what: string) => async (): Promise<never> => {
    throw new ReplayError('SY_ERR_REPLAY_SOURCE', `a replay worker thread cannot ${what}`);
  };
  const log: EventLog = {
    kind: 'embedded',
    ensureTopics: async (_specs: TopicSpec[]) => {},
    partitionCount: (topic) => call('partitionCount', topic),
    append: readOnly('append'),
    startOffsets: (topic) => call('startOffsets', topic),
    endOffsets: (topic) => call('endOffsets', topic),
    read: async (range) => unpackRecords(await call<Uint8Array>('read', range), range.topic, range.partition),
    committedOffsets: readOnly('read committed offsets'),
    subscribe: readOnly('subscribe'),
    close: async () => {},
  };
  const registry: SchemaRegistry = {
    register: (subject, schema) => call('register', subject, typeof schema === 'string' ? schema : JSON.stringify(schema)),
    lookup: (subject, schema) => call('lookup', subject, typeof schema === 'string' ? schema : JSON.stringify(schema)),
    getById: (id) => call('getById', id),
    getLatest: readOnly('read subjects'),
    getVersion: readOnly('read subjects'),
    listSubjects: readOnly('list subjects'),
    listVersions: readOnly('list versions'),
    checkCompatibility: readOnly('check compatibility'),
    getCompatibility: readOnly('read compatibility') as SchemaRegistry['getCompatibility'],
    setCompatibility: readOnly('set compatibility'),
    deleteSubject: readOnly('delete subjects'),
    deleteVersion: readOnly('delete versions'),
  } as SchemaRegistry;
  return { log, registry };
}

/** What the main thread sends a worker once it has listed the decisions. */
export interface WorkerTask {
  port: MessagePort;
  topicPrefix: string;
  list: DecisionList;
  /** Requests of the list's rejections: [key, request] (Buffers arrive as Uint8Array). */
  requests: [string, InferenceRequested][];
  maxDivergences: number | undefined;
  inPlace: boolean | undefined;
}

function workerUrl(): URL {
  const self = import.meta.url;
  if (self.endsWith('.js')) return new URL('./verify-worker.js', self);
  // Running from TypeScript (tsx, vitest): boot the worker through tsx's loader.
  // The package's ESM entry (`import` condition) beside the CommonJS one `require.resolve` finds.
  const tsx = pathToFileURL(createRequire(self).resolve('tsx/esm/api').replace(/\.cjs$/, '.mjs')).href;
  const target = new URL('./verify-worker.ts', self).href;
  const boot = `import { register } from ${JSON.stringify(tsx)}; register(); await import(${JSON.stringify(target)});`;
  return new URL(`data:text/javascript,${encodeURIComponent(boot)}`);
}

/** Merge the reports of the threads (counts add up; examples are capped; time is the slowest thread's). */
export function mergeReports(reports: VerifyReport[], maxDivergences: number): Omit<VerifyReport, 'listMs' | 'ms' | 'decisionsPerSec' | 'source' | 'window' | 'threads'> {
  const producers = new Map<string, VerifyReport['producers'][number]>();
  const skippedExamples: VerifyReport['skippedExamples'] = {};
  const out = {
    decisions: 0,
    verified: 0,
    verifiedInPlace: 0,
    diverged: 0,
    inconclusive: 0,
    skipped: { 'policy-version': 0, 'request-not-found': 0, 'decision-unreadable': 0 },
    skippedExamples,
    divergences: [] as VerifyReport['divergences'],
    inconclusiveExamples: [] as VerifyReport['inconclusiveExamples'],
    producers: [] as VerifyReport['producers'],
    foldedRecords: 0,
    undecodableRecords: 0,
    verifyMs: 0,
    ok: true,
  };
  for (const r of reports) {
    out.decisions += r.decisions;
    out.verified += r.verified;
    out.verifiedInPlace += r.verifiedInPlace;
    out.diverged += r.diverged;
    out.inconclusive += r.inconclusive;
    for (const k of Object.keys(out.skipped) as (keyof typeof out.skipped)[]) out.skipped[k] += r.skipped[k];
    for (const [k, ex] of Object.entries(r.skippedExamples) as [keyof typeof out.skipped, string[]][]) skippedExamples[k] = [...(skippedExamples[k] ?? []), ...ex].slice(0, 5);
    out.divergences.push(...r.divergences);
    out.inconclusiveExamples.push(...r.inconclusiveExamples);
    out.foldedRecords += r.foldedRecords;
    out.undecodableRecords += r.undecodableRecords;
    out.verifyMs = Math.max(out.verifyMs, r.verifyMs);
    for (const p of r.producers) {
      const q = producers.get(p.producer) ?? { producer: p.producer, decisions: 0, rebuilds: 0, foldedRecords: 0 };
      q.decisions += p.decisions;
      q.rebuilds += p.rebuilds;
      q.foldedRecords += p.foldedRecords;
      producers.set(p.producer, q);
    }
  }
  out.divergences = out.divergences.sort((a, b) => a.occurredAt - b.occurredAt).slice(0, maxDivergences);
  out.inconclusiveExamples = out.inconclusiveExamples.sort((a, b) => a.occurredAt - b.occurredAt).slice(0, maxDivergences);
  out.producers = [...producers.values()];
  out.ok = out.diverged === 0;
  return out;
}

/**
 * Reads shared by the workers: threads verifying different routers fold the same partitions at
 * about the same pace and read the same chunks (a partition's chunks are the same whoever reads
 * them), so a chunk read for one is kept until the others have taken it too. Bounded: a chunk the
 * others do not ask for soon is dropped. Single-record reads are not kept.
 */
export function sharedReads(log: EventLog, readers: number, capacity = 1024): EventLog {
  const kept = new Map<string, { records: Promise<LogRecord[]>; left: number }>();
  const read = (range: ReadRange): Promise<LogRecord[]> => {
    if (range.maxRecords === 1 || readers <= 1) return log.read(range);
    const key = `${range.topic}\u0000${range.partition}\u0000${range.from}\u0000${range.to ?? ''}\u0000${range.maxRecords ?? ''}`;
    const hit = kept.get(key);
    if (hit !== undefined) {
      if (--hit.left === 0) kept.delete(key);
      return hit.records;
    }
    const records = log.read(range);
    kept.set(key, { records, left: readers - 1 });
    // A failed read is not kept (the next asks again).
    records.catch(() => kept.delete(key));
    if (kept.size > capacity) kept.delete(kept.keys().next().value!);
    return records;
  };
  return new Proxy(log, {
    get(target, prop) {
      if (prop === 'read') return read;
      const v = Reflect.get(target, prop, target) as unknown;
      return typeof v === 'function' ? (v as (...args: unknown[]) => unknown).bind(target) : v;
    },
  });
}

/** A worker thread, booting (its modules load while this thread lists the decisions). */
interface Booting {
  worker: Worker;
  /** Give it its task: settles with its report, or rejects if it fails. */
  run(task: WorkerTask, onProgress: (done: number) => void): Promise<VerifyReport>;
}

function startWorker(k: number): Booting {
  const worker = new Worker(workerUrl());
  let onProgress: (done: number) => void = () => {};
  const done = new Promise<VerifyReport>((resolve, reject) => {
    worker.on('message', (m: { progress?: { done: number }; report?: VerifyReport; error?: string }) => {
      if (m.progress) onProgress(m.progress.done);
      else if (m.report) resolve(m.report);
      else if (m.error) reject(new ReplayError('SY_ERR_REPLAY_SOURCE', `verify worker ${k}: ${m.error}`));
    });
    worker.on('error', reject);
    worker.on('exit', (code) => reject(new ReplayError('SY_ERR_REPLAY_SOURCE', `verify worker ${k} exited with code ${code}`)));
  });
  // A worker never given a task is only terminated: its failure is not waited for.
  done.catch(() => {});
  return {
    worker,
    run: (task, progress) => {
      onProgress = progress;
      worker.postMessage(task, [task.port]);
      return done;
    },
  };
}

/**
 * `replay verify` with worker threads (see the module comment). Same report as
 * `verifyDecisions`; falls back to this thread for small windows or one thread. The workers boot
 * (load their modules) while this thread lists the decisions.
 */
export async function verifyDecisionsParallel(source: LogSource, o: ParallelOptions = {}): Promise<VerifyReport> {
  const t0 = performance.now();
  const wanted = Math.max(1, Math.min(o.threads ?? Math.min(availableParallelism(), 8), 64));
  const booting = wanted > 1 ? Array.from({ length: wanted }, (_, k) => startWorker(k)) : [];
  try {
    const { list, requests, listMs } = await listDecisions(source, o);
    const groups = booting.length > 1 && list.n >= (o.minDecisions ?? 20_000) ? shareOut(list, Math.min(wanted, list.n)) : [];
    let report: VerifyReport;
    if (groups.length <= 1) {
      report = await verifyListed(source, list, requests, o);
    } else {
      const progress = new Array<number>(groups.length).fill(0);
      const ports: MessagePort[] = [];
      const shared: LogSource = { ...source, log: sharedReads(source.log, groups.length) };
      try {
        const partials = await Promise.all(
          groups.map((indices, k) => {
            const { port1, port2 } = new MessageChannel();
            serve(port1, shared);
            ports.push(port1);
            const task: WorkerTask = { port: port2, topicPrefix: source.topicPrefix, list: sublist(list, indices), requests: [...requests], maxDivergences: o.maxDivergences, inPlace: o.inPlace };
            return booting[k]!.run(task, (done) => {
              progress[k] = done;
              o.onProgress?.({ phase: 'verify', done: progress.reduce((a, b) => a + b, 0), total: list.n });
            });
          }),
        );
        const merged = mergeReports(partials, o.maxDivergences ?? 50);
        report = { source: source.description, window: { from: o.from, to: o.to }, listMs: 0, ms: 0, decisionsPerSec: 0, ...merged, threads: groups.length };
      } finally {
        for (const port of ports) port.close();
      }
      // Buffers cross threads as Uint8Array: make them Buffers again for the renderers.
      for (const d of [...report.divergences, ...report.inconclusiveExamples]) {
        for (const e of [d.recorded, d.rederived] as { input?: unknown }[]) if (e.input instanceof Uint8Array && !Buffer.isBuffer(e.input)) e.input = Buffer.from(e.input);
      }
      report.skipped['decision-unreadable'] += list.unreadable;
    }
    report.listMs = listMs;
    report.ms = performance.now() - t0;
    report.decisionsPerSec = report.ms > 0 ? (list.n / report.ms) * 1000 : 0;
    return report;
  } finally {
    await Promise.all(booting.map((b) => b.worker.terminate()));
  }
}
