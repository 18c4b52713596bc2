import { readFileSync } from 'node:fs';
import { SwitchyardError } from './errors.js';

/** TLS to the Kafka brokers (kafkajs' `ssl`, Node's `tls.connect` options). */
export interface KafkaTls {
  /** PEM of the CA(s) the brokers' certificates must chain to; undefined = Node's default CAs. (SWITCHYARD_KAFKA_SSL_CA_FILE) */
  ca?: string | undefined;
  /** PEM client certificate, for mutual TLS; set together with `key`. (SWITCHYARD_KAFKA_SSL_CERT_FILE) */
  cert?: string | undefined;
  /** PEM client private key, for mutual TLS. (SWITCHYARD_KAFKA_SSL_KEY_FILE) */
  key?: string | undefined;
  /** Refuse a broker whose certificate does not verify (chain and host name). @default true (SWITCHYARD_KAFKA_SSL_REJECT_UNAUTHORIZED) */
  rejectUnauthorized: boolean;
}

export const KAFKA_SASL_MECHANISMS = ['plain', 'scram-sha-256', 'scram-sha-512'] as const;

/** SASL authentication to the Kafka brokers (kafkajs' `sasl`). */
export interface KafkaSasl {
  /** (SWITCHYARD_KAFKA_SASL_MECHANISM) */
  mechanism: (typeof KAFKA_SASL_MECHANISMS)[number];
  /** (SWITCHYARD_KAFKA_SASL_USERNAME) */
  username: string;
  /** Never logged. (SWITCHYARD_KAFKA_SASL_PASSWORD, or the first line of SWITCHYARD_KAFKA_SASL_PASSWORD_FILE) */
  password: string;
}

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
  /** ClickHouse user. @default 'default' (SWITCHYARD_CLICKHOUSE_USER) */
  clickhouseUser?: string | undefined;
  /**
   * ClickHouse password; never logged. @default '' (SWITCHYARD_CLICKHOUSE_PASSWORD, or the first
   * line of SWITCHYARD_CLICKHOUSE_PASSWORD_FILE)
   */
  clickhousePassword?: string | undefined;
  /** TLS to Kafka; undefined = plaintext. @default undefined (SWITCHYARD_KAFKA_SSL=true turns it on) */
  kafkaTls?: KafkaTls | undefined;
  /** SASL to Kafka; undefined = none. @default undefined (SWITCHYARD_KAFKA_SASL_MECHANISM turns it on) */
  kafkaSasl?: KafkaSasl | undefined;
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
   * The Kafka client library behind the log: `kafkajs` (lib/log/kafka) or `platformatic`
   * (@platformatic/kafka, lib/log/platformatic). Both pass the same EventLog contract and chaos
   * suite; members of either can share a consumer group. @platformatic/kafka is the default: less
   * than half kafkajs' CPU per record and a shorter serving path (docs/BENCHMARKS.md, "Kafka
   * clients"). @default 'platformatic' (SWITCHYARD_KAFKA_CLIENT)
   */
  kafkaClient?: KafkaClient;
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

export const KAFKA_CLIENTS = ['kafkajs', 'platformatic'] as const;
export type KafkaClient = (typeof KAFKA_CLIENTS)[number];

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

const configError = (message: string) => new SwitchyardError('SY_ERR_CONFIG', message);

/** A file's text, for a setting that names a file; a missing or unreadable file is SY_ERR_CONFIG. */
function readSettingFile(name: string, path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new SwitchyardError('SY_ERR_CONFIG', `${name}: cannot read ${JSON.stringify(path)}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err });
  }
}

/** A secret from `<name>` or the first line of the file named by `<name>_FILE` (not both); undefined when neither is set. */
function secretFromEnv(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const value = env[name];
  const file = env[`${name}_FILE`];
  if (value !== undefined && value !== '' && file !== undefined && file !== '') throw configError(`set ${name} or ${name}_FILE, not both`);
  if (file !== undefined && file !== '') return readSettingFile(`${name}_FILE`, file).split(/\r?\n/)[0]!;
  return value === undefined || value === '' ? undefined : value;
}

function booleanFromEnv(env: NodeJS.ProcessEnv, name: string, fallback: boolean): boolean {
  const v = (env[name] ?? '').trim().toLowerCase();
  if (v === '') return fallback;
  if (v === 'true' || v === '1') return true;
  if (v === 'false' || v === '0') return false;
  throw configError(`${name} must be true or false, got ${JSON.stringify(env[name])}`);
}

/** Kafka TLS and SASL from SWITCHYARD_KAFKA_SSL* and SWITCHYARD_KAFKA_SASL_*; a half-set group is SY_ERR_CONFIG. */
export function kafkaSecurityFromEnv(env: NodeJS.ProcessEnv): { kafkaTls: KafkaTls | undefined; kafkaSasl: KafkaSasl | undefined } {
  const ssl = booleanFromEnv(env, 'SWITCHYARD_KAFKA_SSL', false);
  const file = (name: string) => (env[name] ? readSettingFile(name, env[name]) : undefined);
  const tlsNames = ['SWITCHYARD_KAFKA_SSL_CA_FILE', 'SWITCHYARD_KAFKA_SSL_CERT_FILE', 'SWITCHYARD_KAFKA_SSL_KEY_FILE', 'SWITCHYARD_KAFKA_SSL_REJECT_UNAUTHORIZED'];
  let kafkaTls: KafkaTls | undefined;
  if (ssl) {
    const [ca, cert, key] = [file(tlsNames[0]!), file(tlsNames[1]!), file(tlsNames[2]!)];
    if ((cert === undefined) !== (key === undefined)) throw configError('SWITCHYARD_KAFKA_SSL_CERT_FILE and SWITCHYARD_KAFKA_SSL_KEY_FILE go together (mutual TLS)');
    if (ca !== undefined && !ca.includes('-----BEGIN CERTIFICATE-----')) throw configError(`SWITCHYARD_KAFKA_SSL_CA_FILE ${JSON.stringify(env.SWITCHYARD_KAFKA_SSL_CA_FILE)} holds no PEM certificate`);
    kafkaTls = { ca, cert, key, rejectUnauthorized: booleanFromEnv(env, 'SWITCHYARD_KAFKA_SSL_REJECT_UNAUTHORIZED', true) };
  } else {
    const stray = tlsNames.filter((n) => env[n]);
    if (stray.length > 0) throw configError(`${stray.join(', ')} set but SWITCHYARD_KAFKA_SSL is not true`);
  }
  const mechanism = (env.SWITCHYARD_KAFKA_SASL_MECHANISM ?? '').trim().toLowerCase();
  const username = env.SWITCHYARD_KAFKA_SASL_USERNAME || undefined;
  const password = secretFromEnv(env, 'SWITCHYARD_KAFKA_SASL_PASSWORD');
  let kafkaSasl: KafkaSasl | undefined;
  if (mechanism !== '') {
    if (!(KAFKA_SASL_MECHANISMS as readonly string[]).includes(mechanism)) {
      throw configError(`SWITCHYARD_KAFKA_SASL_MECHANISM must be one of ${KAFKA_SASL_MECHANISMS.join(', ')}, got ${JSON.stringify(env.SWITCHYARD_KAFKA_SASL_MECHANISM)}`);
    }
    if (username === undefined || password === undefined) {
      throw configError(`SWITCHYARD_KAFKA_SASL_MECHANISM=${mechanism} needs SWITCHYARD_KAFKA_SASL_USERNAME and SWITCHYARD_KAFKA_SASL_PASSWORD (or _PASSWORD_FILE)`);
    }
    kafkaSasl = { mechanism: mechanism as KafkaSasl['mechanism'], username, password };
  } else if (username !== undefined || password !== undefined) {
    throw configError('SWITCHYARD_KAFKA_SASL_USERNAME/PASSWORD set without SWITCHYARD_KAFKA_SASL_MECHANISM (plain, scram-sha-256 or scram-sha-512)');
  }
  return { kafkaTls, kafkaSasl };
}

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
  const { kafkaTls, kafkaSasl } = kafkaSecurityFromEnv(env);
  const kafkaClient = overrides.kafkaClient ?? ((env.SWITCHYARD_KAFKA_CLIENT || 'platformatic').trim().toLowerCase() as KafkaClient);
  if (!KAFKA_CLIENTS.includes(kafkaClient)) throw configError(`SWITCHYARD_KAFKA_CLIENT must be one of ${KAFKA_CLIENTS.join(', ')}, got ${JSON.stringify(kafkaClient)}`);
  const clickhouseUser = overrides.clickhouseUser ?? (env.SWITCHYARD_CLICKHOUSE_USER || undefined);
  const clickhousePassword = overrides.clickhousePassword ?? secretFromEnv(env, 'SWITCHYARD_CLICKHOUSE_PASSWORD');
  return {
    brokers,
    home: overrides.home ?? env.SWITCHYARD_HOME ?? '.switchyard',
    topicPrefix: overrides.topicPrefix ?? env.SWITCHYARD_TOPIC_PREFIX ?? 'switchyard.',
    lanes,
    schemaRegistryUrl: overrides.schemaRegistryUrl ?? (env.SWITCHYARD_SCHEMA_REGISTRY_URL || undefined),
    clickhouseUrl: overrides.clickhouseUrl ?? (env.SWITCHYARD_CLICKHOUSE_URL || undefined),
    clickhouseUser,
    clickhousePassword,
    kafkaTls: overrides.kafkaTls ?? kafkaTls,
    kafkaSasl: overrides.kafkaSasl ?? kafkaSasl,
    fsync,
    logLevel: overrides.logLevel ?? env.SWITCHYARD_LOG_LEVEL ?? 'info',
    kafkaSessionTimeoutMs: overrides.kafkaSessionTimeoutMs ?? kafkaMs('SWITCHYARD_KAFKA_SESSION_TIMEOUT_MS', env.SWITCHYARD_KAFKA_SESSION_TIMEOUT_MS),
    kafkaRetryMaxMs: overrides.kafkaRetryMaxMs ?? kafkaMs('SWITCHYARD_KAFKA_RETRY_MAX_MS', env.SWITCHYARD_KAFKA_RETRY_MAX_MS) ?? 1_000,
    kafkaClient,
    retentionBytes: overrides.retentionBytes ?? (env.SWITCHYARD_RETENTION_BYTES ? parseBytes(env.SWITCHYARD_RETENTION_BYTES, 'SWITCHYARD_RETENTION_BYTES') : -1),
    retentionMs: overrides.retentionMs ?? (env.SWITCHYARD_RETENTION_MS ? parseDurationMs(env.SWITCHYARD_RETENTION_MS, 'SWITCHYARD_RETENTION_MS') : -1),
  };
}
