import { describe, expect, it } from 'vitest';
import { IDENTIFIER_FIELDS, Interner, internIdentifiers } from './intern.js';

describe('Interner', () => {
  it('keeps one entry per distinct value, however many copies are interned', () => {
    const t = new Interner(16);
    for (let i = 0; i < 1_000; i++) expect(t.intern(`worker-${i % 4}`)).toBe(`worker-${i % 4}`);
    expect(t.size).toBe(4);
  });

  it('never holds more than its bound: past it the table starts again', () => {
    const t = new Interner(8);
    for (let i = 0; i < 100; i++) {
      expect(t.intern(`id-${i}`)).toBe(`id-${i}`);
      expect(t.size).toBeLessThanOrEqual(8);
    }
    expect(t.size).toBe(4); // cleared at the 97th value (id-96), which then holds id-96..id-99
  });

  it('does not keep long strings', () => {
    const t = new Interner(8);
    expect(t.intern('x'.repeat(257))).toHaveLength(257);
    expect(t.size).toBe(0);
  });
});

describe('internIdentifiers', () => {
  it('goes through the identifier fields that hold strings and leaves every other field as it was', () => {
    const t = new Interner(64);
    const output = Buffer.from('{}');
    const record: Record<string, unknown> = { requestId: 'r-1', model: 'noop', modelVersion: 'v1', workerId: 'worker-1', previousWorkerId: null, output, attempt: 2 };
    internIdentifiers(record, t);
    expect(record).toEqual({ requestId: 'r-1', model: 'noop', modelVersion: 'v1', workerId: 'worker-1', previousWorkerId: null, output, attempt: 2 });
    expect(t.size).toBe(3); // model, modelVersion, workerId; not requestId, not null
    expect(IDENTIFIER_FIELDS).not.toContain('requestId');
    expect(IDENTIFIER_FIELDS).not.toContain('eventId');
  });
});
