import { describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import { generateModels, manifestOf, type ManifestEntry } from '../../../scripts/gen-models.js';
import { MemoryBlobStore } from '../../../lib/blob/memory.js';
import { SwitchyardError } from '../../../lib/errors.js';
import { ModelLoader } from '../loader.js';
import { failureOf } from '../failures.js';
import { BuiltinBackend } from './builtin.js';
import { decodeModelFile, encodeModelFile } from './format.js';
import type { InferenceItem, ItemResult, LoadedModel } from './port.js';
import { SyntheticBackend } from './synthetic.js';

const models = generateModels();
const bytesOf = (model: string, version: string): Buffer => models.find((m) => m.model === model && m.version === version)!.bytes;

async function load(model: string, version: string): Promise<LoadedModel> {
  const store = new MemoryBlobStore();
  const { digest } = await store.put(bytesOf(model, version));
  return new ModelLoader({ store, backends: [new BuiltinBackend(), new SyntheticBackend()] }).load(digest);
}

const item = (text: string, contentType = 'application/json', requestId = 'r'): InferenceItem => ({
  requestId,
  input: Buffer.from(contentType === 'application/json' ? JSON.stringify({ text }) : text),
  contentType,
  parameters: {},
});
const json = (r: ItemResult | undefined): Record<string, unknown> => {
  if (!r?.ok) throw new Error(`expected a result, got ${r?.ok === false ? r.error.message : 'nothing'}`);
  return JSON.parse(r.value.output.toString()) as Record<string, unknown>;
};

describe('shipped models (scripts/gen-models.ts)', () => {
  it('are deterministic: a fresh run matches the committed manifest and files byte for byte', async () => {
    const committed = JSON.parse(await readFile(new URL('../../../models/manifest.json', import.meta.url), 'utf8')) as ManifestEntry[];
    expect(manifestOf(models)).toEqual(committed);
    for (const m of models) expect((await readFile(new URL(`../../../models/${m.file}`, import.meta.url))).equals(m.bytes), m.file).toBe(true);
  });

  it('are small, and include two models with two versions each', () => {
    for (const m of models) expect(m.bytes.length).toBeLessThan(300 * 1024);
    const versions = (name: string) => models.filter((m) => m.model === name).map((m) => m.version);
    expect(versions('sentiment-small')).toEqual(['v1', 'v2']);
    expect(versions('embed-small')).toEqual(['v1', 'v2']);
  });
});

describe('classifier (hashed bag of words → linear → softmax)', () => {
  it('classifies by the weights: positive, negative and neutral text', async () => {
    const m = await load('sentiment-small', 'v1');
    const [pos, neg, neutral] = await m.infer([item('I love it, a great and wonderful product'), item('terrible. I hate it, the worst'), item('the meeting is on tuesday at noon')]);
    expect(json(pos).label).toBe('positive');
    expect(json(neg).label).toBe('negative');
    expect(json(neutral).label).toBe('neutral');
    const scores = json(pos).scores as Record<string, number>;
    expect(Object.keys(scores)).toEqual(['negative', 'neutral', 'positive']);
    expect(Object.values(scores).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 6);
  });

  it('gives different outputs for different versions of the weights', async () => {
    const [v1, v2] = await Promise.all([load('sentiment-small', 'v1'), load('sentiment-small', 'v2')]);
    const text = item('honestly this is not good');
    const a = json((await v1.infer([text]))[0]);
    const b = json((await v2.infer([text]))[0]);
    expect(a.scores).not.toEqual(b.scores);
    // v2 knows the negation bigram; v1 sees only "good".
    expect(a.label).toBe('positive');
    expect(b.label).toBe('negative');
  });

  it('is deterministic and reads text/plain and JSON strings too', async () => {
    const m = await load('sentiment-small', 'v2');
    const [a, b, c] = await m.infer([item('superb, thanks'), item('superb, thanks', 'text/plain'), { ...item(''), input: Buffer.from(JSON.stringify('superb, thanks')) }]);
    expect(json(a)).toEqual(json(b));
    expect(json(a)).toEqual(json(c));
  });

  it('fails only the item with bad input, not its batch', async () => {
    const m = await load('sentiment-small', 'v1');
    const results = await m.infer([item('good'), { ...item('x'), input: Buffer.from('{not json') }, { ...item('x'), contentType: 'image/png' }, item('bad')]);
    expect(results.map((r) => r.ok)).toEqual([true, false, false, true]);
    const failure = results[1]!.ok ? undefined : failureOf(results[1]!.error);
    expect(failure).toMatchObject({ errorCode: 'INVALID_INPUT', retriable: false });
  });
});

describe('embedding (hashed n-grams → projection → L2 normalised)', () => {
  const cosine = (a: number[], b: number[]) => a.reduce((s, x, i) => s + x * b[i]!, 0);

  it('returns unit vectors of the model dimension', async () => {
    const m = await load('embed-small', 'v1');
    const [r] = await m.infer([item('routing inference requests across workers')]);
    const { embedding, dim } = json(r) as { embedding: number[]; dim: number };
    expect(dim).toBe(32);
    expect(embedding).toHaveLength(32);
    expect(Math.hypot(...embedding)).toBeCloseTo(1, 6);
  });

  it('puts similar texts closer than unrelated ones', async () => {
    const m = await load('embed-small', 'v1');
    const [a, b, c] = (await m.infer([item('the router sends requests to workers'), item('the routers send a request to a worker'), item('bananas are yellow fruit')])).map((r) => json(r).embedding as number[]);
    expect(cosine(a!, b!)).toBeGreaterThan(cosine(a!, c!));
  });

  it('differs between versions', async () => {
    const [v1, v2] = await Promise.all([load('embed-small', 'v1'), load('embed-small', 'v2')]);
    const text = item('same text, other weights');
    expect(json((await v1.infer([text]))[0]).embedding).not.toEqual(json((await v2.infer([text]))[0]).embedding);
  });

  it('embeds text with no words as the zero vector rather than NaN', async () => {
    const m = await load('embed-small', 'v2');
    const { embedding } = json((await m.infer([item('!!! ...')]))[0]) as { embedding: number[] };
    expect(embedding.every((x) => x === 0)).toBe(true);
  });
});

describe('model loader', () => {
  it('refuses weights whose bytes do not match the digest (DIGEST_MISMATCH, not retriable)', async () => {
    const store = new MemoryBlobStore();
    const { digest } = await store.put(bytesOf('sentiment-small', 'v1'));
    store.corrupt(digest, bytesOf('sentiment-small', 'v2'));
    const loader = new ModelLoader({ store, backends: [new BuiltinBackend()] });
    const err = await loader.load(digest).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SwitchyardError);
    expect((err as SwitchyardError).code).toBe('SY_ERR_BLOB_DIGEST_MISMATCH');
    expect(failureOf(err)).toMatchObject({ errorCode: 'DIGEST_MISMATCH', retriable: false });
    expect(loader.loaded()).toEqual([]);
  });

  it('verifies even when the store does not (a store adapter that trusts its copy)', async () => {
    const good = bytesOf('embed-small', 'v1');
    const { digest } = await new MemoryBlobStore().put(good);
    const lying = { get: async () => bytesOf('embed-small', 'v2'), put: async () => ({ digest, sizeBytes: 0 }), has: async () => true, stat: async () => undefined };
    const err = await new ModelLoader({ store: lying, backends: [new BuiltinBackend()] }).load(digest).catch((e: unknown) => e);
    expect((err as SwitchyardError).code).toBe('SY_ERR_BLOB_DIGEST_MISMATCH');
  });

  it('loads lazily, once, and lists what it loaded; a missing blob is MODEL_NOT_FOUND and retried later', async () => {
    const store = new MemoryBlobStore();
    const bytes = bytesOf('sentiment-tiny', 'v1');
    const { digest } = await new MemoryBlobStore().put(bytes);
    const loader = new ModelLoader({ store, backends: [new BuiltinBackend()] });
    const missing = await loader.load(digest).catch((e: unknown) => e);
    expect(failureOf(missing)).toMatchObject({ errorCode: 'MODEL_NOT_FOUND', retriable: true });
    await store.put(bytes);
    const [a, b] = await Promise.all([loader.load(digest), loader.load(`sha256:${digest}`)]);
    expect(a).toBe(b);
    expect(loader.loaded()).toEqual([digest]);
  });

  it('says so when no backend runs the kind, and when the blob is not a model file', async () => {
    const store = new MemoryBlobStore();
    const synthetic = await store.put(bytesOf('noop', 'v1'));
    const junk = await store.put(Buffer.from('just some bytes'));
    const loader = new ModelLoader({ store, backends: [new BuiltinBackend()] });
    expect(failureOf(await loader.load(synthetic.digest).catch((e: unknown) => e))).toMatchObject({ errorCode: 'UNSUPPORTED_MODEL', retriable: true });
    expect(failureOf(await loader.load(junk.digest).catch((e: unknown) => e))).toMatchObject({ errorCode: 'MODEL_FORMAT', retriable: false });
  });

  it('unloads the least recently used model beyond maxLoaded', async () => {
    const store = new MemoryBlobStore();
    const digests = [];
    for (const [m, v] of [['sentiment-small', 'v1'], ['sentiment-small', 'v2'], ['sentiment-tiny', 'v1']] as const) digests.push((await store.put(bytesOf(m, v))).digest);
    const loader = new ModelLoader({ store, backends: [new BuiltinBackend()], maxLoaded: 2 });
    for (const d of digests) await loader.load(d);
    expect(loader.loaded()).toEqual(digests.slice(1));
  });

  it('keeps the recency order when a model is asked for again and again (the fast path of the latest digest)', async () => {
    const store = new MemoryBlobStore();
    const [a, b, c] = await Promise.all(
      ([['sentiment-small', 'v1'], ['sentiment-small', 'v2'], ['sentiment-tiny', 'v1']] as const).map(async ([m, v]) => (await store.put(bytesOf(m, v))).digest),
    );
    const loader = new ModelLoader({ store, backends: [new BuiltinBackend()], maxLoaded: 2 });
    const first = await loader.load(a!);
    await loader.load(b!);
    // a again (moved to most recent), then again and again: the same model, b stays the oldest.
    expect(await loader.load(a!)).toBe(first);
    expect(await loader.load(a!)).toBe(first);
    expect(await loader.load(`sha256:${a!.toUpperCase()}`)).toBe(first);
    await loader.load(c!);
    expect(loader.loaded()).toEqual([a, c]);
  });
});

describe('model file format', () => {
  it('round-trips tensors and refuses truncated or foreign files', () => {
    const bytes = encodeModelFile({ kind: 'embedding', name: 'x', version: '1', config: { buckets: 2, dim: 3 } }, [{ name: 'P', shape: [2, 3], data: Float32Array.of(1, 2, 3, 4, 5, 6.5) }]);
    const file = decodeModelFile(bytes);
    expect([...file.tensors.get('P')!]).toEqual([1, 2, 3, 4, 5, 6.5]);
    expect(() => decodeModelFile(bytes.subarray(0, bytes.length - 4))).toThrow(/runs past the end/);
    expect(() => decodeModelFile(Buffer.concat([bytes, Buffer.alloc(4)]))).toThrow(/follow the last tensor/);
    expect(() => decodeModelFile(Buffer.from('GGUF....'))).toThrow(/SYMODEL1/);
  });
});
