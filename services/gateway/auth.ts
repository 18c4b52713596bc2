import { readFile } from 'node:fs/promises';
import type { IncomingHttpHeaders } from 'node:http';
import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { parse as parseYaml } from 'yaml';
import { AuthError } from '../../lib/auth/errors.js';
import { hashSecret, presentedCredential } from '../../lib/auth/secret.js';
import { SwitchyardError, errorMessage } from '../../lib/errors.js';
import { TokenBucket } from './token-bucket.js';

/**
 * The gateway's API keys. Configured in a file (JSON or YAML; `SWITCHYARD_API_KEYS_FILE`):
 *
 * ```yaml
 * keys:
 *   - id: team-search                 # shown in logs and errors, never the key
 *     sha256: 9f86d081884c7d65…      # `switchyard gateway hash-key` prints it
 *     allowedModels: [sentiment-small, "embed-*"]   # optional: every model when absent
 *     ratePerSecond: 50               # optional: unlimited when absent
 *     burst: 100                      # optional: @default ceil(ratePerSecond)
 * ```
 *
 * A top-level list of keys is accepted too. The file holds hashes only; a `key` field with a
 * plain key is refused. When any key is configured every `/v1` route needs one, as
 * `Authorization: Bearer <key>` or `X-API-Key: <key>`.
 */

const KeyId = Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9][A-Za-z0-9._:@-]*$' });

export const ApiKeyEntry = Type.Object(
  {
    id: KeyId,
    sha256: Type.String({ pattern: '^[0-9a-fA-F]{64}$' }),
    allowedModels: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 256 }), { minItems: 1 })),
    ratePerSecond: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 1_000_000 })),
    burst: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000 })),
  },
  { additionalProperties: false },
);

/** One configured key: its id, the sha256 of the key (hex), and what it may do. */
export type ApiKey = Static<typeof ApiKeyEntry>;

const ApiKeysDocument = Type.Union([Type.Array(ApiKeyEntry), Type.Object({ keys: Type.Array(ApiKeyEntry) }, { additionalProperties: false })]);

export const API_KEY_HEADER = 'x-api-key';

const configError = (source: string, message: string, cause?: unknown) =>
  new SwitchyardError('SY_ERR_CONFIG', `API keys (${source}): ${message}`, cause === undefined ? {} : { cause });

/** The keys of a key file's text (JSON or YAML), validated: `SY_ERR_CONFIG` with every problem. */
export function parseApiKeys(text: string, source: string): ApiKey[] {
  let doc: unknown;
  try {
    doc = parseYaml(text); // YAML is a superset of JSON
  } catch (err) {
    throw configError(source, `not JSON or YAML: ${errorMessage(err)}`, err);
  }
  const entries: unknown[] = Array.isArray(doc) ? doc : ((doc as { keys?: unknown } | null)?.keys as unknown[] | undefined) ?? [];
  if (Array.isArray(entries) && entries.some((e) => typeof (e as { key?: unknown } | null)?.key === 'string')) {
    throw configError(source, 'an entry has a plain "key": the file holds only the sha256 of each key (switchyard gateway hash-key <key> prints it)');
  }
  if (!Value.Check(ApiKeysDocument, doc)) {
    const problems = [...Value.Errors(ApiKeysDocument, doc)].slice(0, 5).map((e) => `${e.path || '/'} ${e.message}`);
    throw configError(source, `expected { keys: [{ id, sha256, allowedModels?, ratePerSecond?, burst? }] }: ${problems.join('; ')}`);
  }
  const keys = (Array.isArray(doc) ? doc : doc.keys).map((k) => ({ ...k, sha256: k.sha256.toLowerCase() }));
  const ids = new Set<string>();
  const hashes = new Set<string>();
  for (const k of keys) {
    if (ids.has(k.id)) throw configError(source, `key id "${k.id}" appears twice`);
    if (hashes.has(k.sha256)) throw configError(source, `key "${k.id}" has the same sha256 as another key`);
    ids.add(k.id);
    hashes.add(k.sha256);
  }
  return keys;
}

/** The keys of a key file (`SY_ERR_CONFIG` when it cannot be read or is invalid). */
export async function loadApiKeys(path: string): Promise<ApiKey[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw configError(path, `cannot read the file: ${errorMessage(err)}`, err);
  }
  return parseApiKeys(text, path);
}

/** Does a key's `allowedModels` admit `model`? Entries are exact names, `prefix*`, or `*`. */
export function modelAllowed(allowedModels: readonly string[] | undefined, model: string): boolean {
  if (allowedModels === undefined) return true;
  for (const pattern of allowedModels) {
    if (pattern.endsWith('*') ? model.startsWith(pattern.slice(0, -1)) : model === pattern) return true;
  }
  return false;
}

interface KeyState {
  key: ApiKey;
  bucket: TokenBucket | undefined;
}

/**
 * The configured keys at run time: who a request is (401 otherwise), whether it may use a
 * model (403), and whether it is within its rate (429 with Retry-After). One token bucket per
 * key, in this process: N gateway instances admit up to N × ratePerSecond between them.
 * Pure apart from hashing: time comes in as `now`.
 */
export class ApiKeyRing {
  private readonly byHash = new Map<string, KeyState>();

  constructor(keys: readonly ApiKey[], now: number) {
    for (const key of keys) {
      const bucket = key.ratePerSecond === undefined ? undefined : new TokenBucket(key.ratePerSecond, key.burst ?? Math.max(1, Math.ceil(key.ratePerSecond)), now);
      this.byHash.set(key.sha256.toLowerCase(), { key, bucket });
    }
  }

  get size(): number {
    return this.byHash.size;
  }

  /** The key a request presents, or an AuthError (401). */
  authenticate(headers: IncomingHttpHeaders): ApiKey {
    const presented = presentedCredential(headers, { header: API_KEY_HEADER });
    if (presented.kind === 'none') {
      throw new AuthError('SY_ERR_AUTH_REQUIRED', 'an API key is required: send Authorization: Bearer <key> or X-API-Key: <key>', { reason: 'MISSING_KEY' });
    }
    if (presented.kind === 'malformed') throw new AuthError('SY_ERR_AUTH_REQUIRED', `an API key is required: ${presented.message}`, { reason: 'MALFORMED_CREDENTIAL' });
    // The map is keyed by the hash of the key: looking it up leaks nothing about the key.
    const state = this.byHash.get(hashSecret(presented.secret));
    if (state === undefined) throw new AuthError('SY_ERR_AUTH_INVALID', 'the API key is not valid', { reason: 'UNKNOWN_KEY' });
    return state.key;
  }

  /** May `key` use `model`? */
  allows(key: ApiKey, model: string): boolean {
    return modelAllowed(key.allowedModels, model);
  }

  /** Admit one inference request of `key` for `model` at `now`: 403 when the model is not allowed, 429 when over rate. */
  admit(key: ApiKey, model: string, now: number): void {
    if (!this.allows(key, model)) {
      throw new AuthError('SY_ERR_AUTH_FORBIDDEN', `API key "${key.id}" may not use model "${model}"`, { reason: 'MODEL_NOT_ALLOWED' });
    }
    const bucket = this.byHash.get(key.sha256)?.bucket;
    if (bucket === undefined) return;
    const waitMs = bucket.take(now);
    if (waitMs > 0) {
      throw new AuthError('SY_ERR_AUTH_RATE_LIMITED', `API key "${key.id}" is over its rate of ${key.ratePerSecond} request(s)/s (burst ${bucket.burst}); retry in ${waitMs} ms`, {
        reason: 'KEY_RATE',
        retryAfterMs: waitMs,
      });
    }
  }
}
