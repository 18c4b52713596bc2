import { describe, expect, it } from 'vitest';
import { fmix32, hash32, hashPair, unitInterval } from './hash.js';

describe('hash32', () => {
  it('is frozen: these values route sessions in recorded decisions (changing them needs a new POLICY_CODE_VERSION)', () => {
    expect([hash32(''), hash32('a'), hash32('session-1'), hash32('w0'), hash32('é✓')]).toEqual([2872998923, 444641715, 599268235, 175731675, 2326392780]);
    expect(hashPair(1, 2)).toBe(232174035);
  });

  it('returns unsigned 32-bit integers', () => {
    for (const s of ['', 'x', 'a much longer string with spaces', '\u0000\uffff']) {
      const h = hash32(s);
      expect(Number.isInteger(h) && h >= 0 && h <= 0xffffffff).toBe(true);
    }
    expect(unitInterval(0xffffffff)).toBeLessThan(1);
  });

  it('spreads sequential ids evenly over small moduli (the low bits avalanche)', () => {
    for (const m of [2, 3, 8, 64]) {
      const buckets = new Array<number>(m).fill(0);
      const n = 64_000;
      for (let i = 0; i < n; i++) buckets[hash32(`req-${i}`) % m]!++;
      const expected = n / m;
      // χ² with m-1 degrees of freedom; 3·m is far beyond any plausible fluctuation.
      const chi2 = buckets.reduce((acc, b) => acc + (b - expected) ** 2 / expected, 0);
      expect(chi2).toBeLessThan(3 * m + 10);
    }
  });

  it('flips about half the output bits for a one-bit change of input', () => {
    let flipped = 0;
    const n = 2000;
    for (let i = 0; i < n; i++) flipped += popcount(fmix32(i) ^ fmix32(i ^ 1));
    expect(flipped / n).toBeGreaterThan(14);
    expect(flipped / n).toBeLessThan(18);
  });
});

function popcount(x: number): number {
  let c = 0;
  for (let v = x >>> 0; v !== 0; v &= v - 1) c++;
  return c;
}
