import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SwitchyardError } from '../errors.js';
import { sha256Hex } from './digest.js';
import type { BlobStore } from './port.js';

export interface BlobStoreFixture {
  store: BlobStore;
  /** Replace the stored bytes of a blob behind the store's back (bit rot). */
  corrupt(digest: string, bytes: Uint8Array): Promise<void>;
  cleanup(): Promise<void>;
}

const code = async (p: Promise<unknown>): Promise<string | undefined> => {
  try {
    await p;
    return undefined;
  } catch (err) {
    return err instanceof SwitchyardError ? err.code : `not a SwitchyardError: ${String(err)}`;
  }
};

/** The BlobStore contract, run against every adapter. */
export function testBlobStore(name: string, factory: () => Promise<BlobStoreFixture>): void {
  describe(`BlobStore contract [${name}]`, () => {
    let f: BlobStoreFixture;
    beforeEach(async () => {
      f = await factory();
    });
    afterEach(async () => {
      await f.cleanup();
    });

    it('stores bytes under their sha256 and returns them', async () => {
      const bytes = Buffer.from('weights v1');
      const info = await f.store.put(bytes);
      expect(info).toEqual({ digest: sha256Hex(bytes), sizeBytes: bytes.length });
      expect(await f.store.get(info.digest)).toEqual(bytes);
      expect(await f.store.get(`sha256:${info.digest}`)).toEqual(bytes);
      expect(await f.store.has(info.digest)).toBe(true);
      expect(await f.store.stat(info.digest)).toEqual(info);
    });

    it('is idempotent: putting the same bytes twice gives the same digest', async () => {
      const bytes = Buffer.alloc(70_000, 7);
      const a = await f.store.put(bytes);
      const b = await f.store.put(bytes);
      expect(b).toEqual(a);
      expect((await f.store.get(a.digest)).length).toBe(70_000);
    });

    it('stores empty and binary blobs', async () => {
      const empty = await f.store.put(new Uint8Array(0));
      expect(empty.digest).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
      expect((await f.store.get(empty.digest)).length).toBe(0);
      const binary = Uint8Array.from({ length: 256 }, (_, i) => i);
      const info = await f.store.put(binary);
      expect([...(await f.store.get(info.digest))]).toEqual([...binary]);
    });

    it('says what is absent', async () => {
      const absent = sha256Hex('never stored');
      expect(await f.store.has(absent)).toBe(false);
      expect(await f.store.stat(absent)).toBeUndefined();
      expect(await code(f.store.get(absent))).toBe('SY_ERR_BLOB_NOT_FOUND');
    });

    it('refuses malformed digests', async () => {
      expect(await code(f.store.get('abc'))).toBe('SY_ERR_BLOB_BAD_DIGEST');
      expect(await code(f.store.has('sha512:00'))).toBe('SY_ERR_BLOB_BAD_DIGEST');
    });

    it('refuses a put whose bytes do not match the expected digest, storing nothing', async () => {
      const bytes = Buffer.from('the real bytes');
      const wrong = sha256Hex('other bytes');
      expect(await code(f.store.put(bytes, { expectedDigest: wrong }))).toBe('SY_ERR_BLOB_DIGEST_MISMATCH');
      expect(await f.store.has(sha256Hex(bytes))).toBe(false);
      expect((await f.store.put(bytes, { expectedDigest: `sha256:${sha256Hex(bytes)}` })).digest).toBe(sha256Hex(bytes));
    });

    it('verifies on read: a stored blob whose content no longer matches its digest is refused', async () => {
      const info = await f.store.put(Buffer.from('good weights'));
      await f.corrupt(info.digest, Buffer.from('evil weights'));
      expect(await code(f.store.get(info.digest))).toBe('SY_ERR_BLOB_DIGEST_MISMATCH');
    });
  });
}
