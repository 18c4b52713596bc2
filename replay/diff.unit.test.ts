import { describe, expect, it } from 'vitest';
import { diffValues } from './diff.js';
import { diffOutputs, type RerunOutput } from './rerun.js';

describe('diffValues', () => {
  it('is empty for equal values: deep objects, arrays, Buffers by bytes, NaN', () => {
    expect(diffValues({ a: [1, { b: Buffer.from('x') }], n: Number.NaN, s: 'x' }, { a: [1, { b: Buffer.from('x') }], n: Number.NaN, s: 'x' })).toEqual([]);
  });

  it('names each differing field by its path, with both sides', () => {
    const recorded = { workerId: 'w1', candidates: [{ score: 0.5 }, { score: 0.25 }], input: Buffer.from('a'), 'odd key': 1 };
    const rederived = { workerId: 'w2', candidates: [{ score: 0.5 }, { score: 0.75 }], input: Buffer.from('b'), 'odd key': 2 };
    expect(diffValues(recorded, rederived)).toEqual([
      { path: 'workerId', recorded: 'w1', rederived: 'w2' },
      { path: 'candidates[1].score', recorded: 0.25, rederived: 0.75 },
      { path: 'input', recorded: Buffer.from('a'), rederived: Buffer.from('b') },
      { path: '["odd key"]', recorded: 1, rederived: 2 },
    ]);
  });

  it('reports lengths, missing keys and type changes', () => {
    expect(diffValues({ xs: [1, 2, 3] }, { xs: [1, 2] })).toEqual([{ path: 'xs.length', recorded: 3, rederived: 2 }]);
    expect(diffValues({ a: 1 }, { a: 1, b: null })).toEqual([{ path: 'b', recorded: undefined, rederived: null }]);
    expect(diffValues({ a: { x: 1 } }, { a: 'x' })).toEqual([{ path: 'a', recorded: { x: 1 }, rederived: 'x' }]);
    expect(diffValues(1, 2)).toEqual([{ path: '(value)', recorded: 1, rederived: 2 }]);
  });

  it('stops at the limit', () => {
    const a = Array.from({ length: 50 }, (_, i) => i);
    expect(diffValues(a, a.map((x) => x + 1), 5)).toHaveLength(5);
  });
});

describe('diffOutputs (rerun)', () => {
  const out = (output: string | null, o: Partial<RerunOutput> = {}): RerunOutput => ({
    outcome: 'completed',
    workerId: 'w1',
    modelVersion: 'v1',
    modelDigest: 'd',
    contentType: 'application/json',
    output: output === null ? null : Buffer.from(output),
    outputSha256: null,
    cacheHit: false,
    error: null,
    at: 0,
    ...o,
  });

  it('identical bytes: no difference', () => {
    expect(diffOutputs(out('{"label":"pos","score":0.9}'), out('{"label":"pos","score":0.9}'))).toEqual([]);
  });

  it('JSON outputs: the fields that differ; same value in other bytes: one note', () => {
    expect(diffOutputs(out('{"label":"pos","scores":[0.9,0.1]}'), out('{"label":"neg","scores":[0.9,0.2]}'))).toEqual([
      { path: 'output.label', recorded: 'pos', rederived: 'neg' },
      { path: 'output.scores[1]', recorded: 0.1, rederived: 0.2 },
    ]);
    expect(diffOutputs(out('{"a":1}'), out('{ "a": 1 }'))).toEqual([{ path: 'output (bytes)', recorded: '7 B', rederived: '10 B, same JSON value, different bytes' }]);
  });

  it('other content: where the bytes first differ', () => {
    const [d] = diffOutputs(out('abcd', { contentType: 'application/octet-stream' }), out('abXd', { contentType: 'application/octet-stream' }));
    expect(d!.path).toBe('output (bytes)');
    expect(String(d!.rederived)).toContain('first difference at byte 2');
  });

  it('outcomes and errors', () => {
    expect(diffOutputs(out('x'), out(null, { outcome: 'failed', error: 'BACKEND_ERROR: boom' }))).toEqual([{ path: 'outcome', recorded: 'completed', rederived: 'failed' }]);
    expect(diffOutputs(null, out('x'))[0]!.path).toBe('(original)');
  });
});
