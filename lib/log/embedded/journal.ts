import { mkdir, open, readdir, readFile, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { SwitchyardError } from '../../errors.js';
import type { Logger } from '../../logger.js';
import { deferred } from '../../deferred.js';
import { syncDir } from './cleaner.js';
import { checkFrame, decodeFrame, frameOffset, type FrameInput } from './frame.js';
import { writeFully } from './segment.js';

/**
 * The commit journal of the embedded log: one append-only file that every synced flush of
 * every partition also writes its frames to, so that making them durable is one `fdatasync`
 * of the journal however many partitions' files the flushes touched. The partitions' own
 * segment files are then written to the page cache only and fsynced together at a
 * checkpoint (every `checkpointBytes` of journal, or `checkpointMs` after a write), after which the journal
 * up to that point is deleted. On open, whatever a crash took from the tail of a partition's
 * segment (its page cache) is appended again from the journal, at the same offsets.
 *
 * Why: with one file per partition a request and the outcomes of the same moment land in
 * different files, and each file's fdatasync is an ext4 journal commit of its own — two to
 * three fsyncs per request, 40% of the CPU of `switchyard up` at 400 req/s (docs/BENCHMARKS.md).
 * The journal turns the fsyncs of concurrent flushes into one, whichever partitions they are.
 *
 * Entry (all integers big-endian):
 *
 * ```
 *  0  u32  size        bytes after this field
 *  4  u32  crc         CRC-32 of bytes [8, 14 + topic length): the entry's header
 *  8  u32  partition
 * 12  u16  topic length
 * 14  ...  topic (utf8)
 *     ...  frames      the records' segment frames, verbatim (each with its own CRC)
 * ```
 *
 * A torn or corrupt entry ends the journal: its flush never completed its fsync, so no
 * appender was told it was durable.
 *
 * Every file begins with a **base** entry (partition 0xFFFFFFFF, no topic; its payload a CRC-32
 * and JSON): each partition's end in the segment files when the file began (all below is made
 * durable by the segment fsyncs of the checkpoint that began it, or of the open) and how many
 * bytes the file before it had then. On open the journal's entries, oldest file first, are its
 * **consistent prefix**: a file whose predecessor ends short of the bytes its base names follows
 * a write that never completed, so neither it nor anything after it is taken. A run resolves its
 * commits only once every run before it has, so an acknowledged commit is always in the prefix.
 * The caller cuts every partition back to its durable end (its base, or past the last of its
 * records in the prefix): a record the kernel wrote back to a segment file ahead of the journal
 * is not kept when a record it was made on was lost.
 */

const FILE = /^(\d{20})\.journal$/;
/** Bytes zero-filled ahead of the journal's writes at a time (see `extend`). */
const EXTEND_BYTES = 4 * 1024 * 1024;
const FIRST_FILL_BYTES = 256 * 1024;
const ZEROS = Buffer.alloc(1024 * 1024);
/** Journal fsyncs in progress at once (libuv's thread pool has four threads). */
export const MAX_RUNS = 4;
const HEADER = 14;
/** The partition field of a base entry. */
const BASE_PARTITION = 0xffffffff;

export interface JournalOptions {
  dir: string;
  logger: Logger;
  /** Checkpoint once the current file holds this many bytes. */
  checkpointBytes: number;
  /** Checkpoint at least this often while anything was written, ms. */
  checkpointMs: number;
  /** Longest a relaxed commit waits for a write (and fsync) of the journal, ms. */
  relaxedMs: number;
}

/** One entry read back on open: the frames of one flush of one partition. */
export interface JournalEntry {
  topic: string;
  partition: number;
  frames: Buffer;
}

/** A journal file's first entry: where every partition ended when the file began. */
export interface JournalBase {
  /** Bytes the previous file held when this one began (0 for the first file of an open). */
  prevBytes: number;
  /**
   * Written by an open once it had applied every older file and fsynced the segments: recovery
   * starts at the newest such file (older ones are leftovers whose deletion was not durable).
   */
  opened?: boolean;
  /** `[topic, partition, end offset]` of every journaled partition. */
  ends: [string, number, number][];
}

/** What `CommitJournal.open` read: the consistent prefix, and the oldest file's base. */
export interface JournalRecovery {
  entries: JournalEntry[];
  /** The oldest file's base; undefined when it has none (a journal from before bases). */
  base: JournalBase | undefined;
}

interface FileRead {
  entries: JournalEntry[];
  base: JournalBase | undefined;
  /** Bytes of whole entries read from the start of the file. */
  bytes: number;
}

interface Waiter {
  resolve: () => void;
  reject: (err: unknown) => void;
}

const fileName = (seq: number): string => `${String(seq).padStart(20, '0')}.journal`;

export class CommitJournal {
  private handle!: FileHandle;
  private seq = 0;
  private size = 0;
  /** Bytes of the current file zero-filled and fsynced ahead of the writes (see `extend`). */
  private allocated = 0;
  /** The zero-fill in progress, if any, and the size of the last one started. */
  private extending: Promise<void> | undefined;
  private lastFill = 0;
  private pending: Buffer[] = [];
  private waiters: Waiter[] = [];
  /** Runs whose fdatasync is in progress (at most MAX_RUNS). */
  private readonly running = new Set<Promise<void>>();
  private immediate: NodeJS.Immediate | undefined;
  private failure: SwitchyardError | undefined;
  private checkpointing: Promise<void> | undefined;
  /** Settles when the latest run has (resolved its commits, or failed): runs resolve in order. */
  private lastRun: Promise<void> = Promise.resolve();
  /** Bytes of the current file's base entry. */
  private baseBytes = 0;
  /** Every journaled partition's end in its segment files now (for a new file's base). */
  private endsNow: () => [string, number, number][] = () => [];
  /** The next checkpoint. */
  private timer: NodeJS.Timeout | undefined;
  /** Relaxed entries are pending: the latest moment they get written. */
  private relaxedTimer: NodeJS.Timeout | undefined;
  private relaxedDue = false;
  private closed = false;
  /** Makes every partition's segment files durable (the checkpoint's fsyncs). */
  private syncSegments: () => Promise<void> = async () => {};

  private constructor(private readonly o: JournalOptions) {}

  /**
   * Reads the journal files left by the last run (oldest first) and opens a new file after
   * them. The caller replays the entries, makes its segments durable and then calls
   * `dropRecovered()`.
   */
  static async open(o: JournalOptions): Promise<{ journal: CommitJournal } & JournalRecovery> {
    await mkdir(o.dir, { recursive: true });
    const journal = new CommitJournal(o);
    const seqs = (await readdir(o.dir))
      .map((n) => FILE.exec(n))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => Number(m[1]))
      .sort((a, b) => a - b);
    const reads: [number, FileRead][] = [];
    for (const seq of seqs) reads.push([seq, await journal.readFile(seq)]);
    const from = Math.max(0, reads.findLastIndex(([, read]) => read.base?.opened === true));
    const entries: JournalEntry[] = [];
    let base: JournalBase | undefined;
    let previous: { seq: number; bytes: number } | undefined;
    for (const [seq, read] of reads.slice(from)) {
      if (previous === undefined) base = read.base;
      else if (read.base !== undefined && previous.bytes < read.base.prevBytes) {
        // The file before ends short of what it held when this one began: a write in it never
        // completed, so nothing after it was acknowledged, and nothing after it is taken.
        o.logger.warn({ journal: fileName(seq), previous: fileName(previous.seq), previousBytes: previous.bytes, expected: read.base.prevBytes }, 'embedded log: journal file follows an incomplete one; it is past the consistent prefix and not replayed');
        break;
      }
      entries.push(...read.entries);
      previous = { seq, bytes: read.bytes };
    }
    journal.recovered = seqs;
    journal.seq = (seqs.at(-1) ?? 0) + 1;
    journal.handle = await open(join(o.dir, fileName(journal.seq)), 'w');
    await syncDir(o.dir);
    journal.extend();
    return { journal, entries, base };
  }

  private recovered: number[] = [];

  private async readFile(seq: number): Promise<FileRead> {
    const path = join(this.o.dir, fileName(seq));
    const buf = await readFile(path);
    const entries: JournalEntry[] = [];
    let base: JournalBase | undefined;
    let pos = 0;
    while (pos < buf.length) {
      // Zeros: the preallocated space after the last entry.
      if (buf.length - pos >= 4 && buf.readUInt32BE(pos) === 0) break;
      const problem = entryProblem(buf, pos);
      if (problem !== undefined) {
        this.o.logger.warn({ journal: path, at: pos, bytes: buf.length, problem }, 'embedded log: journal ends in a torn or corrupt entry; its flush was never acknowledged');
        break;
      }
      const size = buf.readUInt32BE(pos);
      const partition = buf.readUInt32BE(pos + 8);
      const topicLen = buf.readUInt16BE(pos + 12);
      if (partition === BASE_PARTITION) {
        if (pos === 0) base = JSON.parse(buf.toString('utf8', pos + HEADER + 4, pos + 4 + size)) as JournalBase;
      } else {
        entries.push({
          partition,
          topic: buf.toString('utf8', pos + HEADER, pos + HEADER + topicLen),
          frames: buf.subarray(pos + HEADER + topicLen, pos + 4 + size),
        });
      }
      pos += 4 + size;
    }
    return { entries, base, bytes: pos };
  }

  /**
   * Writes the current file's base entry (it must be the file's first) and resolves once it is
   * fsynced, with every commit before it: where every partition ends now, and how many bytes the
   * previous file held.
   */
  writeBase(base: JournalBase): Promise<void> {
    const json = Buffer.from(JSON.stringify(base), 'utf8');
    const header = Buffer.allocUnsafe(HEADER + 4);
    header.writeUInt32BE(HEADER + json.length, 0);
    header.writeUInt32BE(BASE_PARTITION, 8);
    header.writeUInt16BE(0, 12);
    header.writeUInt32BE(crc32(header.subarray(8, HEADER)), 4);
    header.writeUInt32BE(crc32(json), HEADER);
    // First in the file: commits queued before a checkpoint's swap follow it (their records are
    // below the base's ends; replay skips what the segments have).
    this.pending.unshift(header, json);
    this.baseBytes = header.length + json.length;
    const { promise, resolve, reject } = deferred();
    this.waiters.push({ resolve, reject });
    this.schedule();
    return promise;
  }

  /** Deletes the files read by `open` once their entries are durable in the segments. */
  async dropRecovered(): Promise<void> {
    for (const seq of this.recovered) await unlink(join(this.o.dir, fileName(seq)));
    if (this.recovered.length > 0) await syncDir(this.o.dir);
    this.recovered = [];
  }

  /** Whether `open` found journal files of an earlier run (it ended without a clean close). */
  get hadFiles(): boolean {
    return this.recovered.length > 0;
  }

  /**
   * Starts the checkpoints: `syncSegments` fsyncs every segment file written since the last;
   * `endsNow` gives every journaled partition's end in its segment files (written, not only
   * appended), for the base of each new file.
   */
  start(syncSegments: () => Promise<void>, endsNow: () => [string, number, number][]): void {
    this.syncSegments = syncSegments;
    this.endsNow = endsNow;
  }

  /**
   * Writes one partition flush's frames to the journal; resolves once they are fsynced.
   * Commits made before the event loop turns share one write and one fdatasync; up to
   * `MAX_RUNS` fsyncs run at once, and the commits made while that many are in progress share
   * the next one. `frames` must stay untouched until the
   * promise settles. A relaxed commit (`wait` false) is copied, returns nothing, and does not
   * start a write of its own before `relaxedMs`: it rides the next synced one.
   */
  commit(topic: string, partition: number, frames: Buffer[], bytes: number, wait = true): Promise<void> | undefined {
    if (this.failure !== undefined) return wait ? Promise.reject(this.failure) : undefined;
    if (this.closed) {
      const err = new SwitchyardError('SY_ERR_LOG_CLOSED', 'the embedded log journal is closed');
      return wait ? Promise.reject(err) : undefined;
    }
    const topicLen = Buffer.byteLength(topic, 'utf8');
    const header = Buffer.allocUnsafe(HEADER + topicLen);
    header.writeUInt32BE(HEADER - 4 + topicLen + bytes, 0);
    header.writeUInt32BE(partition, 8);
    header.writeUInt16BE(topicLen, 12);
    header.write(topic, HEADER, 'utf8');
    header.writeUInt32BE(crc32(header.subarray(8)), 4);
    this.pending.push(header);
    if (!wait) {
      // The caller hands its encode buffers back once this returns, before the write: copy.
      this.pending.push(Buffer.concat(frames, bytes));
      this.relaxedTimer ??= setTimeout(() => {
        this.relaxedTimer = undefined;
        this.relaxedDue = true;
        this.schedule();
      }, this.o.relaxedMs);
      return undefined;
    }
    for (const f of frames) this.pending.push(f);
    const { promise, resolve, reject } = deferred();
    this.waiters.push({ resolve, reject });
    this.schedule();
    return promise;
  }

  /**
   * The commits of one event-loop turn share a run: one write and one fdatasync. A run does
   * not wait for the one before it: concurrent fdatasyncs of the file join the same ext4
   * journal commit in the kernel, so waiting would only add an fsync's time to the latency.
   */
  private schedule(): void {
    if (this.immediate !== undefined || this.running.size >= MAX_RUNS) return;
    if (this.waiters.length === 0 && !(this.relaxedDue && this.pending.length > 0)) return;
    this.immediate = setImmediate(() => {
      this.immediate = undefined;
      const run: Promise<void> = this.run().finally(() => {
        this.running.delete(run);
        this.schedule();
      });
      this.running.add(run);
    });
  }

  /**
   * Zero-fills and fsyncs the next `EXTEND_BYTES` of the file in the background, so that the
   * commits' writes overwrite allocated blocks: their fdatasync then has no metadata (size,
   * extents) to commit to the filesystem's journal, only the data — a third less CPU and time
   * per fsync on ext4 here (PostgreSQL zero-fills its WAL segments for the same reason). A
   * commit that outruns the fill writes past it and pays the metadata commit, nothing worse.
   */
  private extend(): void {
    if (this.extending !== undefined || this.closed || this.failure !== undefined) return;
    const handle = this.handle;
    const from = Math.max(this.allocated, this.size);
    // A new file starts with a small fill, so the first commits wait little for it (and a log
    // opened for a moment, as in tests, writes little).
    const bytes = this.allocated === 0 ? FIRST_FILL_BYTES : EXTEND_BYTES;
    this.lastFill = bytes;
    const run = (async () => {
      try {
        for (let at = from; at < from + bytes; at += ZEROS.length) await handle.write(ZEROS, 0, Math.min(ZEROS.length, from + bytes - at), at);
        await handle.datasync();
        // The file may have been swapped meanwhile (a checkpoint): the fill was for the old one.
        if (handle === this.handle) this.allocated = from + bytes;
      } catch (err) {
        // Not fatal: commits write past the filled part, as without it.
        if (handle === this.handle) this.o.logger.warn({ err }, 'embedded log: zero-filling the journal ahead of its writes failed');
      } finally {
        this.extending = undefined;
      }
    })();
    this.extending = run;
  }

  /** For tests: resolves once no zero-fill is in progress. */
  async idle(): Promise<void> {
    while (this.extending !== undefined) await this.extending;
  }

  /** Resolves once every run in progress now has ended. */
  private async settled(): Promise<void> {
    await Promise.all([...this.running]);
  }

  private async run(): Promise<void> {
    const bufs = this.pending;
    const waiters = this.waiters;
    this.pending = [];
    this.waiters = [];
    this.relaxedDue = false;
    if (this.relaxedTimer !== undefined) {
      clearTimeout(this.relaxedTimer);
      this.relaxedTimer = undefined;
    }
    const previous = this.lastRun;
    const ran = deferred();
    this.lastRun = ran.promise;
    try {
      await this.write(bufs, waiters, previous);
    } finally {
      ran.resolve();
    }
  }

  private async write(bufs: Buffer[], waiters: Waiter[], previous: Promise<void>): Promise<void> {
    try {
      if (this.failure !== undefined) throw this.failure;
      let bytes = 0;
      for (const b of bufs) bytes += b.length;
      // The handle and position are taken before any await: a checkpoint may swap files while
      // this run's fsync is in progress.
      const handle = this.handle;
      const at = this.size;
      this.size += bytes;
      // A zero-fill in progress must not overwrite this write: wait for it if they overlap.
      if (this.size > this.allocated && this.extending !== undefined) await this.extending;
      await writeFully(handle, bufs, at);
      // Fill again once half of the last fill is used.
      if (this.allocated - this.size < this.lastFill / 2) this.extend();
      await handle.datasync();
      // Recovery reads a file up to its first hole: an earlier run's write must be on disk too
      // before these commits are acknowledged (its fsync was concurrent with this one).
      await previous;
      if (this.failure !== undefined) throw this.failure;
      for (const w of waiters) w.resolve();
    } catch (err) {
      // A run after a failed one fails with it, without logging it again.
      if (this.failure === undefined) this.o.logger.error({ err }, 'embedded log: journal write failed');
      this.failure ??= new SwitchyardError('SY_ERR_LOG_IO', 'writing the embedded log journal failed; the log refuses synced appends until it is reopened', { cause: err });
      for (const w of waiters) w.reject(this.failure);
      return;
    }
    if (this.size >= this.o.checkpointBytes) void this.checkpoint();
    else if (this.timer === undefined && !this.closed && this.size > this.baseBytes) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        void this.checkpoint();
      }, this.o.checkpointMs);
      this.timer.unref();
    }
  }

  /**
   * Moves to a new journal file, fsyncs every segment written so far and deletes the old
   * file: what it held is in the segments, durably. Commits go on meanwhile, to the new file.
   */
  checkpoint(): Promise<void> {
    this.checkpointing ??= this.doCheckpoint().finally(() => {
      this.checkpointing = undefined;
    });
    return this.checkpointing;
  }

  private async doCheckpoint(): Promise<void> {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    // Nothing but the base since the last checkpoint: the segments hold it all already.
    if (this.size <= this.baseBytes || this.failure !== undefined || this.closed) return;
    try {
      const nextSeq = this.seq + 1;
      const next = await open(join(this.o.dir, fileName(nextSeq)), 'w');
      await syncDir(this.o.dir);
      // A fill of the old file must end before the writes to the new one pass its start.
      await this.extending;
      // From here to the swap nothing awaits: the runs in progress are all the old file has,
      // and every entry they wrote had its segment write first (a run writes synchronously as
      // it starts), so the segment fsyncs below cover all of them.
      const before = this.settled();
      const old = this.handle;
      const oldSeq = this.seq;
      const oldBytes = this.size;
      this.handle = next;
      this.seq = nextSeq;
      this.size = 0;
      this.baseBytes = 0;
      this.allocated = 0;
      this.extend();
      const based = this.writeBase({ prevBytes: oldBytes, ends: this.endsNow() });
      await this.syncSegments();
      await before;
      // The old file goes only once the new one's base is durable: it says where to cut.
      await based;
      await old.close();
      await unlink(join(this.o.dir, fileName(oldSeq)));
    } catch (err) {
      this.failure ??= new SwitchyardError('SY_ERR_LOG_IO', 'the embedded log journal checkpoint failed; the log refuses synced appends until it is reopened', { cause: err });
      this.o.logger.error({ err }, 'embedded log: journal checkpoint failed');
    }
  }

  /**
   * Waits for the commits in progress and removes the journal: a clean close leaves none.
   * Call it once every partition has closed (each fsyncs its segment files as it closes).
   */
  async close(): Promise<void> {
    if (this.closed) return;
    while (this.running.size > 0 || this.immediate !== undefined || this.relaxedTimer !== undefined) {
      if (this.running.size === 0 && this.relaxedTimer !== undefined) {
        clearTimeout(this.relaxedTimer);
        this.relaxedTimer = undefined;
        this.relaxedDue = true;
        this.schedule();
      }
      await (this.running.size > 0 ? this.settled() : new Promise<void>((resolve) => setImmediate(resolve)));
    }
    this.closed = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    await this.checkpointing;
    await this.extending;
    await this.handle.close().catch(() => {});
    if (this.failure === undefined) await unlink(join(this.o.dir, fileName(this.seq))).catch(() => {});
  }
}

/** Why the entry at `pos` cannot be taken (torn, corrupt), or undefined when it is whole. */
function entryProblem(buf: Buffer, pos: number): string | undefined {
  if (buf.length - pos < HEADER) return 'short-header';
  const size = buf.readUInt32BE(pos);
  const topicLen = buf.readUInt16BE(pos + 12);
  if (size < HEADER - 4 + topicLen || buf.length - pos < 4 + size) return 'short-entry';
  if (crc32(buf.subarray(pos + 8, pos + HEADER + topicLen)) !== buf.readUInt32BE(pos + 4)) return 'crc-mismatch';
  const end = pos + 4 + size;
  if (buf.readUInt32BE(pos + 8) === BASE_PARTITION) {
    if (size < HEADER) return 'short-base';
    return crc32(buf.subarray(pos + HEADER + 4, end)) === buf.readUInt32BE(pos + HEADER) ? undefined : 'base: crc-mismatch';
  }
  for (let at = pos + HEADER + topicLen; at < end; ) {
    const n = checkFrame(buf, at, end);
    if (typeof n !== 'number') return `frame: ${n}`;
    at += n;
  }
  return undefined;
}

/** The records of an entry's frames, each with the offset it had: `[offset, record]`. */
export function* entryRecords(entry: JournalEntry): Generator<[number, FrameInput]> {
  const buf = entry.frames;
  for (let at = 0; at < buf.length; ) {
    const n = checkFrame(buf, at, buf.length, false) as number;
    const r = decodeFrame(buf, at, entry.topic, entry.partition);
    const headers = Object.entries(r.headers);
    yield [frameOffset(buf, at), { key: r.key, value: r.value, headers: headers.length === 0 ? undefined : headers, timestamp: r.timestamp }];
    at += n;
  }
}
