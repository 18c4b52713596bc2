import { codec, instantType, lowCardinality, ttl } from './gates.js';
import type { Features, Migration } from './types.js';

/**
 * One table per event family, filled by the sink (`services/sink/rows.ts` is the mapping):
 *
 * | table | events |
 * |---|---|
 * | `requests` | InferenceRequested |
 * | `decisions` | RequestRouted, RequestRejected (with candidates and the clock) |
 * | `results` | InferenceStarted, InferenceCompleted, InferenceFailed |
 * | `heartbeats` | WorkerHeartbeat |
 * | `control` | WorkerJoined, WorkerDraining, WorkerEvicted, ModelVersionRegistered, RolloutChanged, ScaleDecided |
 * | `sessions` | SessionState |
 * | `deadletters` | DeadLettered (the original bytes as base64) |
 *
 * Dedup: every table is a `ReplacingMergeTree` whose sorting key ends in `event_id` and whose
 * other key columns (and partition key) are functions of the event itself, so the copies of
 * a re-inserted event share a key and a partition and collapse into one row. Merges collapse
 * them eventually; a query that must be exact reads with `FINAL` (every query in
 * `schemas/clickhouse/queries/` does). `deadletters` is keyed by the original record's
 * position instead of by time: a record dead-lettered again after a redelivery keeps its
 * `event_id` (derived from group and position) but gets a new `occurred_at`.
 *
 * Column names are the domain words of the events in snake_case (`lane`, `clock`,
 * `candidates`, `reason`…). Every row also carries where the sink read it: `log_topic`,
 * `log_partition`, `log_offset`. Times: `occurred_at` (milliseconds where the server has
 * `DateTime64`, whole seconds on 18.16) and `occurred_at_ms` (exact milliseconds on every
 * server, for arithmetic). Bytes (request input, result output, dead-lettered records) are
 * stored as base64 text: JSONEachRow cannot carry arbitrary bytes.
 *
 * Gated on the server version (`gates.ts`): `LowCardinality` for repetitive strings,
 * `DateTime64` for instants, compression codecs, a bloom-filter index on `request_id` (for
 * `replay request`), and a 30-day TTL on `heartbeats` (high volume, short-lived value).
 */
export const eventTables: Migration = {
  version: 2,
  name: 'event_tables',
  up: ({ features: f }) => {
    const lc = (t: string) => lowCardinality(f, t);
    const instant = instantType(f);
    const requestIndex = f.dataSkippingIndices ? ',\n  INDEX request_id_idx request_id TYPE bloom_filter GRANULARITY 4' : '';
    const table = (name: string, columns: string[], key: string, extra = '') =>
      `CREATE TABLE IF NOT EXISTS ${name} (\n  ${[...envelope(f), ...columns].join(',\n  ')}${INDEXED.has(name) ? requestIndex : ''}\n) ENGINE = ReplacingMergeTree() ${key}${extra}`;
    const byMonth = (order: string) => `PARTITION BY toYYYYMM(occurred_at) ORDER BY (${order}, occurred_at, event_id)`;

    return [
      table(
        'requests',
        [
          `model ${lc('String')}`,
          `model_version ${lc('Nullable(String)')}`,
          `session_id Nullable(String)`,
          `priority ${PRIORITY}`,
          `deadline_at Nullable(${instant})`,
          `zone ${lc('Nullable(String)')}`,
          `tenant ${lc('Nullable(String)')}`,
          `source Enum8('GATEWAY' = 1, 'KAFKA_CLIENT' = 2, 'REPLAY' = 3, 'INTERNAL' = 4)`,
          `idempotency_key Nullable(String)`,
          `reply_topic Nullable(String)`,
          `allow_fallback UInt8`,
          `cacheable UInt8`,
          `content_type ${lc('String')}`,
          `input_bytes Int32`,
          `input_base64 String${codec(f, 'ZSTD(3)')}`,
          `parameters Nested(key String, value String)`,
          `attributes Nested(key String, value String)`,
        ],
        byMonth('model'),
      ),
      table(
        'decisions',
        [
          `model ${lc('String')}`,
          `requested_model ${lc('Nullable(String)')}`,
          `model_version ${lc('Nullable(String)')}`,
          `model_digest Nullable(String)`,
          `worker_id ${lc('Nullable(String)')}`,
          `lane Nullable(Int32)`,
          `zone ${lc('Nullable(String)')}`,
          `reason ${lc('String')}`,
          `detail Nullable(String)`,
          `retry_after_ms Nullable(Int32)`,
          `degraded UInt8`,
          `fallback UInt8`,
          `session_id Nullable(String)`,
          `priority ${PRIORITY}`,
          `deadline_at Nullable(${instant})`,
          `policy_version ${lc('String')}`,
          `attempt Int32`,
          `previous_worker_id Nullable(String)`,
          `candidates Nested(worker_id String, lane Int32, zone Nullable(String), model_version Nullable(String), score Float64, load Float64, in_flight Int32, excluded Nullable(String))`,
          `pending_decisions Nested(worker_id String, lane Int32, count Int32)`,
        ],
        byMonth('model'),
      ),
      table(
        'results',
        [
          `worker_id ${lc('String')}`,
          `lane Int32`,
          `model ${lc('String')}`,
          `model_version ${lc('Nullable(String)')}`,
          `model_digest Nullable(String)`,
          `attempt Int32`,
          `batch_size Int32`,
          `batch_id Nullable(String)`,
          `queue_ms Int64`,
          `compute_ms Int64`,
          // Routing to this event as the worker measured it: queue_ms + compute_ms.
          `latency_ms Int64`,
          `cache_hit UInt8`,
          `content_type ${lc('Nullable(String)')}`,
          `output_bytes Nullable(Int32)`,
          `output_base64 Nullable(String)${codec(f, 'ZSTD(3)')}`,
          `output_sha256 Nullable(String)`,
          `input_tokens Nullable(Int64)`,
          `output_tokens Nullable(Int64)`,
          `metrics Nested(name String, value Float64)`,
          `error_code ${lc('Nullable(String)')}`,
          `error_message Nullable(String)`,
          `retriable Nullable(UInt8)`,
        ],
        byMonth('model'),
      ),
      table(
        'heartbeats',
        [
          `worker_id ${lc('String')}`,
          `lane Int32`,
          `zone ${lc('String')}`,
          `seq Int64`,
          `started_at Nullable(${instant})`,
          `load Float64`,
          `queue_depth Int32`,
          `in_flight Int32`,
          `capacity Int32`,
          `cache_hit_ratio Float64`,
          `loaded_models Array(String)`,
          ...accelerator(f),
          `draining UInt8`,
        ],
        byMonth('worker_id'),
        ttl(f, 'toDateTime(occurred_at) + INTERVAL 30 DAY'),
      ),
      table(
        'control',
        [
          `worker_id ${lc('Nullable(String)')}`,
          `lane Nullable(Int32)`,
          `zone ${lc('Nullable(String)')}`,
          `model ${lc('Nullable(String)')}`,
          `model_version ${lc('Nullable(String)')}`,
          `reason ${lc('Nullable(String)')}`,
          `detail Nullable(String)`,
          // WorkerJoined
          `capacity Nullable(Int32)`,
          `models Array(String)`,
          `backend ${lc('Nullable(String)')}`,
          `max_batch_size Nullable(Int32)`,
          `max_batch_delay_ms Nullable(Int32)`,
          `started_at Nullable(${instant})`,
          ...accelerator(f),
          // WorkerDraining, WorkerEvicted
          `drain_deadline_at Nullable(${instant})`,
          `last_heartbeat_at Nullable(${instant})`,
          `last_heartbeat_seq Nullable(Int64)`,
          // ModelVersionRegistered
          `model_digest Nullable(String)`,
          `size_bytes Nullable(Int64)`,
          `model_kind ${lc('Nullable(String)')}`,
          `fallback_model Nullable(String)`,
          `registered_by Nullable(String)`,
          `metadata Nested(key String, value String)`,
          // RolloutChanged
          `stable_version Nullable(String)`,
          `canary_version Nullable(String)`,
          `canary Nullable(UInt8)`,
          `weights Nested(version String, weight Float64)`,
          `budget_max_p99_latency_ms Nullable(Float64)`,
          `budget_max_error_rate Nullable(Float64)`,
          `budget_min_requests Nullable(Int32)`,
          `budget_window_ms Nullable(Int64)`,
          // ScaleDecided
          `pool Nullable(String)`,
          `workers_from Nullable(Int32)`,
          `workers_to Nullable(Int32)`,
          `cooldown_until Nullable(${instant})`,
          `signals Nested(name String, value Float64)`,
        ],
        byMonth('type'),
      ),
      table(
        'sessions',
        [
          `session_id String`,
          `worker_id ${lc('String')}`,
          `lane Int32`,
          `model ${lc('String')}`,
          `model_version ${lc('String')}`,
          `last_request_id String`,
          `updated_at ${instant}`,
          `request_count Int64`,
        ],
        byMonth('session_id'),
      ),
      table(
        'deadletters',
        [
          `original_topic ${lc('String')}`,
          `original_partition Int32`,
          `original_offset Int64`,
          `original_key_base64 Nullable(String)`,
          `original_value_base64 Nullable(String)${codec(f, 'ZSTD(3)')}`,
          `original_headers Nested(key String, value_base64 String)`,
          `original_timestamp Nullable(${instant})`,
          `error_code ${lc('String')}`,
          `error_message String`,
          `consumer_group ${lc('String')}`,
          `attempts Int32`,
        ],
        'ORDER BY (original_topic, original_partition, original_offset, event_id)',
      ),
    ];
  },
};

/** Tables looked up by request id (`replay request`). */
const INDEXED = new Set(['requests', 'decisions', 'results']);

export const PRIORITY = "Enum8('CRITICAL' = 1, 'HIGH' = 2, 'NORMAL' = 3, 'LOW' = 4, 'BACKGROUND' = 5)";

/** The `type` column of every table: the event's record name. */
export const EVENT_TYPE =
  "Enum8('InferenceRequested' = 1, 'RequestRouted' = 2, 'RequestRejected' = 3, 'InferenceStarted' = 4, 'InferenceCompleted' = 5, 'InferenceFailed' = 6, " +
  "'WorkerHeartbeat' = 7, 'WorkerJoined' = 8, 'WorkerDraining' = 9, 'WorkerEvicted' = 10, 'ModelVersionRegistered' = 11, 'RolloutChanged' = 12, " +
  "'ScaleDecided' = 13, 'SessionState' = 14, 'DeadLettered' = 15)";

/**
 * The envelope every event begins with, and where the sink read the event. `eventType` is the
 * `type` column's Enum (later migrations create tables with a longer one).
 */
export function envelope(f: Features, eventType: string = EVENT_TYPE): string[] {
  return [
    'event_id UUID',
    `type ${eventType}`,
    `occurred_at ${instantType(f)}`,
    `occurred_at_ms Int64${codec(f, 'Delta, ZSTD(1)')}`,
    'request_id Nullable(String)',
    'trace_id Nullable(String)',
    `producer ${lowCardinality(f, 'String')}`,
    'causation_id Nullable(String)',
    'clock Nested(topic String, partition Int32, offset Int64)',
    `log_topic ${lowCardinality(f, 'String')}`,
    'log_partition Int32',
    'log_offset Int64',
  ];
}

function accelerator(f: Features): string[] {
  return [
    `accelerator_kind ${lowCardinality(f, 'Nullable(String)')}`,
    `accelerator_name ${lowCardinality(f, 'Nullable(String)')}`,
    'accelerator_count Nullable(Int32)',
    'accelerator_memory_total_bytes Nullable(Int64)',
    'accelerator_memory_used_bytes Nullable(Int64)',
    'accelerator_utilization Nullable(Float64)',
    'accelerator_driver_version Nullable(String)',
  ];
}
