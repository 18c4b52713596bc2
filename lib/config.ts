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
}

const FSYNC = ['always', 'interval', 'never'] as const;

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
  };
}
