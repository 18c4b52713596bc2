import { SchemaRegistry as ConfluentLibraryClient, SchemaType, type COMPATIBILITY } from '@kafkajs/confluent-schema-registry';
import { SwitchyardError, errorMessage } from '../errors.js';
import { parseSchema } from './core.js';
import { CONFLUENT_ERROR_CODES, fromConfluentError } from './http-errors.js';
import {
  isCompatibilityLevel,
  type CheckCompatibilityOptions,
  type CompatibilityLevel,
  type CompatibilityResult,
  type GetCompatibilityOptions,
  type SchemaInput,
  type SchemaRegistry,
  type SchemaVersion,
} from './port.js';

export interface ConfluentRegistryClientOptions {
  /** Base URL of the registry, e.g. `http://localhost:8081`. */
  host: string;
  /** HTTP basic auth. */
  auth?: { username: string; password: string };
  /** Sent as the client id by the library. @default 'switchyard' */
  clientId?: string;
  /** Timeout of each request made with fetch, ms. @default 10_000 */
  timeoutMs?: number;
  /** The fetch to use (tests). @default globalThis.fetch */
  fetch?: typeof fetch;
}

const MEDIA_TYPE = 'application/vnd.schemaregistry.v1+json';

/**
 * The `SchemaRegistry` port over HTTP: Confluent's Schema Registry or our `services/registry`.
 *
 * `register` goes through `@kafkajs/confluent-schema-registry`'s client, which caches the
 * schema under its id for its own encode/decode (exposed as `library`). The library answers
 * ids only, so the calls that need versions or schema text (lookup, get by id/version,
 * listing, compatibility, config, delete) are plain fetches of the same REST API.
 */
export class ConfluentRegistryClient implements SchemaRegistry {
  /** The library client, sharing this adapter's host and auth. */
  readonly library: ConfluentLibraryClient;
  private readonly host: string;
  private readonly headers: Record<string, string>;
  private readonly timeoutMs: number;
  private readonly fetchFn: typeof fetch;

  constructor({ host, auth, clientId = 'switchyard', timeoutMs = 10_000, fetch: fetchFn = globalThis.fetch }: ConfluentRegistryClientOptions) {
    let url: URL;
    try {
      url = new URL(host);
    } catch (err) {
      throw new SwitchyardError('SY_ERR_CONFIG', `schema registry host must be a URL, got ${JSON.stringify(host)}`, { cause: err });
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new SwitchyardError('SY_ERR_CONFIG', `schema registry host must be http(s), got ${host}`);
    }
    if (!(timeoutMs > 0)) throw new SwitchyardError('SY_ERR_CONFIG', `timeoutMs must be positive, got ${timeoutMs}`);
    this.host = host.replace(/\/+$/, '');
    this.timeoutMs = timeoutMs;
    this.fetchFn = fetchFn;
    this.headers = { accept: `${MEDIA_TYPE}, application/json` };
    if (auth) this.headers['authorization'] = `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString('base64')}`;
    this.library = new ConfluentLibraryClient({ host: this.host, clientId, ...(auth ? { auth } : {}) });
  }

  private async request<T>(method: string, path: string, body?: unknown, context: Record<string, unknown> = {}): Promise<T> {
    let response: Response;
    try {
      response = await this.fetchFn(`${this.host}${path}`, {
        method,
        headers: body === undefined ? this.headers : { ...this.headers, 'content-type': MEDIA_TYPE },
        body: body === undefined ? null : JSON.stringify(body),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (err) {
      throw new SwitchyardError('SY_ERR_REGISTRY_UNAVAILABLE', `schema registry at ${this.host} unreachable: ${errorMessage(err)}`, {
        retriable: true,
        cause: err,
        detail: { method, path },
      });
    }
    const text = await response.text();
    let json: unknown;
    try {
      json = text === '' ? undefined : JSON.parse(text);
    } catch {
      json = undefined;
    }
    if (!response.ok) throw fromConfluentError(response.status, json ?? { message: text }, { ...context, method, path });
    return json as T;
  }

  private subjectPath(subject: string): string {
    return `/subjects/${encodeURIComponent(subject)}`;
  }

  async register(subject: string, schema: SchemaInput): Promise<number> {
    const parsed = parseSchema(schema);
    if (parsed.type.name === undefined) {
      // The library refuses unnamed (primitive, array, map) schemas; the REST API takes them.
      const { id } = await this.request<{ id: number }>('POST', `${this.subjectPath(subject)}/versions`, { schema: parsed.text }, { subject });
      return id;
    }
    // The library compares the `compatibility` option with the subject's own level and sets it
    // on first registration. Passing the subject's current level (undefined when it has none)
    // keeps registration free of config side effects.
    const current = await this.getCompatibility(subject, { overrideOnly: true });
    try {
      const { id } = await this.library.register(
        { type: SchemaType.AVRO, schema: parsed.text },
        { subject, compatibility: current as COMPATIBILITY | undefined },
      );
      return id;
    } catch (err) {
      throw fromLibraryError(err, { subject });
    }
  }

  async lookup(subject: string, schema: SchemaInput): Promise<SchemaVersion> {
    const { text } = parseSchema(schema);
    const found = await this.request<SchemaVersion>('POST', this.subjectPath(subject), { schema: text }, { subject });
    return { subject: found.subject ?? subject, version: found.version, id: found.id, schema: found.schema };
  }

  async getById(id: number): Promise<string> {
    const { schema } = await this.request<{ schema: string }>('GET', `/schemas/ids/${encodeURIComponent(String(id))}`, undefined, { id });
    return schema;
  }

  async getLatest(subject: string): Promise<SchemaVersion> {
    return this.getVersionPath(subject, 'latest');
  }

  async getVersion(subject: string, version: number): Promise<SchemaVersion> {
    if (!Number.isInteger(version) || version < 1) {
      throw new SwitchyardError('SY_ERR_SCHEMA_INVALID', `version must be a positive integer, got ${version}`, { detail: { what: 'version' } });
    }
    return this.getVersionPath(subject, String(version));
  }

  private async getVersionPath(subject: string, version: string): Promise<SchemaVersion> {
    const v = await this.request<SchemaVersion>('GET', `${this.subjectPath(subject)}/versions/${version}`, undefined, { subject, version });
    return { subject: v.subject ?? subject, version: v.version, id: v.id, schema: v.schema };
  }

  async listSubjects(): Promise<string[]> {
    return (await this.request<string[]>('GET', '/subjects')).sort();
  }

  async listVersions(subject: string): Promise<number[]> {
    return (await this.request<number[]>('GET', `${this.subjectPath(subject)}/versions`, undefined, { subject })).sort((a, b) => a - b);
  }

  async checkCompatibility(subject: string, schema: SchemaInput, { version }: CheckCompatibilityOptions = {}): Promise<CompatibilityResult> {
    const { text } = parseSchema(schema);
    const path = `/compatibility${this.subjectPath(subject)}/versions${version === undefined ? '' : `/${version}`}?verbose=true`;
    try {
      const answer = await this.request<{ is_compatible: boolean; messages?: unknown }>('POST', path, { schema: text }, { subject, version });
      const messages = Array.isArray(answer.messages) ? answer.messages.map(String) : [];
      return { compatible: answer.is_compatible === true, messages: answer.is_compatible === true ? [] : messages };
    } catch (err) {
      // A subject without versions has nothing to be incompatible with (as `register` sees it).
      if (version === undefined && err instanceof SwitchyardError && err.code === 'SY_ERR_SCHEMA_NOT_FOUND' && err.detail['what'] === 'subject') {
        return { compatible: true, messages: [] };
      }
      throw err;
    }
  }

  getCompatibility(subject?: string): Promise<CompatibilityLevel>;
  getCompatibility(subject: string, options: GetCompatibilityOptions): Promise<CompatibilityLevel | undefined>;
  async getCompatibility(subject?: string, { overrideOnly = false }: GetCompatibilityOptions = {}): Promise<CompatibilityLevel | undefined> {
    const path = subject === undefined ? '/config' : `/config/${encodeURIComponent(subject)}${overrideOnly ? '' : '?defaultToGlobal=true'}`;
    let answer: { compatibilityLevel?: unknown; compatibility?: unknown };
    try {
      answer = await this.request('GET', path, undefined, { subject });
    } catch (err) {
      if (overrideOnly && err instanceof SwitchyardError && err.code === 'SY_ERR_SCHEMA_NOT_FOUND') return undefined;
      throw err;
    }
    const level = answer.compatibilityLevel ?? answer.compatibility;
    if (!isCompatibilityLevel(level)) {
      throw new SwitchyardError('SY_ERR_REGISTRY_UNAVAILABLE', `schema registry answered an unknown compatibility level ${JSON.stringify(level)}`, {
        detail: { path },
      });
    }
    return level;
  }

  async setCompatibility(level: CompatibilityLevel | null, subject?: string): Promise<void> {
    if (level === null) {
      if (subject === undefined) {
        throw new SwitchyardError('SY_ERR_SCHEMA_INVALID', 'the global compatibility level cannot be removed', { detail: { what: 'level' } });
      }
      try {
        await this.request('DELETE', `/config/${encodeURIComponent(subject)}`, undefined, { subject });
      } catch (err) {
        // Removing a level the subject does not have is a no-op, as in the core.
        if (!(err instanceof SwitchyardError && err.code === 'SY_ERR_SCHEMA_NOT_FOUND')) throw err;
      }
      return;
    }
    if (!isCompatibilityLevel(level)) {
      throw new SwitchyardError('SY_ERR_SCHEMA_INVALID', `unknown compatibility level ${JSON.stringify(level)}`, { detail: { what: 'level' } });
    }
    const path = subject === undefined ? '/config' : `/config/${encodeURIComponent(subject)}`;
    await this.request('PUT', path, { compatibility: level }, { subject });
  }

  async deleteSubject(subject: string): Promise<number[]> {
    return (await this.request<number[]>('DELETE', this.subjectPath(subject), undefined, { subject })).sort((a, b) => a - b);
  }

  async deleteVersion(subject: string, version: number): Promise<number> {
    return this.request<number>('DELETE', `${this.subjectPath(subject)}/versions/${version}`, undefined, { subject, version });
  }
}

/**
 * The library rejects with mappersmith's `ResponseError` (`status`, message "<client> - <server
 * message>"); a connection failure has status 400 and the socket error as message.
 */
function fromLibraryError(err: unknown, context: Record<string, unknown>): SwitchyardError {
  if (err instanceof SwitchyardError) return err;
  const status = (err as { status?: unknown } | null)?.status;
  const message = errorMessage(err).replace(/^[^-]*- /, '');
  if (typeof status !== 'number' || status === 400) {
    return new SwitchyardError('SY_ERR_REGISTRY_UNAVAILABLE', `schema registry request failed: ${message}`, { retriable: true, cause: err, detail: context });
  }
  const code =
    status === 409 ? CONFLUENT_ERROR_CODES.incompatibleSchema : status === 422 ? CONFLUENT_ERROR_CODES.invalidSchema : undefined;
  const error = fromConfluentError(status, { error_code: code, message }, context);
  return new SwitchyardError(error.code, error.message, { retriable: error.retriable, cause: err, detail: error.detail });
}
