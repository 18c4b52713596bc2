import { SwitchyardError } from '../../lib/errors.js';
import type { BlobStore } from '../../lib/blob/port.js';
import type { Accelerator } from '../../schemas/generated/events.js';
import type { CommandRunner } from './accelerator.js';
import { BuiltinBackend } from './backends/builtin.js';
import type { Backend } from './backends/port.js';
import { SyntheticBackend } from './backends/synthetic.js';

/** Options of `startWorker`. Everything but the blob store has a default. */
export interface WorkerOptions {
  /** Where model weights are fetched from, by digest. */
  blobStore: BlobStore;
  /**
   * Worker id: unique among live workers. Keep it stable across restarts (e.g. a StatefulSet
   * pod name) and a restarted worker re-claims its lane and finishes its own unfinished
   * decisions. @default `worker-<6 hex>`
   */
  workerId?: string;
  /** Zone (failure domain). @default 'default' */
  zone?: string;
  /** Requests computing at once (the concurrency limit). @default 4 */
  capacity?: number;
  /** Largest batch. @default 4 */
  maxBatchSize?: number;
  /** Longest wait to fill a batch, ms; 0 dispatches as soon as a slot is free. @default 0 */
  maxBatchDelayMs?: number;
  /** Batches computing at once (backend executions). @default ceil(capacity / maxBatchSize) */
  maxConcurrentBatches?: number;
  /** Backends, tried in order for a model's kind. @default [BuiltinBackend, SyntheticBackend] */
  backends?: Backend[];
  /** WorkerJoined.backend. @default the first backend's name */
  backendName?: string;
  /** Model names this worker declares it serves (WorkerJoined.models); empty = any. @default [] */
  models?: string[];
  /** Lane to try first; any free lane otherwise. */
  lane?: number;
  /** Heartbeat interval, ms; the controller learns it and evicts a worker silent for phi ≥ 8 and ≥ 500 ms. @default 100 */
  heartbeatIntervalMs?: number;
  /** Result cache entries (0 disables the cache). @default 10_000 */
  cacheMaxEntries?: number;
  /** Result cache bytes of outputs. @default 64 MiB */
  cacheMaxBytes?: number;
  /** Result cache time to live, ms. @default 300_000 */
  cacheTtlMs?: number;
  /** Models kept loaded (least recently used unloaded beyond). @default 16 */
  maxLoadedModels?: number;
  /** Longest a drain waits for in-flight work before giving up on queued work. @default 30_000 */
  drainTimeoutMs?: number;
  /** A drain ends once no decision for this worker arrived for this long (routers have seen the drain). @default 500 */
  drainQuietMs?: number;
  /**
   * Results are written only on a view of `control` at most this old (else control is read to its
   * end first): a worker frozen past its eviction writes nothing for work re-dispatched meanwhile.
   * Keep it below the controller's minimum silence (500 ms). @default 250
   */
  fenceMs?: number;
  /** Bytes of context kept per session (the newest inputs), handed over when the session migrates. @default 8192 */
  sessionContextBytes?: number;
  /** Sessions kept in memory (least recently used dropped beyond). @default 10000 */
  maxSessions?: number;
  /** Read decisions ahead of the committed position while earlier ones compute. @default true */
  readAhead?: boolean;
  /** Most decisions read ahead of the lane batch being processed. @default 1_000 */
  readAheadMaxRecords?: number;
  /** Poll interval of read-ahead when caught up, ms. @default 2 (embedded), 20 (kafka) */
  readAheadPollMs?: number;
  /** Device info instead of probing nvidia-smi / the CPU (tests). */
  accelerator?: Accelerator;
  /** Runs nvidia-smi (tests pass a fake). */
  runCommand?: CommandRunner;
  /** Told when the controller evicts this worker (it has stopped consuming its lane). */
  onEvicted?: (reason: string) => void;
}

export type ResolvedWorkerOptions = Required<Omit<WorkerOptions, 'workerId' | 'lane' | 'accelerator' | 'runCommand' | 'onEvicted' | 'readAheadPollMs' | 'maxConcurrentBatches'>> & { maxConcurrentBatches: number } &
  Pick<WorkerOptions, 'lane' | 'accelerator' | 'runCommand' | 'onEvicted'> & { workerId: string; readAheadPollMs: number | undefined };

const positiveInt = (name: string, v: number): number => {
  if (!Number.isInteger(v) || v < 1) throw new SwitchyardError('SY_ERR_CONFIG', `worker ${name} must be a positive integer, got ${v}`);
  return v;
};
const nonNegative = (name: string, v: number): number => {
  if (!Number.isFinite(v) || v < 0) throw new SwitchyardError('SY_ERR_CONFIG', `worker ${name} must be a non-negative number, got ${v}`);
  return v;
};

/** Fully defaulted, validated options (fails fast with SY_ERR_CONFIG). */
export function resolveWorkerOptions(o: WorkerOptions, randomId: () => string): ResolvedWorkerOptions {
  if (o.blobStore === undefined) throw new SwitchyardError('SY_ERR_CONFIG', 'a worker needs a blob store');
  const backends = o.backends ?? [new BuiltinBackend(), new SyntheticBackend()];
  if (backends.length === 0) throw new SwitchyardError('SY_ERR_CONFIG', 'a worker needs at least one backend');
  const workerId = o.workerId ?? randomId();
  if (!/^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/.test(workerId)) throw new SwitchyardError('SY_ERR_CONFIG', `worker id "${workerId}" must be 1–128 letters, digits, . _ : -`);
  if (o.lane !== undefined && (!Number.isInteger(o.lane) || o.lane < 0)) throw new SwitchyardError('SY_ERR_CONFIG', `lane must be a non-negative integer, got ${o.lane}`);
  return {
    blobStore: o.blobStore,
    workerId,
    zone: o.zone ?? 'default',
    capacity: positiveInt('capacity', o.capacity ?? 4),
    maxBatchSize: positiveInt('maxBatchSize', o.maxBatchSize ?? 4),
    maxBatchDelayMs: nonNegative('maxBatchDelayMs', o.maxBatchDelayMs ?? 0),
    maxConcurrentBatches: positiveInt('maxConcurrentBatches', o.maxConcurrentBatches ?? Math.ceil((o.capacity ?? 4) / (o.maxBatchSize ?? 4))),
    backends,
    backendName: o.backendName ?? backends[0]!.name,
    models: o.models ?? [],
    lane: o.lane,
    heartbeatIntervalMs: positiveInt('heartbeatIntervalMs', o.heartbeatIntervalMs ?? 100),
    cacheMaxEntries: nonNegative('cacheMaxEntries', o.cacheMaxEntries ?? 10_000),
    cacheMaxBytes: positiveInt('cacheMaxBytes', o.cacheMaxBytes ?? 64 * 1024 * 1024),
    cacheTtlMs: positiveInt('cacheTtlMs', o.cacheTtlMs ?? 300_000),
    maxLoadedModels: positiveInt('maxLoadedModels', o.maxLoadedModels ?? 16),
    drainTimeoutMs: nonNegative('drainTimeoutMs', o.drainTimeoutMs ?? 30_000),
    drainQuietMs: nonNegative('drainQuietMs', o.drainQuietMs ?? 500),
    fenceMs: nonNegative('fenceMs', o.fenceMs ?? 250),
    sessionContextBytes: nonNegative('sessionContextBytes', o.sessionContextBytes ?? 8192),
    maxSessions: positiveInt('maxSessions', o.maxSessions ?? 10_000),
    readAhead: o.readAhead ?? true,
    readAheadMaxRecords: positiveInt('readAheadMaxRecords', o.readAheadMaxRecords ?? 1_000),
    readAheadPollMs: o.readAheadPollMs === undefined ? undefined : positiveInt('readAheadPollMs', o.readAheadPollMs),
    accelerator: o.accelerator,
    runCommand: o.runCommand,
    onEvicted: o.onEvicted,
  };
}
