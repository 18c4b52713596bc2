import { describe, expect, it } from 'vitest';
import { SwitchyardError } from '../errors.js';
import type { AppendRecord, EventLog, LogRecord, ReadRange, RecordPosition, TopicSpec } from '../log/port.js';
import { testLogBackedRegistry } from '../../test/contract/registry.contract.js';
import { LogBackedRegistry, decodeRecord, encodeRecord } from './log-backed.js';

/**
 * A minimal in-memory EventLog for the unit tier: topics, partitions, append, ranged reads and
 * offsets; no consumer groups (the registry does not use them). The contract tier runs the
 * same suite on the real embedded log.
 */
class MemoryLog implements EventLog {
  readonly kind = 'embedded' as const;
  private readonly topics = new Map<string, LogRecord[][]>();
  /** Called once before the next append, then cleared: lets a test interleave a writer. */
  beforeNextAppend: (() => Promise<void>) | undefined;

  async ensureTopics(specs: TopicSpec[]): Promise<void> {
    for (const spec of specs) if (!this.topics.has(spec.name)) this.topics.set(spec.name, Array.from({ length: spec.partitions }, () => []));
  }

  async partitionCount(topic: string): Promise<number | undefined> {
    return this.topics.get(topic)?.length;
  }

  private partitions(topic: string): LogRecord[][] {
    const p = this.topics.get(topic);
    if (!p) throw new SwitchyardError('SY_ERR_LOG_UNKNOWN_TOPIC', `unknown topic ${topic}`);
    return p;
  }

  async append(records: AppendRecord[]): Promise<RecordPosition[]> {
    const hook = this.beforeNextAppend;
    this.beforeNextAppend = undefined;
    if (hook) await hook();
    return records.map((r) => {
      const partition = r.partition ?? 0;
      const log = this.partitions(r.topic)[partition]!;
      const key = r.key === undefined || r.key === null ? null : Buffer.from(r.key);
      const headers = Object.fromEntries(Object.entries(r.headers ?? {}).map(([k, v]) => [k, Buffer.from(v)]));
      const record: LogRecord = { topic: r.topic, partition, offset: log.length, key, value: r.value, headers, timestamp: r.timestamp ?? 0 };
      log.push(record);
      return { topic: r.topic, partition, offset: record.offset };
    });
  }

  async startOffsets(topic: string): Promise<number[]> {
    return this.partitions(topic).map(() => 0);
  }

  async endOffsets(topic: string): Promise<number[]> {
    return this.partitions(topic).map((p) => p.length);
  }

  async read({ topic, partition, from, to, maxRecords = 10_000 }: ReadRange): Promise<LogRecord[]> {
    const log = this.partitions(topic)[partition]!;
    return log.slice(from, Math.min(to ?? log.length, from + maxRecords));
  }

  async committedOffsets(): Promise<number[]> {
    throw new Error('not needed by the registry');
  }

  async subscribe(): Promise<never> {
    throw new Error('not needed by the registry');
  }

  async close(): Promise<void> {}
}

testLogBackedRegistry('an in-test memory log', () => new MemoryLog());

const schema = (name: string) => JSON.stringify({ type: 'record', name, fields: [{ name: 'a', type: 'int' }] });

describe('LogBackedRegistry with a concurrent writer', () => {
  it('detects that another instance took the id it planned, and succeeds on retry', async () => {
    const log = new MemoryLog();
    const a = await LogBackedRegistry.open({ log, topic: '_schemas' });
    const b = await LogBackedRegistry.open({ log, topic: '_schemas' });
    // b registers between a's planning (after a's sync) and a's append.
    log.beforeNextAppend = async () => {
      expect(await b.register('b-subject', schema('B'))).toBe(1);
    };
    const err = await a.register('a-subject', schema('A')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SwitchyardError);
    expect((err as SwitchyardError).code).toBe('SY_ERR_REGISTRY_UNAVAILABLE');
    expect((err as SwitchyardError).retriable).toBe(true);
    expect(a.conflicts).toBe(1);
    // The refused record bound nothing: id 1 is still B's, everywhere.
    expect(await a.getById(1)).toBe(schema('B'));
    expect(await a.register('a-subject', schema('A'))).toBe(2);
    expect(await b.getLatest('a-subject')).toMatchObject({ id: 2 });
    const c = await LogBackedRegistry.open({ log, topic: '_schemas' });
    expect(await c.getById(1)).toBe(schema('B'));
    expect(await c.getById(2)).toBe(schema('A'));
  });

  it('serializes its own concurrent changes', async () => {
    const log = new MemoryLog();
    const r = await LogBackedRegistry.open({ log, topic: '_schemas' });
    const ids = await Promise.all(Array.from({ length: 20 }, (_, i) => r.register(`s${i}`, schema(`R${i}`))));
    expect([...ids].sort((x, y) => x - y)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(r.conflicts).toBe(0);
  });
});

describe('_schemas record encoding', () => {
  it('round-trips schema and config records', () => {
    const schemaRecord = { keytype: 'SCHEMA', subject: 's', version: 3, id: 9, schema: '"int"', deleted: true } as const;
    const encoded = encodeRecord('_schemas', schemaRecord);
    expect(decodeRecord(Buffer.from(encoded.key as string), encoded.value)).toEqual({ kind: 'apply', record: schemaRecord });
    const config = { keytype: 'CONFIG', subject: null, compatibilityLevel: 'FULL' } as const;
    const c = encodeRecord('_schemas', config);
    expect(c.key).toBe('{"keytype":"CONFIG","subject":null,"magic":0}');
    expect(decodeRecord(Buffer.from(c.key as string), c.value)).toEqual({ kind: 'apply', record: config });
    const removal = encodeRecord('_schemas', { keytype: 'CONFIG', subject: 's', compatibilityLevel: null });
    expect(removal.value).toBeNull();
    expect(decodeRecord(Buffer.from(removal.key as string), null)).toEqual({
      kind: 'apply',
      record: { keytype: 'CONFIG', subject: 's', compatibilityLevel: null },
    });
  });

  it('treats a SCHEMA tombstone as a hard delete and skips unknown key types', () => {
    expect(decodeRecord(Buffer.from('{"keytype":"SCHEMA","subject":"s","version":2,"magic":1}'), null)).toEqual({ kind: 'forget', subject: 's', version: 2 });
    expect(decodeRecord(Buffer.from('{"keytype":"NOOP","magic":0}'), Buffer.from('{}'))).toBeUndefined();
    expect(decodeRecord(Buffer.from('{"keytype":"DELETE_SUBJECT","subject":"s","magic":0}'), Buffer.from('{"subject":"s","version":2}'))).toBeUndefined();
  });

  it('reports corrupt records with their offset', () => {
    for (const [key, value] of [
      ['not json', '{}'],
      ['{"keytype":"SCHEMA","subject":"s","version":1}', '{"id":"x","schema":1}'],
      ['{"keytype":"CONFIG","subject":null}', '{"compatibilityLevel":"SIDEWAYS"}'],
    ] as const) {
      try {
        decodeRecord(Buffer.from(key), Buffer.from(value), 12);
        expect.unreachable();
      } catch (err) {
        expect((err as SwitchyardError).code).toBe('SY_ERR_LOG_CORRUPT');
        expect((err as SwitchyardError).detail['offset']).toBe(12);
      }
    }
  });
});
