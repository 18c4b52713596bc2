import { SwitchyardError } from '../../errors.js';
import { createLogger, type Logger } from '../../logger.js';
import type { Batch } from '../port.js';
import type { FsyncPolicy } from './partition.js';

/** Source of record timestamps (ms). Injected so tests and replays control time. */
export interface Clock {
  now: () => number;
}

/** What a consumer was doing when an error happened (see `onConsumerError`). */
export interface ConsumerErrorContext {
  groupId: string;
  topic: string;
  partition: number;
  /** `onBatch` rejected (the batch will be redelivered), a read failed, or a commit failed. */
  stage: 'onBatch' | 'read' | 'commit';
  /** Delivery attempts of this batch so far (1 = the first failed). */
  attempt: number;
  batch?: Batch;
}

/** Options of `openEmbeddedLog`. */
export interface EmbeddedLogOptions {
  /** Directory of the log; created when missing. @default '.switchyard/log' */
  dir?: string;
  /**
   * When an append is durable before `append` resolves (and before consumers see it):
   * - `'always'`: each flush is fsynced; a flush starts as soon as the event loop turns, so
   *   concurrent appends still share one write and one fsync.
   * - `'interval'`: group commit — at most one flush (write + fsync) per partition every
   *   `fsyncIntervalMs`; appends wait for the flush that covers them.
   * - `'never'`: written to the OS without fsync (tests and benchmarks; a machine crash
   *   may lose acknowledged appends, a process crash does not).
   * @default 'interval'
   */
  fsync?: FsyncPolicy;
  /** Least time between the starts of two flushes of a partition under `'interval'`, in ms. @default 5 */
  fsyncIntervalMs?: number;
  /** Size at which a partition rolls to a new segment file, in bytes. @default 67_108_864 (64 MiB) */
  segmentBytes?: number;
  /** Bytes of records between two entries of a segment's sparse offset index (the first record of a segment is always indexed). @default 4096 */
  indexIntervalBytes?: number;
  /**
   * Bytes of recently flushed records kept in memory per partition, so consumers that keep up
   * read without I/O; 0 turns the cache off. @default 4_194_304 (4 MiB)
   */
  tailCacheBytes?: number;
  /**
   * Longest a partition's tail cache keeps a block whose newest record is older than this, ms:
   * a consumer that keeps up reads records seconds old, and without an age bound a partition
   * written slowly (heartbeats) would fill its `tailCacheBytes` over an hour, memory growing all
   * that time. Ten seconds covers a consumer that keeps up, with room for a pause; one further
   * behind reads from the segment files (the page cache). At 300 req/s the tail caches of
   * `switchyard up` held ~78 MiB at 60 s and hold ~13 MiB at 10 s. Checked as records are added.
   * @default 10_000
   */
  tailCacheMaxAgeMs?: number;
  /** Largest framed record (key + value + headers + 36 bytes) accepted by `append`. @default 8_388_608 (8 MiB) */
  maxRecordBytes?: number;
  /** Clock for record timestamps and retention. @default { now: Date.now } */
  clock?: Clock;
  /** Recovery, retention, compaction and consumer errors are logged here. @default a pino logger on stderr at level warn */
  logger?: Logger;
  /**
   * Called when a consumer's `onBatch` rejects (the batch is then redelivered after a
   * backoff), or a consumer's read or commit fails. Errors are logged either way.
   */
  onConsumerError?: (err: unknown, context: ConsumerErrorContext) => void;
  /** First redelivery delay after `onBatch` rejects, in ms; doubles per attempt. @default 100 */
  retryBackoffMs?: number;
  /** Longest redelivery delay, in ms. @default 5_000 */
  retryBackoffMaxMs?: number;
  /** How long a tombstone survives compaction on a compacted topic, in ms. @default 86_400_000 (1 day) */
  deleteRetentionMs?: number;
  /**
   * Size budget per partition of the topics that expire records (a `retentionMs` ≥ 0): past it,
   * closed segments are deleted oldest first (the active segment never is, so a partition can
   * reach this plus one segment). Topics kept forever and compacted topics are not trimmed by
   * size. -1 = none. @default -1
   */
  retentionBytes?: number;
  /**
   * Time budget of the topics that expire records: a topic's `retentionMs` above it is lowered
   * to it. -1 = each topic's own. @default -1
   */
  maxRetentionMs?: number;
  /**
   * Period of the background retention and compaction pass, in ms. Besides, a partition is
   * maintained right after it rolls a segment. 0 turns background maintenance off: only
   * `compact()` and `applyRetention()` do it. @default 60_000
   */
  maintenanceIntervalMs?: number;
  /**
   * Make flushes durable through one commit journal (`journal.ts`) instead of an fsync of each
   * partition's segment file: concurrent flushes of any partitions share one fdatasync, and the
   * segment files are fsynced together at the journal's checkpoints. Same guarantees either
   * way; only matters when `fsync` is not `'never'`. @default true
   */
  journal?: boolean;
  /** Journal bytes after which its checkpoint runs. @default 16_777_216 (16 MiB) */
  journalCheckpointBytes?: number;
  /**
   * Longest time from a journal write to the next checkpoint, ms: bounds how long segment files
   * stay unsynced when little is written (the journal's files are zero-filled ahead of their
   * writes, so a checkpoint's new file costs a fill). @default 60_000
   */
  journalCheckpointMs?: number;
}

export type ResolvedEmbeddedLogOptions = Required<Omit<EmbeddedLogOptions, 'onConsumerError'>> & Pick<EmbeddedLogOptions, 'onConsumerError'>;

const MiB = 1024 * 1024;
const FSYNC: readonly FsyncPolicy[] = ['always', 'interval', 'never'];

function check(ok: boolean, message: string): void {
  if (!ok) throw new SwitchyardError('SY_ERR_CONFIG', `embedded log: ${message}`);
}

const isInt = (v: unknown, min: number, max: number): boolean => Number.isSafeInteger(v) && (v as number) >= min && (v as number) <= max;

/** Applies defaults and validates every option (fail fast, at construction). */
export function resolveEmbeddedLogOptions({
  dir = '.switchyard/log',
  fsync = 'interval',
  fsyncIntervalMs = 5,
  segmentBytes = 64 * MiB,
  indexIntervalBytes = 4096,
  tailCacheBytes = 4 * MiB,
  tailCacheMaxAgeMs = 10_000,
  maxRecordBytes = 8 * MiB,
  clock = { now: Date.now },
  logger,
  onConsumerError,
  retryBackoffMs = 100,
  retryBackoffMaxMs = 5_000,
  deleteRetentionMs = 86_400_000,
  retentionBytes = -1,
  maxRetentionMs = -1,
  maintenanceIntervalMs = 60_000,
  journal = true,
  journalCheckpointBytes = 16 * MiB,
  journalCheckpointMs = 60_000,
}: EmbeddedLogOptions = {}): ResolvedEmbeddedLogOptions {
  check(typeof dir === 'string' && dir.length > 0, `dir must be a non-empty path, got ${String(dir)}`);
  check(FSYNC.includes(fsync), `fsync must be one of ${FSYNC.join(', ')}, got ${String(fsync)}`);
  check(isInt(fsyncIntervalMs, 0, 60_000), `fsyncIntervalMs must be an integer in 0..60000, got ${fsyncIntervalMs}`);
  check(isInt(segmentBytes, 1024, 1024 * MiB), `segmentBytes must be an integer in 1 KiB..1 GiB, got ${segmentBytes}`);
  check(isInt(indexIntervalBytes, 1, 1024 * MiB), `indexIntervalBytes must be an integer in 1..1 GiB, got ${indexIntervalBytes}`);
  check(isInt(tailCacheBytes, 0, 1024 * MiB), `tailCacheBytes must be an integer in 0..1 GiB, got ${tailCacheBytes}`);
  check(isInt(tailCacheMaxAgeMs, 0, 86_400_000), `tailCacheMaxAgeMs must be an integer in 0..86400000, got ${tailCacheMaxAgeMs}`);
  check(isInt(maxRecordBytes, 64, 1024 * MiB), `maxRecordBytes must be an integer in 64..1 GiB, got ${maxRecordBytes}`);
  check(typeof clock?.now === 'function', 'clock must have a now() function');
  check(onConsumerError === undefined || typeof onConsumerError === 'function', 'onConsumerError must be a function');
  check(isInt(retryBackoffMs, 0, 3_600_000), `retryBackoffMs must be an integer in 0..3600000, got ${retryBackoffMs}`);
  check(isInt(retryBackoffMaxMs, retryBackoffMs, 3_600_000), `retryBackoffMaxMs must be an integer ≥ retryBackoffMs, got ${retryBackoffMaxMs}`);
  check(isInt(deleteRetentionMs, 0, Number.MAX_SAFE_INTEGER), `deleteRetentionMs must be a non-negative integer, got ${deleteRetentionMs}`);
  check(retentionBytes === -1 || isInt(retentionBytes, 0, Number.MAX_SAFE_INTEGER), `retentionBytes must be -1 or a non-negative integer, got ${retentionBytes}`);
  check(maxRetentionMs === -1 || isInt(maxRetentionMs, 0, Number.MAX_SAFE_INTEGER), `maxRetentionMs must be -1 or a non-negative integer, got ${maxRetentionMs}`);
  check(isInt(maintenanceIntervalMs, 0, 2 ** 31 - 1), `maintenanceIntervalMs must be a non-negative integer, got ${maintenanceIntervalMs}`);
  check(typeof journal === 'boolean', `journal must be a boolean, got ${String(journal)}`);
  check(isInt(journalCheckpointBytes, 4096, 1024 * MiB), `journalCheckpointBytes must be an integer in 4 KiB..1 GiB, got ${journalCheckpointBytes}`);
  check(isInt(journalCheckpointMs, 1, 3_600_000), `journalCheckpointMs must be an integer in 1..3600000, got ${journalCheckpointMs}`);
  return {
    dir,
    fsync,
    fsyncIntervalMs,
    segmentBytes,
    indexIntervalBytes,
    tailCacheBytes,
    tailCacheMaxAgeMs,
    maxRecordBytes,
    clock,
    logger: logger ?? createLogger('switchyard.log.embedded', 'warn'),
    onConsumerError,
    retryBackoffMs,
    retryBackoffMaxMs,
    deleteRetentionMs,
    retentionBytes,
    maxRetentionMs,
    maintenanceIntervalMs,
    journal,
    journalCheckpointBytes,
    journalCheckpointMs,
  };
}
