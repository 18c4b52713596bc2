import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SwitchyardError } from '../../lib/errors.js';
import type { BlobStore } from '../../lib/blob/port.js';
import type { ServiceContext } from '../../lib/runtime.js';
import type { ModelVersionRegisteredInit } from '../../schemas/generated/events.js';
import { decodeModelFile, MODEL_KINDS, type ModelKind } from './backends/format.js';
import { ModelCatalog, type CatalogVersion } from './catalog.js';
import { ControlReader } from './control.js';

export interface PushModelOptions {
  /** The model file's bytes (see `backends/format.ts`). */
  bytes: Uint8Array;
  model: string;
  version: string;
  /** Must agree with the file's own kind when given. @default the file's kind */
  kind?: ModelKind;
  fallbackModel?: string | null;
  metadata?: Record<string, string>;
  registeredBy?: string | null;
  /** The envelope's producer. @default 'switchyard-cli' */
  producer?: string;
}

export interface PushedModel {
  digest: string;
  sizeBytes: number;
  kind: ModelKind;
  /** False when this exact version was already registered with these bytes (nothing appended). */
  registered: boolean;
  /** Offset of the ModelVersionRegistered in control (the earlier one when not registered now). */
  offset: number;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$/;

/**
 * Registers a model version: check the bytes are a model file (of `kind`), store them in the
 * blob store, and append `ModelVersionRegistered` to `control` naming them by digest.
 * Idempotent: pushing the same bytes as the same version again appends nothing. Versions are
 * immutable: other bytes under a registered version are refused.
 */
export async function pushModel(ctx: ServiceContext, store: BlobStore, options: PushModelOptions): Promise<PushedModel> {
  const { bytes, model, version, fallbackModel = null, metadata = {}, registeredBy = null, producer = 'switchyard-cli' } = options;
  if (!NAME.test(model)) throw new SwitchyardError('SY_ERR_CONFIG', `model name "${model}" must be 1–128 of letters, digits and . _ : / - (starting with a letter or digit)`);
  if (!NAME.test(version)) throw new SwitchyardError('SY_ERR_CONFIG', `version "${version}" must be 1–128 of letters, digits and . _ : / -`);
  if (fallbackModel === model) throw new SwitchyardError('SY_ERR_CONFIG', `a model cannot be its own fallback (${model})`);
  if (options.kind !== undefined && !MODEL_KINDS.includes(options.kind)) throw new SwitchyardError('SY_ERR_CONFIG', `kind must be one of ${MODEL_KINDS.join(', ')}, got ${options.kind}`);
  const file = decodeModelFile(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  const kind = file.header.kind;
  if (options.kind !== undefined && options.kind !== kind) {
    throw new SwitchyardError('SY_ERR_MODEL_FORMAT', `the file is a ${kind} model, not ${options.kind}`, { detail: { kind, expected: options.kind } });
  }
  const catalog = new ModelCatalog();
  await new ControlReader(ctx, (event, record) => catalog.apply(event, record.offset)).catchUp();
  const { digest, sizeBytes } = await store.put(bytes);
  const existing: CatalogVersion | undefined = catalog.version(model, version);
  if (existing !== undefined) {
    if (existing.digest === digest) return { digest, sizeBytes, kind, registered: false, offset: existing.offset };
    throw new SwitchyardError('SY_ERR_CONFIG', `${model} ${version} is already registered with sha256:${existing.digest}; versions are immutable, push these bytes as a new version`, {
      detail: { model, version, registered: existing.digest, pushed: digest },
    });
  }
  const event: ModelVersionRegisteredInit = {
    type: 'ModelVersionRegistered',
    eventId: ctx.newEventId(),
    occurredAt: ctx.now(),
    producer,
    model,
    version,
    digest,
    sizeBytes,
    kind,
    fallbackModel,
    metadata,
    registeredBy,
  };
  const [pos] = await ctx.log.append([{ topic: ctx.topics.control.name, partition: 0, key: model, value: ctx.codec.encode(event) }]);
  return { digest, sizeBytes, kind, registered: true, offset: pos?.offset ?? -1 };
}

/** An entry of `models/manifest.json` (written by `scripts/gen-models.ts`). */
export interface ShippedModel {
  model: string;
  version: string;
  kind: ModelKind;
  file: string;
  digest: string;
  sizeBytes: number;
  fallbackModel: string | null;
  metadata: Record<string, string>;
}

/** The models Switchyard ships, from a directory holding `manifest.json` and the files. */
export async function readShippedModels(dir: string): Promise<(ShippedModel & { bytes: Buffer })[]> {
  const manifest = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as ShippedModel[];
  return Promise.all(manifest.map(async (m) => ({ ...m, bytes: await readFile(join(dir, m.file)) })));
}

/** The repository's `models/` directory. */
export const SHIPPED_MODELS_DIR = fileURLToPath(new URL('../../models', import.meta.url));

/**
 * Registers the shipped models (`models/` by default) that are not registered yet: what
 * `switchyard up` and the demo start from. Returns what each push did.
 */
export async function installShippedModels(ctx: ServiceContext, store: BlobStore, { dir = SHIPPED_MODELS_DIR, producer = 'switchyard' }: { dir?: string; producer?: string } = {}): Promise<(PushedModel & { model: string; version: string })[]> {
  const out = [];
  for (const m of await readShippedModels(dir)) {
    const pushed = await pushModel(ctx, store, { bytes: m.bytes, model: m.model, version: m.version, kind: m.kind, fallbackModel: m.fallbackModel, metadata: m.metadata, producer, registeredBy: producer });
    if (pushed.digest !== m.digest) throw new SwitchyardError('SY_ERR_BLOB_DIGEST_MISMATCH', `${m.file} hashes to sha256:${pushed.digest}, the manifest says sha256:${m.digest}`);
    out.push({ ...pushed, model: m.model, version: m.version });
  }
  return out;
}
