import { SwitchyardError } from '../lib/errors.js';

/**
 * The Confluent wire format: one magic byte (0), the schema id as a 4-byte big-endian
 * signed int, then the Avro binary payload. Kafka producer clients in any language write
 * this, so it is fixed by contract.
 */

export const MAGIC_BYTE = 0;
export const WIRE_HEADER_BYTES = 5;
const MAX_SCHEMA_ID = 0x7fffffff;

export interface WireMessage {
  schemaId: number;
  /** The Avro payload: a view into the framed buffer, not a copy. */
  payload: Buffer;
}

function checkSchemaId(schemaId: number): void {
  if (!Number.isInteger(schemaId) || schemaId < 0 || schemaId > MAX_SCHEMA_ID) {
    throw new SwitchyardError('SY_ERR_CODEC_ENCODE', `schema id must be an integer in [0, 2^31), got ${schemaId}`, { detail: { schemaId } });
  }
}

/** The 5-byte header for `schemaId`. */
export function wireHeader(schemaId: number): Buffer {
  checkSchemaId(schemaId);
  const header = Buffer.allocUnsafe(WIRE_HEADER_BYTES);
  header[0] = MAGIC_BYTE;
  header.writeInt32BE(schemaId, 1);
  return header;
}

/** Header + payload in one new buffer. */
export function frame(schemaId: number, payload: Buffer): Buffer {
  checkSchemaId(schemaId);
  const out = Buffer.allocUnsafe(WIRE_HEADER_BYTES + payload.length);
  out[0] = MAGIC_BYTE;
  out.writeInt32BE(schemaId, 1);
  payload.copy(out, WIRE_HEADER_BYTES);
  return out;
}

/** Split a framed buffer. Throws `SY_ERR_CODEC_MAGIC` when it is too short or not framed. */
export function unframe(buf: Buffer): WireMessage {
  return { schemaId: readSchemaId(buf), payload: buf.subarray(WIRE_HEADER_BYTES) };
}

/**
 * The schema id of a framed value, or -1 when it is not one (null, too short, another magic
 * byte). Without `readInt32BE`'s argument checks: it runs for every record a scan, fold or sink reads.
 */
export function schemaIdOf(value: Buffer | null): number {
  if (value === null || value.length < WIRE_HEADER_BYTES || value[0] !== MAGIC_BYTE) return -1;
  return (value[1]! << 24) | (value[2]! << 16) | (value[3]! << 8) | value[4]!;
}

/** The schema id of a framed buffer, checking the magic byte. */
export function readSchemaId(buf: Buffer): number {
  if (buf.length < WIRE_HEADER_BYTES) {
    throw new SwitchyardError('SY_ERR_CODEC_MAGIC', `${buf.length} bytes cannot hold the 5-byte Confluent wire header`, {
      detail: { length: buf.length },
    });
  }
  if (buf[0] !== MAGIC_BYTE) {
    throw new SwitchyardError('SY_ERR_CODEC_MAGIC', `expected magic byte 0 (Confluent wire format), got ${buf[0]}`, {
      detail: { magic: buf[0] },
    });
  }
  return buf.readInt32BE(1);
}
