import { SwitchyardError, errorMessage } from '../../lib/errors.js';
import { parseDigest, verifyDigest } from '../../lib/blob/digest.js';
import type { BlobStore } from '../../lib/blob/port.js';
import { decodeModelFile } from './backends/format.js';
import type { Backend, LoadedModel } from './backends/port.js';

export interface ModelLoaderOptions {
  store: BlobStore;
  /** Tried in order; the first that supports a model file's kind runs it. */
  backends: readonly Backend[];
  /** Models kept loaded; the least recently used beyond this is unloaded. @default 16 */
  maxLoaded?: number;
}

/**
 * Loads models lazily by digest and keeps them: fetch the blob, verify that its bytes hash to
 * the digest the routing decision named (even if the store already did: weights are never
 * run on trust), decode the model file, hand it to the backend for its kind. Concurrent loads
 * of one digest share one fetch. A failed load is not remembered, so the next request tries
 * again (the blob may have been pushed meanwhile).
 *
 * Errors: `SY_ERR_BLOB_NOT_FOUND`, `SY_ERR_BLOB_DIGEST_MISMATCH` (refused weights),
 * `SY_ERR_MODEL_FORMAT` (not a model file, or no backend here runs its kind: then retriable,
 * another worker may).
 */
export class ModelLoader {
  private readonly store: BlobStore;
  private readonly backends: readonly Backend[];
  private readonly maxLoaded: number;
  /** digest → load, in least-recently-used-first order. */
  private readonly models = new Map<string, Promise<LoadedModel>>();
  private readonly ready = new Set<string>();
  /** The digest of the latest `load`, the last key of `models` while it is there. */
  private mostRecent: string | undefined;

  constructor({ store, backends, maxLoaded = 16 }: ModelLoaderOptions) {
    if (backends.length === 0) throw new SwitchyardError('SY_ERR_CONFIG', 'a worker needs at least one backend');
    if (!Number.isInteger(maxLoaded) || maxLoaded < 1) throw new SwitchyardError('SY_ERR_CONFIG', `maxLoaded must be a positive integer, got ${maxLoaded}`);
    this.store = store;
    this.backends = backends;
    this.maxLoaded = maxLoaded;
  }

  /** Digests of the models loaded and verified, most recently used last. */
  loaded(): string[] {
    return [...this.models.keys()].filter((d) => this.ready.has(d));
  }

  load(digest: string): Promise<LoadedModel> {
    // Every batch asks; most ask for the model the last one used, which is already the most recent.
    if (digest === this.mostRecent) {
      const hit = this.models.get(digest);
      if (hit !== undefined) return hit;
    }
    const hex = parseDigest(digest);
    this.mostRecent = hex;
    const hit = this.models.get(hex);
    if (hit !== undefined) {
      this.models.delete(hex);
      this.models.set(hex, hit);
      return hit;
    }
    const loading = this.fetch(hex).then(
      (model) => {
        this.ready.add(hex);
        return model;
      },
      (err: unknown) => {
        if (this.models.get(hex) === loading) this.models.delete(hex);
        throw err;
      },
    );
    this.models.set(hex, loading);
    this.evict();
    return loading;
  }

  private evict(): void {
    while (this.models.size > this.maxLoaded) {
      const [oldest, model] = this.models.entries().next().value as [string, Promise<LoadedModel>];
      this.models.delete(oldest);
      this.ready.delete(oldest);
      void model.then((m) => m.unload?.()).catch(() => {});
    }
  }

  private async fetch(digest: string): Promise<LoadedModel> {
    const bytes = await this.store.get(digest);
    verifyDigest(bytes, digest, `weights for sha256:${digest}`);
    const file = decodeModelFile(bytes);
    const backend = this.backends.find((b) => b.supports(file.header.kind));
    if (backend === undefined) {
      throw new SwitchyardError('SY_ERR_MODEL_FORMAT', `no backend on this worker runs ${file.header.kind} models (backends: ${this.backends.map((b) => b.name).join(', ')})`, {
        retriable: true,
        detail: { resultCode: 'UNSUPPORTED_MODEL', kind: file.header.kind },
      });
    }
    try {
      return await backend.load(file, digest);
    } catch (err) {
      if (err instanceof SwitchyardError) throw err;
      throw new SwitchyardError('SY_ERR_MODEL_FORMAT', `loading sha256:${digest} on the ${backend.name} backend: ${errorMessage(err)}`, { cause: err });
    }
  }

  async unloadAll(): Promise<void> {
    const all = [...this.models.values()];
    this.models.clear();
    this.ready.clear();
    await Promise.all(all.map((p) => p.then((m) => m.unload?.()).catch(() => {})));
  }
}
