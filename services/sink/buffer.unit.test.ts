import { describe, expect, it } from 'vitest';
import { RowBuffer } from './buffer.js';

/** A manual clock and timer queue. */
function clock() {
  let now = 0;
  const timers: { at: number; fn: () => void; id: number }[] = [];
  let ids = 0;
  return {
    now: () => now,
    setTimer: (fn: () => void, ms: number) => {
      const t = { at: now + ms, fn, id: ++ids };
      timers.push(t);
      return t.id;
    },
    clearTimer: (id: unknown) => {
      const i = timers.findIndex((t) => t.id === id);
      if (i >= 0) timers.splice(i, 1);
    },
    advance(ms: number) {
      now += ms;
      for (const t of [...timers].sort((a, b) => a.at - b.at)) {
        if (t.at <= now && timers.includes(t)) {
          timers.splice(timers.indexOf(t), 1);
          t.fn();
        }
      }
    },
    pending: () => timers.length,
  };
}

const settle = () => new Promise((r) => setImmediate(r));

function harness(opts: { maxRows?: number; maxDelayMs?: number; concurrency?: number; maxWrites?: number } = {}) {
  const c = clock();
  const writes: number[][] = [];
  let fail: unknown;
  let gate: Promise<void> | undefined;
  const buffer = new RowBuffer<number>({
    maxRows: opts.maxRows ?? 10,
    maxDelayMs: opts.maxDelayMs ?? 100,
    concurrency: () => opts.concurrency ?? Infinity,
    ...(opts.maxWrites === undefined ? {} : { maxWrites: opts.maxWrites }),
    now: c.now,
    setTimer: c.setTimer,
    clearTimer: c.clearTimer,
    write: async (rows) => {
      writes.push([...rows]);
      if (gate) await gate;
      if (fail) throw fail;
    },
  });
  return {
    buffer,
    clock: c,
    writes,
    failWith: (e: unknown) => (fail = e),
    hold: () => {
      let open!: () => void;
      gate = new Promise((r) => (open = r));
      return () => {
        gate = undefined;
        open();
      };
    },
  };
}

const state = (p: Promise<unknown>) => {
  let s = 'pending';
  p.then(
    () => (s = 'resolved'),
    () => (s = 'rejected'),
  );
  return () => s;
};

describe('RowBuffer: flush on size, time, or when nobody else can add', () => {
  it('size bound: flushes as soon as maxRows are buffered, in one write', async () => {
    const h = harness({ maxRows: 5 });
    const a = state(h.buffer.add([1, 2]));
    await settle();
    expect(h.writes).toEqual([]);
    const b = state(h.buffer.add([3, 4, 5]));
    await settle();
    expect(h.writes).toEqual([[1, 2, 3, 4, 5]]);
    expect([a(), b()]).toEqual(['resolved', 'resolved']);
  });

  it('time bound: flushes when the oldest row has waited maxDelayMs', async () => {
    const h = harness({ maxDelayMs: 100 });
    const a = state(h.buffer.add([1]));
    h.clock.advance(60);
    h.buffer.add([2]);
    h.clock.advance(39);
    await settle();
    expect(h.writes).toEqual([]);
    h.clock.advance(1);
    await settle();
    expect(h.writes).toEqual([[1, 2]]);
    expect(a()).toBe('resolved');
  });

  it('flushes at once when every batch the log can deliver is waiting', async () => {
    const h = harness({ concurrency: 2 });
    h.buffer.add([1]);
    await settle();
    expect(h.writes).toEqual([]);
    h.buffer.add([2]);
    await settle();
    expect(h.writes).toEqual([[1, 2]]);
    // With one delivery at a time (Kafka), every batch flushes on its own.
    const k = harness({ concurrency: 1 });
    k.buffer.add([7]);
    await settle();
    expect(k.writes).toEqual([[7]]);
  });

  it('a batch with no new rows still waits for the buffer it joined (its duplicates are in it)', async () => {
    const h = harness({ maxDelayMs: 50 });
    const release = h.hold();
    const a = state(h.buffer.add([1]));
    const empty = state(h.buffer.add([]));
    h.clock.advance(50);
    await settle();
    expect(empty()).toBe('pending');
    release();
    await settle();
    expect([a(), empty()]).toEqual(['resolved', 'resolved']);
    // Alone, an empty batch writes nothing.
    const alone = state(h.buffer.add([]));
    h.clock.advance(50);
    await settle();
    expect(alone()).toBe('resolved');
    expect(h.writes).toEqual([[1]]);
  });

  it('after an empty flush (a batch of nothing but duplicates) the next rows still flush', async () => {
    const h = harness({ concurrency: 1 });
    await h.buffer.add([]);
    await h.buffer.add([1]);
    await h.buffer.add([]);
    await h.buffer.add([2, 3]);
    expect(h.writes).toEqual([[1], [2, 3]]);
  });

  it('a failed write rejects every batch waiting on it; the next buffer is unaffected', async () => {
    const h = harness({ maxRows: 2 });
    h.failWith(new Error('clickhouse down'));
    const a = h.buffer.add([1]);
    const b = h.buffer.add([2]);
    await expect(a).rejects.toThrow('clickhouse down');
    await expect(b).rejects.toThrow('clickhouse down');
    h.failWith(undefined);
    await expect(h.buffer.add([3, 4])).resolves.toBeUndefined();
    expect(h.writes).toEqual([[1, 2], [3, 4]]);
  });

  it('with one write at a time, rows arriving meanwhile form the next flush, due by then', async () => {
    const h = harness({ maxRows: 2, maxDelayMs: 100, maxWrites: 1 });
    const release = h.hold();
    h.buffer.add([1, 2]);
    await settle();
    const c = state(h.buffer.add([3]));
    h.clock.advance(150); // aged past the bound while the first write runs
    await settle();
    expect(h.writes).toEqual([[1, 2]]);
    release();
    await settle();
    await settle();
    expect(h.writes).toEqual([[1, 2], [3]]);
    expect(c()).toBe('resolved');
  });

  it('never writes more than maxRows at once: a big log batch spills over and waits for every part', async () => {
    const h = harness({ maxRows: 4, maxWrites: 1 });
    const release = h.hold();
    const big = state(h.buffer.add([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]));
    await settle();
    expect(h.writes).toEqual([[1, 2, 3, 4]]);
    expect(h.buffer.buffered).toBe(6);
    release();
    for (let i = 0; i < 6; i++) await settle();
    expect(h.writes).toEqual([[1, 2, 3, 4], [5, 6, 7, 8]]);
    expect(big()).toBe('pending'); // 9 and 10 wait for the time bound
    h.clock.advance(100);
    for (let i = 0; i < 4; i++) await settle();
    expect(h.writes).toEqual([[1, 2, 3, 4], [5, 6, 7, 8], [9, 10]]);
    expect(big()).toBe('resolved');
  });

  it('writes up to maxWrites batches concurrently; a failure rejects only the batches with rows in it', async () => {
    let calls = 0;
    const releases: (() => void)[] = [];
    const buffer = new RowBuffer<number>({
      maxRows: 2,
      maxDelayMs: 1_000,
      maxWrites: 2,
      concurrency: () => Infinity,
      write: (rows) =>
        new Promise<void>((resolve, reject) => {
          calls++;
          releases.push(() => (rows.includes(3) ? reject(new Error('refused')) : resolve()));
        }),
    });
    const a = buffer.add([1, 2]);
    const b = buffer.add([3, 4]);
    const c = state(buffer.add([5, 6]));
    await settle();
    expect(calls).toBe(2);
    releases[0]!();
    releases[1]!();
    await expect(a).resolves.toBeUndefined();
    await expect(b).rejects.toThrow('refused');
    await settle();
    expect(calls).toBe(3);
    releases[2]!();
    await settle();
    expect(c()).toBe('resolved');
  });

  it('drain writes what is buffered now and every later add at once', async () => {
    const h = harness({ maxDelayMs: 10_000 });
    const a = state(h.buffer.add([1]));
    await h.buffer.drain();
    expect(h.writes).toEqual([[1]]);
    expect(a()).toBe('resolved');
    await h.buffer.add([2]);
    expect(h.writes).toEqual([[1], [2]]);
  });

  it('checks its bounds', () => {
    const write = async () => {};
    expect(() => new RowBuffer({ maxRows: 0, maxDelayMs: 1, concurrency: () => 1, write })).toThrow(RangeError);
    expect(() => new RowBuffer({ maxRows: 1, maxDelayMs: -1, concurrency: () => 1, write })).toThrow(RangeError);
  });
});
