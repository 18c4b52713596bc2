/**
 * Generates `schemas/generated/events.ts` from `schemas/avro/*.avsc`: one interface per event
 * (latest version), the named types they use, the `SwitchyardEvent` union tagged by `type`
 * (the record name), `EVENT_TYPES`, and the schema text the codec registers.
 *
 *   npx tsx scripts/gen-event-types.ts           write the file
 *   npx tsx scripts/gen-event-types.ts --check   exit 1 when the committed file is stale
 *
 * A unit test (schemas/generated.unit.test.ts) fails when the committed file differs from
 * fresh output, so types and schemas cannot drift.
 *
 * Supported Avro: primitives, `timestamp-millis` longs (numbers of ms), records, enums,
 * arrays, maps, fixed, and unions of `null` with one other type. Anything else fails loudly
 * rather than generating a type the codec would not honour.
 */
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { EVENT_NAMESPACE, latestSchemaFiles, readSchemaFiles, type FieldJson, type SchemaFile } from '../schemas/catalog.js';

export const GENERATED_PATH = fileURLToPath(new URL('../schemas/generated/events.ts', import.meta.url));

/** The envelope every event begins with (DESIGN.md, "Every event has an envelope"). */
export const ENVELOPE_FIELDS = ['eventId', 'occurredAt', 'requestId', 'traceId', 'producer', 'causationId', 'clock'] as const;

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Obj = { [key: string]: Json };

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const NAMED = new Set(['record', 'enum', 'fixed']);
const PRIMITIVE_TS: Record<string, string> = {
  null: 'null',
  boolean: 'boolean',
  int: 'number',
  long: 'number',
  float: 'number',
  double: 'number',
  bytes: 'Buffer',
  string: 'string',
};

const shortName = (full: string): string => full.slice(full.lastIndexOf('.') + 1);
const fullNameOf = (name: string, namespace: string): string => (name.includes('.') ? name : `${namespace}.${name}`);

interface NamedDef {
  fullName: string;
  /** Definition with nested named types replaced by their full names, for comparing. */
  normalized: string;
  json: Obj;
  firstSeenIn: string;
}

/** Collects named types; a name used in several files must mean the same thing in all. */
class NamedTypes {
  readonly defs = new Map<string, NamedDef>();

  collect(node: Json, namespace: string, file: string): Json {
    if (Array.isArray(node)) return node.map((n) => this.collect(n, namespace, file));
    if (!isObj(node)) return node;
    const type = node['type'];
    if (typeof type === 'string' && NAMED.has(type) && typeof node['name'] === 'string') {
      const ns = typeof node['namespace'] === 'string' ? node['namespace'] : namespace;
      const fullName = fullNameOf(node['name'], ns);
      if (!fullName.startsWith(`${EVENT_NAMESPACE}.`) || fullName.slice(EVENT_NAMESPACE.length + 1).includes('.')) {
        throw new Error(`${file}: named type ${fullName} must be in namespace ${EVENT_NAMESPACE}`);
      }
      const normalizedNode: Obj = {};
      for (const [k, v] of Object.entries(node)) {
        if (k === 'fields' && Array.isArray(v)) {
          normalizedNode[k] = v.map((field) => (isObj(field) ? { ...field, type: this.collect(field['type'] ?? null, ns, file) } : field));
        } else if (k === 'namespace') continue;
        else normalizedNode[k] = v;
      }
      const normalized = JSON.stringify(normalizedNode);
      const seen = this.defs.get(fullName);
      if (seen && seen.normalized !== normalized) {
        throw new Error(`${file}: ${fullName} differs from its definition in ${seen.firstSeenIn}; a named type must be identical in every schema`);
      }
      if (!seen) this.defs.set(fullName, { fullName, normalized, json: normalizedNode, firstSeenIn: file });
      return fullName;
    }
    const out: Obj = {};
    for (const [k, v] of Object.entries(node)) out[k] = k === 'default' ? v : this.collect(v, namespace, file);
    return out;
  }
}

/** TypeScript for an Avro type whose named types were already collected (full-name strings). */
function tsType(node: Json, where: string): string {
  if (typeof node === 'string') {
    if (node in PRIMITIVE_TS) return PRIMITIVE_TS[node]!;
    return shortName(node);
  }
  if (Array.isArray(node)) {
    const branches = node.filter((b) => b !== 'null');
    if (branches.length !== 1 || node.length !== 2 || node[0] !== 'null') {
      throw new Error(`${where}: only unions of "null" first and one other type are supported, got ${JSON.stringify(node)}`);
    }
    return `${tsType(branches[0]!, where)} | null`;
  }
  if (isObj(node)) {
    const type = node['type'];
    if (type === 'array') {
      const item = tsType(node['items'] ?? null, where);
      return item.includes('|') ? `(${item})[]` : `${item}[]`;
    }
    if (type === 'map') return `Record<string, ${tsType(node['values'] ?? null, where)}>`;
    if (typeof type === 'string' && type in PRIMITIVE_TS) {
      const logical = node['logicalType'];
      if (logical !== undefined && !(type === 'long' && logical === 'timestamp-millis')) {
        throw new Error(`${where}: logical type ${String(logical)} on ${type} is not supported by the codec`);
      }
      return PRIMITIVE_TS[type]!;
    }
  }
  throw new Error(`${where}: unsupported Avro type ${JSON.stringify(node)}`);
}

function jsdoc(lines: string[], indent: string): string {
  const text = lines.filter((l) => l !== '');
  if (text.length === 0) return '';
  if (text.length === 1 && !text[0]!.includes('\n')) return `${indent}/** ${text[0]} */\n`;
  const body = text.flatMap((l) => l.split('\n')).map((l) => `${indent} * ${l}`.trimEnd());
  return `${indent}/**\n${body.join('\n')}\n${indent} */\n`;
}

const escapeDoc = (s: string): string => s.replace(/\*\//g, '*\\/');

function fieldDoc(field: FieldJson): string[] {
  const lines = [field.doc ? escapeDoc(field.doc) : ''];
  if (isObj(field.type as Json) && (field.type as Obj)['logicalType'] === 'timestamp-millis') lines.push('Unit: ms since the Unix epoch.');
  if (Array.isArray(field.type) && field.type.some((b) => isObj(b as Json) && (b as Obj)['logicalType'] === 'timestamp-millis')) {
    lines.push('Unit: ms since the Unix epoch.');
  }
  if ('default' in field) lines.push(`@default ${JSON.stringify(field.default)}`);
  return lines;
}

function fieldLines(fields: FieldJson[], where: string, indent = '  '): string {
  return fields.map((f) => `${jsdoc(fieldDoc(f), indent)}${indent}${f.name}: ${tsType(f.type as Json, `${where}.${f.name}`)};\n`).join('');
}

function namedTypeSource(def: NamedDef): string {
  const name = shortName(def.fullName);
  const doc = typeof def.json['doc'] === 'string' ? [escapeDoc(def.json['doc'])] : [];
  switch (def.json['type']) {
    case 'enum': {
      const symbols = def.json['symbols'] as string[];
      const dflt = def.json['default'];
      const docLines = [...doc, typeof dflt === 'string' ? `@default ${JSON.stringify(dflt)} (for symbols a reader does not know)` : ''];
      const constName = name.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase() + '_SYMBOLS';
      return (
        `${jsdoc(docLines, '')}export type ${name} = ${symbols.map((s) => `'${s}'`).join(' | ')};\n` +
        `export const ${constName} = [${symbols.map((s) => `'${s}'`).join(', ')}] as const satisfies readonly ${name}[];\n`
      );
    }
    case 'fixed':
      return `${jsdoc([...doc, `Fixed, ${String(def.json['size'])} bytes.`], '')}export type ${name} = Buffer;\n`;
    case 'record':
      return `${jsdoc(doc, '')}export interface ${name} {\n${fieldLines(def.json['fields'] as unknown as FieldJson[], name)}}\n`;
    default:
      throw new Error(`${def.fullName}: unsupported named type`);
  }
}

/** The source of `schemas/generated/events.ts` for these schema files. */
export function generateEventTypes(allFiles: readonly SchemaFile[]): string {
  const latest = latestSchemaFiles(allFiles);
  if (latest.length === 0) throw new Error('no schema files');
  const named = new NamedTypes();
  const events: { file: SchemaFile; fields: FieldJson[] }[] = [];
  for (const file of latest) {
    const where = `${file.event}.v${file.version}`;
    if (file.json.fields.some((f) => f.name === 'type')) throw new Error(`${where}: a field named "type" would clash with the event tag`);
    const fields = file.json.fields.map((f) => ({ ...f, type: named.collect(f.type as Json, EVENT_NAMESPACE, where) }));
    // The event records themselves are not emitted as named types but as event interfaces.
    named.defs.delete(file.fullName);
    events.push({ file, fields });
  }

  const envelopeOf = (fields: FieldJson[]): string => JSON.stringify(fields.slice(0, ENVELOPE_FIELDS.length));
  const first = events[0]!;
  const envelope = first.fields.slice(0, ENVELOPE_FIELDS.length);
  if (envelope.map((f) => f.name).join() !== ENVELOPE_FIELDS.join()) {
    throw new Error(`${first.file.event}: must begin with the envelope fields ${ENVELOPE_FIELDS.join(', ')}`);
  }
  for (const e of events) {
    if (envelopeOf(e.fields) !== envelopeOf(first.fields)) {
      throw new Error(`${e.file.event}.v${e.file.version}: envelope fields differ from ${first.file.event}'s; every event begins with the same envelope`);
    }
  }

  const out: string[] = [];
  out.push(
    '// Generated by scripts/gen-event-types.ts from schemas/avro/*.avsc. Do not edit:\n' +
      '// change a schema (as a new .vN.avsc file) and run `npx tsx scripts/gen-event-types.ts`.\n\n',
  );
  out.push(`export const EVENT_NAMESPACE = '${EVENT_NAMESPACE}';\n\n`);
  for (const def of [...named.defs.values()].sort((a, b) => (a.fullName < b.fullName ? -1 : 1))) {
    out.push(namedTypeSource(def), '\n');
  }
  out.push(
    jsdoc(['The envelope every event begins with: identity, time, causality and the clock (the log prefix the producer had consumed).'], ''),
    `export interface EventEnvelope {\n${fieldLines(envelope, 'EventEnvelope')}}\n\n`,
  );
  out.push(
    '/** `T` with the keys `K` (fields that have an Avro default) optional: what a producer must supply. */\n' +
      'export type WithDefaults<T, K extends keyof T> = Omit<T, K> & Partial<Pick<T, K>>;\n\n',
  );
  for (const { file, fields } of events) {
    const own = fields.slice(ENVELOPE_FIELDS.length);
    out.push(
      jsdoc([file.json.doc ? escapeDoc(file.json.doc) : '', `Schema: ${file.fullName} v${file.version}.`], ''),
      `export interface ${file.event} extends EventEnvelope {\n  type: '${file.event}';\n${fieldLines(own, file.event)}}\n`,
    );
    const defaulted = fields.filter((f) => 'default' in f).map((f) => `'${f.name}'`);
    out.push(
      `/** ${file.event} as a producer writes it: fields with defaults may be left out. */\n`,
      `export type ${file.event}Init = ${defaulted.length ? `WithDefaults<${file.event}, ${defaulted.join(' | ')}>` : file.event};\n\n`,
    );
  }
  const names = events.map((e) => e.file.event);
  out.push(
    '/** Every event, tagged by `type` = the Avro record name. */\n',
    `export type SwitchyardEvent =\n${names.map((n) => `  | ${n}`).join('\n')};\n\n`,
    '/** Every event as a producer writes it (defaulted fields optional). */\n',
    `export type SwitchyardEventInit =\n${names.map((n) => `  | ${n}Init`).join('\n')};\n\n`,
    "export type EventType = SwitchyardEvent['type'];\n\n",
    'export type EventOf<T extends EventType> = Extract<SwitchyardEvent, { type: T }>;\n\n',
    'export type EventInitOf<T extends EventType> = Extract<SwitchyardEventInit, { type: T }>;\n\n',
    `export const EVENT_TYPES = [\n${names.map((n) => `  '${n}',`).join('\n')}\n] as const satisfies readonly EventType[];\n\n`,
    '/** The latest schema of an event: what the codec registers and reads with. */\n' +
      'export interface EventSchema {\n' +
      '  readonly type: EventType;\n' +
      '  /** Full record name = subject under RecordNameStrategy. */\n' +
      '  readonly fullName: string;\n' +
      '  readonly version: number;\n' +
      '  /** The schema file\'s JSON without whitespace. */\n' +
      '  readonly schema: string;\n' +
      '}\n\n',
    `export const EVENT_SCHEMAS: { readonly [K in EventType]: EventSchema } = {\n`,
    ...events.map(
      ({ file }) =>
        `  ${file.event}: {\n    type: '${file.event}',\n    fullName: '${file.fullName}',\n    version: ${file.version},\n    schema: ${JSON.stringify(file.text)},\n  },\n`,
    ),
    '};\n',
  );
  return out.join('');
}

function main(argv: string[]): number {
  const source = generateEventTypes(readSchemaFiles());
  if (argv.includes('--check')) {
    let current = '';
    try {
      current = readFileSync(GENERATED_PATH, 'utf8');
    } catch {
      // missing counts as stale
    }
    if (current !== source) {
      process.stderr.write(`${GENERATED_PATH} is stale: run npx tsx scripts/gen-event-types.ts\n`);
      return 1;
    }
    return 0;
  }
  mkdirSync(dirname(GENERATED_PATH), { recursive: true });
  writeFileSync(GENERATED_PATH, source);
  process.stdout.write(`wrote ${GENERATED_PATH}\n`);
  return 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) process.exitCode = main(process.argv.slice(2));
