import { endianness } from 'node:os';
import { SwitchyardError, errorMessage } from '../../../lib/errors.js';

const LITTLE_ENDIAN = endianness() === 'LE';

/**
 * The model file: what a model version's blob holds. Self-describing, so a worker that has
 * only a digest (from a routing decision) knows how to run what it fetched.
 *
 * Layout: the 8 ASCII bytes `SYMODEL1`, a u32 LE header length H, H bytes of UTF-8 JSON
 * (`ModelHeader`), zero padding to a multiple of 4 bytes, then each tensor of
 * `header.tensors` in order as little-endian float32, row-major.
 */
export const MODEL_MAGIC = 'SYMODEL1';
export const MODEL_FORMAT = 'switchyard.model/v1';

/** What runs the model: built-in CPU kinds, the synthetic load-test kind, or a remote server. */
export type ModelKind = 'classifier' | 'embedding' | 'synthetic' | 'http';
export const MODEL_KINDS: readonly ModelKind[] = ['classifier', 'embedding', 'synthetic', 'http'];

export interface TensorSpec {
  name: string;
  /** Row-major shape; the tensor holds the product of its dimensions float32 values. */
  shape: number[];
  dtype: 'f32';
}

export interface ModelHeader {
  format: typeof MODEL_FORMAT;
  kind: ModelKind;
  /** Model name and version the file was made for (informative: the log's registration is authoritative). */
  name: string;
  version: string;
  /** Kind-specific configuration (see each backend). */
  config: Record<string, unknown>;
  tensors: TensorSpec[];
  metadata?: Record<string, string>;
}

export interface ModelFile {
  header: ModelHeader;
  tensors: Map<string, Float32Array>;
  sizeBytes: number;
}

const formatError = (message: string, cause?: unknown): SwitchyardError =>
  new SwitchyardError('SY_ERR_MODEL_FORMAT', `not a Switchyard model file: ${message}`, cause === undefined ? {} : { cause });

const elements = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

/** Encode a model file (tensors in `header.tensors` order). */
export function encodeModelFile(header: Omit<ModelHeader, 'format' | 'tensors'>, tensors: { name: string; shape: number[]; data: Float32Array }[] = []): Buffer {
  for (const t of tensors) {
    if (t.data.length !== elements(t.shape)) throw formatError(`tensor ${t.name} has ${t.data.length} values for shape [${t.shape.join(', ')}]`);
  }
  const full: ModelHeader = { format: MODEL_FORMAT, ...header, tensors: tensors.map((t) => ({ name: t.name, shape: t.shape, dtype: 'f32' })) };
  const json = Buffer.from(JSON.stringify(full), 'utf8');
  const headerEnd = 12 + json.length;
  const dataStart = Math.ceil(headerEnd / 4) * 4;
  const dataBytes = tensors.reduce((n, t) => n + t.data.length * 4, 0);
  const out = Buffer.alloc(dataStart + dataBytes);
  out.write(MODEL_MAGIC, 0, 'latin1');
  out.writeUInt32LE(json.length, 8);
  json.copy(out, 12);
  let at = dataStart;
  for (const t of tensors) {
    if (LITTLE_ENDIAN) {
      Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).copy(out, at);
      at += t.data.byteLength;
    } else {
      for (let i = 0; i < t.data.length; i++, at += 4) out.writeFloatLE(t.data[i]!, at);
    }
  }
  return out;
}

/** Decode and validate a model file: `SY_ERR_MODEL_FORMAT` says what is wrong. */
export function decodeModelFile(bytes: Buffer): ModelFile {
  if (bytes.length < 12 || bytes.toString('latin1', 0, 8) !== MODEL_MAGIC) throw formatError(`it does not begin with ${MODEL_MAGIC}`);
  const headerLength = bytes.readUInt32LE(8);
  if (12 + headerLength > bytes.length) throw formatError(`header length ${headerLength} runs past the end (${bytes.length} bytes)`);
  let header: ModelHeader;
  try {
    header = JSON.parse(bytes.toString('utf8', 12, 12 + headerLength)) as ModelHeader;
  } catch (err) {
    throw formatError(`header is not JSON: ${errorMessage(err)}`, err);
  }
  if (header === null || typeof header !== 'object' || header.format !== MODEL_FORMAT) throw formatError(`header format is not ${MODEL_FORMAT}`);
  if (!MODEL_KINDS.includes(header.kind)) throw formatError(`unknown kind ${JSON.stringify(header.kind)} (known: ${MODEL_KINDS.join(', ')})`);
  if (typeof header.config !== 'object' || header.config === null || !Array.isArray(header.tensors)) throw formatError('header lacks config or tensors');
  let at = Math.ceil((12 + headerLength) / 4) * 4;
  const tensors = new Map<string, Float32Array>();
  for (const spec of header.tensors) {
    if (spec.dtype !== 'f32' || !Array.isArray(spec.shape) || !spec.shape.every((d) => Number.isInteger(d) && d > 0)) {
      throw formatError(`tensor ${JSON.stringify(spec.name)} has an unsupported dtype or shape`);
    }
    const n = elements(spec.shape);
    if (at + n * 4 > bytes.length) throw formatError(`tensor ${spec.name} runs past the end of the file`);
    const data = new Float32Array(n);
    if (LITTLE_ENDIAN) {
      bytes.copy(Buffer.from(data.buffer), 0, at, at + n * 4);
      at += n * 4;
    } else {
      for (let i = 0; i < n; i++, at += 4) data[i] = bytes.readFloatLE(at);
    }
    tensors.set(spec.name, data);
  }
  if (at !== bytes.length) throw formatError(`${bytes.length - at} bytes follow the last tensor`);
  return { header, tensors, sizeBytes: bytes.length };
}

/** A tensor the model needs, with the shape it needs. */
export function tensor(model: ModelFile, name: string, shape: readonly number[]): Float32Array {
  const spec = model.header.tensors.find((t) => t.name === name);
  const data = model.tensors.get(name);
  if (spec === undefined || data === undefined) throw formatError(`${model.header.kind} model lacks tensor ${name}`);
  if (spec.shape.length !== shape.length || spec.shape.some((d, i) => d !== shape[i])) {
    throw formatError(`tensor ${name} has shape [${spec.shape.join(', ')}], expected [${shape.join(', ')}]`);
  }
  return data;
}

/** A positive integer from a model's config. */
export function configInt(model: ModelFile, key: string): number {
  const v = model.header.config[key];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw formatError(`config.${key} must be a positive integer, got ${JSON.stringify(v)}`);
  return v;
}
