/**
 * The `EventLog` port: an append-only, partitioned, keyed log with consumer groups.
 * Two adapters implement it — `embedded` (file-backed, in-process) and `kafka`
 * (kafkajs) — and both must pass `test/contract/event-log.contract.ts`. A third, read-only
 * one — `clickhouse`, the sink's log archive read back (`replay/archive.ts`) — serves replay:
 * it reads, and refuses to append, subscribe or create topics.
 *
 * Offsets are plain numbers (safe to 2^53) and are per topic-partition; an offset names a
 * record, and "end offset" is the offset the next appended record will get (Kafka's high
 * watermark).
 */

export type Headers = Record<string, Buffer>;

/** A topic as DESIGN.md describes it. */
export interface TopicSpec {
  name: string;
  partitions: number;
  /** Keep only the latest record per key (Kafka `cleanup.policy=compact`). @default false */
  compacted?: boolean;
  /** Retention in ms; undefined or -1 keeps forever. */
  retentionMs?: number;
  /**
   * What an append to this topic waits for when the embedded log syncs (fsync `always` or
   * `interval`): `'sync'` — its records are on disk before the append resolves and before any
   * consumer sees them; `'relaxed'` — they are written to the OS and visible at once, and
   * fsynced within `RELAXED_SYNC_MS` (a machine crash may lose that window; a process crash
   * loses nothing). For records a crash may lose because what depends on them is redone:
   * routing decisions (a request without an outcome is decided and dispatched again) and
   * heartbeats. Kafka ignores it (acks=all for every topic). @default 'sync'
   */
  durability?: 'sync' | 'relaxed';
  /**
   * When the embedded log lets consumers see a synced topic's records: `'synced'` — with the
   * append's resolution, once fsynced; `'written'` — as soon as they are written to the OS and
   * queued in the commit journal, while the append still resolves only after the fsync. Safe for
   * a topic whose records reach a client only through other records (requests: a client learns of
   * a request through its own append, or through its outcome): whatever a consumer appends
   * because of a record is journaled after it, so the fsync that makes that durable makes the
   * record durable too. Needs the commit journal (the default); without it, or with fsync
   * `never`, it has no effect. Kafka ignores it (a record is visible once replicated).
   * @default 'synced'
   */
  visibility?: 'synced' | 'written';
}

export interface AppendRecord {
  topic: string;
  /** Partition by key hash when omitted (murmur2, as Kafka's default partitioner). */
  partition?: number;
  key?: Buffer | string | null;
  /** `null` is a tombstone on compacted topics. */
  value: Buffer | null;
  headers?: Record<string, Buffer | string>;
  /** Producer timestamp in ms; defaults to the adapter's clock at append. */
  timestamp?: number;
  /**
   * `'relaxed'`: this record may ride the next group commit even on a synced topic (see
   * `TopicSpec.durability`) — for intermediate events, e.g. InferenceStarted, whose loss in a
   * machine crash is repaired by the retry of what has no outcome. An append that also holds a
   * synced record waits for the fsync that covers both. @default the topic's durability
   */
  durability?: 'relaxed';
}

export interface RecordPosition {
  topic: string;
  partition: number;
  offset: number;
}

export interface LogRecord extends RecordPosition {
  key: Buffer | null;
  value: Buffer | null;
  headers: Headers;
  timestamp: number;
}

export interface ReadRange {
  topic: string;
  partition: number;
  /** First offset to read (inclusive). */
  from: number;
  /** Stop before this offset; defaults to the end offset at call time. */
  to?: number;
  /** Upper bound on records returned by one call. @default 10_000 */
  maxRecords?: number;
}

export interface TopicPartitions {
  topic: string;
  partitions: number[];
}

export interface Batch {
  topic: string;
  partition: number;
  records: LogRecord[];
  /** The end offset of this partition when the batch was fetched (for lag). */
  highWatermark: number;
}

/**
 * How a subscription gets its partitions.
 * - `group`: share the topics' partitions with the other members of `groupId`.
 * - `static`: consume exactly these partitions (a worker's lane). Offsets are still
 *   committed under `groupId`, which must be unique to the consumer.
 * - `follow`: read exactly these partitions without any group: nothing is committed, no group
 *   coordinator is asked and no session can expire, so a broker restart or a starved process
 *   stops it only while the partitions' leaders cannot be fetched from. Every subscribe starts
 *   at the beginning (or, with `fromBeginning: false`, the end). For views that fold their topics
 *   whole and keep their own position (routers, controllers, a worker's session watch);
 *   `groupId` only names the subscription in logs.
 */
export type Assignment = { kind: 'group' } | { kind: 'static'; partitions: TopicPartitions[] } | { kind: 'follow'; partitions: TopicPartitions[] };

export interface SubscribeOptions {
  groupId: string;
  topics: string[];
  /** Where a group with no committed offset starts. @default 'earliest' */
  fromBeginning?: boolean;
  /** @default { kind: 'group' } */
  assignment?: Assignment;
  /**
   * Called with each batch of records of one partition, in offset order. The offset after
   * the last record is committed once the promise resolves (at-least-once): if it
   * rejects, the batch is delivered again.
   */
  onBatch: (batch: Batch) => Promise<void>;
  /** Notified after each rebalance with this member's partitions. */
  onAssigned?: (assigned: TopicPartitions[]) => void;
  /** Upper bound on records per batch. @default 500 */
  maxBatchRecords?: number;
}

export interface Subscription {
  /** The partitions this member owns right now. */
  assigned(): TopicPartitions[];
  /** Stop fetching, wait for the batch in hand, commit, leave the group. */
  close(): Promise<void>;
}

export interface EventLog {
  /** Adapter name, for logs and reports. */
  readonly kind: 'embedded' | 'kafka' | 'clickhouse';
  /** Create missing topics; existing topics are left as they are. */
  ensureTopics(specs: TopicSpec[]): Promise<void>;
  /** Partition count of a topic, or undefined when it does not exist. */
  partitionCount(topic: string): Promise<number | undefined>;
  /** Append records; resolves once they are durable per the adapter's policy. */
  append(records: AppendRecord[]): Promise<RecordPosition[]>;
  /** First retained offset per partition, indexed by partition. */
  startOffsets(topic: string): Promise<number[]>;
  /** End offset (next offset to be written) per partition, indexed by partition. */
  endOffsets(topic: string): Promise<number[]>;
  /** Records of one partition in [from, to), in order. */
  read(range: ReadRange): Promise<LogRecord[]>;
  /** Committed offsets of a group for a topic, indexed by partition; -1 = none. */
  committedOffsets(groupId: string, topic: string): Promise<number[]>;
  subscribe(options: SubscribeOptions): Promise<Subscription>;
  close(): Promise<void>;
}
