/**
 * Text → sparse features for the built-in models: the hashing trick. Tokens are hashed
 * (FNV-1a, 32 bit) into `buckets` slots with a sign from another bit of the hash, so
 * collisions cancel out on average instead of adding up. `scripts/gen-models.ts` uses the
 * same functions to put weight on chosen words, so the two must never drift apart.
 */

/** FNV-1a 32-bit hash of a string's UTF-16 code units. */
export function fnv1a32(s: string, seed = 0x811c9dc5): number {
  let h = seed >>> 0;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  // Final avalanche (murmur3 fmix32) so low bits depend on every input bit.
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b) >>> 0;
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35) >>> 0;
  h ^= h >>> 16;
  return h >>> 0;
}

/** Lower-cased words (letters, digits and inner apostrophes). */
export function words(text: string): string[] {
  return text.toLowerCase().match(/[\p{L}\p{N}]+(?:'[\p{L}]+)?/gu) ?? [];
}

/** Word unigrams and bigrams (`w:` and `b:` prefixed so they hash apart). */
export function wordFeatures(text: string): string[] {
  const ws = words(text);
  const out = ws.map((w) => `w:${w}`);
  for (let i = 1; i < ws.length; i++) out.push(`b:${ws[i - 1]} ${ws[i]}`);
  return out;
}

/** Words plus character n-grams of each word with boundary marks (`<ne`, `eur`, `ral>`…). */
export function charNgramFeatures(text: string, sizes: readonly number[] = [3, 4]): string[] {
  const out: string[] = [];
  for (const w of words(text)) {
    out.push(`w:${w}`);
    const padded = `<${w}>`;
    for (const n of sizes) {
      for (let i = 0; i + n <= padded.length; i++) out.push(`c:${padded.slice(i, i + n)}`);
    }
  }
  return out;
}

/** Bucket and sign of a feature. */
export function hashFeature(feature: string, buckets: number): { bucket: number; sign: 1 | -1 } {
  const h = fnv1a32(feature);
  return { bucket: h % buckets, sign: h & 0x80000000 ? -1 : 1 };
}

/** Signed counts per bucket, as parallel arrays (sorted by bucket), scaled to unit L2 norm. */
export function hashedVector(features: readonly string[], buckets: number): { index: Int32Array; value: Float32Array } {
  const acc = new Map<number, number>();
  for (const f of features) {
    const { bucket, sign } = hashFeature(f, buckets);
    acc.set(bucket, (acc.get(bucket) ?? 0) + sign);
  }
  const entries = [...acc].filter(([, v]) => v !== 0).sort((a, b) => a[0] - b[0]);
  let norm = 0;
  for (const [, v] of entries) norm += v * v;
  norm = Math.sqrt(norm) || 1;
  return { index: Int32Array.from(entries, ([i]) => i), value: Float32Array.from(entries, ([, v]) => v / norm) };
}
