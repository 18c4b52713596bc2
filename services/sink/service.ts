/**
 * The sink: every Switchyard topic into ClickHouse, at-least-once, exactly-once in query
 * results (the base tables collapse re-inserted events by eventId).
 *
 *   log ──subscribeEvents──► rowFor (rows.ts) ──► RowBuffer (buffer.ts) ──► writer.ts ──► ClickHouse
 *        (decode; undecodable    + archiveRow       size/time bounds          retries, bisects,
 *         → dead letters)          (every record)                              dead-letters refused rows
 *
 * The log archive (`archive`, on by default): every record delivered — duplicates by event id
 * and records that did not decode included — also becomes a `log_records` row with its exact
 * bytes and position, so ClickHouse can stand in for the log in replay. The first time this
 * process meets a schema id, its writer schema goes into `log_schemas` before any record
 * naming it is buffered; at start, every topic's partition count goes into `log_topics`.
 * Archive rows are keyed by position, not event id: a redelivered record collapses, a
 * producer's duplicate (another position) is kept, as the routers folded it too.
 *
 * A log batch's offsets are committed only when `onBatch` resolves, and it resolves only once
 * ClickHouse acknowledged every row of the batch, archive rows included (or the row was
 * dead-lettered): killed at any moment, the sink resumes from the last committed offsets and
 * writes the rest — some rows again, which dedup absorbs.
 */
import { hostname } from 'node:os';
import { ARCHIVE_TABLES, UNDECODED, archiveRow, archiveSchemaRow, archiveTopicRow } from '../../lib/analytics/archive.js';
import { migrate } from '../../lib/analytics/migrations.js';
import type { AnalyticsStore } from '../../lib/analytics/port.js';
import { SwitchyardError, errorMessage } from '../../lib/errors.js';
import { deadLetterFor, deadLetterPolicy, subscribeEvents, type EventDecoder, type EventBatch } from '../../lib/events/subscribe.js';
import type { EventLog, LogRecord, Subscription } from '../../lib/log/port.js';
import { topicLayout } from '../../lib/log/topics.js';
import { silentLogger, type Logger } from '../../lib/logger.js';
import type { DeadLetteredInit, SwitchyardEvent } from '../../schemas/generated/events.js';
import { RowBuffer } from './buffer.js';
import { SinkMetrics, type DeadLetterReason, type SinkStats } from './metrics.js';
import { RecentIds } from './recent.js';
import { archivedEnvelope, rowFor } from './rows.js';
import { createWriter, type SinkEntry } from './writer.js';

export interface SinkOptions {
  /** The log to read (embedded or Kafka). Not closed by the sink. */
  log: EventLog;
  /** Where to write. Not closed by the sink. */
  store: AnalyticsStore;
  /** Decodes records (an `EventCodec` over the deployment's registry) and encodes dead letters. */
  codec: EventDecoder;
  /** Topic name prefix. @default 'switchyard.' */
  topicPrefix?: string;
  /** Lanes (partitions of `decisions`), for creating missing topics. @default 64 */
  lanes?: number;
  /**
   * Consumer group. One per topic prefix: sinks of different deployments (prefixes) on one Kafka
   * cluster must not share a group, or the group's assignment hands members topics they did not
   * subscribe to. @default '<topicPrefix>sink'
   */
  groupId?: string;
  /** Instance id: the `producer` of the dead letters it writes. @default `sink-<host>-<pid>` */
  producer?: string;
  /** Size bound of a batch: flush at this many rows. @default 10_000 */
  batchRows?: number;
  /** Time bound of a batch: flush when the oldest row has waited this long, ms. @default 200 */
  batchDelayMs?: number;
  /** Event ids remembered as written (between this many and twice as many), to skip duplicates without inserting them. @default 100_000 */
  dedupeWindow?: number;
  /**
   * How long one flush keeps retrying an unavailable ClickHouse before it fails and the log
   * redelivers the batches (which keeps a Kafka consumer heartbeating). @default 5_000
   */
  retryBudgetMs?: number;
  /** First retry delay, doubling per attempt. @default 100 */
  retryBackoffMs?: number;
  /** @default 2_000 */
  retryBackoffMaxMs?: number;
  /** Apply pending analytics migrations before consuming. @default true */
  migrate?: boolean;
  /** Create missing topics with DESIGN.md's layout before consuming. @default true */
  ensureTopics?: boolean;
  /**
   * Keep the log archive: every record read, byte for byte with its key, headers, timestamp
   * and position, in `log_records` (with `log_schemas` and `log_topics`; migration 004), so
   * ClickHouse can stand in for the log in replay once the log's retention has dropped it.
   * Needs a codec that tells writer schemas (`EventCodec.writerSchema`). @default true
   */
  archive?: boolean;
  logger?: Logger;
  /** @default Date.now */
  now?: () => number;
}

export type SinkConfig = Required<Omit<SinkOptions, 'log' | 'store' | 'codec' | 'logger' | 'now'>>;

const positiveInt = (name: string, v: number) => {
  if (!Number.isSafeInteger(v) || v < 1) throw new SwitchyardError('SY_ERR_CONFIG', `sink: ${name} must be a positive integer, got ${v}`);
};
const nonNegative = (name: string, v: number) => {
  if (!Number.isFinite(v) || v < 0) throw new SwitchyardError('SY_ERR_CONFIG', `sink: ${name} must be a non-negative number, got ${v}`);
};

/** Validates and fills in the options (fail fast, before touching the log or ClickHouse). */
export function sinkConfig({
  topicPrefix = 'switchyard.',
  lanes = 64,
  groupId = `${topicPrefix}sink`,
  producer = `sink-${hostname()}-${process.pid}`,
  batchRows = 10_000,
  batchDelayMs = 200,
  dedupeWindow = 100_000,
  retryBudgetMs = 5_000,
  retryBackoffMs = 100,
  retryBackoffMaxMs = 2_000,
  migrate = true,
  ensureTopics = true,
  archive = true,
}: Partial<SinkOptions> = {}): SinkConfig {
  positiveInt('lanes', lanes);
  positiveInt('batchRows', batchRows);
  positiveInt('dedupeWindow', dedupeWindow);
  nonNegative('batchDelayMs', batchDelayMs);
  nonNegative('retryBudgetMs', retryBudgetMs);
  positiveInt('retryBackoffMs', retryBackoffMs);
  positiveInt('retryBackoffMaxMs', retryBackoffMaxMs);
  if (typeof groupId !== 'string' || groupId === '') throw new SwitchyardError('SY_ERR_CONFIG', 'sink: groupId must be a non-empty string');
  if (typeof producer !== 'string' || producer === '') throw new SwitchyardError('SY_ERR_CONFIG', 'sink: producer must be a non-empty string');
  if (typeof topicPrefix !== 'string') throw new SwitchyardError('SY_ERR_CONFIG', 'sink: topicPrefix must be a string');
  if (typeof archive !== 'boolean') throw new SwitchyardError('SY_ERR_CONFIG', `sink: archive must be a boolean, got ${String(archive)}`);
  return { topicPrefix, lanes, groupId, producer, batchRows, batchDelayMs, dedupeWindow, retryBudgetMs, retryBackoffMs, retryBackoffMaxMs, migrate, ensureTopics, archive };
}

export interface RunningSink {
  readonly config: SinkConfig;
  /** Prometheus metrics of this sink (a registry of its own). */
  readonly metrics: SinkMetrics;
  /** Counters as plain numbers. */
  stats(): SinkStats;
  /** Stop consuming, write what is buffered, commit, leave the group. Idempotent. */
  close(): Promise<void>;
}

/** Starts the sink: migrates (optionally), creates missing topics (optionally), subscribes. */
export async function startSink(options: SinkOptions): Promise<RunningSink> {
  const config = sinkConfig(options);
  const { log, store, codec } = options;
  const writerSchema = codec.writerSchema?.bind(codec);
  if (config.archive && writerSchema === undefined) {
    throw new SwitchyardError('SY_ERR_CONFIG', 'sink: the log archive needs a codec that tells writer schemas (EventCodec); pass archive: false to run without it');
  }
  const logger = options.logger ?? silentLogger;
  const now = options.now ?? Date.now;
  const layout = topicLayout({ prefix: config.topicPrefix, lanes: config.lanes });
  const deadLetterTopic = layout.deadletter.name;

  if (config.migrate) {
    const { applied, current } = await migrate(store);
    if (applied.length > 0) logger.info({ applied, current }, 'analytics migrations applied');
  }
  if (config.ensureTopics) await log.ensureTopics(Object.values(layout));

  const metrics = new SinkMetrics(now);
  const written = new RecentIds(config.dedupeWindow);
  /** Schema ids whose `log_schemas` row ClickHouse acknowledged (this process), and those being written. */
  const schemasWritten = new Set<number>();
  const schemasWriting = new Map<number, Promise<void>>();
  /** Events in a flush not yet acknowledged, with that flush's promise. */
  const inFlight = new Map<string, Promise<void>>();
  let closing = false;
  // Set once subscribed; the buffer may ask for it earlier (the embedded log starts delivering during subscribe).
  const consumer: { subscription?: Subscription } = {};

  const appendDeadLetters = async (items: { record: LogRecord; event?: SwitchyardEvent; error: unknown }[], reason: DeadLetterReason) => {
    const letters: DeadLetteredInit[] = [];
    for (const { record, event, error } of items) {
      // A dead letter this sink wrote about a row ClickHouse refused, refused in turn, would
      // loop: it is logged and counted instead.
      if (event?.type === 'DeadLettered' && event.consumerGroup === config.groupId && event.errorCode === 'SY_ERR_ANALYTICS') {
        logger.error({ eventId: event.eventId, topic: record.topic, partition: record.partition, offset: record.offset, err: errorMessage(error) }, 'sink: ClickHouse refused a dead letter the sink itself wrote; not dead-lettering it again');
        continue;
      }
      const letter = deadLetterFor(record, error, config.groupId, config.producer, now());
      if (!(error instanceof SwitchyardError)) letter.errorCode = 'SY_ERR_ANALYTICS';
      letters.push(letter);
      logger.warn({ topic: record.topic, partition: record.partition, offset: record.offset, eventId: event?.eventId, reason, err: errorMessage(error) }, 'sink: dead-lettering a record');
    }
    if (letters.length > 0) {
      await log.append(letters.map((d) => ({ topic: deadLetterTopic, key: d.originalKey ?? null, value: codec.encode(d), headers: { 'sy-error': d.errorCode } })));
    }
    metrics.deadLetter(reason, letters.length);
  };

  const write = createWriter({
    store,
    retryBudgetMs: config.retryBudgetMs,
    retryBackoffMs: config.retryBackoffMs,
    retryBackoffMaxMs: config.retryBackoffMaxMs,
    parallel: true,
    closing: () => closing,
    now,
    deadLetter: (rejected) => {
      // A record's typed row and its archive row may both be refused: one dead letter.
      const seen = new Set<string>();
      const letters: { record: LogRecord; event?: SwitchyardEvent; error: unknown }[] = [];
      for (const { entry, error } of rejected) {
        const { record, event } = entry;
        const at = `${record.topic}\u0000${record.partition}\u0000${record.offset}`;
        if (seen.has(at)) continue;
        seen.add(at);
        if (event === undefined) {
          // A record that did not decode is on the dead-letter topic already, with its bytes.
          logger.error({ topic: record.topic, partition: record.partition, offset: record.offset, table: entry.table, err: errorMessage(error) }, 'sink: ClickHouse refused the archive row of an undecodable record (already dead-lettered)');
          continue;
        }
        letters.push({ record, event, error });
      }
      return appendDeadLetters(letters, 'rejected');
    },
    onInserted: (table, rows, seconds) => metrics.written(table, rows, seconds),
    onRetry: (table, err, attempt, delayMs) => {
      metrics.insertRetries.inc({ table });
      logger.warn({ table, attempt, delayMs, err: errorMessage(err) }, 'sink: ClickHouse unavailable; retrying the insert');
    },
  });

  const buffer = new RowBuffer<SinkEntry>({
    maxRows: config.batchRows,
    maxDelayMs: config.batchDelayMs,
    now,
    // kafkajs hands over one partition's batch at a time; the embedded log one per partition at once.
    concurrency: () => (log.kind === 'kafka' ? 1 : consumer.subscription ? consumer.subscription.assigned().reduce((n, tp) => n + tp.partitions.length, 0) : Infinity),
    write: async (entries) => {
      try {
        await write(entries);
      } catch (err) {
        metrics.flushFailed();
        logger.warn({ rows: entries.length, err: errorMessage(err), code: (err as SwitchyardError).code }, 'sink: flush failed; the log will deliver its batches again');
        throw err;
      }
      metrics.flushed(entries.length);
      for (const e of entries) if (e.event !== undefined && e.table !== ARCHIVE_TABLES.records) written.add(e.event.eventId);
    },
  });
  metrics.bufferedRows(() => buffer.buffered);

  /** Writes the `log_schemas` rows of these ids (each asked of the registry once), outside the buffer. */
  const writeSchemas = (ids: number[]): Promise<void> => {
    const writing = (async () => {
      const rows = await Promise.all(
        ids.map(async (id) => {
          const { subject, schema } = await writerSchema!(id);
          return archiveSchemaRow(id, subject, schema);
        }),
      );
      await write(rows.map((row) => ({ table: ARCHIVE_TABLES.schemas, row })));
    })();
    for (const id of ids) schemasWriting.set(id, writing);
    const settle = (ok: boolean) => {
      for (const id of ids) {
        if (schemasWriting.get(id) === writing) schemasWriting.delete(id);
        if (ok) schemasWritten.add(id);
      }
    };
    writing.then(
      () => settle(true),
      () => settle(false),
    );
    return writing;
  };

  const onEvents = async (batch: EventBatch) => {
    const entries: SinkEntry[] = [];
    const typed: string[] = [];
    const waits: Promise<void>[] = [];
    const unmappable: { record: LogRecord; event: SwitchyardEvent; error: unknown }[] = [];
    const here = new Set<string>();
    const unseenSchemas = new Set<number>();
    let duplicates = 0;
    for (const { event, record } of batch.events) {
      // Archived before the dedup by event id: a duplicate is another record of the log.
      if (config.archive) {
        const row = archiveRow(record, archivedEnvelope(event));
        entries.push({ table: ARCHIVE_TABLES.records, row, record, event });
        const schemaId = row.schema_id as number;
        if (!schemasWritten.has(schemaId)) unseenSchemas.add(schemaId);
      }
      const id = event.eventId;
      if (written.has(id) || here.has(id)) {
        duplicates++;
        continue;
      }
      const pending = inFlight.get(id);
      if (pending) {
        duplicates++;
        waits.push(pending);
        continue;
      }
      here.add(id);
      try {
        const { table, row } = rowFor(event, record);
        entries.push({ table, row, event, record });
        typed.push(id);
      } catch (error) {
        unmappable.push({ record, event, error });
      }
    }
    if (config.archive) {
      for (const record of batch.undecodable ?? []) entries.push({ table: ARCHIVE_TABLES.records, row: archiveRow(record, UNDECODED), record });
    }
    metrics.duplicate(duplicates);
    const before: Promise<void>[] = [];
    // A schema's row is acknowledged before any archived record naming it is buffered.
    const fresh: number[] = [];
    for (const id of unseenSchemas) {
      const writing = schemasWriting.get(id);
      if (writing) before.push(writing);
      else fresh.push(id);
    }
    if (fresh.length > 0) before.push(writeSchemas(fresh));
    if (unmappable.length > 0) before.push(appendDeadLetters(unmappable, 'unmappable'));
    // In flight from here on, so that a copy in a concurrent batch waits for this one.
    const done = before.length === 0 ? buffer.add(entries) : Promise.all(before).then(() => buffer.add(entries));
    for (const id of typed) inFlight.set(id, done);
    try {
      await Promise.all([done, ...waits]);
    } finally {
      for (const id of typed) if (inFlight.get(id) === done) inFlight.delete(id);
    }
  };

  // Lag is measured on the raw batches (a batch may end in records that did not decode).
  const observed: EventLog = {
    kind: log.kind,
    ensureTopics: (specs) => log.ensureTopics(specs),
    partitionCount: (topic) => log.partitionCount(topic),
    append: (records) => log.append(records),
    startOffsets: (topic) => log.startOffsets(topic),
    endOffsets: (topic) => log.endOffsets(topic),
    read: (range) => log.read(range),
    committedOffsets: (group, topic) => log.committedOffsets(group, topic),
    close: () => log.close(),
    subscribe: (o) =>
      log.subscribe({
        ...o,
        onBatch: async (batch) => {
          await o.onBatch(batch);
          const last = batch.records[batch.records.length - 1];
          if (last) metrics.setLag(batch.topic, batch.partition, Math.max(0, batch.highWatermark - last.offset - 1));
        },
      }),
  };

  if (config.archive) {
    const rows = [];
    for (const { name } of Object.values(layout)) {
      const partitions = await log.partitionCount(name);
      if (partitions === undefined) logger.warn({ topic: name }, 'sink: topic does not exist; not in log_topics');
      else rows.push(archiveTopicRow(name, partitions));
    }
    await write(rows.map((row) => ({ table: ARCHIVE_TABLES.topics, row })));
  }

  const subscription = await subscribeEvents(observed, {
    groupId: config.groupId,
    topics: Object.values(layout).map((t) => t.name),
    fromBeginning: true,
    maxBatchRecords: config.batchRows,
    codec,
    deadLetterTopic,
    deadLetter: deadLetterPolicy('sink', layout),
    producer: config.producer,
    now,
    onEvents,
    deliverUndecodable: config.archive,
    onDeadLetter: (d) => {
      metrics.deadLetter('undecodable');
      logger.warn({ topic: d.originalTopic, partition: d.originalPartition, offset: d.originalOffset, code: d.errorCode }, 'sink: undecodable record dead-lettered');
    },
  });
  consumer.subscription = subscription;
  logger.info({ group: config.groupId, prefix: config.topicPrefix, log: log.kind, analytics: store.kind, batchRows: config.batchRows, batchDelayMs: config.batchDelayMs, archive: config.archive }, 'sink started');

  let closed: Promise<void> | undefined;
  return {
    config,
    metrics,
    stats: () => metrics.snapshot(),
    close: () =>
      (closed ??= (async () => {
        closing = true;
        await Promise.all([subscription.close(), buffer.drain()]);
        logger.info(metrics.snapshot(), 'sink stopped');
      })()),
  };
}
