/**
 * The `BlobStore` port: content-addressed bytes, named by the sha256 of their content.
 * Model weights live here; a `ModelVersionRegistered` event names them by digest and a
 * worker verifies what it reads against that digest, so a blob can be fetched from any
 * copy (local directory, HTTP endpoint, cache) without trusting the copy.
 *
 * Digests are 64 lowercase hex characters. Every method also accepts the OCI-style
 * `sha256:<hex>` spelling (see `parseDigest`).
 *
 * Adapters: `FsBlobStore` (directory, `lib/blob/fs.ts`) and `HttpBlobStore` (client of the
 * endpoint in `lib/blob/http.ts`); both pass `test/contract`-style suite `testBlobStore` in
 * `lib/blob/blob-store.contract.ts`.
 */
export interface BlobInfo {
  /** sha256 of the content, 64 lowercase hex chars. */
  digest: string;
  sizeBytes: number;
}

export interface PutOptions {
  /**
   * The digest the caller expects the bytes to have (hex or `sha256:<hex>`); the put fails with
   * `SY_ERR_BLOB_DIGEST_MISMATCH` and stores nothing when they differ.
   */
  expectedDigest?: string;
}

export interface BlobStore {
  /** Store bytes (idempotent: the same bytes give the same digest and one copy). */
  put(bytes: Uint8Array, options?: PutOptions): Promise<BlobInfo>;
  /**
   * The bytes of a blob, verified against its digest: `SY_ERR_BLOB_NOT_FOUND` when absent,
   * `SY_ERR_BLOB_DIGEST_MISMATCH` when the stored bytes do not hash to the digest.
   */
  get(digest: string): Promise<Buffer>;
  has(digest: string): Promise<boolean>;
  /** Size of a blob, or undefined when absent. Does not read or verify the content. */
  stat(digest: string): Promise<BlobInfo | undefined>;
}
