/**
 * The encode buffers of one embedded log, shared by all its partitions: appends are framed into
 * a chunk, a flush writes the chunks with one `writev`, and then gives them back here for the
 * next batches of any partition (saves allocating one per flush).
 *
 * Shared rather than kept per partition so that what the log holds between flushes is bounded by
 * `maxSpare` chunks, not by the number of partitions ever written (a per-partition spare of
 * 1 MiB made ~100 partitions hold ~100–200 MiB). Chunks come from `Buffer.allocUnsafeSlow`:
 * each is its own allocation, outside Node's 8 KiB pool.
 */
export class ChunkPool {
  private readonly spare: Buffer[] = [];

  /**
   * @param chunkBytes size of one chunk; larger records get a buffer of their own size
   * @param maxSpare most chunks kept between flushes
   */
  constructor(
    readonly chunkBytes: number,
    readonly maxSpare: number,
  ) {}

  /** A chunk of `chunkBytes` (contents undefined). */
  take(): Buffer {
    return this.spare.pop() ?? Buffer.allocUnsafeSlow(this.chunkBytes);
  }

  /** Returns a chunk taken from this pool, once nothing reads it any more. */
  give(chunk: Buffer): void {
    if (this.spare.length < this.maxSpare && chunk.length === this.chunkBytes) this.spare.push(chunk);
  }

  /** Chunks kept now, for tests. */
  get spareCount(): number {
    return this.spare.length;
  }
}
