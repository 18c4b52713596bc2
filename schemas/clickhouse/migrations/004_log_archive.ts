import { codec, lowCardinality } from './gates.js';
import type { Migration } from './types.js';

/**
 * The log archive: every record the sink reads, byte for byte, so ClickHouse can stand in for
 * the log when Kafka's retention has dropped it (`switchyard replay … --clickhouse`).
 *
 * The event tables (002) are for analytics: typed columns, one row per event id. Replay needs
 * the log itself — positions, keys, headers and the exact Avro bytes — because `replay verify`
 * folds the records below each decision's clock, and a clock names offsets. So:
 *
 * | table | what | key |
 * |---|---|---|
 * | `log_records` | every record: position, record timestamp, key, headers, the value exactly as in the log (Confluent framing, base64), and the envelope fields lookups filter on | (topic, partition, offset) |
 * | `log_ids` | request ids and record keys → positions (an inverted index, filled by two materialized views) | (id, topic, partition, offset) |
 * | `log_schemas` | the writer schema of every schema id archived, so the archive decodes without the registry | schema id |
 * | `log_topics` | each topic's partition count as the sink last saw it (a partition may have no record) | (topic, partitions) |
 *
 * Dedup: every table is a `ReplacingMergeTree` keyed by position (or id): a record archived
 * again after a redelivery collapses into one row. Readers never rely on merges: they drop
 * repeated positions themselves. Unlike the event tables, the archive keeps a record per
 * position, not per event id: a producer's duplicate is a second record the routers folded too.
 *
 * Core DDL only (ClickHouse 18.16): `MATERIALIZED VIEW … TO`, `Nested`; `LowCardinality` and
 * a ZSTD codec on the value where the server has them. No TTL: the archive is the long
 * retention.
 */
export const logArchive: Migration = {
  version: 4,
  name: 'log_archive',
  up: ({ features: f }) => {
    const lc = (t: string) => lowCardinality(f, t);
    return [
      `CREATE TABLE IF NOT EXISTS log_records (
  log_topic ${lc('String')},
  log_partition Int32,
  log_offset Int64,
  log_timestamp_ms Int64,
  log_time DateTime('UTC'),
  type ${lc('String')},
  event_id String,
  request_id Nullable(String),
  session_id Nullable(String),
  occurred_at_ms Int64,
  schema_id Int32,
  key_text Nullable(String),
  key_base64 Nullable(String),
  headers Nested(key String, value_base64 String),
  value_base64 String${codec(f, 'ZSTD(3)')}
) ENGINE = ReplacingMergeTree() PARTITION BY toYYYYMM(log_time) ORDER BY (log_topic, log_partition, log_offset)`,
      `CREATE TABLE IF NOT EXISTS log_ids (
  id String,
  log_topic ${lc('String')},
  log_partition Int32,
  log_offset Int64,
  log_timestamp_ms Int64
) ENGINE = ReplacingMergeTree() ORDER BY (id, log_topic, log_partition, log_offset)`,
      `CREATE MATERIALIZED VIEW IF NOT EXISTS log_ids_request_mv TO log_ids AS
SELECT assumeNotNull(request_id) AS id, log_topic, log_partition, log_offset, log_timestamp_ms
FROM log_records
WHERE isNotNull(request_id)`,
      `CREATE MATERIALIZED VIEW IF NOT EXISTS log_ids_key_mv TO log_ids AS
SELECT assumeNotNull(key_text) AS id, log_topic, log_partition, log_offset, log_timestamp_ms
FROM log_records
WHERE isNotNull(key_text) AND ifNull(request_id, '') != assumeNotNull(key_text)`,
      `CREATE TABLE IF NOT EXISTS log_schemas (
  schema_id Int32,
  subject String,
  schema String
) ENGINE = ReplacingMergeTree() ORDER BY schema_id`,
      `CREATE TABLE IF NOT EXISTS log_topics (
  log_topic String,
  partitions Int32
) ENGINE = ReplacingMergeTree() ORDER BY (log_topic, partitions)`,
    ];
  },
};
