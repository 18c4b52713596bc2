/**
 * The sink's batch buffer: rows from concurrent log batches gather here and are written to
 * ClickHouse together, and each log batch learns when *its* rows were acknowledged — only
 * then may its offsets be committed. No I/O of its own: the writer and the clock come in.
 *
 * A flush starts when the first of these holds:
 * - size: `maxRows` rows are buffered;
 * - time: the oldest buffered row has waited `maxDelayMs`;
 * - nobody else can add: as many log batches are waiting as the log can deliver at once
 *   (`concurrency()`), so waiting longer only adds latency. Kafka hands the sink one
 *   partition's batch at a time, so there each batch flushes at once (its rows are already
 *   as many as one fetch brought); the embedded log delivers every partition concurrently.
 *
 * One flush runs at a time; rows arriving meanwhile form the next one. A failed flush
 * rejects every batch waiting on it: the log delivers those batches again (at-least-once).
 */
export interface BufferOptions<E> {
  /** Size bound. */
  maxRows: number;
  /** Time bound, ms. */
  maxDelayMs: number;
  /** How many batches the log can have waiting at once; Infinity when unknown. */
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
  waiters: number;
  /** When the first row (or waiter) arrived. */
  firstAt: number;
  /** Settles when this buffer's flush does. */
  done: Promise<void>;
  resolve: () => void;
  reject: (err: unknown) => void;
  timer: unknown;
}

export class RowBuffer<E> {
  private current: Pending<E> | undefined;
  private flushing: Promise<void> | undefined;
  private immediate = false;
  private readonly now: () => number;
  private readonly setTimer: (fn: () => void, ms: number) => unknown;
  private readonly clearTimer: (handle: unknown) => void;

  constructor(private readonly opts: BufferOptions<E>) {
    if (!Number.isInteger(opts.maxRows) || opts.maxRows < 1) throw new RangeError(`maxRows must be a positive integer, got ${opts.maxRows}`);
    if (!Number.isFinite(opts.maxDelayMs) || opts.maxDelayMs < 0) throw new RangeError(`maxDelayMs must be a non-negative number, got ${opts.maxDelayMs}`);
    this.now = opts.now ?? Date.now;
    this.setTimer = opts.setTimer ?? ((fn, ms) => setTimeout(fn, ms));
    this.clearTimer = opts.clearTimer ?? ((h) => clearTimeout(h as ReturnType<typeof setTimeout>));
  }

  /** Rows buffered and not yet being written. */
  get buffered(): number {
    return this.current?.entries.length ?? 0;
  }

  /**
   * Adds one log batch's rows (possibly none: the batch still waits for the buffer it joined)
   * and resolves when they have been written.
   */
  add(entries: readonly E[]): Promise<void> {
    const p = (this.current ??= this.open());
    for (const e of entries) p.entries.push(e);
    p.waiters++;
    this.consider();
    return p.done;
  }

  /** From now on every add flushes at once (shutdown); flushes what is buffered. */
  async drain(): Promise<void> {
    this.immediate = true;
    this.consider();
    while (this.flushing || this.current) {
      await (this.flushing ?? this.current?.done)?.catch(() => {});
      this.consider();
    }
  }

  private open(): Pending<E> {
    let resolve!: () => void;
    let reject!: (err: unknown) => void;
    const done = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    // A rejection is handled by every waiter; nobody waiting is not an unhandled rejection.
    done.catch(() => {});
    return { entries: [], waiters: 0, firstAt: this.now(), done, resolve, reject, timer: undefined };
  }

  private consider(): void {
    const p = this.current;
    if (!p || this.flushing) return;
    const waited = this.now() - p.firstAt;
    const due = this.immediate || p.entries.length >= this.opts.maxRows || p.waiters >= this.opts.concurrency() || waited >= this.opts.maxDelayMs;
    if (due) {
      this.start(p);
    } else if (p.timer === undefined) {
      p.timer = this.setTimer(() => {
        p.timer = undefined;
        this.consider();
      }, this.opts.maxDelayMs - waited);
    }
  }

  private start(p: Pending<E>): void {
    if (p.timer !== undefined) this.clearTimer(p.timer);
    p.timer = undefined;
    this.current = undefined;
    const run = async () => {
      try {
        if (p.entries.length > 0) await this.opts.write(p.entries);
        p.resolve();
      } catch (err) {
        p.reject(err);
      }
    };
    // Cleared in a later microtask, never before it is set (run() may finish synchronously).
    const flushing: Promise<void> = run().finally(() => {
      if (this.flushing === flushing) this.flushing = undefined;
      // The next buffer may have filled (or aged) while this one was written.
      this.consider();
    });
    this.flushing = flushing;
  }
}
