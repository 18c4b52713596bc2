import { describe, expect, it } from 'vitest';
import { SwitchyardError } from '../lib/errors.js';
import { MAGIC_BYTE, WIRE_HEADER_BYTES, frame, readSchemaId, unframe, wireHeader } from './wire.js';

const codeOf = (fn: () => unknown): string | undefined => {
  try {
    fn();
  } catch (err) {
    return err instanceof SwitchyardError ? err.code : 'not a SwitchyardError';
  }
  return undefined;
};

describe('Confluent wire format', () => {
  it('frames as magic byte 0, 4-byte big-endian id, payload', () => {
    const framed = frame(0x01020304, Buffer.from([0xaa, 0xbb]));
    expect([...framed]).toEqual([MAGIC_BYTE, 1, 2, 3, 4, 0xaa, 0xbb]);
    expect([...wireHeader(258)]).toEqual([0, 0, 0, 1, 2]);
    expect(WIRE_HEADER_BYTES).toBe(5);
  });

  it('unframes to the id and a view of the payload', () => {
    const framed = frame(42, Buffer.from('avro'));
    const { schemaId, payload } = unframe(framed);
    expect(schemaId).toBe(42);
    expect(payload.toString()).toBe('avro');
    expect(payload.buffer).toBe(framed.buffer);
    expect(unframe(frame(7, Buffer.alloc(0)))).toEqual({ schemaId: 7, payload: Buffer.alloc(0) });
    expect(readSchemaId(frame(0x7fffffff, Buffer.alloc(1)))).toBe(0x7fffffff);
  });

  it('rejects buffers that are not framed, without retrying', () => {
    expect(codeOf(() => unframe(Buffer.from([1, 0, 0, 0, 1, 9])))).toBe('SY_ERR_CODEC_MAGIC');
    expect(codeOf(() => unframe(Buffer.from([0, 0, 0])))).toBe('SY_ERR_CODEC_MAGIC');
    expect(codeOf(() => readSchemaId(Buffer.alloc(0)))).toBe('SY_ERR_CODEC_MAGIC');
    try {
      unframe(Buffer.from('{"json":true}'));
    } catch (err) {
      expect((err as SwitchyardError).retriable).toBe(false);
      expect((err as SwitchyardError).message).toMatch(/magic byte 0.*got 123/);
    }
  });

  it('refuses ids that do not fit a signed 32-bit int', () => {
    expect(codeOf(() => frame(-1, Buffer.alloc(0)))).toBe('SY_ERR_CODEC_ENCODE');
    expect(codeOf(() => wireHeader(2 ** 31))).toBe('SY_ERR_CODEC_ENCODE');
    expect(codeOf(() => wireHeader(1.5))).toBe('SY_ERR_CODEC_ENCODE');
  });
});
