import avro from 'avsc';
import { describe, expect, it } from 'vitest';
import type { SwitchyardError } from '../errors.js';
import { testSchemaRegistry } from '../../test/contract/registry.contract.js';
import { InMemoryRegistry, RegistryState, checkSchemaCompatibility, parseSchema, readIncompatibility } from './core.js';
import type { CompatibilityLevel } from './port.js';

testSchemaRegistry('in-memory', () => new InMemoryRegistry());

const t = (schema: object | string) => avro.Type.forSchema(schema as avro.Schema);
const rec = (fields: object[], name = 'R') => ({ type: 'record', name, namespace: 'ns', fields });
const int = (name: string) => ({ name, type: 'int' });

describe('parseSchema', () => {
  it('keeps the JSON without whitespace as the identity', () => {
    expect(parseSchema('{ "type" : "record", "name": "R", "fields": [] }').text).toBe('{"type":"record","name":"R","fields":[]}');
    expect(parseSchema({ type: 'string' }).text).toBe('{"type":"string"}');
    expect(parseSchema('"long"').type.typeName).toBe('long');
  });

  it('says why a schema is invalid', () => {
    const err = (() => {
      try {
        parseSchema('{"type":"record","name":"R","fields":[{"name":"a","type":"int","default":"x"}]}');
      } catch (e) {
        return e as SwitchyardError;
      }
    })();
    expect(err?.code).toBe('SY_ERR_SCHEMA_INVALID');
    expect(err?.message).toMatch(/default/);
  });
});

describe('readIncompatibility: reasons name the field', () => {
  it('a new field without default', () => {
    expect(readIncompatibility(t(rec([int('a'), int('b')])), t(rec([int('a')])))).toMatch(/field ns\.R\.b has no default/);
  });

  it('a type change inside a nested record, array and map', () => {
    const inner = (type: string) => ({ type: 'record', name: 'Inner', fields: [{ name: 'x', type }] });
    const reader = t(rec([{ name: 'items', type: { type: 'array', items: inner('int') } }]));
    const writer = t(rec([{ name: 'items', type: { type: 'array', items: inner('string') } }]));
    expect(readIncompatibility(reader, writer)).toMatch(/ns\.R\.items\[\]\.x/);
    const mapReader = t(rec([{ name: 'm', type: { type: 'map', values: 'int' } }]));
    const mapWriter = t(rec([{ name: 'm', type: { type: 'map', values: 'string' } }]));
    expect(readIncompatibility(mapReader, mapWriter)).toMatch(/ns\.R\.m\{\}/);
  });

  it('a renamed record without alias, and enum symbols the reader lacks', () => {
    expect(readIncompatibility(t(rec([int('a')], 'S')), t(rec([int('a')], 'R')))).toMatch(/names differ/);
    const e = (symbols: string[], dflt?: string) => t({ type: 'enum', name: 'E', symbols, ...(dflt ? { default: dflt } : {}) });
    expect(readIncompatibility(e(['A']), e(['A', 'B']))).toMatch(/lacks writer symbol\(s\) B/);
    expect(readIncompatibility(e(['A'], 'A'), e(['A', 'B']))).toBeUndefined();
  });

  it('accepts promotions, aliases, and removed fields', () => {
    expect(readIncompatibility(t(rec([{ name: 'a', type: 'long' }])), t(rec([int('a')])))).toBeUndefined();
    expect(readIncompatibility(t(rec([{ name: 'b', type: 'int', aliases: ['a'] }])), t(rec([int('a')])))).toBeUndefined();
    expect(readIncompatibility(t(rec([int('a')])), t(rec([int('a'), int('b')])))).toBeUndefined();
  });
});

describe('checkSchemaCompatibility by level', () => {
  const v1 = t(rec([int('a')]));
  const v2 = t(rec([int('a'), { name: 'b', type: 'int', default: 0 }]));
  const v3 = t(rec([int('a'), int('b')])); // reads v2, not v1
  const history = [
    { label: 'version 1', type: v1 },
    { label: 'version 2', type: v2 },
  ];
  const check = (candidate: avro.Type, level: CompatibilityLevel) => checkSchemaCompatibility(candidate, history, level);

  it.each([
    ['NONE', true],
    ['BACKWARD', true],
    ['BACKWARD_TRANSITIVE', false],
    ['FORWARD', true],
    ['FORWARD_TRANSITIVE', true],
    ['FULL', true],
    ['FULL_TRANSITIVE', false],
  ] as const)('v3 under %s: compatible=%s', (level, compatible) => {
    const result = check(v3, level);
    expect(result.compatible).toBe(compatible);
    if (!compatible) expect(result.messages.join('\n')).toMatch(/version 1.*ns\.R\.b has no default/);
  });

  it('FORWARD fails when the old schema cannot read the new one', () => {
    const dropped = t(rec([{ name: 'b', type: 'int', default: 0 }]));
    const result = checkSchemaCompatibility(dropped, [{ label: 'version 1', type: v1 }], 'FORWARD');
    expect(result.compatible).toBe(false);
    expect(result.messages[0]).toMatch(/^FORWARD: version 1 cannot read data written with the new schema: field ns\.R\.a/);
  });

  it('anything is compatible with an empty history', () => {
    expect(checkSchemaCompatibility(v3, [], 'FULL_TRANSITIVE')).toEqual({ compatible: true, messages: [] });
  });
});

describe('RegistryState', () => {
  const s = (name: string) => JSON.stringify(rec([int('a')], name));

  it('keeps an id bound to its first schema', () => {
    const state = new RegistryState();
    expect(state.apply({ keytype: 'SCHEMA', subject: 'x', version: 1, id: 1, schema: s('A'), deleted: false })).toBe(true);
    expect(state.apply({ keytype: 'SCHEMA', subject: 'y', version: 1, id: 1, schema: s('B'), deleted: false })).toBe(false);
    expect(state.conflicts).toBe(1);
    expect(state.getById(1)).toBe(s('A'));
    expect(state.listSubjects()).toEqual(['x']);
  });

  it('plans without applying: a rejected plan leaves no trace', () => {
    const state = new RegistryState();
    const plan = state.planRegister('x', s('A'));
    expect(plan).toMatchObject({ id: 1, version: 1 });
    expect(state.listSubjects()).toEqual([]);
    state.apply(plan.record!);
    expect(state.planRegister('x', s('A'))).toEqual({ id: 1, version: 1 });
    expect(() => state.planRegister('x', JSON.stringify(rec([int('a'), int('b')], 'A')))).toThrowError(
      expect.objectContaining({ code: 'SY_ERR_SCHEMA_INCOMPATIBLE', detail: expect.objectContaining({ messages: [expect.stringMatching(/ns\.A\.b/)] }) }),
    );
  });

  it('validates subjects, versions and levels', () => {
    const state = new RegistryState();
    expect(() => state.planRegister('', s('A'))).toThrowError(expect.objectContaining({ code: 'SY_ERR_SCHEMA_INVALID' }));
    state.apply(state.planRegister('x', s('A')).record!);
    expect(() => state.getVersion('x', 0)).toThrowError(expect.objectContaining({ code: 'SY_ERR_SCHEMA_INVALID', detail: { what: 'version' } }));
    expect(() => state.planSetCompatibility('LOOSE' as CompatibilityLevel)).toThrowError(expect.objectContaining({ detail: { what: 'level' } }));
    expect(() => state.planSetCompatibility(null)).toThrowError(expect.objectContaining({ code: 'SY_ERR_SCHEMA_INVALID' }));
  });
});
