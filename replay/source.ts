import { join, resolve as resolvePath } from 'node:path';
import type { AnalyticsStore } from '../lib/analytics/port.js';
import type { SwitchyardConfig } from '../lib/config.js';
import { errorMessage } from '../lib/errors.js';
import { openEmbeddedLog } from '../lib/log/embedded/index.js';
import { openKafkaClientLog } from '../lib/log/open.js';
import type { EventLog, LogRecord, RecordPosition, TopicSpec } from '../lib/log/port.js';
import { topicLayout, type TopicName } from '../lib/log/topics.js';
import type { Logger } from '../lib/logger.js';
import { silentLogger } from '../lib/logger.js';
import { ConfluentRegistryClient } from '../lib/registry/confluent-client.js';
import { LogBackedRegistry } from '../lib/registry/log-backed.js';
import type { SchemaRegistry } from '../lib/registry/port.js';
import { EventCodec } from '../schemas/codec.js';
import type { SwitchyardEvent } from '../schemas/generated/events.js';
import { FoldDecoder, type Projection } from './decoder.js';
import { EnvelopePeeker } from './envelope.js';
import { ArchiveIndex, ArchiveLog, ArchiveRegistry } from './archive.js';
import { ReplayError } from './errors.js';
import type { IndexKind, IndexUpdate } from './request-index.js';
import type { ProgressFn } from './scan.js';

/**
 * `LogSource`: what replay reads — a Switchyard log (embedded directory or Kafka), its codec,
 * and the topics as they exist in it (partition counts from the log itself, so a log made with
 * 8 lanes reads as 8 lanes whatever the local configuration says).
 *
 * Replay never changes what it reads: the embedded log is opened with background retention and
 * compaction off (an old recording must not lose segments because replay opened it), and no topic
 * is created. The one write is the codec registering the local schemas in the log's `_schemas`
 * topic when they are missing (idempotent; needed to decode with them), and `rerun`'s request.
 */
export interface LogSource {
  readonly kind: 'embedded' | 'kafka' | 'clickhouse';
  readonly log: EventLog;
  readonly registry: SchemaRegistry;
  readonly codec: EventCodec;
  readonly peeker: EnvelopePeeker;
  /** Physical topic specs by logical name, with the partition counts of the log (0 when the topic does not exist). */
  readonly topics: Record<TopicName, TopicSpec>;
  readonly topicPrefix: string;
  /** Where the request index of an embedded log lives (`<home>/replay-index`); undefined for Kafka. */
  readonly indexDir: string | undefined;
  /** For reports: "embedded log .switchyard/log", "kafka 127.0.0.1:9092" or "ClickHouse archive …". */
  readonly description: string;
  /**
   * A lookup index other than the embedded request index (the ClickHouse archive's `log_ids`);
   * undefined when the source has none or uses `indexDir`.
   */
  openIndex?: (() => Promise<PositionIndex>) | undefined;
  /** First offset in [lo, hi) with a record timestamp ≥ t, when the source answers it directly (else a binary search over reads). */
  offsetForTime?: ((topic: string, partition: number, t: number, lo: number, hi: number) => Promise<number>) | undefined;
  /** A synchronous decoder (see decoder.ts): the router-state fold's projection by default. */
  foldDecoder(projection?: Projection): FoldDecoder;
  close(): Promise<void>;
}

/** What lookups need of an index: candidate positions of a request's or a session's records. */
export interface PositionIndex {
  /** Bring the index up to date with the log (the embedded index scans what is new). */
  update(o?: { onProgress?: ProgressFn | undefined }): Promise<IndexUpdate>;
  lookup(kind: IndexKind, id: string): Promise<RecordPosition[]>;
  close(): Promise<void>;
}

const TOPIC_NAMES: readonly TopicName[] = ['requests', 'decisions', 'results', 'heartbeats', 'control', 'sessions', 'deadletter'];

export interface LogSourceParts {
  log: EventLog;
  registry: SchemaRegistry;
  codec: EventCodec;
  /** @default 'switchyard.' */
  topicPrefix?: string;
  /** @default undefined (no request index) */
  indexDir?: string;
  description?: string;
  /** Close the log with the source. @default false */
  ownsLog?: boolean;
  openIndex?: () => Promise<PositionIndex>;
  offsetForTime?: (topic: string, partition: number, t: number, lo: number, hi: number) => Promise<number>;
  /** Also closed with the source (e.g. the analytics store behind an archive). */
  onClose?: () => Promise<void>;
}

/** A source over an already open log (tests, `rerun` inside a running process). */
export async function logSourceFrom({ log, registry, codec, topicPrefix = 'switchyard.', indexDir, description, ownsLog = false, openIndex, offsetForTime, onClose }: LogSourceParts): Promise<LogSource> {
  const layout = topicLayout({ prefix: topicPrefix });
  const topics = {} as Record<TopicName, TopicSpec>;
  for (const name of TOPIC_NAMES) {
    const partitions = (await log.partitionCount(layout[name].name)) ?? 0;
    topics[name] = { ...layout[name], partitions };
  }
  const peeker = EnvelopePeeker.create(codec, registry);
  const localIds = FoldDecoder.localIds((t) => codec.schemaId(t));
  return {
    kind: log.kind,
    log,
    registry,
    codec,
    peeker,
    topics,
    topicPrefix,
    indexDir,
    description: description ?? `${log.kind} log`,
    foldDecoder: (projection?: Projection) => new FoldDecoder(peeker, registry, localIds, projection),
    openIndex,
    offsetForTime,
    close: async () => {
      try {
        if (ownsLog) await log.close();
      } finally {
        await onClose?.();
      }
    },
  };
}

export interface OpenLogSourceOptions {
  logger?: Logger;
}

/**
 * Opens the log the configuration names: Kafka when brokers are set (through the configured
 * client library, `kafkaClient`), else the embedded log under `home/log` (whose request index
 * lives in `home/replay-index`).
 */
export async function openLogSource(config: Pick<SwitchyardConfig, 'brokers' | 'home' | 'topicPrefix' | 'schemaRegistryUrl' | 'fsync' | 'kafkaClient' | 'kafkaTls' | 'kafkaSasl'>, { logger = silentLogger }: OpenLogSourceOptions = {}): Promise<LogSource> {
  const kafka = config.brokers.length > 0;
  const dir = join(config.home, 'log');
  let log: EventLog;
  try {
    log = kafka
      ? await openKafkaClientLog(config.kafkaClient, { brokers: config.brokers, tls: config.kafkaTls, sasl: config.kafkaSasl, logger })
      : await openEmbeddedLog({ dir, fsync: config.fsync, maintenanceIntervalMs: 0, logger });
  } catch (err) {
    const locked = (err as { code?: string }).code === 'SY_ERR_LOG_LOCKED';
    throw new ReplayError(
      'SY_ERR_REPLAY_SOURCE',
      locked
        ? `cannot open the embedded log at ${dir}: ${errorMessage(err)}. The embedded log is single-process: stop the cluster using it (or replay a copy of the directory with --home)`
        : `cannot open the ${kafka ? `Kafka log at ${config.brokers.join(',')}` : `embedded log at ${dir}`}: ${errorMessage(err)}`,
      { cause: err, retriable: locked, detail: { dir: kafka ? undefined : dir, brokers: kafka ? config.brokers : undefined } },
    );
  }
  try {
    const registry: SchemaRegistry = config.schemaRegistryUrl
      ? new ConfluentRegistryClient({ host: config.schemaRegistryUrl })
      : await LogBackedRegistry.open({ log, topic: `${config.topicPrefix}_schemas` });
    const codec = await EventCodec.create({ registry });
    return await logSourceFrom({
      log,
      registry,
      codec,
      topicPrefix: config.topicPrefix,
      indexDir: kafka ? undefined : join(config.home, 'replay-index'),
      description: kafka ? `kafka ${config.brokers.join(',')}` : `embedded log ${resolvePath(dir)}`,
      ownsLog: true,
    });
  } catch (err) {
    await log.close().catch(() => {});
    throw err;
  }
}

export interface OpenArchiveSourceOptions {
  /** Topic name prefix the archived log used. @default 'switchyard.' */
  topicPrefix?: string;
  /** For reports. @default `ClickHouse archive (<store kind>)` */
  description?: string;
  /** Close the store with the source. @default false */
  ownsStore?: boolean;
  /** Records a scan's query reads at least (see `ArchiveLog`). @default 5000 */
  readAhead?: number;
}

/**
 * The sink's log archive in ClickHouse as a replay source (replay/archive.ts): decoded with the
 * schemas archived beside the records, looked up through `log_ids`.
 */
export async function openArchiveSource(store: AnalyticsStore, { topicPrefix = 'switchyard.', description, ownsStore = false, readAhead }: OpenArchiveSourceOptions = {}): Promise<LogSource> {
  const closeStore = async () => {
    if (ownsStore) await store.close();
  };
  try {
    const log = new ArchiveLog(store, { readAhead });
    const registry = await ArchiveRegistry.open(store);
    const codec = await EventCodec.create({ registry });
    return await logSourceFrom({
      log,
      registry,
      codec,
      topicPrefix,
      description: description ?? `ClickHouse archive (${store.kind})`,
      openIndex: async () => new ArchiveIndex(store, log),
      offsetForTime: (topic, partition, t, lo, hi) => log.offsetForTime(topic, partition, t, lo, hi),
      onClose: closeStore,
    });
  } catch (err) {
    await closeStore().catch(() => {});
    throw err;
  }
}

/** The outcome of decoding one record with the codec. */
export type Decoded = { ok: true; event: SwitchyardEvent } | { ok: false; error: string; code: string };

/** Decode a record's value with the codec; a record that does not decode is reported, never thrown. */
export async function decodeRecord(source: LogSource, record: Pick<LogRecord, 'value'>): Promise<Decoded> {
  if (record.value === null) return { ok: false, error: 'empty value (tombstone)', code: 'EMPTY' };
  try {
    return { ok: true, event: await source.codec.decode(record.value) };
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if ((err as { retriable?: boolean }).retriable) throw err; // the registry is unreachable: not the record's fault
    return { ok: false, error: errorMessage(err), code: typeof code === 'string' ? code : 'SY_ERR_CODEC_DECODE' };
  }
}

/** One record at a position, or undefined when it is gone (retention) or past the end. */
export async function readAt(source: LogSource, pos: RecordPosition): Promise<LogRecord | undefined> {
  try {
    const [record] = await source.log.read({ topic: pos.topic, partition: pos.partition, from: pos.offset, to: pos.offset + 1, maxRecords: 1 });
    return record?.offset === pos.offset ? record : undefined;
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'SY_ERR_LOG_OFFSET_OUT_OF_RANGE' || code === 'SY_ERR_LOG_BAD_PARTITION' || code === 'SY_ERR_LOG_UNKNOWN_TOPIC') return undefined;
    throw err;
  }
}

/** An undecodable record met by a scan: reported, never fatal. */
export interface Undecodable {
  topic: string;
  partition: number;
  offset: number;
  timestamp: number;
  key: string | null;
  code: string;
  error: string;
}

export const undecodable = (record: LogRecord, code: string, error: string): Undecodable => ({
  topic: record.topic,
  partition: record.partition,
  offset: record.offset,
  timestamp: record.timestamp,
  key: record.key === null ? null : record.key.toString('utf8'),
  code,
  error,
});
