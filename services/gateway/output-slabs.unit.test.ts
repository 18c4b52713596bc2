import { describe, expect, it } from 'vitest';
import { OutputSlabs } from './output-slabs.js';

describe('OutputSlabs', () => {
  it('copies small outputs into one slab of its own, one after another, 8-byte aligned', () => {
    const slabs = new OutputSlabs(1024, 256);
    const pooled = Buffer.from('a pooled decode'); // a view into Node's shared 8 KiB pool
    const ha = slabs.add(pooled);
    const hb = slabs.add(Buffer.from([1, 2, 3]));
    const a = slabs.view(ha, pooled.byteLength);
    const b = slabs.view(hb, 3);
    expect(a.toString()).toBe('a pooled decode');
    expect([...b]).toEqual([1, 2, 3]);
    expect(a.buffer).toBe(b.buffer);
    expect(a.buffer).not.toBe(pooled.buffer);
    expect(a.buffer.byteLength).toBe(1024);
    expect(b.byteOffset - a.byteOffset).toBe(16);
    // A copy, not a view: changing the source after the copy changes nothing kept.
    pooled.fill(0);
    expect(slabs.view(ha, 15).toString()).toBe('a pooled decode');
    expect(slabs.slabCount).toBe(1);
  });

  it('starts a new slab when the next output does not fit, and gives a large output its own allocation', () => {
    const slabs = new OutputSlabs(1024, 256);
    const first = slabs.add(Buffer.alloc(200, 1));
    const copies = Array.from({ length: 4 }, () => slabs.add(Buffer.alloc(200, 2)));
    // 5 × 200 bytes (aligned to 200) = 1,000 ≤ 1,024 fit one slab; the sixth starts another.
    const firstView = slabs.view(first, 200);
    expect(copies.every((h) => slabs.view(h, 200).buffer === firstView.buffer)).toBe(true);
    const sixth = slabs.add(Buffer.alloc(200, 3));
    expect(slabs.view(sixth, 200).buffer).not.toBe(firstView.buffer);
    const large = slabs.add(Buffer.alloc(257, 4));
    const largeView = slabs.view(large, 257);
    expect(largeView.byteLength).toBe(257);
    expect(largeView.buffer.byteLength).toBe(257);
    expect(largeView.every((x) => x === 4)).toBe(true);
    // The slab in use is still the sixth's: a large output does not end it.
    expect(slabs.view(slabs.add(Buffer.alloc(8, 5)), 8).buffer).toBe(slabs.view(sixth, 200).buffer);
    expect(firstView.every((x) => x === 1) && copies.every((h) => slabs.view(h, 200).every((x) => x === 2))).toBe(true);
    expect(slabs.slabCount).toBe(3);
  });

  it('drops a slab once its last output is released and it is no longer being filled; a view read earlier keeps its bytes', () => {
    const slabs = new OutputSlabs(1024, 256);
    const a = slabs.add(Buffer.alloc(200, 1));
    const b = slabs.add(Buffer.alloc(200, 2));
    slabs.retain(a); // a second holder of a
    const held = slabs.view(b, 200);
    slabs.release(a);
    slabs.release(b);
    expect(slabs.view(a, 200).every((x) => x === 1)).toBe(true);
    slabs.release(a);
    // Empty, but still being filled: kept.
    expect(slabs.slabCount).toBe(1);
    const c = slabs.add(Buffer.alloc(200, 3));
    expect(slabs.view(c, 200).buffer).toBe(held.buffer);
    // The next slab starts; the first, empty once c goes, is dropped then.
    const fillers = [slabs.add(Buffer.alloc(200, 4)), slabs.add(Buffer.alloc(200, 4))];
    const d = slabs.add(Buffer.alloc(200, 5));
    expect(slabs.slabCount).toBe(2);
    for (const f of fillers) slabs.release(f);
    expect(slabs.slabCount).toBe(2);
    slabs.release(c);
    expect(slabs.slabCount).toBe(1);
    expect(() => slabs.view(c, 200)).toThrow(RangeError);
    expect(held.every((x) => x === 2)).toBe(true);
    // The dropped slab's id is reused by the next slab of its own; d's bytes are untouched.
    const large = slabs.add(Buffer.alloc(300, 6));
    expect(slabs.view(large, 300).every((x) => x === 6)).toBe(true);
    expect(slabs.view(d, 200).every((x) => x === 5)).toBe(true);
    slabs.release(large);
    expect(slabs.slabCount).toBe(1);
    expect(() => slabs.release(large)).toThrow(RangeError);
  });

  it('tells its own view of an output from equal bytes elsewhere', () => {
    const slabs = new OutputSlabs(1024, 256);
    const h = slabs.add(Buffer.from('abc'));
    expect(slabs.holds(h, 3, slabs.view(h, 3))).toBe(true);
    expect(slabs.holds(h, 3, Buffer.from('abc'))).toBe(false);
    expect(slabs.holds(h, 2, slabs.view(h, 2))).toBe(true);
    expect(slabs.holds(h, 3, slabs.view(h, 2))).toBe(false);
  });

  it('keeps an empty output empty, and refuses a packing limit above the slab size', () => {
    const slabs = new OutputSlabs();
    expect(slabs.view(slabs.add(new Uint8Array(0)), 0).byteLength).toBe(0);
    expect(() => new OutputSlabs(1024, 2048)).toThrow(RangeError);
  });
});
