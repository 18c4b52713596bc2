import { mkdir, open, readdir, stat, unlink, type FileHandle } from 'node:fs/promises';
import { SwitchyardError } from '../../errors.js';
import type { Logger } from '../../logger.js';
import type { LogRecord } from '../port.js';
import { CleanedSegmentWriter, commitCleaning, recoverCleaning, syncDir } from './cleaner.js';
import { decodeFrame, frameIsTombstone, frameKey, frameOffset, frameSize, frameTimestamp, writeFrame, type FrameInput } from './frame.js';
import { FrameCursor, REFILL, scanFrames, Segment, SegmentRetired, writeFully } from './segment.js';
import { deferred } from '../../deferred.js';
import { TailCache } from './tail.js';
import type { ChunkPool } from './chunks.js';
import type { CommitJournal } from './journal.js';

/** When appends become durable (see `EmbeddedLogOptions.fsync`). */
export type FsyncPolicy = 'always' | 'interval' | 'never';

export interface PartitionConfig {
  /** Directory of this partition's segments. */
  dir: string;
  topic: string;
  partition: number;
  segmentBytes: number;
  indexIntervalBytes: number;
  /** Bytes of recently flushed frames kept in memory for tail reads; 0 = none. */
  tailCacheBytes: number;
  /** Blocks of the tail cache whose newest record is older than this are dropped, ms. */
  tailCacheMaxAgeMs: number;
  fsync: FsyncPolicy;
  fsyncIntervalMs: number;
  logger: Logger;
  /** Encode buffers, shared by the partitions of one log. */
  chunks: ChunkPool;
  /** Called (synchronously, after the fact) each time a segment is sealed. */
  onSealed?: () => void;
  /**
   * Appends do not wait for an fsync: a flush writes and makes its records visible at once,
   * and they are fsynced within `RELAXED_SYNC_MS` (`TopicSpec.durability: 'relaxed'`).
   * Only matters when `fsync` is not `never`. @default false
   */
  relaxed?: boolean;
  /**
   * A synced flush makes its records visible once they are written and queued in the commit
   * journal, before the journal's fsync, which its appends still wait for
   * (`TopicSpec.visibility: 'written'`). Only with a journal. @default false
   */
  visibleWhenWritten?: boolean;
  /**
   * The log's commit journal: flushes write their frames to it as well and wait for its
   * fsync instead of their segment file's, which is fsynced at the journal's checkpoints.
   */
  journal?: CommitJournal;
}

/** Longest a relaxed partition's written records wait for their fsync, ms. */
export const RELAXED_SYNC_MS = 50;

interface PendingPart {
  segment: Segment;
  chunks: Buffer[];
  bytes: number;
}

/** The records appended since the last flush, and the promise their appenders wait on. */
interface PendingBatch {
  parts: PendingPart[];
  toSeal: Segment[];
  endOffset: number;
  /** Holds a record that must be fsynced before the batch is visible (not relaxed). */
  sync: boolean;
  chunk: Buffer;
  /** Encode buffers from `cfg.chunks`, given back after the flush. */
  chunks: Buffer[];
  chunkStart: number;
  chunkUsed: number;
  promise: Promise<void>;
  resolve: () => void;
  reject: (err: unknown) => void;
}

export interface CompactionResult {
  /** Closed segments read and rewritten. */
  segments: number;
  recordsBefore: number;
  recordsAfter: number;
  bytesBefore: number;
  bytesAfter: number;
}

const EMPTY = Buffer.alloc(0);

/**
 * One topic-partition of the embedded log: a list of segments, the last of which is
 * active. Appends are framed synchronously into an in-memory batch (offsets assigned at
 * once, in call order) and written by one flush per batch — one `writev` (plus one
 * `datasync` unless fsync is `never`) covering every append since the previous flush.
 * A flush starts on the next turn of the event loop (`always`, `never`) or once
 * `fsyncIntervalMs` has passed since the previous one started (`interval`), so concurrent
 * appends share a write and an fsync (group commit).
 *
 * Readers see a record once its flush is done: the end offset moves after the write (and
 * its fsync), so nothing is consumed that a crash could take back (except under `never`).
 */
export class PartitionLog {
  readonly cfg: PartitionConfig;
  /** Copy-on-write: readers take the array as a snapshot. */
  private segments: Segment[] = [];
  /** Offset the next appended record gets. */
  private nextOffset = 0;
  /** End of the records written to the segment files (appended ones may still be pending). */
  private writtenEnd = 0;
  /** Offset after the last durable record: what readers may read. */
  private visibleEnd = 0;
  private pending: PendingBatch | undefined;
  private flushing: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private immediate: NodeJS.Immediate | undefined;
  private lastFlushStart = Number.NEGATIVE_INFINITY;
  private failure: SwitchyardError | undefined;
  private relaxed: boolean;
  /** Segments written by relaxed flushes and not fsynced yet. */
  private readonly unsynced = new Set<Segment>();
  private syncTimer: NodeJS.Timeout | undefined;
  /** The relaxed fsync in progress, if any (a seal or close waits for it). */
  private syncing: Promise<void> = Promise.resolve();
  private closed = false;
  private readonly waiters = new Set<() => void>();
  /** Recently flushed frames, contiguous in offsets up to visibleEnd (see `TailCache`). */
  private readonly tail: TailCache;
  /** The last range read from the tail cache (`readCached`): records in [from, end), at most `max`. */
  private lastRead: { from: number; end: number; max: number; records: LogRecord[] } | undefined;
  private maintenance: Promise<unknown> = Promise.resolve();

  private constructor(cfg: PartitionConfig) {
    this.cfg = cfg;
    this.tail = new TailCache(cfg.tailCacheBytes, cfg.tailCacheMaxAgeMs);
    this.relaxed = cfg.relaxed === true;
  }

  get name(): string {
    return `${this.cfg.topic}/${this.cfg.partition}`;
  }

  /** First retained offset. */
  get startOffset(): number {
    return this.segments[0]!.baseOffset;
  }

  /** Offset after the last record readers can see. */
  get endOffset(): number {
    return this.visibleEnd;
  }

  private get active(): Segment {
    return this.segments[this.segments.length - 1]!;
  }

  /** Opens (creating when missing) the partition directory and recovers its segments. */
  static async open(cfg: PartitionConfig): Promise<PartitionLog> {
    const log = new PartitionLog(cfg);
    await mkdir(cfg.dir, { recursive: true });
    await recoverCleaning(cfg.dir, cfg.logger, cfg.fsync !== 'never');
    await log.recover();
    return log;
  }

  private async recover(): Promise<void> {
    const { dir, logger } = this.cfg;
    const names = await readdir(dir);
    const bases = names
      .filter((n) => /^\d{20}\.log$/.test(n))
      .map((n) => Number(n.slice(0, 20)))
      .sort((a, b) => a - b);
    for (const n of names) {
      if (/^\d{20}\.index$/.test(n) && !bases.includes(Number(n.slice(0, 20)))) await unlink(`${dir}/${n}`).catch(() => {});
    }
    if (bases.length === 0) {
      this.segments = [new Segment(dir, 0, this.cfg.indexIntervalBytes)];
      return;
    }
    const segments: Segment[] = [];
    for (let i = 0; i < bases.length; i++) {
      const seg = new Segment(dir, bases[i]!, this.cfg.indexIntervalBytes);
      seg.fileCreated = true;
      seg.size = (await stat(seg.path)).size;
      const isActive = i === bases.length - 1;
      if (!isActive && (await seg.loadIndex())) {
        seg.pendingSize = seg.size;
        seg.sealed = true;
        segments.push(seg);
        continue;
      }
      // Active segment, or a closed one whose index is missing or stale: rebuild by scanning.
      const handle = await open(seg.path, 'r+');
      try {
        seg.resetIndex();
        const scan = await scanFrames(handle, 0, seg.size, seg.baseOffset, (block, at, filePos) => {
          seg.noteFrame(frameOffset(block, at), filePos, frameTimestamp(block, at));
        });
        if (scan.problem !== undefined) {
          const detail = {
            topic: this.cfg.topic,
            partition: this.cfg.partition,
            segment: seg.path,
            validBytes: scan.validBytes,
            truncatedBytes: seg.size - scan.validBytes,
            problem: scan.problem,
            lastGoodOffset: seg.lastOffset,
          };
          if (isActive) logger.warn(detail, 'embedded log: truncating a torn or corrupt tail of the active segment');
          else logger.error(detail, 'embedded log: closed segment is corrupt; truncating it at the first bad record');
          await handle.truncate(scan.validBytes);
          if (this.cfg.fsync !== 'never') await handle.datasync();
          seg.size = scan.validBytes;
        }
      } finally {
        await handle.close();
      }
      seg.pendingSize = seg.size;
      if (!isActive) {
        seg.sealed = true;
        await seg.writeIndex();
      }
      segments.push(seg);
    }
    this.segments = segments;
    // A closed segment cut short above may leave a gap before the next one; offsets are
    // never reused, so appends continue after the active segment.
    this.nextOffset = this.active.nextOffset;
    this.visibleEnd = this.nextOffset;
    this.writtenEnd = this.nextOffset;
  }

  /**
   * On open, before any append: removes every record at or past `end` — whole segment files
   * past it, the one holding it truncated at its frame — and recovers again. For the journal's
   * consistent prefix: records the kernel wrote back to a segment file ahead of the journal.
   * The end afterwards is `end`, or the first segment's base when that is past it.
   */
  async cutTo(end: number): Promise<void> {
    if (this.nextOffset <= end) return;
    const { dir } = this.cfg;
    for (let i = this.segments.length - 1; i >= 0; i--) {
      const seg = this.segments[i]!;
      await unlink(seg.indexPath).catch(() => {});
      if (seg.baseOffset >= end && i > 0) {
        await unlink(seg.path);
        continue;
      }
      const handle = await open(seg.path, 'r+');
      try {
        let cut = -1;
        await scanFrames(handle, 0, seg.size, seg.baseOffset, (block, at, filePos) => {
          if (cut < 0 && frameOffset(block, at) >= end) cut = filePos;
        });
        if (cut >= 0) {
          await handle.truncate(cut);
          await handle.datasync();
        }
      } finally {
        await handle.close();
      }
      break;
    }
    await syncDir(dir);
    await this.recover();
    if (this.nextOffset < end) {
      // The records just below `end` were compacted away: an empty segment at `end` keeps
      // their offsets from being used again.
      await (await open(new Segment(dir, end, this.cfg.indexIntervalBytes).path, 'w')).close();
      await syncDir(dir);
      await this.recover();
    }
  }

  /** Fails fast with the partition's I/O failure or closed state. */
  assertWritable(): void {
    if (this.failure !== undefined) throw this.failure;
    if (this.closed) throw new SwitchyardError('SY_ERR_LOG_CLOSED', `partition ${this.name} is closed`);
  }

  /**
   * Frames one record into the pending batch and returns its offset. Synchronous: call it
   * for every record of an append, then `durable()` once.
   */
  append(record: FrameInput, relaxed = false): number {
    this.assertWritable();
    const size = frameSize(record);
    let seg = this.active;
    const batch = this.pending ?? this.newBatch();
    if (seg.pendingSize > 0 && seg.pendingSize + size > this.cfg.segmentBytes) seg = this.roll(batch);
    let part = batch.parts[batch.parts.length - 1];
    if (part === undefined || part.segment !== seg) {
      this.closeChunk(batch);
      part = { segment: seg, chunks: [], bytes: 0 };
      batch.parts.push(part);
    }
    if (batch.chunk.length - batch.chunkUsed < size) {
      this.closeChunk(batch);
      if (size <= this.cfg.chunks.chunkBytes) {
        batch.chunk = this.cfg.chunks.take();
        batch.chunks.push(batch.chunk);
      } else batch.chunk = Buffer.allocUnsafeSlow(size);
      batch.chunkStart = 0;
      batch.chunkUsed = 0;
    }
    const offset = this.nextOffset++;
    const position = seg.pendingSize;
    writeFrame(batch.chunk, batch.chunkUsed, offset, record, size);
    batch.chunkUsed += size;
    part.bytes += size;
    seg.pendingSize += size;
    seg.noteFrame(offset, position, record.timestamp);
    batch.endOffset = offset + 1;
    if (!relaxed && !this.relaxed) batch.sync = true;
    return offset;
  }

  /** Resolves once every record appended so far is written (and synced, per policy). */
  durable(): Promise<void> {
    const batch = this.pending;
    if (batch === undefined) {
      if (this.failure !== undefined) return Promise.reject(this.failure);
      return this.flushing ?? Promise.resolve();
    }
    this.schedule();
    return batch.promise;
  }

  private newBatch(): PendingBatch {
    // Appenders await the promise; an unobserved failure is not an unhandled rejection.
    const { promise, resolve, reject } = deferred();
    const batch: PendingBatch = { parts: [], toSeal: [], endOffset: this.nextOffset, sync: false, chunk: EMPTY, chunks: [], chunkStart: 0, chunkUsed: 0, promise, resolve, reject };
    this.pending = batch;
    return batch;
  }

  /** Moves the used part of the current encode buffer into the current part's write list. */
  private closeChunk(batch: PendingBatch): void {
    if (batch.chunkUsed > batch.chunkStart) {
      const part = batch.parts[batch.parts.length - 1]!;
      part.chunks.push(batch.chunk.subarray(batch.chunkStart, batch.chunkUsed));
      batch.chunkStart = batch.chunkUsed;
    }
  }

  private roll(batch: PendingBatch): Segment {
    const old = this.active;
    const seg = new Segment(this.cfg.dir, this.nextOffset, this.cfg.indexIntervalBytes);
    this.segments = [...this.segments, seg];
    batch.toSeal.push(old);
    return seg;
  }

  private schedule(): void {
    if (this.flushing !== undefined || this.timer !== undefined || this.immediate !== undefined || this.pending === undefined) return;
    if (this.cfg.fsync === 'interval' && !this.closed) {
      const wait = this.lastFlushStart + this.cfg.fsyncIntervalMs - performance.now();
      if (wait > 0) {
        this.timer = setTimeout(() => {
          this.timer = undefined;
          this.startFlush();
        }, wait);
        return;
      }
    }
    this.immediate = setImmediate(() => {
      this.immediate = undefined;
      this.startFlush();
    });
  }

  private startFlush(): void {
    if (this.flushing !== undefined || this.pending === undefined) return;
    this.flushing = this.flush().finally(() => {
      this.flushing = undefined;
      this.schedule();
    });
  }

  private async flush(): Promise<void> {
    const batch = this.pending!;
    this.pending = undefined;
    this.closeChunk(batch);
    this.lastFlushStart = performance.now();
    const syncing = this.cfg.fsync !== 'never';
    const sync = syncing && batch.sync;
    try {
      if (this.failure !== undefined) throw this.failure;
      const journal = syncing ? this.cfg.journal : undefined;
      let journalled: Buffer[] | undefined;
      let journalledBytes = 0;
      for (const part of batch.parts) {
        const seg = part.segment;
        const handle = await this.writable(seg);
        await writeFully(handle, part.chunks, seg.size);
        if (journal !== undefined) {
          // Durable through the journal; the segment file is fsynced at its checkpoint.
          (journalled ??= []).push(...part.chunks);
          journalledBytes += part.bytes;
          this.unsynced.add(seg);
        } else if (sync) {
          await handle.datasync();
          this.unsynced.delete(seg); // earlier relaxed writes to it are on disk now too
        } else if (syncing) this.unsynced.add(seg);
        seg.size += part.bytes;
      }
      this.writtenEnd = batch.endOffset;
      // Relaxed frames go to the journal too (without waiting), so a machine crash cannot
      // leave a gap below a synced record of the same partition.
      let visible = false;
      if (journalled !== undefined) {
        const committed = journal!.commit(this.cfg.topic, this.cfg.partition, journalled, journalledBytes, sync);
        // Queued in the journal now: anything appended from here on is journaled after these
        // frames, so no later record can be durable without them. Consumers may see them before
        // their fsync (`visibleWhenWritten`); the appends still wait for it. Not across a roll:
        // a sealed segment is fsynced and closed first.
        if (sync && this.cfg.visibleWhenWritten === true && batch.toSeal.length === 0) {
          this.publish(batch);
          visible = true;
        }
        await committed;
      }
      for (const seg of batch.toSeal) {
        // A segment is on disk before its handle closes, relaxed or not. In the fsync chain, so
        // that a journal checkpoint (`syncWritten`) waits for it too.
        await this.chainSync(() => (this.unsynced.delete(seg) ? [seg] : []));
        if (this.failure !== undefined) throw this.failure;
        await this.seal(seg);
      }
      if (journal === undefined && this.unsynced.size > 0) this.scheduleRelaxedSync();
      // A rolled-to segment with no records yet still needs its file, for recovery.
      const active = this.active;
      if (!active.fileCreated) await this.writable(active);
      batch.resolve();
      if (!visible) this.publish(batch);
    } catch (err) {
      this.failure ??= new SwitchyardError('SY_ERR_LOG_IO', `writing ${this.name} failed; the partition refuses appends until the log is reopened`, {
        cause: err,
        detail: { topic: this.cfg.topic, partition: this.cfg.partition },
      });
      this.cfg.logger.error({ err, topic: this.cfg.topic, partition: this.cfg.partition }, 'embedded log: append flush failed');
      batch.reject(this.failure);
      const next = this.pending as PendingBatch | undefined;
      if (next !== undefined) {
        this.pending = undefined;
        next.reject(this.failure);
      }
    } finally {
      for (const chunk of batch.chunks) this.cfg.chunks.give(chunk);
    }
  }

  /** Writes through `journal` from now on (after its entries were replayed into this partition). */
  useJournal(journal: CommitJournal): void {
    this.cfg.journal = journal;
  }

  /** End of the records written to the segment files: what a journal checkpoint's segment fsyncs cover. */
  get writtenEndOffset(): number {
    return this.writtenEnd;
  }

  /**
   * Fsyncs the segment files written since their last fsync (a journal checkpoint, or the open's
   * base); rejects when any of them failed, so that the journal that holds their records stays.
   */
  async syncWritten(): Promise<void> {
    await (this.unsynced.size === 0 ? this.syncing : this.syncRelaxed());
    if (this.failure !== undefined) throw this.failure;
  }

  /**
   * On open, after a crash: fsyncs the active segment file, whose tail may be in the page cache
   * only (written before the crash, never fsynced), before a journal base names it as durable.
   * Closed segments were fsynced before they were sealed.
   */
  async syncActive(): Promise<void> {
    const seg = this.active;
    if (!seg.fileCreated) return;
    const handle = await open(seg.path, 'r+');
    try {
      await handle.datasync();
    } finally {
      await handle.close();
    }
  }

  /**
   * Appends again the frames of a journal entry that a crash took from this partition's
   * segments: those at or past the end, at the offsets they had. Returns how many were
   * appended, or the offset of a frame that would leave a gap (which is not appended).
   */
  replay(records: Iterable<[number, FrameInput]>): { appended: number; gapAt?: number } {
    let appended = 0;
    for (const [offset, record] of records) {
      if (offset < this.nextOffset) continue;
      if (offset > this.nextOffset) return { appended, gapAt: offset };
      this.append(record);
      appended++;
    }
    return { appended };
  }

  /** Makes a flushed batch readable: into the tail cache, up to its end, and its waiting consumers woken. */
  private publish(batch: PendingBatch): void {
    this.remember(batch);
    this.visibleEnd = batch.endOffset;
    this.notify();
  }

  /** Whether synced records are visible once written, before their fsync (TopicSpec.visibility); takes effect from the next flush. */
  setVisibleWhenWritten(visibleWhenWritten: boolean): void {
    this.cfg.visibleWhenWritten = visibleWhenWritten;
  }

  /** Switches the partition between relaxed and synced appends (TopicSpec.durability). */
  setRelaxed(relaxed: boolean): void {
    this.relaxed = relaxed;
    if (!relaxed && this.unsynced.size > 0) void this.syncRelaxed();
  }

  private scheduleRelaxedSync(): void {
    if (this.syncTimer !== undefined || this.closed) return;
    this.syncTimer = setTimeout(() => {
      this.syncTimer = undefined;
      void this.syncRelaxed();
    }, RELAXED_SYNC_MS);
  }

  /** Fsyncs what relaxed flushes wrote; a failure fails the partition like a failed flush. */
  private syncRelaxed(): Promise<void> {
    return this.chainSync(() => {
      const segs = [...this.unsynced];
      this.unsynced.clear();
      return segs;
    });
  }

  /**
   * Fsyncs the segments `take` picks when the fsyncs before it are done: one chain, which a
   * journal checkpoint waits on. Never rejects; a failure fails the partition.
   */
  private chainSync(take: () => Segment[]): Promise<void> {
    const run = this.syncing.then(async () => {
      try {
        for (const seg of take()) await seg.writeHandle?.datasync();
      } catch (err) {
        this.failure ??= new SwitchyardError('SY_ERR_LOG_IO', `syncing ${this.name} failed; the partition refuses appends until the log is reopened`, {
          cause: err,
          detail: { topic: this.cfg.topic, partition: this.cfg.partition },
        });
        this.cfg.logger.error({ err, topic: this.cfg.topic, partition: this.cfg.partition }, 'embedded log: segment fsync failed');
      }
    });
    this.syncing = run;
    return run;
  }

  /** Keeps a copy of a flushed batch's frames in the tail cache, dropping the oldest past its size. */
  private remember(batch: PendingBatch): void {
    if (this.tail.capacity === 0) return;
    const now = performance.now();
    for (const part of batch.parts) this.tail.add(part.chunks, now);
  }

  private async writable(seg: Segment): Promise<FileHandle> {
    if (seg.writeHandle !== undefined) return seg.writeHandle;
    const handle = await open(seg.path, seg.fileCreated ? 'r+' : 'w+');
    const created = !seg.fileCreated;
    seg.writeHandle = handle;
    seg.fileCreated = true;
    if (created && this.cfg.fsync !== 'never') await syncDir(this.cfg.dir);
    return handle;
  }

  private async seal(seg: Segment): Promise<void> {
    seg.pendingSize = seg.size;
    await seg.writeIndex();
    const handle = seg.writeHandle;
    seg.writeHandle = undefined;
    await handle?.close();
    seg.sealed = true;
    this.cfg.onSealed?.();
  }

  private notify(): void {
    if (this.waiters.size === 0) return;
    const woken = [...this.waiters];
    this.waiters.clear();
    for (const wake of woken) wake();
  }

  /**
   * Calls `wake` (once) when the end offset moves past `offset` or the partition closes; at once
   * when it already has. The same function may wait again after it is called; `unwait` forgets it.
   * A consumer passes one function for all its waits, so a wait allocates nothing here.
   */
  whenReadable(offset: number, wake: () => void): void {
    if (this.visibleEnd > offset || this.closed) wake();
    else this.waiters.add(wake);
  }

  /** Forgets a `whenReadable` wait that has not been woken. */
  unwait(wake: () => void): void {
    this.waiters.delete(wake);
  }

  /**
   * `read` without a promise when the tail cache holds the whole range (the steady state of a
   * consumer that keeps up): the records, or undefined when the disk must be read.
   */
  readCached(from: number, to: number, max: number): LogRecord[] | undefined {
    const end = Math.min(to, this.visibleEnd);
    if (from >= end || max <= 0) return [];
    // Every consumer of a partition is woken by the same flush and asks for the same range: the
    // first read's records are handed to the rest (the same objects, so a codec can decode each
    // once, see `EventCodec.shared`), instead of one copy and one set of records per consumer.
    const last = this.lastRead;
    if (last !== undefined && last.from === from && last.end === end && (last.records.length < last.max || max <= last.records.length)) {
      return last.records.slice(0, max);
    }
    const out: LogRecord[] = [];
    if (!this.tail.read(from, end, max, out, this.cfg.topic, this.cfg.partition)) return undefined;
    this.lastRead = { from, end, max, records: out };
    return out.slice();
  }

  /**
   * Records with offsets in [from, min(to, end offset)), at most `max`, in order. Offsets
   * may have gaps (compaction); `from` below the start offset reads from the start.
   */
  async read(from: number, to: number, max: number): Promise<LogRecord[]> {
    const cached = this.readCached(from, to, max);
    if (cached !== undefined) return cached;
    const out: LogRecord[] = [];
    const end = Math.min(to, this.visibleEnd);
    let next = from;
    for (let fruitless = 0; next < end && max > 0; ) {
      try {
        await this.readSnapshot(this.segments, next, end, max, out);
        break;
      } catch (err) {
        // A segment left the log under us (retention, compaction): go on from the last
        // record read, on a fresh view of the segments.
        if (!(err instanceof SegmentRetired)) throw err;
        const last = out[out.length - 1];
        const progressed = last !== undefined && last.offset + 1 > next;
        if (progressed) next = last.offset + 1;
        fruitless = progressed ? 0 : fruitless + 1;
        if (fruitless > 8) {
          throw new SwitchyardError('SY_ERR_LOG_IO', `read of ${this.name} kept losing its segments to maintenance`, { retriable: true, cause: err });
        }
      }
    }
    return out;
  }

  private async readSnapshot(segs: Segment[], from: number, end: number, max: number, out: LogRecord[]): Promise<void> {
    for (let i = findSegment(segs, from); i < segs.length && out.length < max; i++) {
      const seg = segs[i]!;
      if (seg.baseOffset >= end) break;
      if (seg.size === 0) continue;
      seg.acquire();
      try {
        if (await this.readSegment(seg, from, end, max, out)) break;
      } finally {
        seg.release();
      }
    }
  }

  /**
   * Appends records of one segment in [from, end) to `out`; true once `end` or `max` is
   * reached. The frames returned from one read block are contiguous, so they are copied out
   * of the (reused) block with one allocation and one copy, and the records are views into
   * that copy: a record kept for long holds only the bytes of the records read with it.
   */
  private async readSegment(seg: Segment, from: number, end: number, max: number, out: LogRecord[]): Promise<boolean> {
    const { topic, partition } = this.cfg;
    const cursor = new FrameCursor(await seg.reader(), seg.lookup(from), seg.size, seg.sealed);
    const run: number[] = [];
    let runEnd = 0;
    const takeRun = (): void => {
      if (run.length === 0) return;
      const start = run[0]!;
      const slab = Buffer.allocUnsafe(runEnd - start);
      cursor.block.copy(slab, 0, start, runEnd);
      for (const at of run) out.push(decodeFrame(slab, at - start, topic, partition));
      run.length = 0;
    };
    try {
      for (;;) {
        let r = cursor.next();
        if (r === REFILL) {
          takeRun();
          await cursor.refill();
          r = cursor.next();
        }
        if (r === null) {
          takeRun();
          return false;
        }
        if (typeof r !== 'number') {
          throw new SwitchyardError('SY_ERR_LOG_CORRUPT', `corrupt record in ${seg.path} at byte ${cursor.pos}: ${r}`, {
            detail: { topic, partition, segment: seg.path, position: cursor.pos, problem: r },
          });
        }
        const offset = frameOffset(cursor.block, cursor.at);
        if (offset >= end) {
          takeRun();
          return true;
        }
        if (offset < from) continue;
        run.push(cursor.at);
        runEnd = cursor.at + r;
        if (out.length + run.length >= max) {
          takeRun();
          return true;
        }
      }
    } finally {
      cursor.release();
    }
  }

  /** Waits for pending appends, then closes the files. Appends after this fail. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    while (this.pending !== undefined || this.flushing !== undefined) {
      if (this.flushing === undefined) this.startFlush();
      await this.flushing?.catch(() => {});
    }
    if (this.immediate !== undefined) {
      clearImmediate(this.immediate);
      this.immediate = undefined;
    }
    if (this.syncTimer !== undefined) {
      clearTimeout(this.syncTimer);
      this.syncTimer = undefined;
    }
    await this.syncRelaxed();
    await this.maintenance.catch(() => {});
    this.notify();
    await Promise.all(this.segments.map((s) => s.closeHandles()));
  }

  /** Runs `task` after every earlier maintenance task (compaction, retention) of this partition. */
  private serially<T>(task: () => Promise<T>): Promise<T> {
    const run = this.maintenance.then(task, task);
    this.maintenance = run.catch(() => {});
    return run;
  }

  /** Sealed segments before the active one, in order. */
  private closedSegments(): Segment[] {
    const segs = this.segments;
    const closed: Segment[] = [];
    for (let i = 0; i < segs.length - 1 && segs[i]!.sealed; i++) closed.push(segs[i]!);
    return closed;
  }

  /**
   * Deletes closed segments from the front while they are older than `retentionMs` (by
   * their newest record) or the partition is over `retentionBytes`. The start offset moves
   * to the first remaining segment. Returns the number of segments deleted.
   */
  applyRetention(now: number, retentionMs: number, retentionBytes: number): Promise<number> {
    return this.serially(async () => {
      if (this.closed) return 0;
      const closed = this.closedSegments();
      let total = this.segments.reduce((n, s) => n + s.size, 0);
      let drop = 0;
      for (const seg of closed) {
        const expired = retentionMs >= 0 && seg.maxTimestamp < now - retentionMs;
        const oversize = retentionBytes >= 0 && total > retentionBytes;
        if (!expired && !oversize) break;
        total -= seg.size;
        drop++;
      }
      if (drop === 0) return 0;
      const dropped = closed.slice(0, drop);
      this.segments = this.segments.slice(drop);
      this.cfg.logger.info(
        { topic: this.cfg.topic, partition: this.cfg.partition, segments: drop, startOffset: this.startOffset },
        'embedded log: retention deleted segments',
      );
      for (const seg of dropped) {
        seg.retire();
        await unlink(seg.path).catch(() => {});
        await unlink(seg.indexPath).catch(() => {});
      }
      return drop;
    });
  }

  /**
   * Compacts the closed segments: keeps only the latest record of each key (looking at
   * the whole partition, active segment included), and drops tombstones that are the latest
   * for their key and older than `deleteRetentionMs`. Records keep their offsets, so the
   * partition has gaps afterwards; start and end offsets do not change.
   */
  compact(now: number, deleteRetentionMs: number): Promise<CompactionResult> {
    return this.serially(async () => {
      const result: CompactionResult = { segments: 0, recordsBefore: 0, recordsAfter: 0, bytesBefore: 0, bytesAfter: 0 };
      if (this.closed) return result;
      const closed = this.closedSegments();
      if (closed.length === 0) return result;
      const segs = this.segments;
      const end = this.visibleEnd;
      for (const seg of segs) seg.acquire();
      try {
        // Pass 1: the latest offset of every key, over the whole partition.
        const latest = new Map<string, number>();
        for (const seg of segs) {
          if (seg.size === 0) continue;
          await scanFrames(await seg.reader(), 0, seg.size, seg.baseOffset, (block, at) => {
            const offset = frameOffset(block, at);
            const key = frameKey(block, at);
            if (key !== null && offset < end) latest.set(key.toString('latin1'), offset);
          });
        }
        // Pass 2: which frames of the closed segments survive.
        const keep = (block: Buffer, at: number): boolean => {
          const key = frameKey(block, at);
          if (key === null) return true;
          if (latest.get(key.toString('latin1')) !== frameOffset(block, at)) return false;
          return !(frameIsTombstone(block, at) && frameTimestamp(block, at) < now - deleteRetentionMs);
        };
        let removable = 0;
        for (const seg of closed) {
          if (seg.size === 0) continue;
          await scanFrames(await seg.reader(), 0, seg.size, seg.baseOffset, (block, at) => {
            result.recordsBefore++;
            if (!keep(block, at)) removable++;
          });
          result.bytesBefore += seg.size;
        }
        if (removable === 0 && closed.length <= 1) return { ...result, recordsAfter: result.recordsBefore, bytesAfter: result.bytesBefore };
        if (removable === 0 && !this.mergeable(closed)) return { ...result, recordsAfter: result.recordsBefore, bytesAfter: result.bytesBefore };
        // Pass 3: write the survivors into new segments and swap them in.
        const writer = new CleanedSegmentWriter(this.cfg.dir, this.cfg.segmentBytes, this.cfg.indexIntervalBytes, closed[0]!.baseOffset);
        const sync = this.cfg.fsync !== 'never';
        try {
          for (const seg of closed) await this.copySurvivors(seg, writer, keep, sync);
          const outputs = await writer.finish(sync);
          await commitCleaning(
            this.cfg.dir,
            closed.map((s) => s.baseOffset),
            outputs.map((s) => s.baseOffset),
            sync,
          );
          this.segments = [...outputs, ...this.segments.slice(closed.length)];
          for (const seg of closed) seg.retire();
          // Reads after compaction must not see the records it removed.
          this.tail.clear();
          this.lastRead = undefined;
          result.segments = closed.length;
          result.recordsAfter = result.recordsBefore - removable;
          result.bytesAfter = outputs.reduce((n, s) => n + s.size, 0);
          this.cfg.logger.info({ topic: this.cfg.topic, partition: this.cfg.partition, ...result }, 'embedded log: compacted closed segments');
          return result;
        } catch (err) {
          await writer.abort();
          throw err;
        }
      } finally {
        for (const seg of segs) seg.release();
      }
    });
  }

  private async copySurvivors(seg: Segment, writer: CleanedSegmentWriter, keep: (block: Buffer, at: number) => boolean, sync: boolean): Promise<void> {
    if (seg.size === 0) return;
    const cursor = new FrameCursor(await seg.reader(), 0, seg.size);
    try {
      for (;;) {
        let r = cursor.next();
        if (r === REFILL) {
          // Bound memory: write out what the writer holds before reading the next block.
          await writer.drain(sync);
          await cursor.refill();
          r = cursor.next();
        }
        if (r === null) return;
        if (typeof r !== 'number') throw new SwitchyardError('SY_ERR_LOG_CORRUPT', `corrupt record in ${seg.path} at byte ${cursor.pos}: ${r}`);
        if (keep(cursor.block, cursor.at)) writer.add(cursor.block, cursor.at, r);
      }
    } finally {
      cursor.release();
    }
  }

  /** Whether several closed segments would fit in fewer (so compaction should merge them). */
  private mergeable(closed: Segment[]): boolean {
    let outputs = 0;
    let size = 0;
    for (const seg of closed) {
      if (outputs === 0 || size + seg.size > this.cfg.segmentBytes) {
        outputs++;
        size = 0;
      }
      size += seg.size;
    }
    return outputs < closed.length;
  }

  /** For tests and tooling: the segments' base offsets, sizes and whether each is sealed. */
  describeSegments(): { baseOffset: number; size: number; sealed: boolean; indexEntries: number; path: string }[] {
    return this.segments.map((s) => ({ baseOffset: s.baseOffset, size: s.size, sealed: s.sealed, indexEntries: s.indexOffsets.length, path: s.path }));
  }

  /** For tests: the file position the index gives for `offset`. */
  indexLookup(offset: number): { segment: number; position: number } {
    const segs = this.segments;
    const seg = segs[findSegment(segs, offset)]!;
    return { segment: seg.baseOffset, position: seg.lookup(offset) };
  }
}

/** Index of the last segment whose base offset is ≤ `offset` (0 when `offset` is before all). */
function findSegment(segs: Segment[], offset: number): number {
  let lo = 0;
  let hi = segs.length - 1;
  let found = 0;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    if (segs[mid]!.baseOffset <= offset) {
      found = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return found;
}
