import { describe, expect, it } from 'vitest';
import { OutputSlabs } from './output-slabs.js';

describe('OutputSlabs', () => {
  it('copies small outputs into one slab of its own, one after another, 8-byte aligned', () => {
    const slabs = new OutputSlabs(1024, 256);
    const pooled = Buffer.from('a pooled decode'); // a view into Node's shared 8 KiB pool
    const a = slabs.copy(pooled);
    const b = slabs.copy(Buffer.from([1, 2, 3]));
    expect(a.toString()).toBe('a pooled decode');
    expect([...b]).toEqual([1, 2, 3]);
    expect(a.buffer).toBe(b.buffer);
    expect(a.buffer).not.toBe(pooled.buffer);
    expect(a.buffer.byteLength).toBe(1024);
    expect(a.byteOffset).toBe(0);
    expect(b.byteOffset).toBe(16);
    // A copy, not a view: changing the source after the copy changes nothing kept.
    pooled.fill(0);
    expect(a.toString()).toBe('a pooled decode');
  });

  it('starts a new slab when the next output does not fit, and gives a large output its own allocation', () => {
    const slabs = new OutputSlabs(1024, 256);
    const first = slabs.copy(Buffer.alloc(200, 1));
    const copies = Array.from({ length: 4 }, () => slabs.copy(Buffer.alloc(200, 2)));
    // 5 × 200 bytes (aligned to 200) = 1,000 ≤ 1,024 fit one slab; the sixth starts another.
    expect(copies.every((c) => c.buffer === first.buffer)).toBe(true);
    const sixth = slabs.copy(Buffer.alloc(200, 3));
    expect(sixth.buffer).not.toBe(first.buffer);
    expect(sixth.byteOffset).toBe(0);
    const large = slabs.copy(Buffer.alloc(257, 4));
    expect(large.byteOffset).toBe(0);
    expect(large.buffer.byteLength).toBe(257);
    expect(large.every((x) => x === 4)).toBe(true);
    // The slab in use is still the sixth's: a large output does not end it.
    expect(slabs.copy(Buffer.alloc(8, 5)).buffer).toBe(sixth.buffer);
    expect(first.every((x) => x === 1) && copies.every((c) => c.every((x) => x === 2))).toBe(true);
  });

  it('keeps an empty output empty, and refuses a packing limit above the slab size', () => {
    expect(new OutputSlabs().copy(new Uint8Array(0)).byteLength).toBe(0);
    expect(() => new OutputSlabs(1024, 2048)).toThrow(RangeError);
  });
});
