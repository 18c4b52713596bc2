import { createHash } from 'node:crypto';
import { formatUuid } from '../schemas/event-id.js';

/** 32-bit words per key (a 128-bit id). */
const KEY_WORDS = 4;
/** An index slot holding nothing; others hold their row + 1. */
const EMPTY = 0;

const HEX_VALUE = new Int8Array(128).fill(-1);
for (let i = 0; i < 10; i++) HEX_VALUE[48 + i] = i;
for (let i = 0; i < 6; i++) HEX_VALUE[97 + i] = 10 + i;

/**
 * A UUID's 128 bits, into `into[at..at+3]` (big-endian words); false when `id` is not a UUID of
 * version 1–8 in its canonical lowercase text.
 */
export function uuidWords(id: string, into: Uint32Array, at = 0): boolean {
  if (id.length !== 36) return false;
  let word = 0;
  let nibbles = 0;
  for (let i = 0; i < 36; i++) {
    const c = id.charCodeAt(i);
    if (i === 8 || i === 13 || i === 18 || i === 23) {
      if (c !== 45) return false;
      continue;
    }
    const v = c < 128 ? HEX_VALUE[c]! : -1;
    if (v < 0) return false;
    word = (word << 4) | v;
    if (++nibbles % 8 === 0) {
      into[at + nibbles / 8 - 1] = word >>> 0;
      word = 0;
    }
  }
  const version = (into[at + 1]! >>> 12) & 0xf;
  return version >= 1 && version <= 8;
}

const uuidBytes = new Uint8Array(16);

/** The canonical text of the UUID in `words[at..at+3]` (the inverse of `uuidWords`). */
export function uuidText(words: Uint32Array, at = 0): string {
  for (let w = 0; w < KEY_WORDS; w++) {
    const v = words[at + w]!;
    uuidBytes[w * 4] = v >>> 24;
    uuidBytes[w * 4 + 1] = v >>> 16;
    uuidBytes[w * 4 + 2] = v >>> 8;
    uuidBytes[w * 4 + 3] = v;
  }
  return formatUuid(uuidBytes);
}

/**
 * The last `capacity` ids added to each of its rings, as a set with a row per id: `has`, `rowOf`,
 * `add`, `delete`, each ring's oldest out first. Kept in typed arrays, with no object per id: the
 * router remembers 200k decided request ids for its duplicate check and the controller 10k
 * outcomes per results partition, and as maps of strings these were hundreds of thousands of
 * strings and map entries on the V8 heap for every mark-compact to walk.
 *
 * Rows: ring r owns rows `r × capacity` to `(r + 1) × capacity − 1`, and an id's row stays its own
 * while it is held, so a caller keeps what it knows of the id in columns by row (the
 * controller's outcomes). Rings are made as they are first used (ring numbers are small: a
 * partition's).
 *
 * An id is kept as 128 bits: a UUID (version 1–8) in its canonical lowercase text — the
 * gateway's ids (v7), Idempotency-Key ids (v5), most clients' — as its own 16 bytes, exact; any
 * other string as the first 16 bytes of its SHA-256 (version nibble cleared, so never equal to a
 * UUID's), so two different ids are taken for one with a chance of about 2⁻¹²⁰ per pair (less
 * likely than two random UUIDs being equal), and no one can choose an id to match another's.
 *
 * Layout: each ring's keys in insertion order, and one open-addressed index of rows (linear
 * probing, at most half full, deletion by shifting back — no tombstones). Adding to a full ring
 * evicts its oldest entry, unless that entry was deleted since (the index no longer points at it).
 */
export class RecentIds {
  private mask = 0;
  /** Row + 1 per slot, `EMPTY` for none. */
  private index = new Uint32Array(0);
  /** Keys by row, `KEY_WORDS` each. */
  private keys = new Uint32Array(0);
  /** Per ring: its next row to fill (relative to the ring), and whether it has come round. */
  private readonly next: number[] = [];
  private readonly full: boolean[] = [];
  private count = 0;
  /** The key being looked up or added (scratch). */
  private readonly key = new Uint32Array(KEY_WORDS);

  constructor(readonly capacity: number) {
    if (!Number.isSafeInteger(capacity) || capacity < 1 || capacity > 2 ** 28) throw new RangeError(`RecentIds capacity must be an integer in 1..2^28, got ${capacity}`);
    this.addRings(1);
  }

  /** Ids held now. */
  get size(): number {
    return this.count;
  }

  /** Bytes of its arrays (all the memory it holds; a ring's is allocated when the ring is first used). */
  get bytes(): number {
    return this.index.byteLength + this.keys.byteLength;
  }

  has(id: string): boolean {
    return this.rowOf(id) >= 0;
  }

  /** The row of `id`, or -1 when it is not held. */
  rowOf(id: string): number {
    const k = this.keyOf(id);
    const slot = this.find(k[0]!, k[1]!, k[2]!, k[3]!);
    return slot < 0 ? -1 : this.index[slot]! - 1;
  }

  /**
   * Remember `id` in `ring` (an id already held keeps its place and row, whatever the ring); the
   * ring's oldest goes when it holds `capacity`. Its row.
   */
  add(id: string, ring = 0): number {
    if (!Number.isSafeInteger(ring) || ring < 0 || ring > 65_535) throw new RangeError(`RecentIds ring must be an integer in 0..65535, got ${ring}`);
    if (ring >= this.next.length) this.addRings(ring + 1);
    const k = this.keyOf(id);
    const held = this.find(k[0]!, k[1]!, k[2]!, k[3]!);
    if (held >= 0) return this.index[held]! - 1;
    const row = ring * this.capacity + this.next[ring]!;
    if (this.full[ring]) this.evict(row);
    this.keys.set(k, row * KEY_WORDS);
    let slot = this.home(k[0]!, k[1]!, k[2]!, k[3]!);
    while (this.index[slot] !== EMPTY) slot = (slot + 1) & this.mask;
    this.index[slot] = row + 1;
    this.count++;
    if (++this.next[ring]! === this.capacity) {
      this.next[ring] = 0;
      this.full[ring] = true;
    }
    return row;
  }

  /** Forget `id` (its ring entry stays, and is skipped when its turn to be evicted comes). */
  delete(id: string): boolean {
    const k = this.keyOf(id);
    const slot = this.find(k[0]!, k[1]!, k[2]!, k[3]!);
    if (slot < 0) return false;
    this.remove(slot);
    return true;
  }

  /** Drops the id in `row` from the index, unless it was deleted (or deleted and added again elsewhere) since. */
  private evict(row: number): void {
    const at = row * KEY_WORDS;
    const r = this.keys;
    const slot = this.find(r[at]!, r[at + 1]!, r[at + 2]!, r[at + 3]!);
    if (slot >= 0 && this.index[slot] === row + 1) this.remove(slot);
  }

  /** The index slot of the key, or -1. */
  private find(k0: number, k1: number, k2: number, k3: number): number {
    const r = this.keys;
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
    const r = this.keys;
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

  /** Room for `rings` rings: longer key storage, and a larger index (rebuilt) when it would pass half full. */
  private addRings(rings: number): void {
    const rows = rings * this.capacity;
    const keys = new Uint32Array(rows * KEY_WORDS);
    keys.set(this.keys);
    this.keys = keys;
    while (this.next.length < rings) {
      this.next.push(0);
      this.full.push(false);
    }
    let slots = 16;
    while (slots < rows * 2) slots *= 2;
    if (slots <= this.index.length) return;
    const old = this.index;
    this.index = new Uint32Array(slots);
    this.mask = slots - 1;
    for (const entry of old) {
      if (entry === EMPTY) continue;
      const at = (entry - 1) * KEY_WORDS;
      let slot = this.home(keys[at]!, keys[at + 1]!, keys[at + 2]!, keys[at + 3]!);
      while (this.index[slot] !== EMPTY) slot = (slot + 1) & this.mask;
      this.index[slot] = entry;
    }
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
    if (uuidWords(id, k)) return k;
    const digest = createHash('sha256').update(id).digest();
    for (let w = 0; w < KEY_WORDS; w++) k[w] = digest.readUInt32BE(w * 4);
    // Version nibble 0: a hashed key never equals a UUID's, whose version is 1–8.
    k[1] = (k[1]! & 0xffff_0fff) >>> 0;
    return k;
  }
}
