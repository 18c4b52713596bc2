import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { OutcomeMemory } from './outcomes.js';
import type { OutcomeRef } from './state.js';

const ref = (requestId: string, partition: number, over: Partial<OutcomeRef> = {}): OutcomeRef => ({
  requestId,
  eventId: randomUUID(),
  type: 'InferenceCompleted',
  topic: 'sy.results',
  partition,
  offset: 1_000_000_000_123,
  workerId: 'w3',
  attempt: 2,
  ...over,
});

describe('OutcomeMemory', () => {
  it('gives back every field of an outcome, whether its event id is a UUID or not', () => {
    const m = new OutcomeMemory(8);
    const a = ref(randomUUID(), 3);
    const b = ref('order-1', 0, { eventId: 'test-event-1', type: 'RequestRejected', workerId: null, attempt: 1, offset: 0 });
    const c = ref('order-2', 11, { type: 'InferenceFailed' });
    for (const r of [a, b, c]) m.add(r);
    expect(m.get(a.requestId)).toEqual(a);
    expect(m.get('order-1')).toEqual(b);
    expect(m.get('order-2')).toEqual(c);
    expect(m.get('order-3')).toBeUndefined();
    expect(m.size).toBe(3);
  });

  it('keeps the first outcome of a request, and forgets each partition oldest first on its own', () => {
    const m = new OutcomeMemory(4);
    const first = ref('r0', 0, { workerId: 'w0' });
    m.add(first);
    m.add(ref('r0', 0, { workerId: 'w1' }));
    expect(m.get('r0')).toEqual(first);
    for (let i = 1; i < 6; i++) m.add(ref(`r${i}`, 0, { eventId: `not-a-uuid-${i}` }));
    m.add(ref('p1', 1));
    expect(['r0', 'r1', 'r2', 'r3', 'r4', 'r5', 'p1'].map((id) => m.has(id))).toEqual([false, false, true, true, true, true, true]);
    // Rows are reused: the event id kept for a forgotten outcome is not given to the one after it.
    expect(m.get('r5')!.eventId).toBe('not-a-uuid-5');
    m.add(ref('r6', 0));
    m.add(ref('r7', 0));
    expect(m.get('r6')!.eventId).toMatch(/^[0-9a-f-]{36}$/);
    expect(m.get('r7')!.partition).toBe(0);
    expect(m.get('p1')!.partition).toBe(1);
    expect(m.size).toBe(5);
  });
});
