import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { SwitchyardError } from '../../lib/errors.js';
import type { EventLog } from '../../lib/log/port.js';
import { LogBackedRegistry, encodeRecord } from '../../lib/registry/log-backed.js';
import type { SchemaRegistry } from '../../lib/registry/port.js';

/**
 * The `SchemaRegistry` contract. `testSchemaRegistry` runs against any adapter (in-memory,
 * log-backed, HTTP); every test works on its own randomly named subjects, so it can share a
 * registry with other tests. Tests that change the global level restore it.
 *
 * `testLogBackedRegistry` runs the contract on `LogBackedRegistry` over an `EventLog` from
 * `logFactory`, plus what only a log-backed store must do: survive a restart, share the log
 * between instances, write Confluent-shaped `_schemas` records.
 */

const unique = (label: string): string => `contract.${label}.${randomBytes(4).toString('hex')}`;

/** A record schema; `extra` adds fields after `a`. */
const record = (name: string, extra: object[] = [], doc?: string) =>
  JSON.stringify({ type: 'record', name, namespace: 'contract', ...(doc ? { doc } : {}), fields: [{ name: 'a', type: 'int' }, ...extra] });

const withDefault = (field: string, type: unknown = 'string', dflt: unknown = 'x') => ({ name: field, type, default: dflt });
const without = (field: string, type: unknown = 'string') => ({ name: field, type });

async function rejection(p: Promise<unknown>): Promise<SwitchyardError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(SwitchyardError);
    return err as SwitchyardError;
  }
  throw new Error('expected a rejection');
}

export type RegistryFactory = () => SchemaRegistry | Promise<SchemaRegistry>;

export function testSchemaRegistry(name: string, factory: RegistryFactory): void {
  describe(`SchemaRegistry contract: ${name}`, () => {
    describe('ids and versions', () => {
      it('registers a schema and reads it back by id, version and latest', async () => {
        const r = await factory();
        const subject = unique('basic');
        const schema = record('Basic');
        const id = await r.register(subject, schema);
        expect(Number.isInteger(id) && id > 0).toBe(true);
        expect(JSON.parse(await r.getById(id))).toEqual(JSON.parse(schema));
        expect(await r.getVersion(subject, 1)).toEqual({ subject, version: 1, id, schema: expect.any(String) });
        expect(await r.getLatest(subject)).toMatchObject({ subject, version: 1, id });
        expect(await r.listVersions(subject)).toEqual([1]);
        expect(await r.listSubjects()).toContain(subject);
      });

      it('is idempotent: the same schema again gives the same id and no new version', async () => {
        const r = await factory();
        const subject = unique('idem');
        const id = await r.register(subject, record('Idem'));
        expect(await r.register(subject, record('Idem'))).toBe(id);
        expect(await r.register(subject, JSON.parse(record('Idem')) as object)).toBe(id);
        expect(await r.listVersions(subject)).toEqual([1]);
      });

      it('ignores whitespace but not content when comparing schemas', async () => {
        const r = await factory();
        const subject = unique('ws');
        const id = await r.register(subject, record('Ws'));
        expect(await r.register(subject, JSON.stringify(JSON.parse(record('Ws')), null, 4))).toBe(id);
        const withDoc = await r.register(subject, record('Ws', [], 'documented'));
        expect(withDoc).not.toBe(id);
      });

      it('reuses the id of a schema registered under another subject', async () => {
        const r = await factory();
        const schema = record('Shared', [withDefault(`f${randomBytes(3).toString('hex')}`)]);
        const first = await r.register(unique('shared-a'), schema);
        const second = await r.register(unique('shared-b'), schema);
        expect(second).toBe(first);
      });

      it('gives new schemas increasing ids and numbers versions from 1', async () => {
        const r = await factory();
        const subject = unique('versions');
        const id1 = await r.register(subject, record('V'));
        const id2 = await r.register(subject, record('V', [withDefault('b')]));
        const id3 = await r.register(subject, record('V', [withDefault('b'), withDefault('c')]));
        expect(id2).toBeGreaterThan(id1);
        expect(id3).toBeGreaterThan(id2);
        expect(await r.listVersions(subject)).toEqual([1, 2, 3]);
        expect((await r.getLatest(subject)).id).toBe(id3);
        expect((await r.getVersion(subject, 2)).id).toBe(id2);
      });

      it('looks a schema up under a subject', async () => {
        const r = await factory();
        const subject = unique('lookup');
        const id = await r.register(subject, record('L'));
        await r.register(subject, record('L', [withDefault('b')]));
        expect(await r.lookup(subject, record('L'))).toMatchObject({ subject, version: 1, id });
        const missing = await rejection(r.lookup(subject, record('L', [withDefault('zz')])));
        expect(missing.code).toBe('SY_ERR_SCHEMA_NOT_FOUND');
        expect(missing.detail['what']).toBe('schema');
        const noSubject = await rejection(r.lookup(unique('nope'), record('L')));
        expect(noSubject.code).toBe('SY_ERR_SCHEMA_NOT_FOUND');
        expect(noSubject.detail['what']).toBe('subject');
      });

      it('says what was not found', async () => {
        const r = await factory();
        const subject = unique('nf');
        await r.register(subject, record('Nf'));
        const bySubject = await rejection(r.getLatest(unique('absent')));
        expect([bySubject.code, bySubject.detail['what']]).toEqual(['SY_ERR_SCHEMA_NOT_FOUND', 'subject']);
        const byVersion = await rejection(r.getVersion(subject, 7));
        expect([byVersion.code, byVersion.detail['what']]).toEqual(['SY_ERR_SCHEMA_NOT_FOUND', 'version']);
        const byId = await rejection(r.getById(2_000_000_000));
        expect([byId.code, byId.detail['what']]).toEqual(['SY_ERR_SCHEMA_NOT_FOUND', 'schema']);
        expect((await rejection(r.listVersions(unique('absent')))).code).toBe('SY_ERR_SCHEMA_NOT_FOUND');
      });

      it('rejects invalid schemas', async () => {
        const r = await factory();
        const subject = unique('invalid');
        for (const bad of ['{not json', '{"type":"record","name":"R","fields":[{"name":"a","type":"nope"}]}', '{"type":"record","name":"R","fields":[{"name":"a","type":"int","default":"x"}]}']) {
          const err = await rejection(r.register(subject, bad));
          expect(err.code).toBe('SY_ERR_SCHEMA_INVALID');
          expect(err.retriable).toBe(false);
        }
      });
    });

    describe('compatibility', () => {
      it('defaults to BACKWARD: a new field needs a default', async () => {
        const r = await factory();
        const subject = unique('backward');
        await r.register(subject, record('B'));
        expect(await r.getCompatibility(subject)).toBe(await r.getCompatibility());
        const err = await rejection(r.register(subject, record('B', [without('b')])));
        expect(err.code).toBe('SY_ERR_SCHEMA_INCOMPATIBLE');
        expect(err.retriable).toBe(false);
        expect(err.message).toMatch(/\bb\b/);
        expect(Array.isArray(err.detail['messages'])).toBe(true);
        expect(await r.listVersions(subject)).toEqual([1]);
        await r.register(subject, record('B', [withDefault('b')]));
        expect(await r.listVersions(subject)).toEqual([1, 2]);
      });

      it('checks compatibility without registering, with reasons', async () => {
        const r = await factory();
        const subject = unique('check');
        expect(await r.checkCompatibility(subject, record('C'))).toEqual({ compatible: true, messages: [] });
        await r.register(subject, record('C'));
        const bad = await r.checkCompatibility(subject, record('C', [without('b')]));
        expect(bad.compatible).toBe(false);
        expect(bad.messages.join('\n')).toMatch(/\bb\b/);
        expect(await r.checkCompatibility(subject, record('C', [withDefault('b')]))).toEqual({ compatible: true, messages: [] });
        expect(await r.checkCompatibility(subject, record('C', [withDefault('b')]), { version: 1 })).toEqual({ compatible: true, messages: [] });
        expect(await r.listVersions(subject)).toEqual([1]);
        const missing = await rejection(r.checkCompatibility(subject, record('C'), { version: 9 }));
        expect(missing.code).toBe('SY_ERR_SCHEMA_NOT_FOUND');
      });

      it('FORWARD: the old schema must read the new one; removing a field without default fails', async () => {
        const r = await factory();
        const subject = unique('forward');
        await r.setCompatibility('FORWARD', subject);
        await r.register(subject, record('F', [without('b')]));
        // Adding a field without a default is fine forward (old readers ignore it)...
        await r.register(subject, record('F', [without('b'), without('c')]));
        // ...but dropping `b`, which old readers need and has no default, is not.
        const err = await rejection(r.register(subject, record('F', [without('c')])));
        expect(err.code).toBe('SY_ERR_SCHEMA_INCOMPATIBLE');
      });

      it('FULL: both directions', async () => {
        const r = await factory();
        const subject = unique('full');
        await r.setCompatibility('FULL', subject);
        await r.register(subject, record('Fu'));
        expect((await rejection(r.register(subject, record('Fu', [without('b')])))).code).toBe('SY_ERR_SCHEMA_INCOMPATIBLE');
        await r.register(subject, record('Fu', [withDefault('b')]));
        const typeChange = await rejection(r.register(subject, JSON.stringify({ type: 'record', name: 'Fu', namespace: 'contract', fields: [{ name: 'a', type: 'string' }, withDefault('b')] })));
        expect(typeChange.code).toBe('SY_ERR_SCHEMA_INCOMPATIBLE');
      });

      it('NONE accepts anything', async () => {
        const r = await factory();
        const subject = unique('none');
        await r.setCompatibility('NONE', subject);
        await r.register(subject, record('N'));
        await r.register(subject, JSON.stringify({ type: 'record', name: 'Other', fields: [{ name: 'z', type: 'string' }] }));
        expect(await r.listVersions(subject)).toEqual([1, 2]);
      });

      it('transitive levels check every version, not only the latest', async () => {
        const r = await factory();
        const v1 = record('T');
        const v2 = record('T', [withDefault('b')]);
        const v3 = record('T', [without('b')]); // reads v2 (has b) but not v1 (no b, no default)
        const plain = unique('backward-plain');
        await r.register(plain, v1);
        await r.register(plain, v2);
        await r.register(plain, v3);
        const transitive = unique('backward-transitive');
        await r.setCompatibility('BACKWARD_TRANSITIVE', transitive);
        await r.register(transitive, v1);
        await r.register(transitive, v2);
        const err = await rejection(r.register(transitive, v3));
        expect(err.code).toBe('SY_ERR_SCHEMA_INCOMPATIBLE');
        expect(err.message).toMatch(/version 1/);
        // Checking against one version uses the level's direction without transitivity.
        expect((await r.checkCompatibility(transitive, v3, { version: 2 })).compatible).toBe(true);
        expect((await r.checkCompatibility(transitive, v3, { version: 1 })).compatible).toBe(false);
      });

      it('keeps levels per subject and globally', async () => {
        const r = await factory();
        const subject = unique('levels');
        const global = await r.getCompatibility();
        expect(await r.getCompatibility(subject, { overrideOnly: true })).toBeUndefined();
        await r.setCompatibility('FULL_TRANSITIVE', subject);
        expect(await r.getCompatibility(subject)).toBe('FULL_TRANSITIVE');
        expect(await r.getCompatibility(subject, { overrideOnly: true })).toBe('FULL_TRANSITIVE');
        expect(await r.getCompatibility()).toBe(global);
        await r.setCompatibility(null, subject);
        expect(await r.getCompatibility(subject, { overrideOnly: true })).toBeUndefined();
        expect(await r.getCompatibility(subject)).toBe(global);
        const bad = await rejection(r.setCompatibility('SIDEWAYS' as never, subject));
        expect(bad.code).toBe('SY_ERR_SCHEMA_INVALID');
      });

      it('applies the global level to subjects without their own', async () => {
        const r = await factory();
        const global = await r.getCompatibility();
        try {
          await r.setCompatibility('NONE');
          expect(await r.getCompatibility()).toBe('NONE');
          const subject = unique('global');
          await r.register(subject, record('G'));
          await r.register(subject, record('G', [without('b')]));
          expect(await r.getCompatibility(subject)).toBe('NONE');
        } finally {
          await r.setCompatibility(global);
        }
      });
    });

    describe('soft delete', () => {
      it('hides deleted versions but keeps their ids readable', async () => {
        const r = await factory();
        const subject = unique('delete');
        const id1 = await r.register(subject, record('D'));
        const id2 = await r.register(subject, record('D', [withDefault('b')]));
        expect(await r.deleteVersion(subject, 2)).toBe(2);
        expect(await r.listVersions(subject)).toEqual([1]);
        expect((await r.getLatest(subject)).id).toBe(id1);
        expect(JSON.parse(await r.getById(id2))).toEqual(JSON.parse(record('D', [withDefault('b')])));
        expect((await rejection(r.getVersion(subject, 2))).detail['what']).toBe('version');
        // Registering it again gives the same id under a new version number.
        expect(await r.register(subject, record('D', [withDefault('b')]))).toBe(id2);
        expect(await r.listVersions(subject)).toEqual([1, 3]);
      });

      it('deletes a whole subject', async () => {
        const r = await factory();
        const subject = unique('delete-subject');
        const id = await r.register(subject, record('Ds'));
        await r.register(subject, record('Ds', [withDefault('b')]));
        expect(await r.deleteSubject(subject)).toEqual([1, 2]);
        expect(await r.listSubjects()).not.toContain(subject);
        expect((await rejection(r.getLatest(subject))).detail['what']).toBe('subject');
        expect(JSON.parse(await r.getById(id))).toEqual(JSON.parse(record('Ds')));
        // A deleted subject has nothing to be compatible with.
        await r.register(subject, record('Ds', [without('c')]));
        expect(await r.listVersions(subject)).toEqual([3]);
      });
    });
  });
}

export type LogFactory = () => EventLog | Promise<EventLog>;

export function testLogBackedRegistry(name: string, logFactory: LogFactory): void {
  const logs: EventLog[] = [];
  const openLog = async (): Promise<EventLog> => {
    const log = await logFactory();
    logs.push(log);
    return log;
  };
  afterAll(async () => {
    await Promise.all(logs.map((l) => l.close().catch(() => undefined)));
  });

  testSchemaRegistry(`log-backed on ${name}`, async () => LogBackedRegistry.open({ log: await openLog(), topic: unique('_schemas') }));

  describe(`LogBackedRegistry on ${name}`, () => {
    it('creates a compacted single-partition topic', async () => {
      const log = await openLog();
      const topic = unique('_schemas');
      await LogBackedRegistry.open({ log, topic });
      expect(await log.partitionCount(topic)).toBe(1);
    });

    it('refuses a registry topic with more than one partition', async () => {
      const log = await openLog();
      const topic = unique('_schemas');
      await log.ensureTopics([{ name: topic, partitions: 2, compacted: true }]);
      const err = await rejection(LogBackedRegistry.open({ log, topic }));
      expect(err.code).toBe('SY_ERR_CONFIG');
    });

    it('survives a restart: ids, versions, levels and deletes come back from the log', async () => {
      const log = await openLog();
      const topic = unique('_schemas');
      const a = await LogBackedRegistry.open({ log, topic });
      const id1 = await a.register('s1', record('R1'));
      const id2 = await a.register('s1', record('R1', [withDefault('b')]));
      const id3 = await a.register('s2', record('R2'));
      await a.register('s3', record('R3'));
      await a.setCompatibility('FORWARD', 's2');
      await a.setCompatibility('FULL', 's2');
      await a.setCompatibility('NONE');
      await a.deleteSubject('s3');
      await a.deleteVersion('s1', 1);

      const b = await LogBackedRegistry.open({ log, topic });
      expect(await b.listSubjects()).toEqual(['s1', 's2']);
      expect(await b.listVersions('s1')).toEqual([2]);
      expect(await b.getLatest('s1')).toMatchObject({ version: 2, id: id2 });
      expect(JSON.parse(await b.getById(id1))).toEqual(JSON.parse(record('R1')));
      expect(await b.getById(id3)).toBe(await a.getById(id3));
      expect(await b.getCompatibility('s2')).toBe('FULL');
      expect(await b.getCompatibility()).toBe('NONE');
      // New ids continue after the highest id in the log.
      const next = await b.register('s4', record('R4'));
      expect(next).toBeGreaterThan(Math.max(id1, id2, id3));
      // Versions continue after deleted ones.
      expect(await b.register('s3', record('R3', [withDefault('x')]))).toBeGreaterThan(next);
      expect(await b.listVersions('s3')).toEqual([2]);
    });

    it('shares one topic between instances', async () => {
      const log = await openLog();
      const topic = unique('_schemas');
      const a = await LogBackedRegistry.open({ log, topic });
      const b = await LogBackedRegistry.open({ log, topic });
      const idA = await a.register('shared', record('S'));
      expect(await b.getLatest('shared')).toMatchObject({ id: idA, version: 1 });
      const idB = await b.register('shared', record('S', [withDefault('b')]));
      expect(idB).toBeGreaterThan(idA);
      expect(await a.listVersions('shared')).toEqual([1, 2]);
      // a schema known under another subject keeps its id across instances
      expect(await a.register('other', record('S', [withDefault('b')]))).toBe(idB);
      expect(a.conflicts + b.conflicts).toBe(0);
    });

    it('writes Confluent-shaped records to the topic', async () => {
      const log = await openLog();
      const topic = unique('_schemas');
      const r = await LogBackedRegistry.open({ log, topic });
      const id = await r.register('shape', record('Shape'));
      await r.setCompatibility('FULL', 'shape');
      const [end = 0] = await log.endOffsets(topic);
      const records = await log.read({ topic, partition: 0, from: 0, to: end });
      const decoded = records.map((rec) => ({ key: JSON.parse(rec.key!.toString()), value: rec.value && JSON.parse(rec.value.toString()) }));
      expect(decoded).toEqual([
        {
          key: { keytype: 'SCHEMA', subject: 'shape', version: 1, magic: 1 },
          value: { subject: 'shape', version: 1, id, schema: JSON.stringify(JSON.parse(record('Shape'))), deleted: false },
        },
        { key: { keytype: 'CONFIG', subject: 'shape', magic: 0 }, value: { compatibilityLevel: 'FULL' } },
      ]);
    });

    it('reads records other writers put in the topic, skipping key types it does not use', async () => {
      const log = await openLog();
      const topic = unique('_schemas');
      const r = await LogBackedRegistry.open({ log, topic });
      await log.append([
        { topic, partition: 0, key: '{"keytype":"NOOP","magic":0}', value: null },
        encodeRecord(topic, { keytype: 'SCHEMA', subject: 'external', version: 1, id: 41, schema: record('Ext'), deleted: false }),
      ]);
      expect(await r.getLatest('external')).toMatchObject({ id: 41, version: 1 });
      expect(await r.register('next', record('Next'))).toBe(42);
    });
  });
}
