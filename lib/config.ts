import { SwitchyardError } from './errors.js';

/**
 * Deployment configuration, read once from the environment (and CLI flags, which win)
 * in main.ts and passed down fully defaulted. Nothing below cli/ reads process.env.
 */
export interface SwitchyardConfig {
  /** Kafka bootstrap brokers; empty = the embedded log. @default [] (SWITCHYARD_BROKERS) */
  brokers: string[];
  /** Directory of the embedded log and other local state. @default '.switchyard' (SWITCHYARD_HOME) */
  home: string;
  /** Prefix of every topic name. @default 'switchyard.' (SWITCHYARD_TOPIC_PREFIX) */
  topicPrefix: string;
  /** Worker lanes = partitions of the decisions topic. @default 64 (SWITCHYARD_LANES) */
  lanes: number;
  /** Confluent-compatible schema registry URL; empty = the in-process registry. (SWITCHYARD_SCHEMA_REGISTRY_URL) */
  schemaRegistryUrl: string | undefined;
  /** ClickHouse server URL; empty = the embedded chDB engine. (SWITCHYARD_CLICKHOUSE_URL) */
  clickhouseUrl: string | undefined;
  /**
   * Embedded log fsync policy. 'always' syncs every flush, and a flush takes every append of
   * one event-loop turn (group commit): durable, and lower latency than 'interval' on the
   * serving path (see docs/BENCHMARKS.md). @default 'always' (SWITCHYARD_FSYNC)
   */
  fsync: 'always' | 'interval' | 'never';
  /** pino level. @default 'info' (SWITCHYARD_LOG_LEVEL) */
  logLevel: string;
  /**
   * Kafka consumer-group session timeout, ms: how soon a killed member's partitions move.
   * @default the broker's group.min.session.timeout.ms (SWITCHYARD_KAFKA_SESSION_TIMEOUT_MS)
   */
  kafkaSessionTimeoutMs?: number | undefined;
  /** Longest backoff of the Kafka clients' retries and consumer restarts, ms. @default 1000 (SWITCHYARD_KAFKA_RETRY_MAX_MS) */
  kafkaRetryMaxMs?: number;
  /**
   * Size budget per partition of the topics that expire records (requests, decisions, results,
   * heartbeats, deadletter): past it the oldest closed segments are deleted — the embedded log's
   * `retentionBytes`, Kafka's `retention.bytes` (set when Switchyard creates the topics). A
   * partition can hold this plus its active segment (64 MiB embedded). `control` (kept forever)
   * and the compacted topics are never trimmed by size. -1 = no size limit. Bytes, or with a
   * unit: `500MiB`, `10GiB`, `2GB`. @default -1 (SWITCHYARD_RETENTION_BYTES, --retention-bytes)
   */
  retentionBytes?: number;
  /**
   * Time budget of the same topics: no record is kept longer than this — each topic's own
   * retention (7 d requests, decisions, results; 6 h heartbeats; 90 d deadletter) is lowered to
   * it. -1 = each topic's own. Milliseconds, or with a unit: `36h`, `2d`, `90m`, `30s`.
   * @default -1 (SWITCHYARD_RETENTION_MS, --retention-ms)
   */
  retentionMs?: number;
}

const FSYNC = ['always', 'interval', 'never'] as const;

const BYTE_UNITS: Readonly<Record<string, number>> = { '': 1, b: 1, kib: 2 ** 10, mib: 2 ** 20, gib: 2 ** 30, tib: 2 ** 40, kb: 1e3, mb: 1e6, gb: 1e9, tb: 1e12 };
const DURATION_UNITS: Readonly<Record<string, number>> = { '': 1, ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

function parseAmount(text: string, units: Readonly<Record<string, number>>, name: string, what: string): number {
  const t = text.trim();
  if (t === '-1') return -1;
  const m = /^(\d+(?:\.\d+)?)\s*([a-zA-Z]*)$/.exec(t);
  const unit = m === null ? undefined : units[m[2]!.toLowerCase()];
  const value = m === null || unit === undefined ? Number.NaN : Math.round(Number(m[1]) * unit);
  if (!Number.isSafeInteger(value)) throw new SwitchyardError('SY_ERR_CONFIG', `${name} must be -1 or ${what}, got ${JSON.stringify(text)}`);
  return value;
}

/** Bytes from `1073741824`, `1GiB`, `500 MiB`, `2GB` (units B, KiB, MiB, GiB, TiB, KB, MB, GB, TB), or -1. `name` is for the error. */
export const parseBytes = (text: string, name: string): number => parseAmount(text, BYTE_UNITS, name, 'a size in bytes (e.g. 1073741824, 500MiB, 10GiB)');

/** Milliseconds from `86400000`, `36h`, `2d`, `90m`, `30s`, `250ms`, or -1. `name` is for the error. */
export const parseDurationMs = (text: string, name: string): number => parseAmount(text, DURATION_UNITS, name, 'a duration in ms (e.g. 86400000, 36h, 2d)');

export function configFromEnv(env: NodeJS.ProcessEnv, overrides: Partial<SwitchyardConfig> = {}): SwitchyardConfig {
  const list = (v: string | undefined) => (v ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  const lanes = overrides.lanes ?? Number(env.SWITCHYARD_LANES ?? 64);
  if (!Number.isInteger(lanes) || lanes < 1 || lanes > 4096) {
    throw new SwitchyardError('SY_ERR_CONFIG', `SWITCHYARD_LANES must be an integer in 1..4096, got ${env.SWITCHYARD_LANES}`);
  }
  const fsync = overrides.fsync ?? ((env.SWITCHYARD_FSYNC ?? 'always') as SwitchyardConfig['fsync']);
  if (!FSYNC.includes(fsync)) throw new SwitchyardError('SY_ERR_CONFIG', `SWITCHYARD_FSYNC must be one of ${FSYNC.join(', ')}, got ${fsync}`);
  const brokers = overrides.brokers ?? list(env.SWITCHYARD_BROKERS);
  for (const b of brokers) {
    if (!/^[^:\s]+:\d+$/.test(b)) throw new SwitchyardError('SY_ERR_CONFIG', `broker "${b}" is not host:port`);
  }
  const kafkaMs = (name: string, v: string | undefined): number | undefined => {
    if (v === undefined || v === '') return undefined;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new SwitchyardError('SY_ERR_CONFIG', `${name} must be a positive integer (ms), got ${v}`);
    return n;
  };
  return {
    brokers,
    home: overrides.home ?? env.SWITCHYARD_HOME ?? '.switchyard',
    topicPrefix: overrides.topicPrefix ?? env.SWITCHYARD_TOPIC_PREFIX ?? 'switchyard.',
    lanes,
    schemaRegistryUrl: overrides.schemaRegistryUrl ?? (env.SWITCHYARD_SCHEMA_REGISTRY_URL || undefined),
    clickhouseUrl: overrides.clickhouseUrl ?? (env.SWITCHYARD_CLICKHOUSE_URL || undefined),
    fsync,
    logLevel: overrides.logLevel ?? env.SWITCHYARD_LOG_LEVEL ?? 'info',
    kafkaSessionTimeoutMs: overrides.kafkaSessionTimeoutMs ?? kafkaMs('SWITCHYARD_KAFKA_SESSION_TIMEOUT_MS', env.SWITCHYARD_KAFKA_SESSION_TIMEOUT_MS),
    kafkaRetryMaxMs: overrides.kafkaRetryMaxMs ?? kafkaMs('SWITCHYARD_KAFKA_RETRY_MAX_MS', env.SWITCHYARD_KAFKA_RETRY_MAX_MS) ?? 1_000,
    retentionBytes: overrides.retentionBytes ?? (env.SWITCHYARD_RETENTION_BYTES ? parseBytes(env.SWITCHYARD_RETENTION_BYTES, 'SWITCHYARD_RETENTION_BYTES') : -1),
    retentionMs: overrides.retentionMs ?? (env.SWITCHYARD_RETENTION_MS ? parseDurationMs(env.SWITCHYARD_RETENTION_MS, 'SWITCHYARD_RETENTION_MS') : -1),
  };
}
