import type { LogRecord } from '../port.js';
import { declaredFrameLength, decodeFrame, frameOffset } from './frame.js';

/** Smallest and largest block of a tail cache, bytes. */
const MIN_BLOCK_BYTES = 4 * 1024;
const MAX_BLOCK_BYTES = 1024 * 1024;
/** Dead index slots tolerated before the index arrays are compacted (amortized O(1) eviction). */
const COMPACT_AFTER = 4096;

/**
 * The tail cache of one partition: copies of its most recently flushed frames, so consumers
 * that keep up with the log (routers, workers, the gateway's results tracker) read from memory,
 * with no syscall and no thread-pool round trip.
 *
 * Invariant: the cached frames are contiguous in the partition's log up to its newest flushed
 * frame. A read of offset `from` is served here exactly when `from` is at or after the oldest
 * cached offset; older reads go to the segment files.
 *
 * Cost. A read binary-searches the offset index, then copies and decodes the records it returns:
 * O(log n + records returned), however full the cache (the first version walked every cached
 * flush from the oldest on each read, so reads slowed down as the cache filled).
 *
 * Memory. Frames are copied into blocks of about `capacity / 16` bytes (4 KiB..1 MiB; a frame
 * larger than a block gets a block of its own size), allocated outside Node's 8 KiB buffer pool
 * (`Buffer.allocUnsafeSlow`): a block is its own allocation, so `capacity` bounds the bytes
 * the cache holds, not only the frame bytes it counts, and an evicted block is freed as soon as
 * the cache drops it (reads copy what they return, see `read`). Eviction drops whole blocks,
 * oldest first, before a new one would take the cache past `capacity`, and — as frames are
 * added — while the oldest block's newest frame is older than `maxAgeMs`: a partition written
 * slowly reaches its steady size within that age, not once its bytes fill `capacity`.
 */
export class TailCache {
  readonly capacity: number;
  private readonly blockBytes: number;
  /** Frame index, live from `head`: frame i is at `positions[i]` of `frameBlocks[i]`, offset `offsets[i]`. */
  private offsets: number[] = [];
  private positions: number[] = [];
  private frameBlocks: (Buffer | undefined)[] = [];
  private head = 0;
  /** Blocks, oldest first, live from `blockHead`; `blockFirst[b]` is the index of block b's first frame. */
  private blocks: (Buffer | undefined)[] = [];
  private blockFirst: number[] = [];
  /** When the newest frame of block b was added (the caller's clock, ms). */
  private blockNewest: number[] = [];
  private blockHead = 0;
  /** Bytes of the live blocks (allocated, not only used). */
  private allocated = 0;
  /** Bytes used of the newest block. */
  private used = 0;

  /**
   * @param capacity most bytes of blocks held; 0 caches nothing.
   * @param maxAgeMs blocks whose newest frame is older than this are dropped as frames are added.
   */
  constructor(
    capacity: number,
    private readonly maxAgeMs = Number.POSITIVE_INFINITY,
  ) {
    this.capacity = capacity;
    this.blockBytes = Math.min(capacity, Math.max(MIN_BLOCK_BYTES, Math.min(MAX_BLOCK_BYTES, Math.ceil(capacity / 16))));
  }

  /** Cached frames. */
  get size(): number {
    return this.offsets.length - this.head;
  }

  /** Bytes of the blocks held (what the cache costs in memory, up to `capacity`). */
  get bytes(): number {
    return this.allocated;
  }

  /** The oldest cached offset, or undefined when the cache is empty. */
  get firstOffset(): number | undefined {
    return this.head < this.offsets.length ? this.offsets[this.head] : undefined;
  }

  /** Drops every cached frame (e.g. after compaction removed some of them). */
  clear(): void {
    this.offsets = [];
    this.positions = [];
    this.frameBlocks = [];
    this.head = 0;
    this.blocks = [];
    this.blockFirst = [];
    this.blockNewest = [];
    this.blockHead = 0;
    this.allocated = 0;
    this.used = 0;
  }

  /**
   * Copies the frames of one flush into the cache. `chunks` hold whole frames, in offset
   * order, continuing the cached ones (the caller's log order); the buffers are not kept. `now`
   * (ms, any monotonic clock) ages the blocks: first the blocks past `maxAgeMs` are dropped.
   */
  add(chunks: readonly Buffer[], now = 0): void {
    if (this.capacity === 0) return;
    while (this.blocks.length > this.blockHead && now - this.blockNewest[this.blockHead]! > this.maxAgeMs) this.evictOldest();
    for (const chunk of chunks) {
      // Copy runs of frames that fit in the newest block with one copy each.
      let runStart = 0;
      let pos = 0;
      while (pos < chunk.length) {
        const len = declaredFrameLength(chunk, pos);
        let block = this.blocks.length > this.blockHead ? this.blocks[this.blocks.length - 1]! : undefined;
        if (block === undefined || block.length - this.used - (pos - runStart) < len) {
          if (block !== undefined) this.used += chunk.copy(block, this.used, runStart, pos);
          runStart = pos;
          block = this.newBlock(len);
          if (block === undefined) {
            // Larger than the whole cache: nothing older may stay (the cache must be contiguous).
            this.clear();
            pos += len;
            runStart = pos;
            continue;
          }
        }
        this.offsets.push(frameOffset(chunk, pos));
        this.positions.push(this.used + (pos - runStart));
        this.frameBlocks.push(block);
        this.blockNewest[this.blocks.length - 1] = now;
        pos += len;
      }
      const block = this.blocks[this.blocks.length - 1];
      if (pos > runStart && block !== undefined) this.used += chunk.copy(block, this.used, runStart, pos);
    }
  }

  /** Starts a block for a frame of `len` bytes, evicting old blocks to make room; undefined when it cannot fit. */
  private newBlock(len: number): Buffer | undefined {
    const size = Math.max(this.blockBytes, len);
    if (size > this.capacity) return undefined;
    while (this.blocks.length > this.blockHead && this.allocated + size > this.capacity) this.evictOldest();
    const block = Buffer.allocUnsafeSlow(size);
    this.blocks.push(block);
    this.blockFirst.push(this.offsets.length);
    this.blockNewest.push(Number.NEGATIVE_INFINITY);
    this.allocated += size;
    this.used = 0;
    return block;
  }

  private evictOldest(): void {
    const b = this.blockHead;
    this.allocated -= this.blocks[b]!.length;
    const nextFirst = b + 1 < this.blocks.length ? this.blockFirst[b + 1]! : this.offsets.length;
    // Drop the references so the evicted block can be freed before the next compaction.
    for (let i = this.head; i < nextFirst; i++) this.frameBlocks[i] = undefined;
    this.blocks[b] = undefined;
    this.head = nextFirst;
    this.blockHead = b + 1;
    if (this.blockHead === this.blocks.length) {
      this.clear();
      return;
    }
    if (this.head >= COMPACT_AFTER && this.head * 2 >= this.offsets.length) this.compact();
  }

  /** Moves the live part of the index to the front of its arrays. */
  private compact(): void {
    const h = this.head;
    this.offsets = this.offsets.slice(h);
    this.positions = this.positions.slice(h);
    this.frameBlocks = this.frameBlocks.slice(h);
    this.blocks = this.blocks.slice(this.blockHead);
    this.blockFirst = this.blockFirst.slice(this.blockHead).map((i) => i - h);
    this.blockNewest = this.blockNewest.slice(this.blockHead);
    this.head = 0;
    this.blockHead = 0;
  }

  /**
   * Appends the cached records with offsets in [from, end), at most until `out` holds `max`,
   * in order. Returns false (and appends nothing) when `from` is older than the cache, or the
   * cache is empty: the caller reads the segment files.
   *
   * The records are views into one copy of the frames read (as segment reads return them),
   * never into the cache's blocks: a record a consumer keeps holds only the bytes read with it.
   */
  read(from: number, end: number, max: number, out: LogRecord[], topic: string, partition: number): boolean {
    const offsets = this.offsets;
    const n = offsets.length;
    if (this.head >= n || from < offsets[this.head]!) return false;
    // First frame at or after `from` (binary search; offsets ascend).
    let lo = this.head;
    let hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (offsets[mid]! < from) lo = mid + 1;
      else hi = mid;
    }
    const limit = lo + Math.max(0, max - out.length);
    hi = lo;
    while (hi < n && hi < limit && offsets[hi]! < end) hi++;
    if (hi === lo) return true;
    const { positions, frameBlocks } = this;
    // Frames of one block are contiguous in it: one copy per block spanned.
    let total = 0;
    for (let a = lo; a < hi; ) {
      const block = frameBlocks[a]!;
      let b = a + 1;
      while (b < hi && frameBlocks[b] === block) b++;
      total += positions[b - 1]! + declaredFrameLength(block, positions[b - 1]!) - positions[a]!;
      a = b;
    }
    const copy = Buffer.allocUnsafe(total);
    let at = 0;
    for (let a = lo; a < hi; ) {
      const block = frameBlocks[a]!;
      let b = a + 1;
      while (b < hi && frameBlocks[b] === block) b++;
      const start = positions[a]!;
      const stop = positions[b - 1]! + declaredFrameLength(block, positions[b - 1]!);
      block.copy(copy, at, start, stop);
      for (let i = a; i < b; i++) out.push(decodeFrame(copy, at + positions[i]! - start, topic, partition));
      at += stop - start;
      a = b;
    }
    return true;
  }
}
