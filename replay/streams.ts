import type { LogRecord } from '../lib/log/port.js';
import type { SwitchyardEvent } from '../schemas/generated/events.js';
import type { LogSource } from './source.js';

/**
 * Partitions read once for several forward readers ("consumers"): `verify` runs one fold per
 * router plus a reader of the decisions themselves over the same partitions, all moving forward
 * at about the same place. Each partition is read from the log in chunks once; each record's
 * fold event is decoded at most once and shared (events are never mutated by `evolve`); records
 * every consumer has passed are dropped. A consumer is an index into the partition's records
 * (offsets may have gaps), so it never has to search.
 */

export interface Consumer {
  /** Index of the next record, counted from the partition's first record read. */
  index: number;
}

export class SharedPartition {
  private records: LogRecord[] = [];
  private events: (SwitchyardEvent | null | undefined)[] = [];
  /** Index of records[0]. */
  private base = 0;
  private fetchFrom: number;
  private readonly consumers = new Set<Consumer>();
  private loading: Promise<void> | undefined;

  constructor(
    private readonly source: LogSource,
    readonly topic: string,
    readonly partition: number,
    /** First retained offset. */
    readonly start: number,
    private readonly end: number,
    private readonly chunk: number,
  ) {
    this.fetchFrom = start;
  }

  consumer(): Consumer {
    const c = { index: this.base };
    this.consumers.add(c);
    return c;
  }

  release(c: Consumer): void {
    this.consumers.delete(c);
  }

  /**
   * The record at an index when already loaded; null past the end; undefined when it must be
   * loaded (`load`). A reader half-way through the last chunk loaded starts the next read, so it is
   * usually there by the time it is needed (the log reads while this thread works).
   */
  at(index: number): LogRecord | null | undefined {
    const i = index - this.base;
    if (i < 0) throw new RangeError(`${this.topic}/${this.partition}: record ${index} was already dropped`);
    if (i < this.records.length) {
      const record = this.records[i]!;
      if (i >= this.readAheadAt && this.loading === undefined && this.fetchFrom < this.end) {
        // (`load` may drop records every reader has passed, so the record is taken first.) A
        // failed read ahead is forgotten: the next `load` tries again and reports it.
        this.load(index).catch(() => {});
      }
      return record;
    }
    return this.fetchFrom >= this.end ? null : undefined;
  }

  /** Index into `records` from which `at` starts the next read. */
  private readAheadAt = Infinity;

  /** Load the next chunk (concurrent callers share one read), keeping the records from index `keep` on. */
  load(keep = Infinity): Promise<void> {
    this.loading ??= (async () => {
      try {
        this.trim(keep);
        if (this.fetchFrom >= this.end) return;
        const batch = await this.source.log.read({ topic: this.topic, partition: this.partition, from: this.fetchFrom, to: this.end, maxRecords: this.chunk });
        const last = batch[batch.length - 1];
        this.fetchFrom = last === undefined ? this.end : last.offset + 1;
        for (const r of batch) {
          this.records.push(r);
          this.events.push(undefined);
        }
        this.readAheadAt = this.records.length - (this.chunk >> 1);
      } finally {
        this.loading = undefined;
      }
    })();
    return this.loading;
  }

  /** The record at an index, loading as needed; null past the end. */
  async get(index: number): Promise<LogRecord | null> {
    for (;;) {
      const r = this.at(index);
      if (r !== undefined) return r;
      await this.load();
    }
  }

  /**
   * The index of the record at `offset`, loading forward as needed: undefined when there is no
   * such record, or it was already dropped (the caller reads it from the log itself).
   */
  async find(offset: number): Promise<number | undefined> {
    if (offset < (this.records[0]?.offset ?? this.fetchFrom)) return undefined;
    while (this.fetchFrom <= offset && this.fetchFrom < this.end) await this.load();
    let lo = 0;
    let hi = this.records.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.records[mid]!.offset < offset) lo = mid + 1;
      else hi = mid;
    }
    return this.records[lo]?.offset === offset ? this.base + lo : undefined;
  }

  /** `find` without loading or waiting: the index of the record at `offset` when it is loaded, else undefined. */
  findLoaded(offset: number): number | undefined {
    const records = this.records;
    let lo = 0;
    let hi = records.length;
    if (hi === 0 || offset < records[0]!.offset || offset > records[hi - 1]!.offset) return undefined;
    // Offsets are dense but for compaction: try the direct index first.
    const guess = offset - records[0]!.offset;
    if (guess < hi && records[guess]!.offset === offset) return this.base + guess;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (records[mid]!.offset < offset) lo = mid + 1;
      else hi = mid;
    }
    return records[lo]?.offset === offset ? this.base + lo : undefined;
  }

  /** The shared decoded event of a loaded record (decoded on first request). */
  event(index: number, decode: (value: Buffer | null) => SwitchyardEvent | null): SwitchyardEvent | null {
    const i = index - this.base;
    let e = this.events[i];
    if (e === undefined) {
      e = decode(this.records[i]!.value);
      this.events[i] = e;
    }
    return e;
  }

  /**
   * Give a loaded record's event to the folds before they decode it (verify reads each decision in
   * place and hands the folds what it read; it must hold every field the fold's decode would).
   */
  offer(index: number, event: SwitchyardEvent): void {
    const i = index - this.base;
    if (i >= 0 && i < this.events.length && this.events[i] === undefined) this.events[i] = event;
  }

  /** Drop the records every consumer has passed (and below `keep`). */
  private trim(keep: number): void {
    let min = keep;
    for (const c of this.consumers) if (c.index < min) min = c.index;
    if (min === Infinity) min = this.base + this.records.length;
    const drop = min - this.base;
    if (drop <= 0 || drop < this.records.length / 2) return;
    this.records = this.records.slice(drop);
    this.events = this.events.slice(drop);
    this.base = min;
    this.readAheadAt -= drop;
  }
}

/** The partitions of a source, each read once for all its consumers. */
export class RecordStreams {
  private readonly partitions = new Map<string, SharedPartition[]>();
  private readonly bounds = new Map<string, Promise<{ starts: number[]; ends: number[] }>>();

  constructor(
    private readonly source: LogSource,
    private readonly chunk = 2_000,
  ) {}

  /** The shared partition (synchronous once it exists). */
  peek(topic: string, partition: number): SharedPartition | undefined {
    return this.partitions.get(topic)?.[partition];
  }

  async partition(topic: string, partition: number): Promise<SharedPartition> {
    const existing = this.peek(topic, partition);
    if (existing !== undefined) return existing;
    let b = this.bounds.get(topic);
    if (b === undefined) {
      b = (async () => ({ starts: await this.source.log.startOffsets(topic).catch(() => []), ends: await this.source.log.endOffsets(topic).catch(() => []) }))();
      this.bounds.set(topic, b);
    }
    const { starts, ends } = await b;
    let list = this.partitions.get(topic);
    if (list === undefined) this.partitions.set(topic, (list = []));
    let p = list[partition];
    if (p === undefined) {
      p = new SharedPartition(this.source, topic, partition, starts[partition] ?? 0, ends[partition] ?? 0, this.chunk);
      list[partition] = p;
    }
    return p;
  }
}
