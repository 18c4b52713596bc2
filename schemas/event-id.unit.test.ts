import { validate, version } from 'uuid';
import { describe, expect, it } from 'vitest';
import { createEventIdFactory, eventIdTime } from './event-id.js';

describe('event ids (UUIDv7)', () => {
  it('are valid v7 UUIDs carrying the time', () => {
    const id = createEventIdFactory({ now: () => 1_767_225_600_123 })();
    expect(validate(id)).toBe(true);
    expect(version(id)).toBe(7);
    expect(eventIdTime(id)).toBe(1_767_225_600_123);
  });

  it('are deterministic with injected time and randomness', () => {
    const make = () => createEventIdFactory({ now: () => 1_000, random: () => new Uint8Array(16).fill(0x5a) });
    const a = make();
    const b = make();
    expect([a(), a(), a()]).toEqual([b(), b(), b()]);
  });

  it('strictly increase even when the clock stands still or steps back', () => {
    const times = [5_000, 5_000, 5_000, 4_000, 6_000, 6_000];
    let i = 0;
    let n = 0;
    const next = createEventIdFactory({
      now: () => times[i++]!,
      random: () => Uint8Array.from({ length: 16 }, (_, k) => (k * 31 + n++) & 0xff),
    });
    const ids = times.map(() => next());
    expect([...ids].sort()).toEqual(ids);
    expect(new Set(ids).size).toBe(ids.length);
    expect(eventIdTime(ids[3]!)).toBe(5_000);
    expect(eventIdTime(ids[4]!)).toBe(6_000);
  });
});
