/**
 * The `SchemaRegistry` port: a Confluent-compatible schema registry (Avro only).
 *
 * Adapters: `InMemoryRegistry` and `LogBackedRegistry` (the registry core over a map or over
 * the compacted `_schemas` topic of any `EventLog`), and `ConfluentRegistryClient` (HTTP, for
 * Confluent's own registry or our `services/registry`). All must pass
 * `test/contract/registry.contract.ts`.
 *
 * Semantics are Confluent's: ids are global and increase monotonically; the same schema text
 * registered under two subjects gets the same id; versions count from 1 per subject;
 * registering a schema a subject already has is idempotent (same id, no new version).
 * "Same schema" means the same JSON after whitespace is removed (Confluent without
 * `normalize`): key order and `doc` strings count.
 *
 * Errors are `SwitchyardError`s:
 * - `SY_ERR_SCHEMA_NOT_FOUND`, `detail.what` = `'subject' | 'version' | 'schema'`
 *   (Confluent 40401 / 40402 / 40403),
 * - `SY_ERR_SCHEMA_INVALID` (42201; `detail.what` = `'version'` for a bad version number,
 *   42202, or `'level'` for an unknown compatibility level, 42203),
 * - `SY_ERR_SCHEMA_INCOMPATIBLE` with `detail.messages: string[]` (409),
 * - `SY_ERR_REGISTRY_UNAVAILABLE` (retriable) when the backing store cannot be reached.
 */

export const COMPATIBILITY_LEVELS = [
  'NONE',
  'BACKWARD',
  'BACKWARD_TRANSITIVE',
  'FORWARD',
  'FORWARD_TRANSITIVE',
  'FULL',
  'FULL_TRANSITIVE',
] as const;

/**
 * Which registered versions a new schema is checked against, and in which direction.
 * - BACKWARD: the new schema can read data written with the latest version.
 * - FORWARD: the latest version can read data written with the new schema.
 * - FULL: both. `_TRANSITIVE`: against every version, not only the latest.
 */
export type CompatibilityLevel = (typeof COMPATIBILITY_LEVELS)[number];

/** The global level when none was set, as in Confluent. */
export const DEFAULT_COMPATIBILITY: CompatibilityLevel = 'BACKWARD';

export const isCompatibilityLevel = (value: unknown): value is CompatibilityLevel =>
  typeof value === 'string' && (COMPATIBILITY_LEVELS as readonly string[]).includes(value);

/** A schema as registered under a subject. */
export interface SchemaVersion {
  subject: string;
  version: number;
  /** Global schema id (the 4 bytes after the magic byte on the wire). */
  id: number;
  /** The schema's JSON text. */
  schema: string;
}

export interface CompatibilityResult {
  compatible: boolean;
  /** Why not, one line per failed check; empty when compatible. */
  messages: string[];
}

/** A schema as JSON text or as the parsed JSON value. */
export type SchemaInput = string | object;

export interface CheckCompatibilityOptions {
  /**
   * Check against this version only, in the direction(s) of the subject's level (Confluent's
   * `POST /compatibility/subjects/{subject}/versions/{version}`). By default the check covers
   * what `register` would check: the latest version, or every version for `_TRANSITIVE`.
   */
  version?: number;
}

export interface GetCompatibilityOptions {
  /**
   * Return the subject's own level only, `undefined` when it has none (Confluent's
   * `GET /config/{subject}` without `defaultToGlobal`). @default false
   */
  overrideOnly?: boolean;
}

export interface SchemaRegistry {
  /**
   * Register `schema` under `subject` and return its global id. Idempotent: a schema the
   * subject already has returns its id without a new version. A schema some other subject
   * has keeps that id. Throws `SY_ERR_SCHEMA_INCOMPATIBLE` when the subject's compatibility
   * level forbids it and `SY_ERR_SCHEMA_INVALID` when it is not a valid Avro schema.
   */
  register(subject: string, schema: SchemaInput): Promise<number>;
  /** The subject's (non-deleted) version holding exactly this schema. */
  lookup(subject: string, schema: SchemaInput): Promise<SchemaVersion>;
  /** Schema text by global id (soft-deleted versions keep their ids readable). */
  getById(id: number): Promise<string>;
  /** The newest non-deleted version of a subject. */
  getLatest(subject: string): Promise<SchemaVersion>;
  getVersion(subject: string, version: number): Promise<SchemaVersion>;
  /** Subjects with at least one non-deleted version, sorted. */
  listSubjects(): Promise<string[]>;
  /** Non-deleted versions of a subject, ascending. */
  listVersions(subject: string): Promise<number[]>;
  /** Would `register` accept `schema` (or, with `version`, is it compatible with that version)? */
  checkCompatibility(subject: string, schema: SchemaInput, options?: CheckCompatibilityOptions): Promise<CompatibilityResult>;
  /** The subject's level (its own, else the global one); the global level without `subject`. */
  getCompatibility(subject?: string): Promise<CompatibilityLevel>;
  getCompatibility(subject: string, options: GetCompatibilityOptions): Promise<CompatibilityLevel | undefined>;
  /** Set the global level (no subject) or a subject's; `null` removes a subject's own level. */
  setCompatibility(level: CompatibilityLevel | null, subject?: string): Promise<void>;
  /** Soft-delete every version of a subject; returns the versions deleted. Ids stay readable. */
  deleteSubject(subject: string): Promise<number[]>;
  /** Soft-delete one version; returns it. */
  deleteVersion(subject: string, version: number): Promise<number>;
}
