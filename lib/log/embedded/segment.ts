import { writevSync } from 'node:fs';
import { open, readFile, writeFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { SwitchyardError } from '../../errors.js';
import { checkFrame, declaredFrameLength, frameOffset, type FrameProblem } from './frame.js';

const TWO_32 = 0x1_0000_0000;
const INDEX_MAGIC = 0x53594958; // 'SYIX'
const INDEX_VERSION = 1;
const INDEX_HEADER_BYTES = 36;
const INDEX_ENTRY_BYTES = 12;
/** Bytes read per I/O call when scanning or reading a segment. */
export const READ_BLOCK_BYTES = 256 * 1024;

export const segmentFileName = (baseOffset: number): string => `${String(baseOffset).padStart(20, '0')}.log`;
export const indexFileName = (baseOffset: number): string => `${String(baseOffset).padStart(20, '0')}.index`;

/**
 * One segment of a partition: `<base>.log` holding frames whose offsets are ≥ base, plus a
 * sparse in-memory offset index (an entry every `indexIntervalBytes` of frames). A sealed
 * (closed) segment also has `<base>.index` on disk, written once when it is sealed and
 * checked (CRC, segment size) when loaded; a missing or stale index is rebuilt from the
 * segment's frames. The active segment's index lives in memory only and is rebuilt by the
 * recovery scan on open.
 *
 * Sizes: `size` counts bytes written to the file (what readers may read); `pendingSize`
 * also counts bytes encoded but not yet written, and decides when to roll.
 */
export class Segment {
  readonly baseOffset: number;
  readonly path: string;
  readonly indexPath: string;
  size = 0;
  pendingSize = 0;
  /** Offset of the last record (written or pending), -1 when empty. */
  lastOffset = -1;
  /** Largest record timestamp, for time retention. */
  maxTimestamp = Number.NEGATIVE_INFINITY;
  sealed = false;
  /** Index: offsets and file positions of every indexed frame, ascending. */
  readonly indexOffsets: number[] = [];
  readonly indexPositions: number[] = [];
  private lastIndexedPosition = Number.NEGATIVE_INFINITY;
  /** Handle for appends (active segment only). */
  writeHandle: FileHandle | undefined;
  fileCreated = false;
  private readHandle: Promise<FileHandle> | undefined;
  private refs = 0;
  private retired = false;

  constructor(
    readonly dir: string,
    baseOffset: number,
    private readonly indexIntervalBytes: number,
  ) {
    this.baseOffset = baseOffset;
    this.path = join(dir, segmentFileName(baseOffset));
    this.indexPath = join(dir, indexFileName(baseOffset));
  }

  /** Offset the next record after this segment's records would get. */
  get nextOffset(): number {
    return this.lastOffset >= 0 ? this.lastOffset + 1 : this.baseOffset;
  }

  /** Records a frame at `position` in the index bookkeeping (sparse). */
  noteFrame(offset: number, position: number, timestamp: number): void {
    if (position - this.lastIndexedPosition >= this.indexIntervalBytes) {
      this.indexOffsets.push(offset);
      this.indexPositions.push(position);
      this.lastIndexedPosition = position;
    }
    this.lastOffset = offset;
    if (timestamp > this.maxTimestamp) this.maxTimestamp = timestamp;
  }

  /** File position of the last indexed frame whose offset is ≤ `offset` (0 when none). */
  lookup(offset: number): number {
    const offsets = this.indexOffsets;
    let lo = 0;
    let hi = offsets.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (offsets[mid]! <= offset) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found < 0 ? 0 : this.indexPositions[found]!;
  }

  /** Takes a reference for reading; pair with `release`. */
  acquire(): void {
    this.refs++;
  }

  release(): void {
    this.refs--;
    if (this.refs === 0 && this.retired) void this.closeHandles();
  }

  /** Marks the segment as no longer part of the log; handles close when the last reader leaves. */
  retire(): void {
    this.retired = true;
    if (this.refs === 0) void this.closeHandles();
  }

  /**
   * The read handle, opened on first use. A retired segment whose handle is already closed
   * throws `SegmentRetired`: its path may now name a different file (compaction renames
   * over it), so the reader must take a fresh view of the partition.
   */
  reader(): Promise<FileHandle> {
    readers.touch(this);
    if (this.readHandle !== undefined) return this.readHandle;
    if (this.retired) return Promise.reject(new SegmentRetired(this.path));
    const opening = open(this.path, 'r');
    this.readHandle = opening;
    opening.catch(() => {
      if (this.readHandle === opening) this.readHandle = undefined;
    });
    return opening;
  }

  /** Closes the read handle unless a reader holds the segment (see `readers`); false if held. */
  closeIdleReader(): boolean {
    if (this.refs > 0) return false;
    const r = this.readHandle;
    this.readHandle = undefined;
    void r?.then((h) => h.close()).catch(() => {});
    return true;
  }

  get isRetired(): boolean {
    return this.retired;
  }

  async closeHandles(): Promise<void> {
    readers.forget(this);
    const r = this.readHandle;
    this.readHandle = undefined;
    const w = this.writeHandle;
    this.writeHandle = undefined;
    await Promise.all([r?.then((h) => h.close()).catch(() => {}), w?.close().catch(() => {})]);
  }

  /** Serializes the index with a header that ties it to this segment's size. */
  encodeIndex(): Buffer {
    const n = this.indexOffsets.length;
    const buf = Buffer.alloc(INDEX_HEADER_BYTES + n * INDEX_ENTRY_BYTES);
    buf.writeUInt32BE(INDEX_MAGIC, 0);
    buf.writeUInt32BE(INDEX_VERSION, 4);
    buf.writeUInt32BE(n, 8);
    buf.writeUInt32BE(this.size, 12);
    const next = this.nextOffset;
    buf.writeUInt32BE(Math.floor(next / TWO_32), 16);
    buf.writeUInt32BE(next >>> 0, 20);
    const ts = Number.isFinite(this.maxTimestamp) ? this.maxTimestamp : -1;
    buf.writeInt32BE(Math.floor(ts / TWO_32), 24);
    buf.writeUInt32BE(((ts % TWO_32) + TWO_32) % TWO_32, 28);
    let p = INDEX_HEADER_BYTES;
    for (let i = 0; i < n; i++) {
      const o = this.indexOffsets[i]!;
      buf.writeUInt32BE(Math.floor(o / TWO_32), p);
      buf.writeUInt32BE(o >>> 0, p + 4);
      buf.writeUInt32BE(this.indexPositions[i]!, p + 8);
      p += INDEX_ENTRY_BYTES;
    }
    buf.writeUInt32BE(crc32(Buffer.concat([buf.subarray(0, 32), buf.subarray(INDEX_HEADER_BYTES)])), 32);
    return buf;
  }

  async writeIndex(): Promise<void> {
    await writeFile(this.indexPath, this.encodeIndex());
  }

  /**
   * Loads `<base>.index` if it matches this segment (`size` must already be the file size).
   * Returns false when it is missing, damaged or stale; the caller then rebuilds by scanning.
   */
  async loadIndex(): Promise<boolean> {
    let buf: Buffer;
    try {
      buf = await readFile(this.indexPath);
    } catch {
      return false;
    }
    if (buf.length < INDEX_HEADER_BYTES || buf.readUInt32BE(0) !== INDEX_MAGIC || buf.readUInt32BE(4) !== INDEX_VERSION) return false;
    const n = buf.readUInt32BE(8);
    if (buf.length !== INDEX_HEADER_BYTES + n * INDEX_ENTRY_BYTES) return false;
    if (crc32(Buffer.concat([buf.subarray(0, 32), buf.subarray(INDEX_HEADER_BYTES)])) !== buf.readUInt32BE(32)) return false;
    if (buf.readUInt32BE(12) !== this.size) return false;
    const next = buf.readUInt32BE(16) * TWO_32 + buf.readUInt32BE(20);
    const ts = buf.readInt32BE(24) * TWO_32 + buf.readUInt32BE(28);
    this.indexOffsets.length = 0;
    this.indexPositions.length = 0;
    let p = INDEX_HEADER_BYTES;
    for (let i = 0; i < n; i++) {
      this.indexOffsets.push(buf.readUInt32BE(p) * TWO_32 + buf.readUInt32BE(p + 4));
      this.indexPositions.push(buf.readUInt32BE(p + 8));
      p += INDEX_ENTRY_BYTES;
    }
    this.lastOffset = next > this.baseOffset ? next - 1 : -1;
    this.maxTimestamp = ts;
    this.lastIndexedPosition = n > 0 ? this.indexPositions[n - 1]! : Number.NEGATIVE_INFINITY;
    return true;
  }

  /** Forgets the index, before a rebuild by scanning. */
  resetIndex(): void {
    this.indexOffsets.length = 0;
    this.indexPositions.length = 0;
    this.lastIndexedPosition = Number.NEGATIVE_INFINITY;
    this.lastOffset = -1;
    this.maxTimestamp = Number.NEGATIVE_INFINITY;
  }
}

const EMPTY = Buffer.alloc(0);

/** `FrameCursor.next()` result: the cursor's block does not hold the next frame; call `refill()`. */
export const REFILL = 'refill' as const;

/**
 * Walks the frames of a segment file from a position up to a byte limit, reading a block
 * at a time (`READ_BLOCK_BYTES`, or one whole frame when a frame is larger). `next()` is
 * synchronous while the block holds the next frame, so a scan costs one promise per block,
 * not per record. After a successful `next()`, the frame is `block[at, at + length)` and
 * starts at file position `framePos`. The block is reused by the next `refill()` and by
 * other cursors after `release()`: copy out whatever must outlive that.
 */
export class FrameCursor {
  block: Buffer = EMPTY;
  at = 0;
  framePos = 0;
  private blockStart = 0;
  private fresh = false;
  private own: Buffer | undefined;

  constructor(
    private readonly handle: FileHandle,
    /** File position of the next frame. */
    public pos: number,
    private readonly limit: number,
    /** Check each frame's CRC. */
    private readonly verifyCrc = true,
    private readonly blockBytes = READ_BLOCK_BYTES,
  ) {
    this.blockStart = pos;
  }

  /** The next frame's length; a problem (corrupt, or cut short by the limit); null at the limit; or REFILL. */
  next(): number | FrameProblem | null | typeof REFILL {
    if (this.pos >= this.limit) return null;
    const rel = this.pos - this.blockStart;
    const avail = this.block.length - rel;
    if (!this.fresh && (avail < 4 || avail < declaredFrameLength(this.block, rel))) return REFILL;
    const checked = checkFrame(this.block, rel, this.block.length, this.verifyCrc);
    if (typeof checked !== 'number') return checked;
    this.at = rel;
    this.framePos = this.pos;
    this.pos += checked;
    this.fresh = false;
    return checked;
  }

  /** Loads a block starting at the next frame, large enough for it when the file holds it whole. */
  async refill(): Promise<void> {
    const room = this.limit - this.pos;
    await this.load(Math.min(this.blockBytes, room));
    if (this.block.length >= 4) {
      const declared = declaredFrameLength(this.block, 0);
      if (declared > this.block.length && declared <= room) await this.load(declared);
    }
    this.fresh = true;
  }

  /** Returns the cursor's block to the pool; the cursor must not be used afterwards. */
  release(): void {
    if (this.own !== undefined) blockPool.give(this.own);
    this.own = undefined;
    this.block = EMPTY;
  }

  private async load(bytes: number): Promise<void> {
    let target: Buffer;
    if (bytes <= READ_BLOCK_BYTES) {
      this.own ??= blockPool.take();
      target = this.own.subarray(0, bytes);
    } else target = Buffer.allocUnsafe(bytes);
    const got = await readFully(this.handle, target, this.pos);
    this.block = got === bytes ? target : target.subarray(0, got);
    this.blockStart = this.pos;
  }
}


/**
 * Read blocks are reused: callers copy what they keep out of a block (`decodeFrame` does),
 * so a block is free once its cursor is released. Saves allocating (and collecting) a
 * 256 KiB buffer per read.
 */
const blockPool = {
  free: [] as Buffer[],
  take(): Buffer {
    return this.free.pop() ?? Buffer.allocUnsafe(READ_BLOCK_BYTES);
  },
  give(buf: Buffer): void {
    if (this.free.length < 32) this.free.push(buf);
  },
};

/**
 * Read handles stay open between reads (tail consumers read the same segments over and
 * over), but a replay over a long history would otherwise keep one descriptor per segment
 * it ever read. This LRU closes the least recently read idle handles beyond a cap; a closed
 * handle is simply reopened on the next read.
 */
const MAX_OPEN_READERS = 256;
const readers = {
  recent: new Set<Segment>(),
  touch(seg: Segment): void {
    this.recent.delete(seg);
    this.recent.add(seg);
    if (this.recent.size <= MAX_OPEN_READERS) return;
    for (const old of this.recent) {
      if (this.recent.size <= MAX_OPEN_READERS) break;
      if (old === seg) continue;
      if (old.closeIdleReader()) this.recent.delete(old);
    }
  },
  forget(seg: Segment): void {
    this.recent.delete(seg);
  },
};

/** Where a scan stopped and why (no problem = clean end of data). */
export interface ScanResult {
  validBytes: number;
  problem?: FrameProblem | 'bad-offset';
}

/**
 * Visits every valid frame of the file from `from` to `end`, in order, with the block it
 * sits in, its position in the block and in the file. Stops at the first frame that is cut
 * short, fails its checks, or whose offset does not increase (`bad-offset`); `validBytes`
 * is where the good frames end.
 */
export async function scanFrames(
  handle: FileHandle,
  from: number,
  end: number,
  baseOffset: number,
  visit: (block: Buffer, at: number, filePos: number, length: number) => void,
): Promise<ScanResult> {
  const cursor = new FrameCursor(handle, from, end);
  try {
    return await scanWith(cursor, baseOffset, visit);
  } finally {
    cursor.release();
  }
}

async function scanWith(
  cursor: FrameCursor,
  baseOffset: number,
  visit: (block: Buffer, at: number, filePos: number, length: number) => void,
): Promise<ScanResult> {
  let prev = -1;
  for (;;) {
    let r = cursor.next();
    if (r === REFILL) {
      await cursor.refill();
      r = cursor.next();
    }
    if (r === null) return { validBytes: cursor.pos };
    if (typeof r !== 'number') return { validBytes: cursor.pos, problem: r === REFILL ? 'short-frame' : r };
    const offset = frameOffset(cursor.block, cursor.at);
    if (offset < baseOffset || offset <= prev) return { validBytes: cursor.framePos, problem: 'bad-offset' };
    prev = offset;
    visit(cursor.block, cursor.at, cursor.framePos, r);
  }
}

/** Thrown by `Segment.reader()` when the segment left the log before this reader opened it. */
export class SegmentRetired extends Error {
  constructor(path: string) {
    super(`segment ${path} was retired`);
    this.name = 'SegmentRetired';
  }
}

/** Reads exactly `buf.length` bytes at `position` (fewer only at end of file: the rest is zeroed). */
export async function readFully(handle: FileHandle, buf: Buffer, position: number): Promise<number> {
  let done = 0;
  while (done < buf.length) {
    const { bytesRead } = await handle.read(buf, done, buf.length - done, position + done);
    if (bytesRead === 0) {
      buf.fill(0, done);
      break;
    }
    done += bytesRead;
  }
  return done;
}

/** Writes all of `buffers` at `position`, looping over short writes. */
export async function writeFully(handle: FileHandle, buffers: Buffer[], position: number): Promise<void> {
  let pending = buffers;
  let pos = position;
  while (pending.length > 0) {
    const bytesWritten = writevSync(handle.fd, pending, pos);
    pos += bytesWritten;
    let skip = bytesWritten;
    const rest: Buffer[] = [];
    for (const b of pending) {
      if (skip >= b.length) skip -= b.length;
      else {
        rest.push(skip > 0 ? b.subarray(skip) : b);
        skip = 0;
      }
    }
    if (bytesWritten === 0 && rest.length > 0) throw new SwitchyardError('SY_ERR_LOG_IO', 'write made no progress', { retriable: true });
    pending = rest;
  }
}

