import avro from 'avsc';
import { SwitchyardError, errorMessage } from '../errors.js';
import {
  DEFAULT_COMPATIBILITY,
  isCompatibilityLevel,
  type CheckCompatibilityOptions,
  type CompatibilityLevel,
  type CompatibilityResult,
  type GetCompatibilityOptions,
  type SchemaInput,
  type SchemaRegistry,
  type SchemaVersion,
} from './port.js';

/**
 * The registry logic, shared by every store: schema parsing and identity, compatibility
 * checking by Avro schema resolution, and the registry state as a fold over registry records
 * (the same records the log-backed store keeps in its `_schemas` topic).
 */

type AvroType = avro.Type;

// ---------------------------------------------------------------------------------------------
// Schemas

export interface ParsedSchema {
  /** The schema's JSON without whitespace: its identity. */
  text: string;
  type: AvroType;
}

/** Parse and validate an Avro schema. Throws `SY_ERR_SCHEMA_INVALID` with avsc's reason. */
export function parseSchema(input: SchemaInput): ParsedSchema {
  let json: unknown;
  if (typeof input === 'string') {
    try {
      json = JSON.parse(input);
    } catch (err) {
      throw new SwitchyardError('SY_ERR_SCHEMA_INVALID', `schema is not valid JSON: ${errorMessage(err)}`, { cause: err, detail: { what: 'schema' } });
    }
  } else {
    json = input;
  }
  let type: AvroType;
  try {
    type = avro.Type.forSchema(json as avro.Schema);
  } catch (err) {
    throw new SwitchyardError('SY_ERR_SCHEMA_INVALID', `invalid Avro schema: ${errorMessage(err)}`, { cause: err, detail: { what: 'schema' } });
  }
  return { text: JSON.stringify(json), type };
}

// ---------------------------------------------------------------------------------------------
// Compatibility

/**
 * Why `reader` cannot read data written with `writer`, or undefined when it can. A reader
 * can read a writer iff avsc can build a resolver (`reader.createResolver(writer)`), which
 * follows the Avro specification's schema resolution rules. When it cannot, the reason names
 * every field that fails, innermost first found.
 */
export function readIncompatibility(reader: AvroType, writer: AvroType): string | undefined {
  try {
    reader.createResolver(writer);
    return undefined;
  } catch (err) {
    return explain(reader, writer, '', errorMessage(err)).join('; ');
  }
}

const typeLabel = (t: AvroType): string => t.name ?? t.typeName;

type Walkable = AvroType & { fields?: avro.types.Field[]; itemsType?: AvroType; valuesType?: AvroType; symbols?: string[] };

function explain(reader: AvroType, writer: AvroType, path: string, fallback: string): string[] {
  const at = path === '' ? '' : ` at ${path}`;
  const r = reader as Walkable;
  const w = writer as Walkable;
  if (r.typeName === 'record' && w.typeName === 'record' && r.fields && w.fields) {
    const readerNames = [r.name ?? '', ...(r.aliases ?? [])];
    if (w.name !== undefined && !readerNames.includes(w.name)) {
      return [`record ${w.name}${at} cannot be read as ${r.name ?? 'record'}: the names differ and the reader has no alias ${w.name}`];
    }
    const reasons: string[] = [];
    for (const field of r.fields) {
      const names = [field.name, ...field.aliases];
      const match = w.fields.find((wf) => names.includes(wf.name));
      const fieldPath = path === '' ? `${r.name ?? ''}.${field.name}` : `${path}.${field.name}`;
      if (!match) {
        if (field.defaultValue() === undefined) reasons.push(`field ${fieldPath} has no default and the writer has no such field (a new field needs a default)`);
        continue;
      }
      try {
        field.type.createResolver(match.type);
      } catch (err) {
        reasons.push(...explain(field.type, match.type, fieldPath, errorMessage(err)));
      }
    }
    if (reasons.length > 0) return reasons;
  } else if (r.typeName === 'array' && w.typeName === 'array' && r.itemsType && w.itemsType) {
    return explain(r.itemsType, w.itemsType, `${path}[]`, fallback);
  } else if (r.typeName === 'map' && w.typeName === 'map' && r.valuesType && w.valuesType) {
    return explain(r.valuesType, w.valuesType, `${path}{}`, fallback);
  } else if (r.typeName === 'enum' && w.typeName === 'enum' && r.symbols && w.symbols) {
    const missing = w.symbols.filter((s) => !r.symbols!.includes(s));
    if (missing.length > 0) return [`enum ${typeLabel(r)}${at} lacks writer symbol(s) ${missing.join(', ')} and has no default symbol`];
  }
  return [`${typeLabel(w)}${at} cannot be read as ${typeLabel(r)}: ${fallback}`];
}

/** A registered version, as the checker sees it. */
export interface CompatibilityTarget {
  /** How messages name it, e.g. "version 3 (id 12)". */
  label: string;
  type: AvroType;
}

const directionsOf = (level: CompatibilityLevel): { backward: boolean; forward: boolean; transitive: boolean } => ({
  backward: level.startsWith('BACKWARD') || level.startsWith('FULL'),
  forward: level.startsWith('FORWARD') || level.startsWith('FULL'),
  transitive: level.endsWith('_TRANSITIVE'),
});

/**
 * Is `candidate` compatible with the registered versions `previous` (oldest first) under
 * `level`? Non-transitive levels check the last of `previous` only.
 */
export function checkSchemaCompatibility(
  candidate: AvroType,
  previous: readonly CompatibilityTarget[],
  level: CompatibilityLevel,
): CompatibilityResult {
  if (level === 'NONE' || previous.length === 0) return { compatible: true, messages: [] };
  const { backward, forward, transitive } = directionsOf(level);
  const targets = transitive ? previous : previous.slice(-1);
  const messages: string[] = [];
  for (const target of targets) {
    if (backward) {
      const reason = readIncompatibility(candidate, target.type);
      if (reason) messages.push(`${level}: the new schema cannot read data written with ${target.label}: ${reason}`);
    }
    if (forward) {
      const reason = readIncompatibility(target.type, candidate);
      if (reason) messages.push(`${level}: ${target.label} cannot read data written with the new schema: ${reason}`);
    }
  }
  return { compatible: messages.length === 0, messages };
}

// ---------------------------------------------------------------------------------------------
// Registry records and state

/** A subject's version (as Confluent's `_schemas` SCHEMA records). */
export interface SchemaRecord {
  keytype: 'SCHEMA';
  subject: string;
  version: number;
  id: number;
  schema: string;
  deleted: boolean;
}

/** A compatibility level; `subject: null` is the global level; `compatibilityLevel: null` removes it. */
export interface ConfigRecord {
  keytype: 'CONFIG';
  subject: string | null;
  compatibilityLevel: CompatibilityLevel | null;
}

export type RegistryRecord = SchemaRecord | ConfigRecord;

interface StoredSchema {
  text: string;
  type?: AvroType;
}

interface VersionEntry {
  id: number;
  deleted: boolean;
}

const notFound = (what: 'subject' | 'version' | 'schema', message: string, detail: Record<string, unknown> = {}): SwitchyardError =>
  new SwitchyardError('SY_ERR_SCHEMA_NOT_FOUND', message, { detail: { ...detail, what } });

function checkSubject(subject: string): void {
  if (typeof subject !== 'string' || subject.length === 0 || subject.length > 1024 || /\p{Cc}/u.test(subject)) {
    throw new SwitchyardError('SY_ERR_SCHEMA_INVALID', `invalid subject name ${JSON.stringify(subject)}`, { detail: { what: 'subject' } });
  }
}

function checkVersion(version: number): void {
  if (!Number.isInteger(version) || version < 1 || version > 0x7fffffff) {
    throw new SwitchyardError('SY_ERR_SCHEMA_INVALID', `version must be a positive integer, got ${version}`, { detail: { what: 'version' } });
  }
}

function checkLevel(level: unknown): asserts level is CompatibilityLevel {
  if (!isCompatibilityLevel(level)) {
    throw new SwitchyardError('SY_ERR_SCHEMA_INVALID', `unknown compatibility level ${JSON.stringify(level)}`, { detail: { what: 'level' } });
  }
}

/** What registering a schema comes to: its id and version, and the record to write if new. */
export interface RegisterPlan {
  id: number;
  version: number;
  /** Undefined when the subject already has the schema (idempotent register). */
  record?: SchemaRecord;
}

/**
 * The registry's state: a fold over registry records (`apply`), queries over it, and plans
 * for changes (records to write, not yet applied). Synchronous and store-agnostic.
 */
export class RegistryState {
  private readonly schemas = new Map<number, StoredSchema>();
  private readonly idsByText = new Map<string, number>();
  private readonly subjects = new Map<string, Map<number, VersionEntry>>();
  private readonly subjectLevels = new Map<string, CompatibilityLevel>();
  private globalLevel: CompatibilityLevel = DEFAULT_COMPATIBILITY;
  private maxId = 0;
  /** Records refused by `apply` because they bound a taken id to another schema. */
  conflicts = 0;

  /**
   * Fold one record in. A schema id, once bound to a schema, keeps it: a record binding it to
   * another schema (only possible with two concurrent writers) is refused and `false` returned.
   */
  apply(record: RegistryRecord): boolean {
    if (record.keytype === 'CONFIG') {
      if (record.subject === null) this.globalLevel = record.compatibilityLevel ?? DEFAULT_COMPATIBILITY;
      else if (record.compatibilityLevel === null) this.subjectLevels.delete(record.subject);
      else this.subjectLevels.set(record.subject, record.compatibilityLevel);
      return true;
    }
    const stored = this.schemas.get(record.id);
    if (stored && stored.text !== record.schema) {
      this.conflicts++;
      return false;
    }
    if (!stored) this.schemas.set(record.id, { text: record.schema });
    if (!this.idsByText.has(record.schema)) this.idsByText.set(record.schema, record.id);
    if (record.id > this.maxId) this.maxId = record.id;
    let versions = this.subjects.get(record.subject);
    if (!versions) this.subjects.set(record.subject, (versions = new Map()));
    versions.set(record.version, { id: record.id, deleted: record.deleted });
    return true;
  }

  /** Remove a subject's version entirely (a tombstone in `_schemas`); its id stays readable. */
  forget(subject: string, version: number): void {
    const versions = this.subjects.get(subject);
    versions?.delete(version);
    if (versions?.size === 0) this.subjects.delete(subject);
  }

  /** Does the state hold exactly this record? */
  holds(record: RegistryRecord): boolean {
    if (record.keytype === 'CONFIG') {
      if (record.subject === null) return this.globalLevel === (record.compatibilityLevel ?? DEFAULT_COMPATIBILITY);
      return this.subjectLevels.get(record.subject) === (record.compatibilityLevel ?? undefined);
    }
    const entry = this.subjects.get(record.subject)?.get(record.version);
    return entry?.id === record.id && entry.deleted === record.deleted && this.schemas.get(record.id)?.text === record.schema;
  }

  private typeOf(id: number): AvroType {
    const stored = this.schemas.get(id)!;
    stored.type ??= parseSchema(stored.text).type;
    return stored.type;
  }

  private live(subject: string): [number, VersionEntry][] {
    const versions = this.subjects.get(subject);
    if (!versions) return [];
    return [...versions.entries()].filter(([, e]) => !e.deleted).sort((a, b) => a[0] - b[0]);
  }

  private liveOrThrow(subject: string): [number, VersionEntry][] {
    checkSubject(subject);
    const live = this.live(subject);
    if (live.length === 0) throw notFound('subject', `subject ${subject} not found`, { subject });
    return live;
  }

  private versionOf(subject: string, version: number, entry: VersionEntry): SchemaVersion {
    return { subject, version, id: entry.id, schema: this.schemas.get(entry.id)!.text };
  }

  getById(id: number): string {
    const stored = Number.isInteger(id) ? this.schemas.get(id) : undefined;
    if (!stored) throw notFound('schema', `schema id ${id} not found`, { id });
    return stored.text;
  }

  getLatest(subject: string): SchemaVersion {
    const live = this.liveOrThrow(subject);
    const [version, entry] = live[live.length - 1]!;
    return this.versionOf(subject, version, entry);
  }

  getVersion(subject: string, version: number): SchemaVersion {
    const live = this.liveOrThrow(subject);
    checkVersion(version);
    const found = live.find(([v]) => v === version);
    if (!found) throw notFound('version', `subject ${subject} has no version ${version}`, { subject, version });
    return this.versionOf(subject, version, found[1]);
  }

  lookup(subject: string, input: SchemaInput): SchemaVersion {
    const { text } = parseSchema(input);
    const live = this.liveOrThrow(subject);
    const found = live.find(([, e]) => this.schemas.get(e.id)!.text === text);
    if (!found) throw notFound('schema', `subject ${subject} has no such schema`, { subject });
    return this.versionOf(subject, found[0], found[1]);
  }

  listSubjects(): string[] {
    return [...this.subjects.keys()].filter((s) => this.live(s).length > 0).sort();
  }

  listVersions(subject: string): number[] {
    return this.liveOrThrow(subject).map(([v]) => v);
  }

  getCompatibility(subject?: string, { overrideOnly = false }: GetCompatibilityOptions = {}): CompatibilityLevel | undefined {
    if (subject === undefined) return this.globalLevel;
    checkSubject(subject);
    const own = this.subjectLevels.get(subject);
    return overrideOnly ? own : (own ?? this.globalLevel);
  }

  private targets(subject: string, versions: [number, VersionEntry][]): CompatibilityTarget[] {
    return versions.map(([version, e]) => ({ label: `${subject} version ${version} (id ${e.id})`, type: this.typeOf(e.id) }));
  }

  checkCompatibility(subject: string, input: SchemaInput, { version }: CheckCompatibilityOptions = {}): CompatibilityResult {
    checkSubject(subject);
    const parsed = parseSchema(input);
    const level = this.getCompatibility(subject)!;
    if (version === undefined) return checkSchemaCompatibility(parsed.type, this.targets(subject, this.live(subject)), level);
    const target = this.getVersion(subject, version);
    const direct = level.replace('_TRANSITIVE', '') as CompatibilityLevel;
    return checkSchemaCompatibility(parsed.type, this.targets(subject, [[target.version, { id: target.id, deleted: false }]]), direct);
  }

  planRegister(subject: string, input: SchemaInput): RegisterPlan {
    checkSubject(subject);
    const parsed = parseSchema(input);
    const live = this.live(subject);
    const same = live.find(([, e]) => this.schemas.get(e.id)!.text === parsed.text);
    if (same) return { id: same[1].id, version: same[0] };
    const level = this.getCompatibility(subject)!;
    const result = checkSchemaCompatibility(parsed.type, this.targets(subject, live), level);
    if (!result.compatible) {
      throw new SwitchyardError(
        'SY_ERR_SCHEMA_INCOMPATIBLE',
        `schema being registered is incompatible with an earlier schema of subject ${subject} (${level}): ${result.messages.join('; ')}`,
        { detail: { subject, level, messages: result.messages } },
      );
    }
    const id = this.idsByText.get(parsed.text) ?? this.maxId + 1;
    const everUsed = [...(this.subjects.get(subject)?.keys() ?? [])];
    const version = everUsed.length === 0 ? 1 : Math.max(...everUsed) + 1;
    return { id, version, record: { keytype: 'SCHEMA', subject, version, id, schema: parsed.text, deleted: false } };
  }

  planSetCompatibility(level: CompatibilityLevel | null, subject?: string): ConfigRecord {
    if (subject === undefined) {
      checkLevel(level);
      return { keytype: 'CONFIG', subject: null, compatibilityLevel: level };
    }
    checkSubject(subject);
    if (level !== null) checkLevel(level);
    return { keytype: 'CONFIG', subject, compatibilityLevel: level };
  }

  planDeleteSubject(subject: string): SchemaRecord[] {
    return this.liveOrThrow(subject).map(([version, e]) => ({
      keytype: 'SCHEMA',
      subject,
      version,
      id: e.id,
      schema: this.schemas.get(e.id)!.text,
      deleted: true,
    }));
  }

  planDeleteVersion(subject: string, version: number): SchemaRecord {
    const v = this.getVersion(subject, version);
    return { keytype: 'SCHEMA', subject, version, id: v.id, schema: v.schema, deleted: true };
  }
}

// ---------------------------------------------------------------------------------------------
// The port over a state and a store

/**
 * A `SchemaRegistry` over `RegistryState`. A store supplies `sync` (bring the state up to
 * date with the store) and `persist` (make records durable and fold them in). Changes are
 * serialized: plan against the synced state, persist, answer.
 */
export abstract class StateBackedRegistry implements SchemaRegistry {
  protected readonly state = new RegistryState();
  private tail: Promise<unknown> = Promise.resolve();

  /** Bring `state` up to date with the store. */
  protected abstract sync(): Promise<void>;
  /** Make `records` durable and fold them into `state`. */
  protected abstract persist(records: RegistryRecord[]): Promise<void>;

  /** Run `fn` after every change started before it. */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.tail.then(fn, fn);
    this.tail = run.catch(() => undefined);
    return run;
  }

  private async read<T>(fn: () => T): Promise<T> {
    await this.sync();
    return fn();
  }

  register(subject: string, schema: SchemaInput): Promise<number> {
    return this.exclusive(async () => {
      await this.sync();
      const plan = this.state.planRegister(subject, schema);
      if (plan.record) await this.persist([plan.record]);
      return plan.id;
    });
  }

  lookup(subject: string, schema: SchemaInput): Promise<SchemaVersion> {
    return this.read(() => this.state.lookup(subject, schema));
  }

  getById(id: number): Promise<string> {
    return this.read(() => this.state.getById(id));
  }

  getLatest(subject: string): Promise<SchemaVersion> {
    return this.read(() => this.state.getLatest(subject));
  }

  getVersion(subject: string, version: number): Promise<SchemaVersion> {
    return this.read(() => this.state.getVersion(subject, version));
  }

  listSubjects(): Promise<string[]> {
    return this.read(() => this.state.listSubjects());
  }

  listVersions(subject: string): Promise<number[]> {
    return this.read(() => this.state.listVersions(subject));
  }

  checkCompatibility(subject: string, schema: SchemaInput, options?: CheckCompatibilityOptions): Promise<CompatibilityResult> {
    return this.read(() => this.state.checkCompatibility(subject, schema, options));
  }

  getCompatibility(subject?: string): Promise<CompatibilityLevel>;
  getCompatibility(subject: string, options: GetCompatibilityOptions): Promise<CompatibilityLevel | undefined>;
  getCompatibility(subject?: string, options?: GetCompatibilityOptions): Promise<CompatibilityLevel | undefined> {
    return this.read(() => this.state.getCompatibility(subject, options));
  }

  setCompatibility(level: CompatibilityLevel | null, subject?: string): Promise<void> {
    return this.exclusive(async () => {
      await this.sync();
      await this.persist([this.state.planSetCompatibility(level, subject)]);
    });
  }

  deleteSubject(subject: string): Promise<number[]> {
    return this.exclusive(async () => {
      await this.sync();
      const records = this.state.planDeleteSubject(subject);
      await this.persist(records);
      return records.map((r) => r.version);
    });
  }

  deleteVersion(subject: string, version: number): Promise<number> {
    return this.exclusive(async () => {
      await this.sync();
      await this.persist([this.state.planDeleteVersion(subject, version)]);
      return version;
    });
  }
}

/** The registry core over memory: for tests and single-process tools. Nothing survives it. */
export class InMemoryRegistry extends StateBackedRegistry {
  protected async sync(): Promise<void> {}

  protected async persist(records: RegistryRecord[]): Promise<void> {
    for (const record of records) this.state.apply(record);
  }
}
