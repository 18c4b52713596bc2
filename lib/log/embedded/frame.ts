import { crc32 } from 'node:zlib';
import type { Headers, LogRecord } from '../port.js';

/**
 * The on-disk frame of one record in a segment file. All integers big-endian.
 *
 * ```
 *  0  u32  size        bytes after this field (crc .. end of value)
 *  4  u32  crc         CRC-32 (zlib/IEEE) of bytes [8, 4 + size)
 *  8  u8   magic       FRAME_MAGIC
 *  9  u8   attributes  reserved, 0
 * 10  u32  offset hi   offset = hi * 2^32 + lo (offsets are safe integers)
 * 14  u32  offset lo
 * 18  i32  ts hi       timestamp ms = hi * 2^32 + lo (signed hi)
 * 22  u32  ts lo
 * 26  i32  key length  -1 = null key
 *     ...  key bytes
 *     u16  header count
 *          per header: u16 name length, name (utf8), u32 value length, value
 *     i32  value length  -1 = null value (tombstone)
 *     ...  value bytes
 * ```
 *
 * The offset lives in the frame so that compaction can copy frames verbatim and a segment
 * can be re-indexed from its bytes alone. `crc32` is node:zlib's (Node ≥ 20.15; package.json
 * requires 20.19), native, so no table-driven CRC of our own. CRCs are checked by every
 * recovery scan and compaction, and by reads of sealed segments; tail reads of the active
 * segment skip the check (its frames were either scanned at open or written by this
 * process), which matters at 1 µs per KiB on the hot path.
 */
export const FRAME_MAGIC = 1;
/** Bytes of a frame with empty key, no headers and empty value. */
export const FRAME_OVERHEAD = 36;
/** Smallest legal value of the `size` field. */
export const MIN_FRAME_SIZE = FRAME_OVERHEAD - 4;
/** Largest legal value of the `size` field (keeps positions within u32 arithmetic). */
export const MAX_FRAME_SIZE = 0x7fff_ffff;
const TWO_32 = 0x1_0000_0000;

/** A record ready to be framed: key and headers already as bytes. */
export interface FrameInput {
  key: Buffer | null;
  value: Buffer | null;
  /** Header names and values; `undefined` when there are none. */
  headers: [string, Buffer][] | undefined;
  timestamp: number;
}

/** Total frame bytes (including the size field) for a record. */
export function frameSize(r: FrameInput): number {
  let n = FRAME_OVERHEAD + (r.key?.length ?? 0) + (r.value?.length ?? 0);
  if (r.headers !== undefined) {
    for (const [name, value] of r.headers) n += 6 + Buffer.byteLength(name, 'utf8') + value.length;
  }
  return n;
}

/**
 * Writes the frame of `r` at `offset` into `buf` at `pos`; `size` must be `frameSize(r)`.
 * Returns the position after the frame.
 */
export function writeFrame(buf: Buffer, pos: number, offset: number, r: FrameInput, size: number): number {
  const start = pos;
  buf.writeUInt32BE(size - 4, pos);
  // crc written last
  buf[pos + 8] = FRAME_MAGIC;
  buf[pos + 9] = 0;
  buf.writeUInt32BE(Math.floor(offset / TWO_32), pos + 10);
  buf.writeUInt32BE(offset >>> 0, pos + 14);
  const ts = r.timestamp;
  buf.writeInt32BE(Math.floor(ts / TWO_32), pos + 18);
  buf.writeUInt32BE(((ts % TWO_32) + TWO_32) % TWO_32, pos + 22);
  pos += 26;
  if (r.key === null) {
    buf.writeInt32BE(-1, pos);
    pos += 4;
  } else {
    buf.writeInt32BE(r.key.length, pos);
    pos += 4;
    pos += r.key.copy(buf, pos);
  }
  const headers = r.headers;
  if (headers === undefined) {
    buf.writeUInt16BE(0, pos);
    pos += 2;
  } else {
    buf.writeUInt16BE(headers.length, pos);
    pos += 2;
    for (const [name, value] of headers) {
      const nameLen = buf.write(name, pos + 2, 'utf8');
      buf.writeUInt16BE(nameLen, pos);
      pos += 2 + nameLen;
      buf.writeUInt32BE(value.length, pos);
      pos += 4;
      pos += value.copy(buf, pos);
    }
  }
  if (r.value === null) {
    buf.writeInt32BE(-1, pos);
    pos += 4;
  } else {
    buf.writeInt32BE(r.value.length, pos);
    pos += 4;
    pos += r.value.copy(buf, pos);
  }
  buf.writeUInt32BE(crc32(buf.subarray(start + 8, pos)), start + 4);
  return pos;
}

/** Why a frame could not be taken from the bytes at a position. */
export type FrameProblem = 'short-header' | 'bad-size' | 'short-frame' | 'crc-mismatch' | 'bad-magic';

/**
 * Checks the frame at `pos` of `buf`, whose bytes run to `end` (its CRC too, unless
 * `verifyCrc` is false). Returns the frame's total length, or the problem. A frame cut short by `end` is reported as `short-*`; the caller
 * decides whether that means "read more" or "torn tail".
 */
export function checkFrame(buf: Buffer, pos: number, end: number, verifyCrc = true): number | FrameProblem {
  if (end - pos < 4) return 'short-header';
  const size = buf.readUInt32BE(pos);
  if (size < MIN_FRAME_SIZE || size > MAX_FRAME_SIZE) return 'bad-size';
  if (end - pos < 4 + size) return 'short-frame';
  if (buf[pos + 8] !== FRAME_MAGIC) return 'bad-magic';
  if (verifyCrc && crc32(buf.subarray(pos + 8, pos + 4 + size)) !== buf.readUInt32BE(pos + 4)) return 'crc-mismatch';
  return 4 + size;
}

/** The declared total length of the frame at `pos` (needs 4 bytes), without checking it. */
export const declaredFrameLength = (buf: Buffer, pos: number): number => 4 + buf.readUInt32BE(pos);

export const frameOffset = (buf: Buffer, pos: number): number => buf.readUInt32BE(pos + 10) * TWO_32 + buf.readUInt32BE(pos + 14);

export const frameTimestamp = (buf: Buffer, pos: number): number => buf.readInt32BE(pos + 18) * TWO_32 + buf.readUInt32BE(pos + 22);

/** The key bytes of a checked frame, as a view into `buf` (null for a null key). */
export function frameKey(buf: Buffer, pos: number): Buffer | null {
  const len = buf.readInt32BE(pos + 26);
  return len < 0 ? null : buf.subarray(pos + 30, pos + 30 + len);
}

/** Whether a checked frame's value is null (a tombstone). */
export function frameIsTombstone(buf: Buffer, pos: number): boolean {
  let p = pos + 26;
  const keyLen = buf.readInt32BE(p);
  p += 4 + Math.max(0, keyLen);
  const count = buf.readUInt16BE(p);
  p += 2;
  for (let i = 0; i < count; i++) {
    p += 2 + buf.readUInt16BE(p);
    p += 4 + buf.readUInt32BE(p);
  }
  return buf.readInt32BE(p) < 0;
}

/**
 * Decodes a checked frame into a record whose key, value and header values are views into
 * `buf` (no copies): pass a buffer the record may keep.
 */
export function decodeFrame(buf: Buffer, pos: number, topic: string, partition: number): LogRecord {
  const offset = frameOffset(buf, pos);
  const timestamp = frameTimestamp(buf, pos);
  let p = pos + 26;
  const keyLen = buf.readInt32BE(p);
  p += 4;
  let key: Buffer | null = null;
  if (keyLen >= 0) {
    key = buf.subarray(p, p + keyLen);
    p += keyLen;
  }
  const count = buf.readUInt16BE(p);
  p += 2;
  const headers: Headers = {};
  for (let i = 0; i < count; i++) {
    const nameLen = buf.readUInt16BE(p);
    p += 2;
    const name = buf.toString('utf8', p, p + nameLen);
    p += nameLen;
    const valueLen = buf.readUInt32BE(p);
    p += 4;
    const value = buf.subarray(p, p + valueLen);
    p += valueLen;
    // A header named __proto__ must stay data, not become the object's prototype.
    if (name === '__proto__') Object.defineProperty(headers, name, { value, enumerable: true, writable: true, configurable: true });
    else headers[name] = value;
  }
  const valueLen = buf.readInt32BE(p);
  p += 4;
  const value = valueLen < 0 ? null : buf.subarray(p, p + valueLen);
  return { topic, partition, offset, key, value, headers, timestamp };
}
