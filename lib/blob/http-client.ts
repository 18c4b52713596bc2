import { SwitchyardError, errorMessage } from '../errors.js';
import { notFound, parseDigest, sha256Hex, verifyDigest } from './digest.js';
import { DIGEST_HEADER } from './http.js';
import type { BlobInfo, BlobStore, PutOptions } from './port.js';

export interface HttpBlobStoreOptions {
  /** Base URL of a server mounting `blobPlugin`, e.g. `http://controller:8090`. */
  url: string;
  /** Per request. @default 30_000 */
  timeoutMs?: number;
  /** @default globalThis.fetch */
  fetch?: typeof globalThis.fetch;
  /** The admin token, sent as `Authorization: Bearer` (PUT needs it when the server has one configured). @default none */
  token?: string;
}

const unavailable = (what: string, cause?: unknown, detail: Record<string, unknown> = {}): SwitchyardError =>
  new SwitchyardError('SY_ERR_BLOB_UNAVAILABLE', `${what}${cause === undefined ? '' : `: ${errorMessage(cause)}`}`, { retriable: true, cause, detail });

/**
 * A `BlobStore` over the HTTP endpoint of `lib/blob/http.ts`. The client does not trust the
 * server: `get` verifies the bytes against the digest itself, and `put` sends the digest it
 * computed so the server refuses a corrupted upload.
 */
export class HttpBlobStore implements BlobStore {
  private readonly base: string;
  private readonly timeoutMs: number;
  private readonly fetch: typeof globalThis.fetch;
  private readonly auth: Record<string, string>;

  constructor({ url, timeoutMs = 30_000, fetch = globalThis.fetch, token }: HttpBlobStoreOptions) {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch (err) {
      throw new SwitchyardError('SY_ERR_CONFIG', `blob store URL "${url}" is not a URL`, { cause: err });
    }
    this.base = parsed.toString().replace(/\/+$/, '');
    this.timeoutMs = timeoutMs;
    this.fetch = fetch;
    this.auth = token === undefined || token === '' ? {} : { authorization: `Bearer ${token}` };
  }

  private async request(method: string, path: string, init: RequestInit = {}): Promise<Response> {
    try {
      return await this.fetch(`${this.base}${path}`, { ...init, headers: { ...this.auth, ...(init.headers as Record<string, string> | undefined) }, method, signal: AbortSignal.timeout(this.timeoutMs) });
    } catch (err) {
      throw unavailable(`${method} ${this.base}${path}`, err);
    }
  }

  private async fail(res: Response, what: string): Promise<never> {
    let body: { code?: string; message?: string } = {};
    try {
      body = (await res.json()) as typeof body;
    } catch {
      // not a JSON error body
    }
    const message = `${what}: HTTP ${res.status}${body.message ? ` ${body.message}` : ''}`;
    if (body.code === 'SY_ERR_BLOB_DIGEST_MISMATCH' || body.code === 'SY_ERR_BLOB_BAD_DIGEST') {
      throw new SwitchyardError(body.code, message, { detail: { status: res.status } });
    }
    if (res.status === 401 || res.status === 403) {
      throw new SwitchyardError('SY_ERR_BLOB_UNAVAILABLE', `${message}${this.auth['authorization'] === undefined ? ' (no admin token was given: set it for uploads)' : ''}`, { detail: { status: res.status, code: body.code } });
    }
    if (res.status >= 500 || res.status === 429 || res.status === 408) throw unavailable(message, undefined, { status: res.status });
    throw new SwitchyardError('SY_ERR_BLOB_UNAVAILABLE', message, { detail: { status: res.status } });
  }

  async put(bytes: Uint8Array, { expectedDigest }: PutOptions = {}): Promise<BlobInfo> {
    const digest = sha256Hex(bytes);
    if (expectedDigest !== undefined) verifyDigest(bytes, parseDigest(expectedDigest), 'put');
    const res = await this.request('PUT', '/v1/blobs', {
      headers: { 'content-type': 'application/octet-stream', [DIGEST_HEADER]: `sha256:${digest}` },
      body: bytes,
    });
    if (res.status !== 201 && res.status !== 200) return this.fail(res, `PUT blob sha256:${digest}`);
    const info = (await res.json()) as BlobInfo;
    if (info.digest !== digest) throw new SwitchyardError('SY_ERR_BLOB_DIGEST_MISMATCH', `server stored sha256:${digest} as ${info.digest}`);
    return { digest, sizeBytes: bytes.length };
  }

  async get(digest: string): Promise<Buffer> {
    const hex = parseDigest(digest);
    const res = await this.request('GET', `/v1/blobs/sha256:${hex}`);
    if (res.status === 404) throw notFound(hex, `the blob server at ${this.base}`);
    if (res.status !== 200) return this.fail(res, `GET blob sha256:${hex}`);
    let bytes: Buffer;
    try {
      bytes = Buffer.from(await res.arrayBuffer());
    } catch (err) {
      throw unavailable(`GET blob sha256:${hex}: reading the body`, err);
    }
    verifyDigest(bytes, hex, `blob sha256:${hex} from ${this.base}`);
    return bytes;
  }

  async has(digest: string): Promise<boolean> {
    return (await this.stat(digest)) !== undefined;
  }

  async stat(digest: string): Promise<BlobInfo | undefined> {
    const hex = parseDigest(digest);
    const res = await this.request('HEAD', `/v1/blobs/sha256:${hex}`);
    if (res.status === 404) return undefined;
    if (res.status !== 200) return this.fail(res, `HEAD blob sha256:${hex}`);
    return { digest: hex, sizeBytes: Number(res.headers.get('content-length') ?? 0) };
  }
}
