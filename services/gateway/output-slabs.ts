/** Slab size: a few hundred small outputs, about a second of them at a few hundred req/s. */
export const SLAB_BYTES = 64 * 1024;
/** Outputs up to this size are packed into slabs; larger ones get an allocation of their own. */
export const MAX_PACKED_BYTES = 4 * 1024;

/** A handle is `slab id × OFFSET_SPAN + offset`: one number, exact in a double while ids stay below 2^21. */
const OFFSET_SPAN = 2 ** 32;

/**
 * The bytes of the outputs the results tracker keeps, packed one after another into slabs of
 * its own (`Buffer.allocUnsafeSlow`, outside Node's shared 8 KiB pool). An output is kept as a
 * number — its handle, with its length beside it — not as an object: the tracker holds 100k of
 * them for minutes, and a `Buffer` view per output was 100k more objects on the V8 heap for
 * every mark-compact to walk (~90 bytes each). `view` makes a view when one is read.
 *
 * Why not one allocation per output: an `ArrayBuffer` costs ~250 bytes besides its data (the
 * ArrayBuffer and its view on the V8 heap, a backing store and its bookkeeping in malloc). At
 * the tracker's 100k requests that was ~35 MiB more than the outputs' bytes, and ~300 small
 * malloc allocations per second freed in LRU order, which the allocator returns to the system
 * slowly. A slab costs that once for hundreds of outputs.
 *
 * Lifetime: each slab counts the outputs kept in it (`retain`/`release`) and is dropped when
 * none is left and it is no longer the one being filled. Outputs are copied in the order their
 * requests complete and the tracker forgets requests oldest first, so a slab's outputs are
 * forgotten together. A view read earlier keeps its slab's memory alive on its own (a view holds
 * its ArrayBuffer), and a slab's bytes are never written twice, so a dropped slab is never
 * reused under a reader.
 */
export class OutputSlabs {
  private readonly slabs: (Buffer | undefined)[] = [];
  private readonly refs: number[] = [];
  private readonly freeIds: number[] = [];
  /** The slab being filled (-1: none yet) and how much of it is used. */
  private current = -1;
  private used = 0;

  constructor(
    private readonly slabBytes = SLAB_BYTES,
    private readonly maxPackedBytes = MAX_PACKED_BYTES,
  ) {
    if (maxPackedBytes > slabBytes) throw new RangeError(`maxPackedBytes (${maxPackedBytes}) exceeds slabBytes (${slabBytes})`);
    if (slabBytes > OFFSET_SPAN) throw new RangeError(`slabBytes (${slabBytes}) exceeds ${OFFSET_SPAN}`);
  }

  /** Keep a copy of `bytes` (sharing memory with nothing but other outputs kept here); its handle, retained once. */
  add(bytes: Uint8Array): number {
    const n = bytes.byteLength;
    if (n > this.maxPackedBytes) {
      const id = this.newSlab(Buffer.allocUnsafeSlow(n));
      this.slabs[id]!.set(bytes);
      this.refs[id] = 1;
      return id * OFFSET_SPAN;
    }
    if (this.current < 0 || this.used + n > this.slabBytes) {
      const previous = this.current;
      this.current = this.newSlab(Buffer.allocUnsafeSlow(this.slabBytes));
      this.used = 0;
      if (previous >= 0 && this.refs[previous] === 0) this.drop(previous);
    }
    const offset = this.used;
    this.slabs[this.current]!.set(bytes, offset);
    // 8-byte aligned, as an allocator would: a reader may view the bytes as wider numbers.
    this.used += (n + 7) & ~7;
    this.refs[this.current]!++;
    return this.current * OFFSET_SPAN + offset;
  }

  /** The kept bytes of `handle` (a new view each call). */
  view(handle: number, length: number): Buffer {
    const id = Math.floor(handle / OFFSET_SPAN);
    const offset = handle - id * OFFSET_SPAN;
    const slab = this.slabs[id];
    if (slab === undefined) throw new RangeError(`output slab ${id} was released`);
    return slab.subarray(offset, offset + length);
  }

  /** Whether `bytes` is the view of `handle` (the same memory, not equal bytes). */
  holds(handle: number, length: number, bytes: Uint8Array): boolean {
    const id = Math.floor(handle / OFFSET_SPAN);
    const slab = this.slabs[id];
    return slab !== undefined && bytes.buffer === slab.buffer && bytes.byteOffset === slab.byteOffset + (handle - id * OFFSET_SPAN) && bytes.byteLength === length;
  }

  /** One more holder of `handle`'s output. */
  retain(handle: number): void {
    this.refs[Math.floor(handle / OFFSET_SPAN)]!++;
  }

  /** One holder fewer; the slab is dropped once nothing is kept in it and it is not being filled. */
  release(handle: number): void {
    const id = Math.floor(handle / OFFSET_SPAN);
    const left = --this.refs[id]!;
    if (left < 0) throw new RangeError(`output slab ${id} released more often than retained`);
    if (left === 0 && id !== this.current) this.drop(id);
  }

  /** Slabs held now (the one being filled included). */
  get slabCount(): number {
    return this.slabs.length - this.freeIds.length;
  }

  private newSlab(slab: Buffer): number {
    const id = this.freeIds.pop() ?? this.slabs.length;
    this.slabs[id] = slab;
    this.refs[id] = 0;
    return id;
  }

  private drop(id: number): void {
    this.slabs[id] = undefined;
    this.freeIds.push(id);
  }
}
