import { LRUCache } from 'lru-cache';
import { describe, expect, it } from 'vitest';
import { mulberry32 } from '../../lib/prng.js';
import type { RequestStatus, RequestStatusName } from './state.js';
import { ENTRY_BYTES, StatusTable } from './status-table.js';

const base = (requestId: string, over: Partial<RequestStatus> = {}): RequestStatus => ({
  requestId,
  status: 'accepted',
  attempt: 1,
  model: 'm',
  requestedModel: 'm',
  modelVersion: null,
  workerId: null,
  acceptedAt: 1_000,
  updatedAt: 1_000,
  result: null,
  error: null,
  fingerprint: null,
  ...over,
});

const completedStatus = (requestId: string, output: Uint8Array, over: Partial<RequestStatus> = {}): RequestStatus =>
  base(requestId, {
    status: 'completed',
    attempt: 2,
    model: 'fallback',
    modelVersion: 'v3',
    workerId: 'w7',
    acceptedAt: null,
    updatedAt: 2_500.5,
    result: { output, contentType: 'application/json', modelDigest: 'd'.repeat(64), cacheHit: true, batchSize: 4, queueMs: 1.25, computeMs: 7 },
    fingerprint: 'f'.repeat(64),
    ...over,
  });

/** A status as plain data (the output as bytes), for deep comparison. */
const plain = (s: RequestStatus | undefined) => (s === undefined ? undefined : { ...s, result: s.result === null ? null : { ...s.result, output: [...s.result.output] } });

const table = (over: Partial<ConstructorParameters<typeof StatusTable>[0]> = {}) => {
  let t = 1_000_000; // lru-cache reads a start time of 0 as "no start"
  const clock = { advance: (ms: number) => (t += ms) };
  return { clock, table: new StatusTable({ maxEntries: 100, maxBytes: 1 << 20, ttlMs: 60_000, now: () => t, ...over }) };
};

describe('StatusTable', () => {
  it('gives back every field it was given, nulls, a result and an error included', () => {
    const { table: t } = table();
    const output = Buffer.from('{"label":"positive"}');
    const done = completedStatus('r1', output);
    const rejected = base('r2', { status: 'rejected', workerId: null, error: { kind: 'rejected', reason: 'SHED', message: 'shed', retriable: true, retryAfterMs: 250 } });
    t.set('r1', done);
    t.set('r2', rejected);
    expect(plain(t.get('r1'))).toEqual(plain(done));
    expect(t.get('r2')).toEqual(rejected);
    expect(t.get('r3')).toBeUndefined();
    // The output is a copy: the caller's bytes may be reused.
    output.fill(0);
    expect(t.get('r1')!.result!.output.toString()).toBe('{"label":"positive"}');
    for (const name of ['accepted', 'started', 'retrying', 'completed', 'failed', 'rejected'] satisfies RequestStatusName[]) {
      t.set('r4', base('r4', { status: name }));
      expect(t.peek('r4')!.status).toBe(name);
    }
  });

  it('versions each set, so a caller can tell whether what it set is still there', () => {
    const { table: t } = table();
    const v1 = t.set('r', base('r'));
    expect(t.versionOf('r')).toBe(v1);
    const v2 = t.set('r', base('r', { status: 'started' }));
    expect(v2).not.toBe(v1);
    expect(t.versionOf('r')).toBe(v2);
    t.delete('r');
    expect(t.versionOf('r')).toBeUndefined();
  });

  it('keeps a status read, changed and set again on the same output bytes, and those bytes outlive the row they came from', () => {
    const { table: t } = table();
    t.set('r', completedStatus('r', Buffer.from('out')));
    const read = t.get('r')!;
    t.set('r', { ...read, acceptedAt: 5 });
    expect(t.memory().slabs).toBe(1);
    const again = t.get('r')!;
    expect(again.result!.output.buffer).toBe(read.result!.output.buffer);
    expect(again.result!.output.byteOffset).toBe(read.result!.output.byteOffset);
    expect(again.acceptedAt).toBe(5);
    t.delete('r');
    expect(read.result!.output.toString()).toBe('out');
  });

  it('holds at most maxEntries, least recently used out first, reusing the rows and slabs of what it forgot', () => {
    const { table: t } = table({ maxEntries: 10 });
    for (let i = 0; i < 10; i++) t.set(`r${i}`, completedStatus(`r${i}`, Buffer.alloc(100, i)));
    t.get('r0'); // used: r1 goes first
    for (let i = 10; i < 2_000; i++) t.set(`r${i}`, completedStatus(`r${i}`, Buffer.alloc(100, i % 256)));
    expect(t.size).toBe(10);
    expect(t.peek('r0')).toBeUndefined();
    expect(t.peek('r1')).toBeUndefined();
    expect([...t.peek('r1999')!.result!.output]).toEqual(Array(100).fill(1999 % 256));
    const m = t.memory();
    expect(m.rows).toBe(10);
    expect(m.capacity).toBe(1_024);
    // 10 outputs of 104 bytes: one slab being filled, and perhaps the one before it.
    expect(m.slabs).toBeLessThanOrEqual(2);
  });

  it('holds at most maxBytes, counting each entry, its output and its error message, and refuses an entry larger than the bound', () => {
    const { table: t } = table({ maxBytes: 10 * (ENTRY_BYTES + 1_000) });
    for (let i = 0; i < 50; i++) t.set(`r${i}`, completedStatus(`r${i}`, Buffer.alloc(1_000)));
    expect(t.size).toBe(10);
    expect(t.bytes).toBe(10 * (ENTRY_BYTES + 1_000));
    const failed = base('e', { status: 'failed', error: { kind: 'failed', reason: 'X', message: 'm'.repeat(100), retriable: false, retryAfterMs: null } });
    t.set('e', failed);
    expect(t.bytes).toBe(9 * (ENTRY_BYTES + 1_000) + ENTRY_BYTES + 200);
    // Too large on its own: not kept, and what the key held before is gone too (as an LRU does).
    t.set('r49', completedStatus('r49', Buffer.alloc(20_000)));
    expect(t.peek('r49')).toBeUndefined();
    expect(t.size).toBe(9);
    expect(t.memory().rows).toBe(9);
  });

  it('forgets an entry ttlMs after it was last set, not after it was read', () => {
    const { table: t, clock } = table({ ttlMs: 1_000 });
    t.set('r', base('r'));
    clock.advance(600);
    expect(t.get('r')).toBeDefined();
    clock.advance(600);
    expect(t.get('r')).toBeUndefined();
    expect(t.memory().rows).toBe(0);
    t.set('s', base('s'));
    clock.advance(600);
    t.set('s', base('s', { status: 'started' }));
    clock.advance(600);
    expect(t.get('s')!.status).toBe('started');
  });

  it('answers as an LRU of status objects with the same bounds would, over a random run', () => {
    const random = mulberry32(11);
    let now = 1_000_000;
    const options = { maxEntries: 64, maxBytes: 64 * ENTRY_BYTES + 8_000, ttlMs: 5_000, now: () => now };
    const t = new StatusTable(options);
    const model = new LRUCache<string, RequestStatus>({
      max: options.maxEntries,
      maxSize: options.maxBytes,
      sizeCalculation: (s) => ENTRY_BYTES + (s.result?.output.byteLength ?? 0) + (s.error?.message.length ?? 0) * 2,
      ttl: options.ttlMs,
      updateAgeOnGet: false,
      perf: { now: () => now },
      ttlResolution: 0,
    });
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
    for (let step = 0; step < 20_000; step++) {
      now += Math.floor(random() * 20);
      const id = `r${Math.floor(random() * 150)}`;
      const op = random();
      if (op < 0.45) {
        const size = pick([0, 10, 100, 700, 5_000, 9_000]);
        const s =
          random() < 0.5
            ? completedStatus(id, Buffer.alloc(size, step % 256), { attempt: step % 5, updatedAt: now })
            : base(id, { status: pick(['accepted', 'started', 'failed'] as const), updatedAt: now, error: random() < 0.3 ? { kind: 'failed', reason: 'E', message: 'x'.repeat(size % 300), retriable: false, retryAfterMs: null } : null });
        t.set(id, s);
        model.set(id, s);
      } else if (op < 0.55) {
        // Read, change and set again (the tracker's accept over a known result).
        const known = t.peek(id);
        expect(plain(known)).toEqual(plain(model.peek(id)));
        if (known !== undefined) {
          const again = { ...known, acceptedAt: now };
          t.set(id, again);
          model.set(id, again);
        }
      } else if (op < 0.6) {
        t.delete(id);
        model.delete(id);
      } else {
        expect(plain(t.get(id))).toEqual(plain(model.get(id)));
      }
      expect(t.size).toBe(model.size);
      expect(t.bytes).toBe(model.calculatedSize);
    }
    // Every row and slab not in use was let go.
    const m = t.memory();
    expect(m.rows).toBe(t.size);
    expect(m.capacity).toBe(1_024);
    const outputBytes = [...model.values()].reduce((n, s) => n + (s.result?.output.byteLength ?? 0), 0);
    expect(m.slabs).toBeLessThanOrEqual(model.size + 1);
    expect(outputBytes).toBeGreaterThan(0);
  });
});
