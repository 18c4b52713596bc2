/**
 * mulberry32: a small seeded PRNG for simulations and tests (the synthetic log generator, seeded
 * random walks). Never for anything that decides: deciders take no randomness at all. Written
 * here rather than taken from a package because it is eight lines and every use needs only
 * `() => number` in [0, 1).
 */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
