import { v7, validate, version } from 'uuid';
import { describe, expect, it } from 'vitest';
import { createEventIdFactory, eventIdTime, formatUuid } from './event-id.js';

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

  it('are the uuid package\'s v7 for the same time, counter and randomness, as text', () => {
    const random = Uint8Array.from({ length: 16 }, (_, k) => (k * 97 + 13) & 0xff);
    const ours = createEventIdFactory({ now: () => 1_767_225_600_123, random: () => random })();
    const seq = (((random[6]! & 0x7f) << 24) | (random[7]! << 16) | (random[8]! << 8) | random[9]!) >>> 0;
    expect(ours).toBe(v7({ msecs: 1_767_225_600_123, seq, random }));
  });

  it('formats every byte value as 8-4-4-4-12 lowercase hex', () => {
    for (let start = 0; start < 256; start += 16) {
      const bytes = Uint8Array.from({ length: 16 }, (_, k) => (start + k * 17) & 0xff);
      const hex = Buffer.from(bytes).toString('hex');
      expect(formatUuid(bytes)).toBe(`${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`);
    }
  });
});
