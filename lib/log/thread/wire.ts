import { SwitchyardError, type ErrorCode } from '../../errors.js';
import type { AppendRecord, Headers, LogRecord } from '../port.js';

/**
 * How records cross a `MessagePort` between the thread that owns the log and a service thread.
 *
 * Structured clone copies a `Buffer` together with the whole `ArrayBuffer` behind it: a record's
 * value is usually a view into a pooled 8 KiB slab or a log read's chunk, so cloning records as
 * they are would copy kilobytes per record. Instead every key, value and header value of one
 * message is copied once into a fresh `ArrayBuffer` that is transferred (moved, not copied), and
 * the records travel as small objects naming their bytes by offset and length. The receiver's
 * buffers are views into that one transferred `ArrayBuffer`.
 */

/** A byte range of the message's buffer: `[offset, length]`; `null` for a null key or value. */
type Span = [number, number] | null;

/** An append record on the wire. */
export interface WireAppend {
  topic: string;
  partition: number | undefined;
  key: Span;
  value: Span;
  /** Header name and value span, flattened: name, offset, length, name, offset, length… */
  headers: (string | number)[] | undefined;
  timestamp: number | undefined;
  relaxed: boolean;
}

/** A log record on the wire (its topic and partition travel once per batch or read). */
export interface WireRecord {
  offset: number;
  timestamp: number;
  key: Span;
  value: Span;
  headers: (string | number)[] | undefined;
}

/** Records packed for one message: the records and the buffer to transfer with them. */
export interface Packed<T> {
  records: T[];
  bytes: ArrayBuffer;
}

/** Appends byte ranges to one growing buffer, to be transferred. */
class Packer {
  private parts: Uint8Array[] = [];
  private size = 0;

  span(bytes: Uint8Array | null): Span {
    if (bytes === null) return null;
    const at = this.size;
    this.parts.push(bytes);
    this.size += bytes.byteLength;
    return [at, bytes.byteLength];
  }

  headers(headers: Record<string, Buffer | string> | undefined): (string | number)[] | undefined {
    if (headers === undefined) return undefined;
    const flat: (string | number)[] = [];
    for (const name in headers) {
      const value = headers[name]!;
      const span = this.span(typeof value === 'string' ? Buffer.from(value) : value)!;
      flat.push(name, span[0], span[1]);
    }
    return flat.length === 0 ? undefined : flat;
  }

  finish(): ArrayBuffer {
    const out = new Uint8Array(this.size);
    let at = 0;
    for (const part of this.parts) {
      out.set(part, at);
      at += part.byteLength;
    }
    this.parts = [];
    return out.buffer;
  }
}

const view = (bytes: ArrayBuffer, span: Span): Buffer | null => (span === null ? null : Buffer.from(bytes, span[0], span[1]));

function headersOf(bytes: ArrayBuffer, flat: (string | number)[] | undefined): Headers {
  const headers: Headers = {};
  if (flat === undefined) return headers;
  for (let i = 0; i < flat.length; i += 3) headers[flat[i] as string] = Buffer.from(bytes, flat[i + 1] as number, flat[i + 2] as number);
  return headers;
}

const keyBytes = (key: Buffer | string | null | undefined): Uint8Array | null => (key === null || key === undefined ? null : typeof key === 'string' ? Buffer.from(key) : key);

export function packAppends(records: readonly AppendRecord[]): Packed<WireAppend> {
  const packer = new Packer();
  const wire = records.map(
    (r): WireAppend => ({
      topic: r.topic,
      partition: r.partition,
      key: packer.span(keyBytes(r.key)),
      value: packer.span(r.value),
      headers: packer.headers(r.headers),
      timestamp: r.timestamp,
      relaxed: r.durability === 'relaxed',
    }),
  );
  return { records: wire, bytes: packer.finish() };
}

export function unpackAppends({ records, bytes }: Packed<WireAppend>): AppendRecord[] {
  return records.map((r) => {
    const record: AppendRecord = { topic: r.topic, key: view(bytes, r.key), value: view(bytes, r.value) };
    if (r.partition !== undefined) record.partition = r.partition;
    if (r.headers !== undefined) record.headers = headersOf(bytes, r.headers);
    if (r.timestamp !== undefined) record.timestamp = r.timestamp;
    if (r.relaxed) record.durability = 'relaxed';
    return record;
  });
}

export function packRecords(records: readonly LogRecord[]): Packed<WireRecord> {
  const packer = new Packer();
  const wire = records.map(
    (r): WireRecord => ({
      offset: r.offset,
      timestamp: r.timestamp,
      key: packer.span(r.key),
      value: packer.span(r.value),
      headers: packer.headers(r.headers),
    }),
  );
  return { records: wire, bytes: packer.finish() };
}

export function unpackRecords(topic: string, partition: number, { records, bytes }: Packed<WireRecord>): LogRecord[] {
  return records.map((r) => ({ topic, partition, offset: r.offset, timestamp: r.timestamp, key: view(bytes, r.key), value: view(bytes, r.value), headers: headersOf(bytes, r.headers) }));
}

/** An error as it crosses the port: enough to rebuild a `SwitchyardError` with its code. */
export interface WireError {
  name: string;
  message: string;
  code: string | undefined;
  retriable: boolean;
  detail: Record<string, unknown> | undefined;
  stack: string | undefined;
}

export function packError(err: unknown): WireError {
  const e = err as { name?: unknown; message?: unknown; code?: unknown; retriable?: unknown; detail?: unknown; stack?: unknown } | null;
  let detail: Record<string, unknown> | undefined;
  try {
    detail = e?.detail !== undefined ? (structuredClone(e.detail) as Record<string, unknown>) : undefined;
  } catch {
    detail = undefined;
  }
  return {
    name: typeof e?.name === 'string' ? e.name : 'Error',
    message: typeof e?.message === 'string' ? e.message : String(err),
    code: typeof e?.code === 'string' ? e.code : undefined,
    retriable: e?.retriable === true,
    detail,
    stack: typeof e?.stack === 'string' ? e.stack : undefined,
  };
}

/** An error from the other thread, rebuilt: a `SwitchyardError` keeps its code, `retriable` and detail. */
export function unpackError(e: WireError): Error {
  const err = e.code?.startsWith('SY_ERR_') ? new SwitchyardError(e.code as ErrorCode, e.message, { retriable: e.retriable, detail: e.detail ?? {} }) : Object.assign(new Error(e.message), { name: e.name, code: e.code, retriable: e.retriable });
  if (e.stack !== undefined) err.stack = `${err.stack ?? ''}\n    at (the other thread)\n${e.stack}`;
  return err;
}
