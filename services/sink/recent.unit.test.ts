import { describe, expect, it } from 'vitest';
import { RecentIds } from './recent.js';

describe('RecentIds', () => {
  it('remembers at least the last `capacity` ids and at most twice that', () => {
    const ids = new RecentIds(3);
    for (const id of ['a', 'b', 'c', 'd', 'e']) ids.add(id);
    // Generations: previous = {a, b, c}, current = {d, e}.
    expect(['a', 'b', 'c', 'd', 'e'].map((id) => ids.has(id))).toEqual([true, true, true, true, true]);
    ids.add('f'); // current fills: previous = {d, e, f}; a, b, c are forgotten
    expect(['a', 'c', 'd', 'f'].map((id) => ids.has(id))).toEqual([false, false, true, true]);
    expect(ids.size).toBe(3);
    expect(ids.has('zz')).toBe(false);
    expect(() => new RecentIds(0)).toThrow(RangeError);
  });
});
