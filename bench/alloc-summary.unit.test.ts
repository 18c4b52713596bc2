import { describe, expect, it } from 'vitest';
import { summarizeAllocations, type HeapSamplingNode } from './alloc-summary.js';

const node = (functionName: string, url: string, lineNumber: number, selfSize: number, children: HeapSamplingNode[] = []): HeapSamplingNode => ({
  callFrame: { functionName, url, lineNumber },
  selfSize,
  children,
});

describe('summarizeAllocations', () => {
  it('adds self sizes over the whole tree, by area and by function, largest first', () => {
    const head = node('(root)', '', -1, 0, [
      node('run', 'file:///x/dist/lib/log/embedded/consumer.js', 35, 1_000, [
        node('decode', 'file:///x/dist/schemas/codec.js', 113, 300, [node('Tap.readString', 'file:///x/node_modules/avsc/lib/utils.js', 682, 2_000)]),
        node('read', 'file:///x/dist/lib/log/embedded/tail.js', 158, 500),
      ]),
      // The same function reached by another path counts once, with both sizes.
      node('decode', 'file:///x/dist/schemas/codec.js', 113, 200),
    ]);
    const s = summarizeAllocations({ head }, 10);
    expect(s.totalBytes).toBe(4_000);
    expect(s.areas).toEqual([
      ['npm: avsc', 2_000],
      ['lib/log/embedded', 1_500],
      ['schemas/codec.js', 500],
    ]);
    expect(s.functions[0]).toEqual(['Tap.readString node_modules/avsc/lib/utils.js:683', 2_000]);
    expect(s.functions).toContainEqual(['decode schemas/codec.js:114', 500]);
    expect(summarizeAllocations({ head }, 1).functions).toHaveLength(1);
  });
});
