import { describe, expect, it } from 'vitest';
import { encodeModelFile, decodeModelFile } from './format.js';
import { SyntheticBackend, serviceTimeMs } from './synthetic.js';

const file = (kind: 'synthetic' | 'classifier', config: Record<string, unknown>) => decodeModelFile(encodeModelFile({ kind, name: 'm', version: '1', config }));
const items = (n: number) => Array.from({ length: n }, (_, i) => ({ requestId: `r${i}`, input: Buffer.from(`in${i}`), contentType: 'application/json', parameters: {} }));

describe('synthetic backend (load tests)', () => {
  it('takes base + per-item × batch size ms, from the model file profile', async () => {
    const slept: number[] = [];
    const backend = new SyntheticBackend({ sleep: async (ms) => void slept.push(ms) });
    const model = await backend.load(file('synthetic', { baseMs: 5, perItemMs: 2 }), 'd');
    const out = await model.infer(items(4));
    expect(slept).toEqual([13]);
    expect(out).toHaveLength(4);
    expect(JSON.parse(out[0]!.ok ? out[0]!.value.output.toString() : '{}')).toMatchObject({ synthetic: true, inputBytes: 3, serviceMs: 13 });
  });

  it('adds jitter from a hash of the request ids: bounded, repeatable, varying across batches', () => {
    const profile = { baseMs: 10, perItemMs: 0, jitterMs: 5 };
    const a = serviceTimeMs(profile, ['a', 'b']);
    expect(serviceTimeMs(profile, ['a', 'b'])).toBe(a);
    const times = Array.from({ length: 50 }, (_, i) => serviceTimeMs(profile, [`req-${i}`]));
    expect(Math.min(...times)).toBeGreaterThanOrEqual(10);
    expect(Math.max(...times)).toBeLessThan(15);
    expect(new Set(times).size).toBeGreaterThan(40);
  });

  it('serves only synthetic models unless told to serve any kind with its own profile', async () => {
    expect(new SyntheticBackend().supports('classifier')).toBe(false);
    const slept: number[] = [];
    const any = new SyntheticBackend({ anyKind: true, profile: { baseMs: 1, perItemMs: 1 }, sleep: async (ms) => void slept.push(ms) });
    expect(any.supports('classifier')).toBe(true);
    await (await any.load(file('classifier', {}), 'd')).infer(items(2));
    expect(slept).toEqual([3]);
  });

  it('does not wait at all for a zero profile (the no-op model)', async () => {
    const backend = new SyntheticBackend({ sleep: async () => expect.fail('must not sleep') });
    expect(await (await backend.load(file('synthetic', {}), 'd')).infer(items(1))).toHaveLength(1);
  });
});
