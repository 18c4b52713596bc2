import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { SwitchyardError, errorMessage } from '../errors.js';
import { notFound, parseDigest, sha256Hex, verifyDigest } from './digest.js';
import type { BlobInfo, BlobStore, PutOptions } from './port.js';

export interface FsBlobStoreOptions {
  /** Root directory; blobs live in `<dir>/sha256/<hex>`, partial writes in `<dir>/tmp`. */
  dir: string;
}

const ioError = (what: string, err: unknown): SwitchyardError =>
  new SwitchyardError('SY_ERR_BLOB_UNAVAILABLE', `${what}: ${errorMessage(err)}`, { retriable: true, cause: err });

const isEnoent = (err: unknown): boolean => (err as { code?: string } | null)?.code === 'ENOENT';

/**
 * Blobs in a directory, one file per blob named by its sha256. Writes go to a temporary file
 * that is renamed into place, so a blob file is either absent or complete (a crash leaves at
 * most a stray file in `tmp/`). Reads hash the content and refuse a file that does not match
 * its name (bit rot, a hand-edited file).
 */
export class FsBlobStore implements BlobStore {
  readonly dir: string;
  private ready: Promise<void> | undefined;

  constructor({ dir }: FsBlobStoreOptions) {
    if (!dir) throw new SwitchyardError('SY_ERR_CONFIG', 'FsBlobStore needs a directory');
    this.dir = dir;
  }

  /** Path of a blob's file. */
  pathOf(digest: string): string {
    return join(this.dir, 'sha256', parseDigest(digest));
  }

  private init(): Promise<void> {
    this.ready ??= (async () => {
      await mkdir(join(this.dir, 'sha256'), { recursive: true });
      await mkdir(join(this.dir, 'tmp'), { recursive: true });
    })().catch((err: unknown) => {
      this.ready = undefined;
      throw ioError(`creating blob directory ${this.dir}`, err);
    });
    return this.ready;
  }

  async put(bytes: Uint8Array, { expectedDigest }: PutOptions = {}): Promise<BlobInfo> {
    const digest = sha256Hex(bytes);
    if (expectedDigest !== undefined) verifyDigest(bytes, parseDigest(expectedDigest), 'put');
    await this.init();
    const info = { digest, sizeBytes: bytes.length };
    const path = this.pathOf(digest);
    if (await this.intact(digest)) return info;
    const tmp = join(this.dir, 'tmp', `${digest}.${process.pid}.${randomBytes(6).toString('hex')}`);
    try {
      await writeFile(tmp, bytes, { flush: true });
      await rename(tmp, path);
    } catch (err) {
      await rm(tmp, { force: true }).catch(() => {});
      throw ioError(`writing blob sha256:${digest}`, err);
    }
    return info;
  }

  /**
   * Store a blob given as a stream of chunks, never holding it whole: the chunks are hashed
   * and written to a temporary file as they come (backpressure reaches the source), and the
   * file is renamed into place only when the content hashes to `expectedDigest` (when given).
   * A failed or refused upload leaves nothing behind. An error thrown by `source` (a size limit,
   * a client gone) ends the put with that error.
   */
  async putStream(source: AsyncIterable<Uint8Array>, { expectedDigest }: PutOptions = {}): Promise<BlobInfo> {
    const expected = expectedDigest === undefined ? undefined : parseDigest(expectedDigest);
    await this.init();
    const tmp = join(this.dir, 'tmp', `upload.${process.pid}.${randomBytes(6).toString('hex')}`);
    const hash = createHash('sha256');
    let sizeBytes = 0;
    try {
      await pipeline(
        source,
        async function* (chunks: AsyncIterable<Uint8Array>) {
          for await (const chunk of chunks) {
            hash.update(chunk);
            sizeBytes += chunk.byteLength;
            yield chunk;
          }
        },
        createWriteStream(tmp, { flush: true }),
      );
    } catch (err) {
      await rm(tmp, { force: true }).catch(() => {});
      if (err instanceof SwitchyardError || (err as { statusCode?: unknown }).statusCode !== undefined) throw err;
      throw ioError('writing an uploaded blob', err);
    }
    const digest = hash.digest('hex');
    if (expected !== undefined && digest !== expected) {
      await rm(tmp, { force: true }).catch(() => {});
      throw new SwitchyardError('SY_ERR_BLOB_DIGEST_MISMATCH', `put: content hashes to sha256:${digest}, not sha256:${expected}`, { detail: { expected, actual: digest, sizeBytes } });
    }
    try {
      // Same digest, same bytes: replacing an existing copy is harmless (and repairs a damaged one).
      await rename(tmp, this.pathOf(digest));
    } catch (err) {
      await rm(tmp, { force: true }).catch(() => {});
      throw ioError(`writing blob sha256:${digest}`, err);
    }
    return { digest, sizeBytes };
  }

  /** The blob is stored and its content matches its name (a damaged copy is rewritten by `put`). */
  private async intact(digest: string): Promise<boolean> {
    try {
      await this.get(digest);
      return true;
    } catch (err) {
      if (err instanceof SwitchyardError && (err.code === 'SY_ERR_BLOB_NOT_FOUND' || err.code === 'SY_ERR_BLOB_DIGEST_MISMATCH')) return false;
      throw err;
    }
  }

  async get(digest: string): Promise<Buffer> {
    const hex = parseDigest(digest);
    let bytes: Buffer;
    try {
      bytes = await readFile(this.pathOf(hex));
    } catch (err) {
      if (isEnoent(err)) throw notFound(hex, `the blob directory ${this.dir}`);
      throw ioError(`reading blob sha256:${hex}`, err);
    }
    verifyDigest(bytes, hex, `blob file ${this.pathOf(hex)}`);
    return bytes;
  }

  async has(digest: string): Promise<boolean> {
    return (await this.stat(digest)) !== undefined;
  }

  async stat(digest: string): Promise<BlobInfo | undefined> {
    const hex = parseDigest(digest);
    try {
      const s = await stat(this.pathOf(hex));
      return s.isFile() ? { digest: hex, sizeBytes: s.size } : undefined;
    } catch (err) {
      if (isEnoent(err)) return undefined;
      throw ioError(`stat of blob sha256:${hex}`, err);
    }
  }
}
