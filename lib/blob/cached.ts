import type { BlobInfo, BlobStore, PutOptions } from './port.js';

/**
 * A remote store fronted by a local one (a worker's disk in front of the cluster's blob
 * endpoint): `get` serves the local copy when it has one and otherwise fetches, verifies and
 * keeps the remote copy. Both adapters verify content against the digest, so a corrupted
 * local copy is refused, never served.
 */
export class CachedBlobStore implements BlobStore {
  constructor(
    private readonly local: BlobStore,
    private readonly remote: BlobStore,
  ) {}

  async put(bytes: Uint8Array, options?: PutOptions): Promise<BlobInfo> {
    const info = await this.remote.put(bytes, options);
    await this.local.put(bytes, { expectedDigest: info.digest });
    return info;
  }

  async get(digest: string): Promise<Buffer> {
    if (await this.local.has(digest)) return this.local.get(digest);
    const bytes = await this.remote.get(digest);
    await this.local.put(bytes, { expectedDigest: digest });
    return bytes;
  }

  async has(digest: string): Promise<boolean> {
    return (await this.local.has(digest)) || this.remote.has(digest);
  }

  async stat(digest: string): Promise<BlobInfo | undefined> {
    return (await this.local.stat(digest)) ?? this.remote.stat(digest);
  }
}
