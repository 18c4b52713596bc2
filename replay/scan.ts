import type { EventLog, LogRecord } from '../lib/log/port.js';
import type { TopicName } from '../lib/log/topics.js';
import type { SwitchyardEvent } from '../schemas/generated/events.js';
import { FULL } from './decoder.js';
import { ReplayError } from './errors.js';
import { decodeRecord, undecodable, type LogSource, type Undecodable } from './source.js';

/**
 * Bounded scans of a LogSource: which offsets of which partitions to read (by time or by
 * offsets), buffered sequential reading, decoding with undecodable records reported, progress.
 *
 * Time bounds use record timestamps to find offsets (binary search per partition: the embedded
 * log stamps records at append, Kafka with the producer's CreateTime, so timestamps within a
 * partition are non-decreasing up to clock skew) widened by `slackMs`, then events are kept by
 * their own `occurredAt`. Offsets are exact.
 */

/** Progress of a long scan: `done` of `total` units (records, decisions) in `phase`. */
export type ProgressFn = (progress: { phase: string; done: number; total: number }) => void;

export interface TimeWindow {
  /** Inclusive lower bound, ms since the epoch. */
  from?: number | undefined;
  /** Inclusive upper bound, ms since the epoch. */
  to?: number | undefined;
}

/** An offset bound: one topic (logical name or physical), optionally one partition; [from, to). */
export interface OffsetBound {
  topic: string;
  partition?: number | undefined;
  from?: number | undefined;
  to?: number | undefined;
}

export interface PartitionRange {
  topic: string;
  partition: number;
  from: number;
  to: number;
}

export interface PlanOptions extends TimeWindow {
  /** Offset bounds; a partition not named by any bound of its topic is read whole (within the time window). */
  offsets?: readonly OffsetBound[] | undefined;
  /** Widening of time bounds for record-timestamp vs occurredAt skew. @default 60_000 */
  slackMs?: number | undefined;
  /** Only these partitions, by topic (physical name). */
  partitions?: ReadonlyMap<string, readonly number[]> | undefined;
}

/** First offset in [lo, hi) whose record timestamp is ≥ t (hi when none): binary search on record timestamps. */
export async function offsetForTime(log: EventLog, topic: string, partition: number, t: number, lo: number, hi: number): Promise<number> {
  while (lo < hi) {
    const mid = lo + Math.floor((hi - lo) / 2);
    const [r] = await log.read({ topic, partition, from: mid, to: hi, maxRecords: 1 });
    if (r === undefined) return hi;
    if (r.timestamp < t) lo = r.offset + 1;
    else hi = mid;
  }
  return lo;
}

/** `offsetForTime` on a source: in one query where the source answers it (the ClickHouse archive), else by binary search. */
export function sourceOffsetForTime(source: LogSource, topic: string, partition: number, t: number, lo: number, hi: number): Promise<number> {
  return source.offsetForTime !== undefined ? source.offsetForTime(topic, partition, t, lo, hi) : offsetForTime(source.log, topic, partition, t, lo, hi);
}

/** Resolve a logical topic name (`decisions`) or a physical one to the physical name. */
export function physicalTopic(source: LogSource, topic: string): string {
  const logical = source.topics[topic as TopicName];
  if (logical !== undefined) return logical.name;
  if (Object.values(source.topics).some((t) => t.name === topic)) return topic;
  throw new ReplayError('SY_ERR_REPLAY_BAD_ARGUMENT', `unknown topic "${topic}" (one of ${Object.keys(source.topics).join(', ')}, or a physical name)`);
}

/** The offset ranges a scan of `topics` reads, with their total. */
export async function planScan(source: LogSource, topics: readonly string[], o: PlanOptions = {}): Promise<{ ranges: PartitionRange[]; total: number }> {
  const slack = o.slackMs ?? 60_000;
  const bounds = (o.offsets ?? []).map((b) => ({ ...b, topic: physicalTopic(source, b.topic) }));
  const ranges: PartitionRange[] = [];
  for (const t of topics) {
    const topic = physicalTopic(source, t);
    const spec = Object.values(source.topics).find((s) => s.name === topic);
    if (spec === undefined || spec.partitions === 0) continue;
    const starts = await source.log.startOffsets(topic);
    const ends = await source.log.endOffsets(topic);
    const only = o.partitions?.get(topic);
    const topicBounds = bounds.filter((b) => b.topic === topic);
    for (let p = 0; p < spec.partitions; p++) {
      if (only !== undefined && !only.includes(p)) continue;
      let from = starts[p] ?? 0;
      let to = ends[p] ?? 0;
      if (topicBounds.length > 0) {
        const b = topicBounds.find((x) => x.partition === p) ?? topicBounds.find((x) => x.partition === undefined);
        if (b === undefined) continue; // the topic's bounds name other partitions
        from = Math.max(from, b.from ?? from);
        to = Math.min(to, b.to ?? to);
      }
      if (from >= to) continue;
      if (o.from !== undefined) from = await sourceOffsetForTime(source, topic, p, o.from - slack, from, to);
      if (o.to !== undefined) to = await sourceOffsetForTime(source, topic, p, o.to + slack + 1, from, to);
      if (from < to) ranges.push({ topic, partition: p, from, to });
    }
  }
  return { ranges, total: ranges.reduce((a, r) => a + (r.to - r.from), 0) };
}

/**
 * A buffered forward reader of one partition from `from` to `to` (exclusive). Reads in chunks
 * so that many small advances (a fold following clocks) cost one log read per chunk.
 */
export class PartitionCursor {
  private buffer: LogRecord[] = [];
  private index = 0;
  /** Next offset to fetch from the log. */
  private fetchFrom: number;

  constructor(
    private readonly log: EventLog,
    readonly topic: string,
    readonly partition: number,
    from: number,
    private readonly to: number,
    private readonly chunk = 2_000,
  ) {
    this.fetchFrom = from;
  }

  /** Offset of the next record this cursor returns (or its end). */
  get position(): number {
    const r = this.buffer[this.index];
    return r !== undefined ? r.offset : this.fetchFrom;
  }

  /** The next record, without consuming it; null at the end. */
  async peek(): Promise<LogRecord | null> {
    if (this.index >= this.buffer.length) {
      if (this.fetchFrom >= this.to) return null;
      this.buffer = await this.log.read({ topic: this.topic, partition: this.partition, from: this.fetchFrom, to: this.to, maxRecords: this.chunk });
      this.index = 0;
      const last = this.buffer[this.buffer.length - 1];
      this.fetchFrom = last === undefined ? this.to : last.offset + 1;
      if (last === undefined) return null;
    }
    return this.buffer[this.index]!;
  }

  /** The next record, consumed; null at the end. */
  async next(): Promise<LogRecord | null> {
    const r = await this.peek();
    if (r !== null) this.index++;
    return r;
  }

  /** The next record if its offset is below `limit` (consumed), else null. Synchronous fast path when buffered. */
  nextBelowSync(limit: number): LogRecord | null | undefined {
    if (this.index >= this.buffer.length) return this.fetchFrom >= Math.min(limit, this.to) ? null : undefined;
    const r = this.buffer[this.index]!;
    if (r.offset >= limit) return null;
    this.index++;
    return r;
  }

  /** Move to the first record at or after `offset` (forward only). */
  async seek(offset: number): Promise<void> {
    while (this.index < this.buffer.length && this.buffer[this.index]!.offset < offset) this.index++;
    if (this.index >= this.buffer.length && this.fetchFrom < offset) {
      this.buffer = [];
      this.index = 0;
      this.fetchFrom = Math.min(offset, this.to);
    }
  }
}

/** Raw records of a plan, partition by partition, in batches; progress per batch. */
export async function* scanRecords(source: LogSource, ranges: readonly PartitionRange[], { onProgress, phase = 'scan', chunk = 5_000 }: { onProgress?: ProgressFn | undefined; phase?: string; chunk?: number } = {}): AsyncGenerator<LogRecord[]> {
  const total = ranges.reduce((a, r) => a + (r.to - r.from), 0);
  let done = 0;
  onProgress?.({ phase, done, total });
  for (const r of ranges) {
    let from = r.from;
    while (from < r.to) {
      const batch = await source.log.read({ topic: r.topic, partition: r.partition, from, to: r.to, maxRecords: chunk });
      if (batch.length === 0) break;
      from = batch[batch.length - 1]!.offset + 1;
      yield batch;
      done += batch.length;
      onProgress?.({ phase, done, total });
    }
  }
  onProgress?.({ phase, done: total, total });
}

export interface ScannedEvent {
  event: SwitchyardEvent;
  record: LogRecord;
}

export interface ScanEventsOptions extends PlanOptions {
  onProgress?: ProgressFn | undefined;
  /** Told of every record that does not decode (the scan goes on). */
  onUndecodable?: ((u: Undecodable) => void) | undefined;
  /** Decode only records this accepts (raw filter, e.g. on the key). */
  where?: ((record: LogRecord) => boolean) | undefined;
}

/**
 * Decoded events of `topics` within the window, partition by partition in offset order, a batch
 * (one log read) at a time. Events are kept by `occurredAt` within [from, to]; records that do not
 * decode are reported to `onUndecodable` and skipped.
 */
export async function* scanEventBatches(source: LogSource, topics: readonly string[], o: ScanEventsOptions = {}): AsyncGenerator<ScannedEvent[]> {
  const { ranges } = await planScan(source, topics, o);
  // Synchronous decoding with every field (as the codec decodes); the codec says why a record does not decode.
  const decoder = source.foldDecoder(FULL);
  for await (const batch of scanRecords(source, ranges, { onProgress: o.onProgress })) {
    const out: ScannedEvent[] = [];
    for (const record of batch) {
      if (o.where !== undefined && !o.where(record)) continue;
      const value = record.value;
      let event = decoder.needsPrepare(value) && !(await decoder.prepare(value)) ? null : decoder.decode(value);
      if (event === null) {
        const d = await decodeRecord(source, record);
        if (!d.ok) {
          if (value !== null) o.onUndecodable?.(undecodable(record, d.code, d.error));
          continue;
        }
        event = d.event;
      }
      const at = event.occurredAt;
      if ((o.from !== undefined && at < o.from) || (o.to !== undefined && at > o.to)) continue;
      out.push({ event, record });
    }
    if (out.length > 0) yield out;
  }
}

/** `scanEventBatches` one event at a time. */
export async function* scanEvents(source: LogSource, topics: readonly string[], o: ScanEventsOptions = {}): AsyncGenerator<ScannedEvent> {
  for await (const batch of scanEventBatches(source, topics, o)) yield* batch;
}
