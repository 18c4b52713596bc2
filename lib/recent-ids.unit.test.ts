import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { mulberry32 } from './prng.js';
import { RecentIds, uuidText, uuidWords } from './recent-ids.js';

describe('RecentIds', () => {
  it('holds what was added until it is deleted, for UUIDs and for any other string', () => {
    const ids = new RecentIds(100);
    const uuid = randomUUID();
    const others = ['order-17', 'x', '', 'É-ünïcode', 'a'.repeat(300), uuid.toUpperCase(), '00000000-0000-0000-0000-000000000000', `${uuid.slice(0, 35)}g`];
    ids.add(uuid);
    for (const o of others) ids.add(o);
    expect(ids.has(uuid)).toBe(true);
    for (const o of others) expect(ids.has(o)).toBe(true);
    expect(ids.size).toBe(others.length + 1);
    expect(ids.has(randomUUID())).toBe(false);
    expect(ids.has('order-18')).toBe(false);
    expect(ids.delete('order-17')).toBe(true);
    expect(ids.delete('order-17')).toBe(false);
    expect(ids.has('order-17')).toBe(false);
    expect(ids.has('x')).toBe(true);
    expect(ids.size).toBe(others.length);
  });

  it('tells apart a UUID in lowercase from the same text in capitals (different ids)', () => {
    const ids = new RecentIds(10);
    const uuid = randomUUID();
    ids.add(uuid);
    expect(ids.has(uuid.toUpperCase())).toBe(false);
    ids.add(uuid.toUpperCase());
    ids.delete(uuid);
    expect(ids.has(uuid.toUpperCase())).toBe(true);
    expect(ids.has(uuid)).toBe(false);
  });

  it('forgets the oldest once capacity is reached; adding an id it holds does not move it', () => {
    const ids = new RecentIds(3);
    ids.add('a');
    ids.add('b');
    ids.add('c');
    ids.add('a'); // held: keeps its place, first out
    ids.add('d');
    expect(['a', 'b', 'c', 'd'].map((x) => ids.has(x))).toEqual([false, true, true, true]);
    expect(ids.size).toBe(3);
  });

  it('skips a deleted entry when its turn to be evicted comes, and an id deleted and added again lives a full window from then', () => {
    const ids = new RecentIds(3);
    ids.add('a');
    ids.add('b');
    ids.delete('a');
    ids.add('c');
    ids.add('a'); // the ring: a(deleted), b, c, then a again evicts the first a's entry
    expect(['a', 'b', 'c'].map((x) => ids.has(x))).toEqual([true, true, true]);
    ids.add('d'); // evicts b
    expect(['a', 'b', 'c', 'd'].map((x) => ids.has(x))).toEqual([true, false, true, true]);
    ids.add('e'); // evicts c
    ids.add('f'); // evicts a
    expect(['a', 'c', 'd', 'e', 'f'].map((x) => ids.has(x))).toEqual([false, false, true, true, true]);
  });

  it('answers as a set of the last N added would, over a random run with collisions in its table', () => {
    const random = mulberry32(5);
    const capacity = 500;
    const ids = new RecentIds(capacity);
    // The model: ids in insertion order (a Map keeps it), the oldest dropped past capacity.
    const model = new Map<string, number>();
    const ring: (string | undefined)[] = [];
    let insertions = 0;
    const pool = Array.from({ length: 1_500 }, (_, i) => (i % 3 === 0 ? `client-${i}` : randomUUID()));
    for (let step = 0; step < 100_000; step++) {
      const id = pool[Math.floor(random() * pool.length)]!;
      const op = random();
      if (op < 0.5) {
        if (!model.has(id)) {
          if (ring.length === capacity) {
            const oldest = ring.shift()!;
            const at = insertions - capacity;
            if (oldest !== undefined && model.get(oldest) === at) model.delete(oldest);
          }
          model.set(id, insertions++);
          ring.push(id);
        }
        ids.add(id);
      } else if (op < 0.6) {
        expect(ids.delete(id)).toBe(model.delete(id));
      } else {
        expect(ids.has(id)).toBe(model.has(id));
      }
      expect(ids.size).toBe(model.size);
    }
    for (const id of pool) expect(ids.has(id)).toBe(model.has(id));
  });

  it('keeps a ring per number, each forgetting its own oldest, and gives each id a row of its ring that stays its own', () => {
    const ids = new RecentIds(4);
    const rows = new Map<string, number>();
    for (let i = 0; i < 4; i++) rows.set(`a${i}`, ids.add(`a${i}`, 0));
    // Ring 5 first used after ring 0 is full: the index grows and is rebuilt, rows unchanged.
    for (let i = 0; i < 4; i++) rows.set(`b${i}`, ids.add(`b${i}`, 5));
    for (const [id, row] of rows) expect(ids.rowOf(id)).toBe(row);
    expect([...rows.values()].slice(0, 4)).toEqual([0, 1, 2, 3]);
    expect([...rows.values()].slice(4)).toEqual([20, 21, 22, 23]);
    // An id held keeps its row whatever ring it is added to again.
    expect(ids.add('a1', 5)).toBe(1);
    // Ring 0 full: a4 takes a0's row; ring 5 is untouched.
    expect(ids.add('a4', 0)).toBe(0);
    expect(ids.has('a0')).toBe(false);
    expect(['b0', 'b1', 'b2', 'b3'].every((id) => ids.has(id))).toBe(true);
    expect(ids.rowOf('a0')).toBe(-1);
    expect(ids.size).toBe(8);
    expect(() => ids.add('x', -1)).toThrow(RangeError);
  });

  it('reads a canonical UUID as 128 bits and writes it back as the same text; other texts are not UUIDs', () => {
    const words = new Uint32Array(8);
    for (let i = 0; i < 100; i++) {
      const id = randomUUID();
      expect(uuidWords(id, words, 4)).toBe(true);
      expect(uuidText(words, 4)).toBe(id);
    }
    expect(uuidText(Uint32Array.of(0x0190a1b2, 0xc3d47e5f, 0x8a9b0000, 0x0000ffff))).toBe('0190a1b2-c3d4-7e5f-8a9b-00000000ffff');
    for (const not of ['0190A1B2-C3D4-7E5F-8A9B-00000000FFFF', '00000000-0000-0000-0000-000000000000', '0190a1b2-c3d4-9e5f-8a9b-00000000ffff', '0190a1b2c3d47e5f8a9b00000000ffff', '0190a1b2-c3d4-7e5f-8a9b-00000000fffg']) {
      expect(uuidWords(not, words)).toBe(false);
    }
  });

  it('allocates its memory up front: about 26 bytes per id', () => {
    const ids = new RecentIds(200_000);
    expect(ids.bytes).toBeLessThan(200_000 * 32);
    expect(() => new RecentIds(0)).toThrow(RangeError);
  });
});
