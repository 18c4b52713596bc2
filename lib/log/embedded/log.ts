import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SwitchyardError, errorMessage } from '../../errors.js';
import { partitionForKey } from '../partitioner.js';
import { topicRetention } from '../retention.js';
import type { AppendRecord, EventLog, LogRecord, ReadRange, RecordPosition, SubscribeOptions, Subscription, TopicPartitions, TopicSpec } from '../port.js';
import { ChunkPool } from './chunks.js';
import { syncDir, writeFileAtomic } from './cleaner.js';
import { EmbeddedSubscription, type ConsumerHost } from './consumer.js';
import { frameSize, type FrameInput } from './frame.js';
import { GroupCoordinator } from './group.js';
import { acquireLock } from './lock.js';
import { OffsetStore } from './offsets.js';
import { resolveEmbeddedLogOptions, type EmbeddedLogOptions, type ResolvedEmbeddedLogOptions } from './options.js';
import { CommitJournal, entryRecords, type JournalBase, type JournalEntry } from './journal.js';
import { PartitionLog, RELAXED_SYNC_MS, type CompactionResult, type PartitionConfig } from './partition.js';

/** Topic metadata as persisted in `topics.json`. */
interface StoredTopic {
  name: string;
  partitions: number;
  compacted: boolean;
  retentionMs: number;
  /** Absent in topics.json files written before it existed: 'sync'. */
  durability?: 'sync' | 'relaxed';
  /** Absent in topics.json files written before it existed: 'synced'. */
  visibility?: 'synced' | 'written';
}

interface TopicState {
  spec: StoredTopic;
  partitions: PartitionLog[];
  /** Keyless records of one append go to one partition; the next append moves on. */
  nextSticky: number;
}

const TOPICS_FILE = 'topics.json';
const TOPICS_DIR = 'topics';
const OFFSETS_DIR = 'offsets';
const JOURNAL_DIR = 'journal';
/**
 * Encode buffers: appends are framed into chunks of this size, shared by every partition, and at
 * most `SPARE_CHUNKS` are kept between flushes (8 MiB for the whole log, however many partitions).
 */
const CHUNK_BYTES = 256 * 1024;
const SPARE_CHUNKS = 32;
/** Internal offsets log segments stay small: they are compacted and read whole on open. */
const OFFSETS_SEGMENT_BYTES = 4 * 1024 * 1024;
const MAX_PARTITIONS = 100_000;
/** Kafka's legal topic names. */
const TOPIC_NAME = /^[a-zA-Z0-9._-]{1,249}$/;

const badTopic = (message: string, detail: Record<string, unknown> = {}): SwitchyardError =>
  new SwitchyardError('SY_ERR_LOG_BAD_TOPIC', message, { detail });
const badRecord = (message: string, detail: Record<string, unknown> = {}): SwitchyardError =>
  new SwitchyardError('SY_ERR_LOG_BAD_RECORD', message, { detail });

function normalizeSpec(spec: TopicSpec): StoredTopic {
  if (typeof spec?.name !== 'string' || !TOPIC_NAME.test(spec.name) || spec.name === '.' || spec.name === '..') {
    throw badTopic(`topic name ${JSON.stringify(spec?.name)} is not legal (1–249 of a-z A-Z 0-9 . _ -)`, { topic: spec?.name });
  }
  if (!Number.isInteger(spec.partitions) || spec.partitions < 1 || spec.partitions > MAX_PARTITIONS) {
    throw badTopic(`topic ${spec.name}: partitions must be an integer in 1..${MAX_PARTITIONS}, got ${spec.partitions}`, { topic: spec.name });
  }
  const retentionMs = spec.retentionMs ?? -1;
  if (!Number.isSafeInteger(retentionMs) || retentionMs < -1) {
    throw badTopic(`topic ${spec.name}: retentionMs must be -1 or a non-negative integer, got ${spec.retentionMs}`, { topic: spec.name });
  }
  if (spec.durability !== undefined && spec.durability !== 'sync' && spec.durability !== 'relaxed') {
    throw badTopic(`topic ${spec.name}: durability must be 'sync' or 'relaxed', got ${String(spec.durability)}`, { topic: spec.name });
  }
  if (spec.visibility !== undefined && spec.visibility !== 'synced' && spec.visibility !== 'written') {
    throw badTopic(`topic ${spec.name}: visibility must be 'synced' or 'written', got ${String(spec.visibility)}`, { topic: spec.name });
  }
  return { name: spec.name, partitions: spec.partitions, compacted: spec.compacted === true, retentionMs, durability: spec.durability ?? 'sync', visibility: spec.visibility ?? 'synced' };
}

const toBytes = (v: Buffer | string): Buffer => (typeof v === 'string' ? Buffer.from(v, 'utf8') : v);

/**
 * Opens the embedded log in `options.dir` (created when missing): takes the directory
 * lock, recovers every partition (truncating torn tails) and loads committed offsets.
 */
export async function openEmbeddedLog(options: EmbeddedLogOptions = {}): Promise<EmbeddedLog> {
  const resolved = resolveEmbeddedLogOptions(options);
  await mkdir(resolved.dir, { recursive: true });
  const release = await acquireLock(resolved.dir, resolved.logger);
  const log = new EmbeddedLog(resolved, release);
  try {
    await log.load();
  } catch (err) {
    await log.close().catch(() => {});
    throw err;
  }
  return log;
}

/**
 * The embedded `EventLog`: an in-process, file-backed, segmented append-only log.
 *
 * Layout under `dir`:
 * - `LOCK` — pid of the owning process;
 * - `topics.json` — topic metadata;
 * - `topics/<topic>/<partition>/<base offset>.log|.index` — segments and their sparse indexes;
 * - `offsets/` — the internal compacted log of committed group offsets.
 */
export class EmbeddedLog implements EventLog, ConsumerHost {
  readonly kind = 'embedded' as const;
  readonly options: ResolvedEmbeddedLogOptions;
  offsets!: OffsetStore;
  private readonly topics = new Map<string, TopicState>();
  private readonly groups = new Map<string, GroupCoordinator>();
  private readonly subscriptions = new Set<EmbeddedSubscription>();
  private topicsChange: Promise<unknown> = Promise.resolve();
  private maintenanceTimer: NodeJS.Timeout | undefined;
  private closing: Promise<void> | undefined;
  private readonly chunks = new ChunkPool(CHUNK_BYTES, SPARE_CHUNKS);
  /** The commit journal (fsync not `never`, `journal` on), once replayed. */
  private journal: CommitJournal | undefined;

  /** Use `openEmbeddedLog`. */
  constructor(
    options: ResolvedEmbeddedLogOptions,
    private readonly releaseLock: () => Promise<void>,
  ) {
    this.options = options;
  }

  get dir(): string {
    return this.options.dir;
  }

  /** Recovers topics and offsets; called once by `openEmbeddedLog`. */
  async load(): Promise<void> {
    const { dir } = this.options;
    let stored: StoredTopic[] = [];
    try {
      const parsed = JSON.parse(await readFile(join(dir, TOPICS_FILE), 'utf8')) as { topics?: StoredTopic[] };
      stored = (parsed.topics ?? []).map(normalizeSpec);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw new SwitchyardError('SY_ERR_LOG_CORRUPT', `embedded log: cannot read ${join(dir, TOPICS_FILE)}: ${errorMessage(err)}`, { cause: err });
      }
    }
    this.offsets = await OffsetStore.open({
      ...this.partitionConfig('__offsets', 0, join(dir, OFFSETS_DIR)),
      segmentBytes: Math.min(this.options.segmentBytes, OFFSETS_SEGMENT_BYTES),
      // Commits ride the group commit: one lost in a machine crash only means its records
      // are delivered again (at-least-once), and the end-clamp on open covers the reverse.
      relaxed: true,
      onSealed: () => this.background(() => this.offsets.log.compact(this.options.clock.now(), 0), 'offsets compaction'),
    });
    for (const spec of stored) this.topics.set(spec.name, { spec, partitions: await this.openPartitions(spec), nextSticky: 0 });
    await this.openJournal();
    // A commit past a partition's end means its tail was lost in a machine crash (a relaxed
    // topic's unsynced records, or any topic under fsync 'never'); the offsets will be reused
    // by the next appends, so the group must resume at the end or it would skip them.
    await this.offsets.clampToEnds((topic, partition) => this.topics.get(topic)?.partitions[partition]?.endOffset, this.options.clock.now());
    const every = this.options.maintenanceIntervalMs;
    if (every > 0) {
      this.maintenanceTimer = setInterval(() => this.background(() => this.maintain(), 'maintenance'), every);
      this.maintenanceTimer.unref();
    }
  }

  /**
   * Replays the commit journal left by the last run into the partitions (what a crash took
   * from their segment files' tails), makes that durable, and writes through a new journal
   * from here on. With fsync `never` or `journal` off, an old journal is replayed all the same.
   */
  private async openJournal(): Promise<void> {
    const o = this.options;
    const { journal, entries, base } = await CommitJournal.open({
      dir: join(o.dir, JOURNAL_DIR),
      logger: o.logger,
      checkpointBytes: o.journalCheckpointBytes,
      checkpointMs: o.journalCheckpointMs,
      relaxedMs: RELAXED_SYNC_MS,
    });
    if (base !== undefined) await this.cutToJournal(base, entries);
    const touched = new Set<PartitionLog>();
    let appended = 0;
    for (const entry of entries) {
      const p = this.topics.get(entry.topic)?.partitions[entry.partition];
      if (p === undefined) {
        o.logger.warn({ topic: entry.topic, partition: entry.partition }, 'embedded log: journal entry for an unknown topic or partition; skipped');
        continue;
      }
      const r = p.replay(entryRecords(entry));
      appended += r.appended;
      if (r.appended > 0) touched.add(p);
      if (r.gapAt !== undefined) {
        o.logger.error({ topic: entry.topic, partition: entry.partition, end: p.endOffset, gapAt: r.gapAt }, 'embedded log: journal entry starts past the partition end; records between were lost');
      }
    }
    for (const p of touched) await p.durable();
    if (appended > 0) o.logger.warn({ records: appended, partitions: touched.size }, 'embedded log: recovered records lost from segment tails from the journal');
    const journaled = o.fsync !== 'never' && o.journal;
    if (journaled) {
      // After a crash the segment files' tails may be in the page cache only (and what was
      // replayed into relaxed partitions is not fsynced yet): durable before a base names them.
      if (journal.hadFiles) for (const t of this.topics.values()) for (const p of t.partitions) await p.syncActive();
      // The new file's base before the old files go: a crash from here on cuts to these ends.
      await journal.writeBase({ prevBytes: 0, opened: true, ends: this.writtenEnds() });
    }
    await journal.dropRecovered();
    if (!journaled) {
      await journal.close();
      return;
    }
    journal.start(
      () => this.syncWritten(),
      () => this.writtenEnds(),
    );
    this.journal = journal;
    for (const t of this.topics.values()) for (const p of t.partitions) p.useJournal(journal);
  }

  /**
   * Cuts every partition back to the journal's consistent prefix: its end when the oldest
   * journal file began (`base`; durable since) or just past its last record in `entries`,
   * whichever is further. What lies beyond in a segment file the kernel wrote back ahead of the
   * journal: it may have been made on a record the crash lost (a decision on a request whose
   * fsync never completed), and nothing beyond was acknowledged.
   */
  private async cutToJournal(base: JournalBase, entries: readonly JournalEntry[]): Promise<void> {
    const durable = new Map<PartitionLog, number>();
    for (const [topic, partition, end] of base.ends) {
      const p = this.topics.get(topic)?.partitions[partition];
      if (p !== undefined) durable.set(p, end);
    }
    for (const entry of entries) {
      const p = this.topics.get(entry.topic)?.partitions[entry.partition];
      if (p === undefined) continue;
      let last = -1;
      for (const [offset] of entryRecords(entry)) last = offset;
      if (last >= 0) durable.set(p, Math.max(durable.get(p) ?? 0, last + 1));
    }
    for (const t of this.topics.values()) {
      for (const [partition, p] of t.partitions.entries()) {
        // A partition in neither was created after the base and never flushed: empty.
        const end = durable.get(p) ?? 0;
        if (p.endOffset <= end) continue;
        const from = p.endOffset;
        await p.cutTo(end);
        this.options.logger.warn({ topic: t.spec.name, partition, from, to: p.endOffset }, 'embedded log: cut records a segment file held past the journal (written back ahead of a commit that never completed)');
      }
    }
  }

  /** Every journaled partition's end in its segment files (for a journal file's base). */
  private writtenEnds(): [string, number, number][] {
    const ends: [string, number, number][] = [];
    for (const t of this.topics.values()) for (const [partition, p] of t.partitions.entries()) ends.push([t.spec.name, partition, p.writtenEndOffset]);
    return ends;
  }

  /** Fsyncs every partition's segment files written since their last fsync (the journal's checkpoint). */
  private async syncWritten(): Promise<void> {
    await Promise.all([...this.topics.values()].flatMap((t) => t.partitions.map((p) => p.syncWritten())));
  }

  private partitionConfig(topic: string, partition: number, dir: string): PartitionConfig {
    const o = this.options;
    return {
      dir,
      topic,
      partition,
      segmentBytes: o.segmentBytes,
      indexIntervalBytes: o.indexIntervalBytes,
      tailCacheBytes: o.tailCacheBytes,
      tailCacheMaxAgeMs: o.tailCacheMaxAgeMs,
      fsync: o.fsync,
      fsyncIntervalMs: o.fsyncIntervalMs,
      logger: o.logger,
      chunks: this.chunks,
      journal: this.journal,
    };
  }

  private async openPartitions(spec: StoredTopic): Promise<PartitionLog[]> {
    const partitions: PartitionLog[] = [];
    for (let p = 0; p < spec.partitions; p++) {
      const cfg = this.partitionConfig(spec.name, p, join(this.options.dir, TOPICS_DIR, spec.name, String(p)));
      const log = await PartitionLog.open({ ...cfg, relaxed: spec.durability === 'relaxed', visibleWhenWritten: spec.visibility === 'written', onSealed: () => this.background(() => this.maintainPartition(spec, log), `maintenance of ${spec.name}/${p}`) });
      partitions.push(log);
    }
    return partitions;
  }

  /** Runs a background task, logging (not throwing) its failure. */
  private background(task: () => Promise<unknown>, what: string): void {
    if (this.closing !== undefined || this.options.maintenanceIntervalMs === 0) return;
    task().catch((err: unknown) => this.options.logger.error({ err: errorMessage(err) }, `embedded log: ${what} failed`));
  }

  private assertOpen(): void {
    if (this.closing !== undefined) throw new SwitchyardError('SY_ERR_LOG_CLOSED', 'the embedded log is closed');
  }

  private topic(name: string): TopicState {
    const t = this.topics.get(name);
    if (t === undefined) throw new SwitchyardError('SY_ERR_LOG_UNKNOWN_TOPIC', `unknown topic ${name}`, { detail: { topic: name } });
    return t;
  }

  /** The partition log; throws for an unknown topic or a partition out of range. */
  partition(topic: string, partition: number): PartitionLog {
    const t = this.topic(topic);
    const p = Number.isInteger(partition) ? t.partitions[partition] : undefined;
    if (p === undefined) {
      throw new SwitchyardError('SY_ERR_LOG_BAD_PARTITION', `partition ${partition} out of range for ${topic} (${t.partitions.length} partitions)`, {
        detail: { topic, partition, partitions: t.partitions.length },
      });
    }
    return p;
  }

  async ensureTopics(specs: TopicSpec[]): Promise<void> {
    this.assertOpen();
    const wanted = specs.map(normalizeSpec);
    const run = this.topicsChange.then(async () => {
      const missing = new Map<string, StoredTopic>();
      let changed = false;
      for (const spec of wanted) {
        const existing = this.topics.get(spec.name);
        if (existing === undefined) {
          if (!missing.has(spec.name)) missing.set(spec.name, spec);
        } else if ((existing.spec.durability ?? 'sync') !== spec.durability || (existing.spec.visibility ?? 'synced') !== spec.visibility) {
          // A topic's durability and visibility are settings, not a layout: a log made before a
          // topic was relaxed (or the other way) takes the wanted ones, as Kafka takes a config change.
          existing.spec = { ...existing.spec, durability: spec.durability, visibility: spec.visibility };
          for (const p of existing.partitions) {
            p.setRelaxed(spec.durability === 'relaxed');
            p.setVisibleWhenWritten(spec.visibility === 'written');
          }
          changed = true;
        }
      }
      if (missing.size === 0 && !changed) return;
      const opened: TopicState[] = [];
      for (const spec of missing.values()) opened.push({ spec, partitions: await this.openPartitions(spec), nextSticky: 0 });
      const all = [...[...this.topics.values()].map((t) => t.spec), ...missing.values()];
      const sync = this.options.fsync !== 'never';
      await writeFileAtomic(join(this.options.dir, TOPICS_FILE), JSON.stringify({ version: 1, topics: all }, null, 2), sync);
      if (sync) await syncDir(this.options.dir);
      for (const t of opened) this.topics.set(t.spec.name, t);
    });
    this.topicsChange = run.catch(() => {});
    await run;
  }

  async partitionCount(topic: string): Promise<number | undefined> {
    this.assertOpen();
    return this.topics.get(topic)?.partitions.length;
  }

  async append(records: AppendRecord[]): Promise<RecordPosition[]> {
    this.assertOpen();
    const n = records.length;
    if (n === 0) return [];
    const targets = new Array<PartitionLog>(n);
    const inputs = new Array<FrameInput>(n);
    let sticky: Map<string, number> | undefined;
    // Validate everything first: an append is all or nothing.
    for (let i = 0; i < n; i++) {
      const r = records[i]!;
      const t = this.topic(r.topic);
      const key = r.key === undefined || r.key === null ? null : typeof r.key === 'string' || Buffer.isBuffer(r.key) ? toBytes(r.key) : undefined;
      if (key === undefined) throw badRecord(`record ${i}: key must be a Buffer, a string or null`, { topic: r.topic });
      let partition = r.partition;
      if (partition === undefined) {
        if (key !== null) partition = partitionForKey(key, t.partitions.length);
        else {
          sticky ??= new Map();
          partition = sticky.get(r.topic);
          if (partition === undefined) {
            partition = t.nextSticky++ % t.partitions.length;
            sticky.set(r.topic, partition);
          }
        }
      }
      targets[i] = this.partition(r.topic, partition);
      if (r.value !== null && !Buffer.isBuffer(r.value)) throw badRecord(`record ${i}: value must be a Buffer or null`, { topic: r.topic });
      if (key === null && t.spec.compacted) throw badRecord(`record ${i}: topic ${r.topic} is compacted, so records need a key`, { topic: r.topic });
      let headers: [string, Buffer][] | undefined;
      if (r.headers !== undefined && r.headers !== null) {
        headers = [];
        for (const [name, v] of Object.entries(r.headers)) {
          if (typeof v !== 'string' && !Buffer.isBuffer(v)) throw badRecord(`record ${i}: header ${name} must be a Buffer or a string`, { topic: r.topic });
          if (Buffer.byteLength(name, 'utf8') > 0xffff) throw badRecord(`record ${i}: header name too long`, { topic: r.topic });
          headers.push([name, toBytes(v)]);
        }
        if (headers.length > 0xffff) throw badRecord(`record ${i}: more than 65535 headers`, { topic: r.topic });
        if (headers.length === 0) headers = undefined;
      }
      const timestamp = r.timestamp ?? Math.floor(this.options.clock.now());
      if (!Number.isSafeInteger(timestamp)) throw badRecord(`record ${i}: timestamp must be an integer (ms), got ${r.timestamp}`, { topic: r.topic });
      const input: FrameInput = { key, value: r.value, headers, timestamp };
      const size = frameSize(input);
      if (size > this.options.maxRecordBytes) {
        throw badRecord(`record ${i}: ${size} bytes framed exceeds maxRecordBytes ${this.options.maxRecordBytes}`, { topic: r.topic, size });
      }
      inputs[i] = input;
    }
    for (const p of new Set(targets)) p.assertWritable();
    const positions = new Array<RecordPosition>(n);
    let first: PartitionLog | undefined;
    let more: Set<PartitionLog> | undefined;
    for (let i = 0; i < n; i++) {
      const p = targets[i]!;
      positions[i] = { topic: p.cfg.topic, partition: p.cfg.partition, offset: p.append(inputs[i]!, records[i]!.durability === 'relaxed') };
      if (first === undefined) first = p;
      else if (p !== first) (more ??= new Set()).add(p);
    }
    if (more === undefined) await first!.durable();
    else await Promise.all([first!.durable(), ...[...more].map((p) => p.durable())]);
    return positions;
  }

  async startOffsets(topic: string): Promise<number[]> {
    this.assertOpen();
    return this.topic(topic).partitions.map((p) => p.startOffset);
  }

  async endOffsets(topic: string): Promise<number[]> {
    this.assertOpen();
    return this.topic(topic).partitions.map((p) => p.endOffset);
  }

  async read({ topic, partition, from, to, maxRecords = 10_000 }: ReadRange): Promise<LogRecord[]> {
    this.assertOpen();
    const p = this.partition(topic, partition);
    if (!Number.isSafeInteger(from) || from < 0) throw new SwitchyardError('SY_ERR_LOG_OFFSET_OUT_OF_RANGE', `read of ${topic}/${partition}: bad from offset ${from}`);
    if (!Number.isSafeInteger(maxRecords) || maxRecords < 1) throw new SwitchyardError('SY_ERR_CONFIG', `read of ${topic}/${partition}: maxRecords must be a positive integer, got ${maxRecords}`);
    if (from < p.startOffset) {
      throw new SwitchyardError('SY_ERR_LOG_OFFSET_OUT_OF_RANGE', `read of ${topic}/${partition} from ${from}: the log starts at ${p.startOffset}`, {
        detail: { topic, partition, from, startOffset: p.startOffset },
      });
    }
    return p.read(from, to ?? p.endOffset, maxRecords);
  }

  async committedOffsets(groupId: string, topic: string): Promise<number[]> {
    this.assertOpen();
    return this.topic(topic).partitions.map((_, p) => this.offsets.get(groupId, topic, p));
  }

  async subscribe(options: SubscribeOptions): Promise<Subscription> {
    this.assertOpen();
    const { groupId, topics, assignment = { kind: 'group' }, onBatch, maxBatchRecords = 500 } = options;
    if (typeof groupId !== 'string' || groupId.length === 0) throw new SwitchyardError('SY_ERR_CONFIG', 'subscribe: groupId must be a non-empty string');
    if (typeof onBatch !== 'function') throw new SwitchyardError('SY_ERR_CONFIG', 'subscribe: onBatch must be a function');
    if (!Number.isSafeInteger(maxBatchRecords) || maxBatchRecords < 1) {
      throw new SwitchyardError('SY_ERR_CONFIG', `subscribe: maxBatchRecords must be a positive integer, got ${maxBatchRecords}`);
    }
    for (const t of topics) this.topic(t);
    if (assignment.kind === 'static' || assignment.kind === 'follow') {
      const merged = new Map<string, Set<number>>();
      for (const { topic, partitions } of assignment.partitions) {
        for (const p of partitions) this.partition(topic, p);
        const set = merged.get(topic) ?? new Set<number>();
        for (const p of partitions) set.add(p);
        merged.set(topic, set);
      }
      const parts: TopicPartitions[] = [...merged].map(([topic, set]) => ({ topic, partitions: [...set].sort((a, b) => a - b) }));
      const sub = new EmbeddedSubscription(this, options, undefined);
      this.subscriptions.add(sub);
      sub.start(parts);
      return sub;
    }
    if (topics.length === 0) throw new SwitchyardError('SY_ERR_CONFIG', 'subscribe: at least one topic is required');
    let group = this.groups.get(groupId);
    if (group === undefined) {
      group = new GroupCoordinator(groupId, (topic) => this.topic(topic).partitions.length);
      this.groups.set(groupId, group);
    }
    const sub = new EmbeddedSubscription(this, options, group);
    this.subscriptions.add(sub);
    await group.join(sub);
    return sub;
  }

  forget(subscription: EmbeddedSubscription): void {
    this.subscriptions.delete(subscription);
  }

  /**
   * Compacts the closed segments of compacted topics (one topic, or all), keeping the
   * latest record per key with its original offset. Also runs on its own after a compacted
   * partition rolls a segment. Returns per-partition results.
   */
  async compact(topic?: string): Promise<{ topic: string; partition: number; result: CompactionResult }[]> {
    this.assertOpen();
    const states = topic === undefined ? [...this.topics.values()].filter((t) => t.spec.compacted) : [this.topic(topic)];
    const out: { topic: string; partition: number; result: CompactionResult }[] = [];
    for (const t of states) {
      if (!t.spec.compacted) throw badTopic(`topic ${t.spec.name} is not compacted`, { topic: t.spec.name });
      for (const p of t.partitions) {
        out.push({ topic: t.spec.name, partition: p.cfg.partition, result: await p.compact(this.options.clock.now(), this.options.deleteRetentionMs) });
      }
    }
    return out;
  }

  /**
   * Deletes closed segments of the topics that expire records (`retentionMs` ≥ 0, not
   * compacted) past their retention (by their newest record's timestamp; at most
   * `maxRetentionMs`) or past `retentionBytes`. Also runs on its own after rolls and every
   * `maintenanceIntervalMs`. Returns the number of segments deleted.
   */
  async applyRetention(topic?: string): Promise<number> {
    this.assertOpen();
    const states = topic === undefined ? [...this.topics.values()] : [this.topic(topic)];
    let deleted = 0;
    for (const t of states) {
      const { ms, bytes } = topicRetention(t.spec, this.options);
      if (ms < 0 && bytes < 0) continue;
      for (const p of t.partitions) deleted += await p.applyRetention(this.options.clock.now(), ms, bytes);
    }
    return deleted;
  }

  private async maintainPartition(spec: StoredTopic, p: PartitionLog): Promise<void> {
    if (spec.compacted) {
      await p.compact(this.options.clock.now(), this.options.deleteRetentionMs);
      return;
    }
    const { ms, bytes } = topicRetention(spec, this.options);
    if (ms >= 0 || bytes >= 0) await p.applyRetention(this.options.clock.now(), ms, bytes);
  }

  private async maintain(): Promise<void> {
    for (const t of this.topics.values()) for (const p of t.partitions) await this.maintainPartition(t.spec, p);
    await this.offsets.log.compact(this.options.clock.now(), 0);
  }

  /** For tests: resolves once the commit journal has no background work (its zero-fill) in progress. */
  async journalIdle(): Promise<void> {
    await this.journal?.idle();
  }

  /** For tests and tooling: the segments of one partition. */
  describePartition(topic: string, partition: number): ReturnType<PartitionLog['describeSegments']> {
    return this.partition(topic, partition).describeSegments();
  }

  /** Stops subscriptions (each finishes and commits its batch in hand), flushes pending appends, closes files, releases the lock. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      if (this.maintenanceTimer !== undefined) clearInterval(this.maintenanceTimer);
      await Promise.all([...this.subscriptions].map((s) => s.close()));
      await this.topicsChange;
      const partitions = [...this.topics.values()].flatMap((t) => t.partitions);
      await Promise.all(partitions.map((p) => p.close()));
      await this.journal?.close();
      await this.offsets?.close();
      await this.releaseLock();
    })();
    return this.closing;
  }
}
