/**
 * The sink's batch buffer: rows from concurrent log batches gather here and are written to
 * ClickHouse together, and each log batch learns when *its* rows were acknowledged — only
 * then may its offsets be committed. No I/O of its own: the writer and the clock come in.
 *
 * Rows fill the open batch; it is sealed for writing when the first of these holds:
 * - size: it holds `maxRows` rows (a log batch bigger than the room left spills into the
 *   next one, and waits for both);
 * - time: its oldest row has waited `maxDelayMs`;
 * - nobody else can add: as many log batches are waiting as the log can deliver at once
 *   (`concurrency()`), so waiting longer only adds latency. Kafka hands the sink one
 *   partition's batch at a time, so there each batch is written at once (its rows are
 *   already as many as one fetch brought); the embedded log delivers every partition
 *   concurrently.
 *
 * Up to `maxWrites` sealed batches are written at once, the others wait their turn. A failed
 * write rejects every log batch with rows in it: the log delivers those again (at-least-once).
 */
import { deferred } from '../../lib/deferred.js';
export interface BufferOptions<E> {
  /** Size bound. */
  maxRows: number;
  /** Time bound, ms. */
  maxDelayMs: number;
  /** Sealed batches written concurrently. @default 2 */
  maxWrites?: number;
  /** How many log batches can be waiting at once; Infinity when unknown. */
  concurrency: () => number;
  /** Writes the rows; resolves once ClickHouse acknowledged all of them. */
  write: (entries: E[]) => Promise<void>;
  /** Clock and timers, injectable for tests. */
  now?: () => number;
  setTimer?: (fn: () => void, ms: number) => unknown;
  clearTimer?: (handle: unknown) => void;
}

interface Pending<E> {
  entries: E[];
  /** When the first row (or waiter) arrived. */
  firstAt: number;
  /** Settles when this batch's write does. */
  done: Promise<void>;
  resolve: () => void;
  reject: (err: unknown) => void;
  timer: unknown;
}

export class RowBuffer<E> {
  private current: Pending<E> | undefined;
  private readonly sealed: Pending<E>[] = [];
  private writing = 0;
  /** Log batches added and not yet settled. */
  private waiting = 0;
  private immediate = false;
  private readonly maxWrites: number;
  private readonly now: () => number;
  private readonly setTimer: (fn: () => void, ms: number) => unknown;
  private readonly clearTimer: (handle: unknown) => void;

  constructor(private readonly opts: BufferOptions<E>) {
    if (!Number.isInteger(opts.maxRows) || opts.maxRows < 1) throw new RangeError(`maxRows must be a positive integer, got ${opts.maxRows}`);
    if (!Number.isFinite(opts.maxDelayMs) || opts.maxDelayMs < 0) throw new RangeError(`maxDelayMs must be a non-negative number, got ${opts.maxDelayMs}`);
    this.maxWrites = opts.maxWrites ?? 2;
    if (!Number.isInteger(this.maxWrites) || this.maxWrites < 1) throw new RangeError(`maxWrites must be a positive integer, got ${opts.maxWrites}`);
    this.now = opts.now ?? Date.now;
    this.setTimer = opts.setTimer ?? ((fn, ms) => setTimeout(fn, ms));
    this.clearTimer = opts.clearTimer ?? ((h) => clearTimeout(h as ReturnType<typeof setTimeout>));
  }

  /** Rows buffered and not yet being written. */
  get buffered(): number {
    return (this.current?.entries.length ?? 0) + this.sealed.reduce((n, p) => n + p.entries.length, 0);
  }

  /**
   * Adds one log batch's rows (possibly none: the batch then waits for the open batch, which
   * holds the copies of its duplicates) and resolves when they have all been written.
   */
  add(entries: readonly E[]): Promise<void> {
    const joined: Promise<void>[] = [];
    let i = 0;
    do {
      const p = (this.current ??= this.open());
      const take = Math.min(entries.length - i, this.opts.maxRows - p.entries.length);
      for (let k = 0; k < take; k++) p.entries.push(entries[i + k]!);
      i += take;
      joined.push(p.done);
      if (p.entries.length >= this.opts.maxRows) this.seal(p);
    } while (i < entries.length);
    this.waiting++;
    const all = joined.length === 1 ? joined[0]! : Promise.all(joined).then(() => undefined);
    const settle = () => {
      this.waiting--;
    };
    all.then(settle, settle);
    this.pump();
    return all;
  }

  /** From now on every add is written at once (shutdown); writes what is buffered. */
  async drain(): Promise<void> {
    this.immediate = true;
    this.pump();
    while (this.current || this.sealed.length > 0 || this.writing > 0) {
      const pending = [this.current?.done, ...this.sealed.map((p) => p.done)].filter((p): p is Promise<void> => p !== undefined);
      await (pending.length > 0 ? Promise.allSettled(pending) : new Promise((r) => setImmediate(r)));
      this.pump();
    }
  }

  private open(): Pending<E> {
    // A rejection is handled by every waiter; nobody waiting is not an unhandled rejection.
    const { promise: done, resolve, reject } = deferred();
    return { entries: [], firstAt: this.now(), done, resolve, reject, timer: undefined };
  }

  private seal(p: Pending<E>): void {
    if (p.timer !== undefined) this.clearTimer(p.timer);
    p.timer = undefined;
    if (this.current === p) this.current = undefined;
    this.sealed.push(p);
  }

  /** Seals the open batch when it is due, and starts writes while there is room. */
  private pump(): void {
    const p = this.current;
    if (p) {
      const waited = this.now() - p.firstAt;
      // Waiting for more rows only pays while the log can still add some.
      const due = this.immediate || waited >= this.opts.maxDelayMs || this.waiting >= this.opts.concurrency();
      if (due) this.seal(p);
      else if (p.timer === undefined) {
        p.timer = this.setTimer(() => {
          p.timer = undefined;
          this.pump();
        }, this.opts.maxDelayMs - waited);
      }
    }
    while (this.writing < this.maxWrites && this.sealed.length > 0) this.start(this.sealed.shift()!);
  }

  private start(p: Pending<E>): void {
    this.writing++;
    const run = async () => {
      try {
        if (p.entries.length > 0) await this.opts.write(p.entries);
        p.resolve();
      } catch (err) {
        p.reject(err);
      }
    };
    // Counted down in a later microtask, after the batch's waiters have settled.
    void run().finally(() => {
      this.writing--;
      this.pump();
    });
  }
}
