import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ENVELOPE_FIELDS, GENERATED_PATH, generateEventTypes } from '../scripts/gen-event-types.js';
import { EVENT_NAMESPACE, latestSchemaFiles, readSchemaFiles, type RecordSchemaJson, type SchemaFile } from './catalog.js';
import { EVENT_SCHEMAS, EVENT_TYPES } from './generated/events.js';

const files = readSchemaFiles();

describe('generated event types', () => {
  it('are what the generator makes of the committed schemas (run npx tsx scripts/gen-event-types.ts)', () => {
    // A boolean, not a string diff: the file is ~90 KB and the fix is always to regenerate.
    const fresh = readFileSync(GENERATED_PATH, 'utf8') === generateEventTypes(files);
    expect(fresh, 'schemas/generated/events.ts is stale: run npx tsx scripts/gen-event-types.ts').toBe(true);
  });

  it('cover every event once, with the latest schema text', () => {
    const latest = latestSchemaFiles(files);
    expect([...EVENT_TYPES]).toEqual(latest.map((f) => f.event));
    expect(EVENT_TYPES).toHaveLength(18);
    for (const f of latest) {
      const { schema, ...rest } = EVENT_SCHEMAS[f.event as keyof typeof EVENT_SCHEMAS];
      expect(rest).toEqual({ type: f.event, fullName: f.fullName, version: f.version });
      expect(schema === f.text, `${f.event}: EVENT_SCHEMAS holds another text than ${f.event}.v${f.version}.avsc`).toBe(true);
    }
  });
});

describe('schema files', () => {
  it('all begin with the same envelope', () => {
    for (const f of files) expect(f.json.fields.slice(0, ENVELOPE_FIELDS.length).map((x) => x.name)).toEqual([...ENVELOPE_FIELDS]);
  });

  it('give every optional (nullable) field a null default', () => {
    for (const f of files) {
      for (const field of f.json.fields) {
        if (Array.isArray(field.type) && field.type[0] === 'null') expect({ field: `${f.event}.${field.name}`, default: field.default }).toEqual({ field: `${f.event}.${field.name}`, default: null });
      }
    }
  });
});

describe('the generator refuses what the codec would not honour', () => {
  const base = latestSchemaFiles(files).find((f) => f.event === 'WorkerDraining')!;
  const variant = (fields: RecordSchemaJson['fields'], event = base.event): SchemaFile => {
    const json = { ...base.json, name: event, fields };
    return { ...base, event, fullName: `${EVENT_NAMESPACE}.${event}`, json, text: JSON.stringify(json) };
  };

  it('a union other than null plus one type', () => {
    expect(() => generateEventTypes([variant([...base.json.fields, { name: 'x', type: ['null', 'string', 'int'], default: null }])])).toThrow(/unions/);
  });

  it('a field called type', () => {
    expect(() => generateEventTypes([variant([...base.json.fields, { name: 'type', type: 'string' }])])).toThrow(/"type"/);
  });

  it('an event without the envelope, or with a different one', () => {
    expect(() => generateEventTypes([variant(base.json.fields.slice(1))])).toThrow(/envelope/);
    const changed = base.json.fields.map((f) => (f.name === 'producer' ? { ...f, type: ['null', 'string'], default: null } : f));
    expect(() => generateEventTypes([base, variant(changed, 'Other')])).toThrow(/envelope/);
  });

  it('a named type defined differently in two schemas', () => {
    const clockless = base.json.fields.map((f) =>
      f.name === 'clock' ? { ...f, type: { type: 'array', items: { type: 'record', name: 'ClockEntry', fields: [{ name: 'topic', type: 'string' }] } } } : f,
    );
    expect(() => generateEventTypes([base, variant(clockless, 'Other')])).toThrow(/ClockEntry differs/);
  });
});
