/**
 * Generates the small models Switchyard ships (`models/`): deterministic, seeded weights, so
 * the same script gives the same bytes and digests on every machine (a unit test checks the
 * committed manifest against a fresh run). Run: `npx tsx scripts/gen-models.ts [--out models]`.
 *
 * - `sentiment-small` v1, v2: classifier over hashed words and bigrams → negative / neutral /
 *   positive. Weights are small seeded noise plus weight on a sentiment lexicon; v2 has a
 *   larger lexicon, negation bigrams ("not good") and other noise, so its outputs differ.
 * - `sentiment-tiny` v1: a smaller classifier (the fallback of sentiment-small).
 * - `embed-small` v1, v2: hashed words and character n-grams → random projection to 32
 *   dimensions → L2-normalised; the versions differ in their projection seed.
 * - `noop` v1: a synthetic model (no weights, zero service time) for benchmarks.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { sha256Hex } from '../lib/blob/digest.js';
import { hashFeature } from '../services/worker/backends/features.js';
import { encodeModelFile, type ModelKind } from '../services/worker/backends/format.js';

export interface GeneratedModel {
  model: string;
  version: string;
  kind: ModelKind;
  /** File name under the output directory. */
  file: string;
  fallbackModel: string | null;
  metadata: Record<string, string>;
  bytes: Buffer;
}

export interface ManifestEntry extends Omit<GeneratedModel, 'bytes'> {
  digest: string;
  sizeBytes: number;
}

/** splitmix32: a small seeded PRNG (deterministic; never Math.random for weights). */
export function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return ((z ^ (z >>> 16)) >>> 0) / 0x1_0000_0000;
  };
}

/** Standard normal samples from a uniform source (Box–Muller). */
function gaussian(uniform: () => number): () => number {
  return () => {
    const u = Math.max(uniform(), 1e-12);
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * uniform());
  };
}

const LABELS = ['negative', 'neutral', 'positive'];

const LEXICON_V1 = {
  positive: ['good', 'great', 'love', 'excellent', 'happy', 'wonderful', 'best', 'amazing', 'nice', 'fantastic', 'like', 'enjoy', 'fast', 'helpful'],
  negative: ['bad', 'terrible', 'hate', 'awful', 'worst', 'poor', 'horrible', 'sad', 'boring', 'disappointing', 'broken', 'angry', 'slow', 'wrong'],
};
const LEXICON_V2 = {
  positive: [...LEXICON_V1.positive, 'perfect', 'brilliant', 'delightful', 'superb', 'recommend', 'thanks', 'works'],
  negative: [...LEXICON_V1.negative, 'useless', 'ugly', 'annoying', 'refund', 'crash', 'crashes', 'fails'],
  /** Bigrams that flip a word's polarity. */
  flipped: { positive: ['not bad', 'not terrible', 'not slow'], negative: ['not good', 'not great', 'not worth', "don't like"] },
};

function classifier(opts: { seed: number; buckets: number; lexicon: { positive: string[]; negative: string[]; flipped?: { positive: string[]; negative: string[] } }; strength: number; noise: number }): { W: Float32Array; b: Float32Array } {
  const { seed, buckets, lexicon, strength, noise } = opts;
  const normal = gaussian(prng(seed));
  const W = new Float32Array(LABELS.length * buckets);
  for (let i = 0; i < W.length; i++) W[i] = noise * normal();
  const push = (feature: string, label: 'positive' | 'negative', s: number) => {
    const { bucket, sign } = hashFeature(feature, buckets);
    const towards = LABELS.indexOf(label);
    const away = LABELS.indexOf(label === 'positive' ? 'negative' : 'positive');
    W[towards * buckets + bucket]! += s * sign;
    W[away * buckets + bucket]! -= (s / 2) * sign;
  };
  for (const w of lexicon.positive) push(`w:${w}`, 'positive', strength);
  for (const w of lexicon.negative) push(`w:${w}`, 'negative', strength);
  for (const bg of lexicon.flipped?.positive ?? []) push(`b:${bg}`, 'positive', 2 * strength);
  for (const bg of lexicon.flipped?.negative ?? []) push(`b:${bg}`, 'negative', 2 * strength);
  // A slight prior towards neutral: text with no sentiment words is neutral.
  const b = Float32Array.from(LABELS, (l) => (l === 'neutral' ? 0.5 : 0));
  return { W, b };
}

function projection(seed: number, buckets: number, dim: number): Float32Array {
  const normal = gaussian(prng(seed));
  const P = new Float32Array(buckets * dim);
  const scale = 1 / Math.sqrt(dim);
  for (let i = 0; i < P.length; i++) P[i] = normal() * scale;
  return P;
}

/** Every shipped model, generated in memory. */
export function generateModels(): GeneratedModel[] {
  const out: GeneratedModel[] = [];
  const add = (m: Omit<GeneratedModel, 'file'>) => out.push({ ...m, file: `${m.model}-${m.version}.symodel` });

  const sentiment = (version: string, buckets: number, c: ReturnType<typeof classifier>, extra: Record<string, string>) =>
    encodeModelFile(
      { kind: 'classifier', name: 'sentiment', version, config: { labels: LABELS, buckets, features: 'words+bigrams' }, metadata: extra },
      [
        { name: 'W', shape: [LABELS.length, buckets], data: c.W },
        { name: 'b', shape: [LABELS.length], data: c.b },
      ],
    );
  const meta = (m: Record<string, string>) => ({ generator: 'scripts/gen-models.ts', ...m });

  const v1 = classifier({ seed: 0x5e47_0001, buckets: 1024, lexicon: LEXICON_V1, strength: 2.5, noise: 0.02 });
  add({ model: 'sentiment-small', version: 'v1', kind: 'classifier', fallbackModel: 'sentiment-tiny', metadata: meta({ task: 'sentiment', seed: '0x5e470001' }), bytes: sentiment('v1', 1024, v1, { lexicon: 'v1' }) });
  const v2 = classifier({ seed: 0x5e47_0002, buckets: 1024, lexicon: LEXICON_V2, strength: 3, noise: 0.03 });
  add({ model: 'sentiment-small', version: 'v2', kind: 'classifier', fallbackModel: 'sentiment-tiny', metadata: meta({ task: 'sentiment', seed: '0x5e470002' }), bytes: sentiment('v2', 1024, v2, { lexicon: 'v2' }) });
  const tiny = classifier({ seed: 0x5e47_0003, buckets: 256, lexicon: LEXICON_V1, strength: 2, noise: 0.01 });
  add({ model: 'sentiment-tiny', version: 'v1', kind: 'classifier', fallbackModel: null, metadata: meta({ task: 'sentiment', seed: '0x5e470003' }), bytes: sentiment('v1', 256, tiny, { lexicon: 'v1' }) });

  for (const [version, seed] of [
    ['v1', 0xe3b0_0001],
    ['v2', 0xe3b0_0002],
  ] as const) {
    const buckets = 1024;
    const dim = 32;
    const bytes = encodeModelFile(
      { kind: 'embedding', name: 'embed-small', version, config: { buckets, dim, ngrams: [3, 4], features: 'words+char-ngrams' } },
      [{ name: 'P', shape: [buckets, dim], data: projection(seed, buckets, dim) }],
    );
    add({ model: 'embed-small', version, kind: 'embedding', fallbackModel: null, metadata: meta({ task: 'embedding', seed: `0x${seed.toString(16)}` }), bytes });
  }

  add({
    model: 'noop',
    version: 'v1',
    kind: 'synthetic',
    fallbackModel: null,
    metadata: meta({ task: 'benchmark' }),
    bytes: encodeModelFile({ kind: 'synthetic', name: 'noop', version: 'v1', config: { baseMs: 0, perItemMs: 0, jitterMs: 0 } }),
  });
  return out;
}

export function manifestOf(models: readonly GeneratedModel[]): ManifestEntry[] {
  return models.map(({ bytes, ...m }) => ({ ...m, digest: sha256Hex(bytes), sizeBytes: bytes.length }));
}

/** Writes each model file and `manifest.json` into `dir`. */
export async function writeModels(dir: string): Promise<ManifestEntry[]> {
  const models = generateModels();
  await mkdir(dir, { recursive: true });
  for (const m of models) await writeFile(join(dir, m.file), m.bytes);
  const manifest = manifestOf(models);
  await writeFile(join(dir, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  return manifest;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const i = process.argv.indexOf('--out');
  const dir = i > 0 ? process.argv[i + 1]! : 'models';
  const manifest = await writeModels(dir);
  for (const m of manifest) console.log(`${m.model}@${m.version}\t${m.kind}\t${m.sizeBytes} B\tsha256:${m.digest}\t${join(dir, m.file)}`);
}
