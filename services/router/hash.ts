/**
 * The router's only source of "randomness": 32-bit hashes of ids.
 *
 * Written by hand rather than taken from npm because it is a dozen lines, and because every
 * router replica and `replay verify` must compute bit-identical values forever: a hash that
 * changes with a dependency upgrade would silently move sessions and break re-derivation of
 * recorded decisions. Changing anything here changes routing: bump POLICY_CODE_VERSION.
 *
 * `hash32` is FNV-1a over the string's UTF-16 code units followed by the murmur3 32-bit
 * finalizer (`fmix32`). FNV-1a alone is fast but its low bits avalanche poorly on short ids that
 * differ only in their last characters ("session-1", "session-2"), and the router takes hashes
 * modulo small numbers; the finalizer fixes that.
 */

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/** murmur3's 32-bit finalizer: a bijection on uint32 with full avalanche. */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** A well-distributed unsigned 32-bit hash of a string. */
export function hash32(s: string): number {
  let h = FNV_OFFSET;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, FNV_PRIME);
  }
  return fmix32(h);
}

/** Hash of an ordered pair of already-hashed values (e.g. session × worker for rendezvous). */
export function hashPair(a: number, b: number): number {
  return fmix32((a ^ Math.imul(b, 0x9e3779b1)) >>> 0);
}

/** A hash mapped onto [0, 1). */
export function unitInterval(h: number): number {
  return h / 0x1_0000_0000;
}
