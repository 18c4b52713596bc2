import { createHash } from 'node:crypto';

/** 32-bit words per key (a 128-bit id). */
const KEY_WORDS = 4;
/** A table slot holding nothing; others hold their ring index + 1. */
const EMPTY = 0;

const HEX = new Int8Array(128).fill(-1);
for (let i = 0; i < 10; i++) HEX[48 + i] = i;
for (let i = 0; i < 6; i++) HEX[97 + i] = 10 + i;

/**
 * The last `capacity` ids added, as a set: `has`, `add`, `delete`, oldest out first. Kept in
 * typed arrays, with no object per id: the router remembers 200k decided request ids for its
 * duplicate check, and as an LRU of strings that was 200k strings and map entries on the V8
 * heap (~20 MiB) for every mark-compact to walk; here it is ~5 MiB outside the heap.
 *
 * An id is kept as 128 bits: a UUID (version 1–8) in its canonical lowercase text — the
 * gateway's ids (v7), Idempotency-Key ids (v5), most clients' — as its own 16 bytes, exact; any
 * other string as the first 16 bytes of its SHA-256 (version nibble cleared, so never equal to a
 * UUID's), so two different ids are taken for one with a chance of about 2⁻¹²⁰ per pair (less
 * likely than two random UUIDs being equal), and no one can choose an id to match another's.
 *
 * Layout: a ring of keys in insertion order, and an open-addressed index into it (linear
 * probing, at most half full, deletion by shifting back — no tombstones). Adding to a full ring
 * evicts its oldest entry, unless that entry was deleted since (the index no longer points at
 * it).
 */
export class RecentIds {
  private readonly mask: number;
  /** Ring index + 1 per slot, `EMPTY` for none. */
  private readonly index: Uint32Array;
  /** Keys, `KEY_WORDS` each, in insertion order from `ringNext` (oldest) round. */
  private readonly ring: Uint32Array;
  private ringNext = 0;
  private ringFull = false;
  private count = 0;
  /** The key being looked up or added (scratch). */
  private readonly key = new Uint32Array(KEY_WORDS);

  constructor(readonly capacity: number) {
    if (!Number.isSafeInteger(capacity) || capacity < 1 || capacity > 2 ** 28) throw new RangeError(`RecentIds capacity must be an integer in 1..2^28, got ${capacity}`);
    let slots = 16;
    while (slots < capacity * 2) slots *= 2;
    this.mask = slots - 1;
    this.index = new Uint32Array(slots);
    this.ring = new Uint32Array(capacity * KEY_WORDS);
  }

  /** Ids held now. */
  get size(): number {
    return this.count;
  }

  /** Bytes of its two arrays (all the memory it holds, allocated up front). */
  get bytes(): number {
    return this.index.byteLength + this.ring.byteLength;
  }

  has(id: string): boolean {
    const k = this.keyOf(id);
    return this.find(k[0]!, k[1]!, k[2]!, k[3]!) >= 0;
  }

  /** Remember `id` (an id already held keeps its place); the oldest goes when `capacity` are held. */
  add(id: string): void {
    const k = this.keyOf(id);
    if (this.find(k[0]!, k[1]!, k[2]!, k[3]!) >= 0) return;
    if (this.ringFull) this.evictOldest();
    const at = this.ringNext;
    this.ring.set(k, at * KEY_WORDS);
    let slot = this.home(k[0]!, k[1]!, k[2]!, k[3]!);
    while (this.index[slot] !== EMPTY) slot = (slot + 1) & this.mask;
    this.index[slot] = at + 1;
    this.count++;
    if (++this.ringNext === this.capacity) {
      this.ringNext = 0;
      this.ringFull = true;
    }
  }

  /** Forget `id` (its ring entry stays, and is skipped when its turn to be evicted comes). */
  delete(id: string): boolean {
    const k = this.keyOf(id);
    const slot = this.find(k[0]!, k[1]!, k[2]!, k[3]!);
    if (slot < 0) return false;
    this.remove(slot);
    return true;
  }

  /** Drops the ring's oldest entry from the index, unless it was deleted (or deleted and added again) since. */
  private evictOldest(): void {
    const at = this.ringNext * KEY_WORDS;
    const r = this.ring;
    const slot = this.find(r[at]!, r[at + 1]!, r[at + 2]!, r[at + 3]!);
    if (slot >= 0 && this.index[slot] === this.ringNext + 1) this.remove(slot);
  }

  /** The index slot of the key, or -1. */
  private find(k0: number, k1: number, k2: number, k3: number): number {
    const r = this.ring;
    for (let slot = this.home(k0, k1, k2, k3); ; slot = (slot + 1) & this.mask) {
      const entry = this.index[slot]!;
      if (entry === EMPTY) return -1;
      const at = (entry - 1) * KEY_WORDS;
      if (r[at] === k0 && r[at + 1] === k1 && r[at + 2] === k2 && r[at + 3] === k3) return slot;
    }
  }

  /** Empty `slot`, shifting back the entries after it that would no longer be found (linear probing's deletion). */
  private remove(slot: number): void {
    const x = this.index;
    const r = this.ring;
    let hole = slot;
    for (let j = (hole + 1) & this.mask; x[j] !== EMPTY; j = (j + 1) & this.mask) {
      const at = (x[j]! - 1) * KEY_WORDS;
      const home = this.home(r[at]!, r[at + 1]!, r[at + 2]!, r[at + 3]!);
      // The entry at j stays when its home is cyclically within (hole, j]; else it moves to the hole.
      const stays = hole <= j ? home > hole && home <= j : home > hole || home <= j;
      if (stays) continue;
      x[hole] = x[j]!;
      hole = j;
    }
    x[hole] = EMPTY;
    this.count--;
  }

  /** A slot from all 128 bits (a v7 UUID's first 48 are a timestamp: no use alone). */
  private home(k0: number, k1: number, k2: number, k3: number): number {
    let h = k0 ^ Math.imul(k1, 0x9e3779b1) ^ Math.imul(k2, 0x85ebca77) ^ Math.imul(k3, 0xc2b2ae3d);
    h ^= h >>> 16;
    h = Math.imul(h, 0x7feb352d);
    h ^= h >>> 15;
    h = Math.imul(h, 0x846ca68b);
    h ^= h >>> 16;
    return h & this.mask;
  }

  /** `id` as 128 bits, in `this.key` (returned). */
  private keyOf(id: string): Uint32Array {
    const k = this.key;
    if (id.length === 36 && this.uuidKey(id)) return k;
    const digest = createHash('sha256').update(id).digest();
    for (let w = 0; w < KEY_WORDS; w++) k[w] = digest.readUInt32BE(w * 4);
    // Version nibble 0: a hashed key never equals a UUID's, whose version is 1–8.
    k[1] = (k[1]! & 0xffff_0fff) >>> 0;
    return k;
  }

  /**
   * A UUID's 16 bytes, into `this.key`; false when `id` is not a UUID of version 1–8 in its
   * canonical lowercase text (such ids are hashed instead).
   */
  private uuidKey(id: string): boolean {
    let word = 0;
    let nibbles = 0;
    for (let i = 0; i < 36; i++) {
      const c = id.charCodeAt(i);
      if (i === 8 || i === 13 || i === 18 || i === 23) {
        if (c !== 45) return false;
        continue;
      }
      const v = c < 128 ? HEX[c]! : -1;
      if (v < 0) return false;
      word = (word << 4) | v;
      if (++nibbles % 8 === 0) {
        this.key[nibbles / 8 - 1] = word >>> 0;
        word = 0;
      }
    }
    const version = (this.key[1]! >>> 12) & 0xf;
    return version >= 1 && version <= 8;
  }
}
