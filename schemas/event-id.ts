import { randomFillSync } from 'node:crypto';
import { v7 } from 'uuid';

/** Makes event ids. */
export type EventIdFactory = () => string;

export interface EventIdOptions {
  /** Clock in ms since the Unix epoch. @default Date.now */
  now?: () => number;
  /** 16 random bytes per call. @default pooledRandom16() (node:crypto) */
  random?: () => Uint8Array;
}

/**
 * A factory of UUIDv7 event ids: 48 bits of ms time, then a 32-bit counter seeded from the
 * random bytes, then random bits. Ids from one factory strictly increase even when the clock
 * stands still or steps back (the counter carries over into the time field, as the uuid
 * package's own v7 does). With `now` and `random` injected the ids are deterministic.
 */
/**
 * 16 random bytes per call, cut from a 4 KiB pool refilled from node:crypto: one
 * `randomFillSync` per 256 ids instead of one per id (it showed up in serving profiles).
 */
export function pooledRandom16(): () => Uint8Array {
  const pool = new Uint8Array(4096);
  let at = pool.length;
  return () => {
    if (at === pool.length) {
      randomFillSync(pool);
      at = 0;
    }
    at += 16;
    return pool.subarray(at - 16, at);
  };
}

export function createEventIdFactory({ now = Date.now, random = pooledRandom16() }: EventIdOptions = {}): EventIdFactory {
  let lastMs = -Infinity;
  let seq = 0;
  const bytes = new Uint8Array(16);
  return () => {
    const rnds = random();
    if (rnds.length < 16) throw new RangeError(`random() must return at least 16 bytes, got ${rnds.length}`);
    const ms = now();
    if (ms > lastMs) {
      lastMs = ms;
      // The counter starts from random bits with the top bit clear, leaving room to count up.
      seq = (((rnds[6]! & 0x7f) << 24) | (rnds[7]! << 16) | (rnds[8]! << 8) | rnds[9]!) >>> 0;
    } else {
      seq = (seq + 1) >>> 0;
      if (seq === 0) lastMs++;
    }
    v7({ msecs: lastMs, seq, random: rnds }, bytes, 0);
    return formatUuid(bytes);
  };
}

/** Hex digits as character codes, two per byte value. */
const HEX = Uint8Array.from({ length: 512 }, (_, i) => '0123456789abcdef'.charCodeAt(i & 1 ? (i >> 1) & 0xf : i >> 5));
/** Where each of the 16 bytes' two digits go in the 36-character text (dashes after bytes 4, 6, 8, 10). */
const DIGIT_AT = Uint8Array.from({ length: 16 }, (_, i) => 2 * i + (i >= 4 ? 1 : 0) + (i >= 6 ? 1 : 0) + (i >= 8 ? 1 : 0) + (i >= 10 ? 1 : 0));
const text = Buffer.from('00000000-0000-0000-0000-000000000000', 'latin1');

/**
 * The canonical text of 16 UUID bytes. One string, decoded once from a reused
 * buffer: the uuid package's stringify joins ~20 pieces per id, and ids are made several times
 * per request.
 */
export function formatUuid(b: Uint8Array): string {
  for (let i = 0; i < 16; i++) {
    const at = DIGIT_AT[i]!;
    const v = b[i]! << 1;
    text[at] = HEX[v]!;
    text[at + 1] = HEX[v + 1]!;
  }
  return text.toString('latin1', 0, 36);
}

/** The ms timestamp inside a UUIDv7. */
export function eventIdTime(id: string): number {
  const hex = id.slice(0, 8) + id.slice(9, 13);
  return Number.parseInt(hex, 16);
}
