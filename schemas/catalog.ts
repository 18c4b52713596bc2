import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The committed Avro schema files, `schemas/avro/<EventName>.v<N>.avsc`. Read by the type
 * generator, the fixture generator and the tests; services use the generated
 * `EVENT_SCHEMAS` instead, so nothing at runtime depends on the file layout.
 */

export const EVENT_NAMESPACE = 'switchyard.events';

/** `schemas/avro/` of this checkout. */
export const AVRO_DIR = fileURLToPath(new URL('./avro/', import.meta.url));

/** `schemas/fixtures/` of this checkout. */
export const FIXTURES_DIR = fileURLToPath(new URL('./fixtures/', import.meta.url));

/** A record schema as JSON (the subset of Avro's shape the tools look at). */
export interface RecordSchemaJson {
  type: 'record';
  name: string;
  namespace?: string;
  doc?: string;
  fields: FieldJson[];
}

export interface FieldJson {
  name: string;
  type: unknown;
  doc?: string;
  default?: unknown;
}

export interface SchemaFile {
  /** Record name without namespace, e.g. `InferenceRequested`. */
  event: string;
  /** `switchyard.events.InferenceRequested`: the subject under RecordNameStrategy. */
  fullName: string;
  version: number;
  path: string;
  /** The parsed schema. */
  json: RecordSchemaJson;
  /** The schema as registered: the file's JSON without whitespace. */
  text: string;
}

const FILE_NAME = /^([A-Z][A-Za-z0-9]*)\.v([1-9][0-9]*)\.avsc$/;

/**
 * Every schema file in `dir`, sorted by event then version. Fails on a file name that does
 * not follow `<EventName>.v<N>.avsc`, a record name or namespace that does not match it, and
 * gaps in an event's versions.
 */
export function readSchemaFiles(dir: string = AVRO_DIR): SchemaFile[] {
  const files: SchemaFile[] = [];
  for (const name of readdirSync(dir).sort()) {
    if (!name.endsWith('.avsc')) continue;
    const m = FILE_NAME.exec(name);
    if (!m) throw new Error(`${name}: schema files are named <EventName>.v<N>.avsc`);
    const event = m[1]!;
    const version = Number(m[2]);
    const path = join(dir, name);
    const json = JSON.parse(readFileSync(path, 'utf8')) as RecordSchemaJson;
    if (json.type !== 'record' || json.name !== event || json.namespace !== EVENT_NAMESPACE) {
      throw new Error(`${name}: expected a record named ${event} in namespace ${EVENT_NAMESPACE}`);
    }
    files.push({ event, fullName: `${EVENT_NAMESPACE}.${event}`, version, path, json, text: JSON.stringify(json) });
  }
  files.sort((a, b) => (a.event === b.event ? a.version - b.version : a.event < b.event ? -1 : 1));
  for (let i = 0; i < files.length; i++) {
    const f = files[i]!;
    const expected = i > 0 && files[i - 1]!.event === f.event ? files[i - 1]!.version + 1 : 1;
    if (f.version !== expected) throw new Error(`${f.event}: version ${expected} is missing (found v${f.version})`);
  }
  return files;
}

/** The newest file of each event, in event name order. */
export function latestSchemaFiles(files: readonly SchemaFile[]): SchemaFile[] {
  const latest = new Map<string, SchemaFile>();
  for (const f of files) latest.set(f.event, f);
  return [...latest.values()];
}
