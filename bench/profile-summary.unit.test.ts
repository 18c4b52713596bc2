import { describe, expect, it } from 'vitest';
import { compareWindows, type Profile } from './profile-summary.js';

const frame = (functionName: string, url = 'file:///x/dist/services/a.js') => ({ functionName, url, lineNumber: 0 });

describe('compareWindows', () => {
  it('puts the function whose self time changed most between two windows first, idle left out', () => {
    // 1 ms samples: the first second mostly idle with a little of f, the second second mostly g
    const nodes = [
      { id: 1, callFrame: frame('(idle)', '') },
      { id: 2, callFrame: frame('f') },
      { id: 3, callFrame: frame('g') },
    ];
    const samples = [...Array.from({ length: 1000 }, (_, i) => (i % 10 === 0 ? 2 : 1)), ...Array.from({ length: 1000 }, (_, i) => (i % 10 === 0 ? 2 : 3))];
    const profile: Profile = { startTime: 0, endTime: 2_000_000, nodes, samples, timeDeltas: samples.map(() => 1000) };
    const c = compareWindows(profile, { from: 0, to: 999_999 }, { from: 1_000_000, to: 2_000_000 }, 10);
    expect(c.functions[0]).toEqual(['g services/a.js:1', 0, 900]);
    expect(c.functions[1]).toEqual(['f services/a.js:1', 100, 100]);
    expect(c.busyMs).toEqual([100, 1000]);
  });
});
