import { notFound, parseDigest, sha256Hex, verifyDigest } from './digest.js';
import type { BlobInfo, BlobStore, PutOptions } from './port.js';

/** Blobs in a Map: for tests and for one-process setups that need no persistence. */
export class MemoryBlobStore implements BlobStore {
  private readonly blobs = new Map<string, Buffer>();

  async put(bytes: Uint8Array, { expectedDigest }: PutOptions = {}): Promise<BlobInfo> {
    const digest = sha256Hex(bytes);
    if (expectedDigest !== undefined) verifyDigest(bytes, parseDigest(expectedDigest), 'put');
    if (!this.blobs.has(digest)) this.blobs.set(digest, Buffer.from(bytes));
    return { digest, sizeBytes: bytes.length };
  }

  async get(digest: string): Promise<Buffer> {
    const hex = parseDigest(digest);
    const bytes = this.blobs.get(hex);
    if (bytes === undefined) throw notFound(hex, 'the in-memory blob store');
    verifyDigest(bytes, hex, 'in-memory blob');
    return Buffer.from(bytes);
  }

  async has(digest: string): Promise<boolean> {
    return this.blobs.has(parseDigest(digest));
  }

  async stat(digest: string): Promise<BlobInfo | undefined> {
    const hex = parseDigest(digest);
    const bytes = this.blobs.get(hex);
    return bytes === undefined ? undefined : { digest: hex, sizeBytes: bytes.length };
  }

  /** Overwrite a stored blob's bytes without changing its name (tests of verification). */
  corrupt(digest: string, bytes: Uint8Array): void {
    this.blobs.set(parseDigest(digest), Buffer.from(bytes));
  }
}
