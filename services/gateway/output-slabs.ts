/** Slab size: a few hundred small outputs, about a second of them at a few hundred req/s. */
export const SLAB_BYTES = 64 * 1024;
/** Outputs up to this size are packed into slabs; larger ones get an allocation of their own. */
export const MAX_PACKED_BYTES = 4 * 1024;

/**
 * Copies of the outputs the results tracker keeps, packed one after another into slabs of its
 * own (`Buffer.allocUnsafeSlow`, outside Node's shared 8 KiB pool).
 *
 * Why not one allocation per output: an `ArrayBuffer` costs ~250 bytes besides its data (the
 * ArrayBuffer and its view on the V8 heap, a backing store and its bookkeeping in malloc). At
 * the tracker's 100k requests that was ~35 MiB more than the outputs' bytes, and ~300 small
 * malloc allocations per second freed in LRU order, which the allocator returns to the system
 * slowly. A slab costs that once for hundreds of outputs.
 *
 * Why a slab pins little: outputs are copied in the order their requests complete, and the
 * tracker's LRU forgets requests oldest first, so a slab's outputs are forgotten together; a
 * slab lives while any of its outputs is remembered. Only the tracker's outputs live in its
 * slabs, unlike a pooled copy, which pins a slab of garbage from everywhere else.
 */
export class OutputSlabs {
  private slab: Buffer | undefined;
  private used = 0;

  constructor(
    private readonly slabBytes = SLAB_BYTES,
    private readonly maxPackedBytes = MAX_PACKED_BYTES,
  ) {
    if (maxPackedBytes > slabBytes) throw new RangeError(`maxPackedBytes (${maxPackedBytes}) exceeds slabBytes (${slabBytes})`);
  }

  /** A copy of `bytes` that shares memory with nothing but other outputs kept here. */
  copy(bytes: Uint8Array): Buffer {
    const n = bytes.byteLength;
    if (n > this.maxPackedBytes) {
      const own = Buffer.allocUnsafeSlow(n);
      own.set(bytes);
      return own;
    }
    if (this.slab === undefined || this.used + n > this.slabBytes) {
      this.slab = Buffer.allocUnsafeSlow(this.slabBytes);
      this.used = 0;
    }
    const out = this.slab.subarray(this.used, this.used + n);
    out.set(bytes);
    // 8-byte aligned, as an allocator would: a reader may view the bytes as wider numbers.
    this.used += (n + 7) & ~7;
    return out;
  }
}
