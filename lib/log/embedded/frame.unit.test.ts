import { describe, expect, it } from 'vitest';
import { checkFrame, decodeFrame, FRAME_OVERHEAD, frameIsTombstone, frameKey, frameOffset, frameSize, frameTimestamp, writeFrame, type FrameInput } from './frame.js';

const encode = (offset: number, input: FrameInput): Buffer => {
  const size = frameSize(input);
  const buf = Buffer.alloc(size);
  expect(writeFrame(buf, 0, offset, input, size)).toBe(size);
  return buf;
};

describe('record frame', () => {
  it('roundtrips key, value, headers, offset and timestamp', () => {
    const input: FrameInput = {
      key: Buffer.from('session-1'),
      value: Buffer.from([0, 1, 2, 255]),
      headers: [
        ['traceId', Buffer.from('abc')],
        ['ünïcode', Buffer.from('é')],
        ['empty', Buffer.alloc(0)],
      ],
      timestamp: 1_700_000_000_123,
    };
    const buf = encode(42, input);
    expect(checkFrame(buf, 0, buf.length)).toBe(buf.length);
    const r = decodeFrame(buf, 0, 't', 3);
    expect(r).toEqual({
      topic: 't',
      partition: 3,
      offset: 42,
      key: Buffer.from('session-1'),
      value: Buffer.from([0, 1, 2, 255]),
      headers: { traceId: Buffer.from('abc'), ünïcode: Buffer.from('é'), empty: Buffer.alloc(0) },
      timestamp: 1_700_000_000_123,
    });
    expect(frameOffset(buf, 0)).toBe(42);
    expect(frameTimestamp(buf, 0)).toBe(1_700_000_000_123);
    expect(frameKey(buf, 0)).toEqual(Buffer.from('session-1'));
    expect(frameIsTombstone(buf, 0)).toBe(false);
  });

  it('keeps null keys, tombstones, offsets beyond 2^32 and negative timestamps', () => {
    const buf = encode(2 ** 40 + 7, { key: null, value: null, headers: undefined, timestamp: -5 });
    expect(buf.length).toBe(FRAME_OVERHEAD);
    const r = decodeFrame(buf, 0, 't', 0);
    expect(r).toMatchObject({ offset: 2 ** 40 + 7, key: null, value: null, headers: {}, timestamp: -5 });
    expect(frameIsTombstone(buf, 0)).toBe(true);
    expect(frameKey(buf, 0)).toBeNull();
  });

  it('decodes without copying: the record is a view of the buffer it was given', () => {
    const buf = encode(0, { key: Buffer.from('k'), value: Buffer.from('value'), headers: [['h', Buffer.from('x')]], timestamp: 0 });
    const r = decodeFrame(buf, 0, 't', 0);
    expect(r.value!.buffer).toBe(buf.buffer);
    expect(r.key!.buffer).toBe(buf.buffer);
  });

  it('a header named __proto__ stays a header', () => {
    const buf = encode(0, { key: null, value: Buffer.from('v'), headers: [['__proto__', Buffer.from('p')]], timestamp: 0 });
    const r = decodeFrame(buf, 0, 't', 0);
    expect(Object.keys(r.headers)).toEqual(['__proto__']);
    expect(Object.getPrototypeOf(r.headers)).toBe(Object.prototype);
  });

  it('detects a flipped bit anywhere after the CRC field', () => {
    const buf = encode(9, { key: Buffer.from('key'), value: Buffer.from('some value'), headers: [['a', Buffer.from('b')]], timestamp: 1 });
    for (let i = 9; i < buf.length; i++) {
      const bad = Buffer.from(buf);
      bad[i]! ^= 0x10;
      expect(checkFrame(bad, 0, bad.length), `byte ${i}`).toBe('crc-mismatch');
    }
    const badMagic = Buffer.from(buf);
    badMagic[8] = 9;
    expect(checkFrame(badMagic, 0, badMagic.length)).toBe('bad-magic');
    const badCrc = Buffer.from(buf);
    badCrc[5]! ^= 1;
    expect(checkFrame(badCrc, 0, badCrc.length)).toBe('crc-mismatch');
    expect(checkFrame(badCrc, 0, badCrc.length, false)).toBe(buf.length);
  });

  it('reports frames cut short and impossible sizes', () => {
    const buf = encode(0, { key: null, value: Buffer.from('0123456789'), headers: undefined, timestamp: 0 });
    expect(checkFrame(buf, 0, 3)).toBe('short-header');
    expect(checkFrame(buf, 0, buf.length - 1)).toBe('short-frame');
    expect(checkFrame(Buffer.alloc(64), 0, 64)).toBe('bad-size');
  });

  it('frames several records back to back', () => {
    const inputs = [0, 1, 2].map((i): FrameInput => ({ key: Buffer.from(`k${i}`), value: Buffer.alloc(i * 10, i), headers: undefined, timestamp: i }));
    const sizes = inputs.map(frameSize);
    const buf = Buffer.alloc(sizes.reduce((a, b) => a + b, 0));
    let pos = 0;
    inputs.forEach((input, i) => (pos = writeFrame(buf, pos, 100 + i, input, sizes[i]!)));
    pos = 0;
    const offsets: number[] = [];
    while (pos < buf.length) {
      const n = checkFrame(buf, pos, buf.length);
      expect(typeof n).toBe('number');
      offsets.push(frameOffset(buf, pos));
      pos += n as number;
    }
    expect(offsets).toEqual([100, 101, 102]);
  });
});
