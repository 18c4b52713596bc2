import { EVENT_TYPE, envelope } from './002_event_tables.js';
import { instantType, lowCardinality, ttl } from './gates.js';
import type { AddColumns, ColumnSpec, Migration } from './types.js';

/**
 * The controller's events and the new versions of older ones (schemas of commit 5bc8e0e):
 *
 * | table | what changes |
 * |---|---|
 * | every event table, `decisions_by_minute` | the `type` Enum gains `ControllerElected` = 16, `ControllerTick` = 17, `ResultSuperseded` = 18 |
 * | `control` | ControllerElected (`controller_id`, `previous_controller_id`, `lease_ms`, `leader_silence_ms`; its `reason` in `reason`); `epoch` of ControllerElected, WorkerEvicted, RolloutChanged and ScaleDecided; WorkerEvicted v2's evidence (`heartbeat_position_topic/_partition/_offset`, `heartbeat_end`, `silence_ms`, `phi`, `phi_threshold`, `min_silence_ms`, `mean_interval_ms`, `std_interval_ms`, `tick_id`; the evicted incarnation in the existing `started_at`) |
 * | `heartbeats` | WorkerHeartbeat v2: `queue_delay_ms`, `cache_hit_buckets`, `bucket_ms` (50 for rows written before, the Avro default), `completed` |
 * | `requests` | InferenceRequested v2: `max_attempts` |
 * | `sessions` | SessionState v2: `context_base64`, `context_bytes`, `reason` (SERVED for rows written before), `migrated_from`, `model_digest`, `epoch` |
 * | `results` | ResultSuperseded: `superseded_event_id`, `superseded_type`, `superseded_position_topic/_partition/_offset`, `superseded_worker_id`, `superseded_attempt`, `winner_event_id`, `winner_type`, `winner_position_topic/_partition/_offset` |
 * | `ticks` (new) | ControllerTick: `controller_id`, `epoch`, `seq`, `interval_ms`, `started_at`, `policy` |
 *
 * Ticks get a table of their own rather than rows in `heartbeats`: `heartbeats` is a worker's
 * table whose `worker_id`, `lane` and `zone` are not nullable, and a tick (a controller's, on
 * the same topic) has none of them — as rows there it would pose as lane 0 of worker ''.
 * `ticks` has the heartbeats' shape otherwise: one row per event id, by month, 30-day TTL.
 *
 * A ResultSuperseded row in `results` carries no outcome: `model` and `worker_id` are '',
 * `lane` is -1, `attempt`, the times and `cache_hit` are 0 (the superseded outcome's worker
 * and attempt are in `superseded_worker_id`, `superseded_attempt`). Queries that count
 * outcomes filter on `type` already; the ones in the pack also drop the outcomes such rows
 * name (`event_id NOT IN (SELECT superseded_event_id …)`), so each request counts one.
 * `results_by_minute` is filled per insert and cannot drop them: it counts a superseded
 * outcome too, and a ResultSuperseded adds an all-zero group (model '', worker '').
 *
 * Event ids that name rows (`superseded_event_id`, `winner_event_id`, `tick_id`) are
 * `UUID`, the type of `event_id`, so they compare and join with it directly.
 *
 * Safe to run twice, on 18.16 and chDB: `MODIFY COLUMN` to the Enum a table already has is
 * a no-op; columns are added through `AddColumns` (18.16 has no `ADD COLUMN IF NOT EXISTS`:
 * the runner looks in `system.columns` first); the new table is `CREATE … IF NOT EXISTS`.
 * Adding values to an Enum rewrites no data, and is allowed on a key column (`control` and
 * `decisions_by_minute` sort by `type`) on both engines.
 */
export const controller: Migration = {
  version: 5,
  name: 'controller',
  up: ({ features: f }) => {
    const lc = (t: string) => lowCardinality(f, t);
    const instant = instantType(f);
    const add = (table: string, columns: ColumnSpec[]): AddColumns => ({ kind: 'add_columns', table, columns });
    const col = (name: string, type: string, dflt?: string): ColumnSpec => (dflt === undefined ? { name, type } : { name, type, default: dflt });
    const position = (prefix: string): ColumnSpec[] => [
      col(`${prefix}_position_topic`, lc('Nullable(String)')),
      col(`${prefix}_position_partition`, 'Nullable(Int32)'),
      col(`${prefix}_position_offset`, 'Nullable(Int64)'),
    ];

    return [
      ...EVENT_TABLES.map((table) => `ALTER TABLE ${table} MODIFY COLUMN type ${EVENT_TYPE_V5}`),
      `ALTER TABLE decisions_by_minute MODIFY COLUMN type ${EVENT_TYPE_V5}`,
      add('control', [
        col('epoch', 'Nullable(Int64)'),
        // ControllerElected
        col('controller_id', lc('Nullable(String)')),
        col('previous_controller_id', 'Nullable(String)'),
        col('lease_ms', 'Nullable(Int64)'),
        col('leader_silence_ms', 'Nullable(Int64)'),
        // WorkerEvicted v2: the failure detector's evidence
        ...position('heartbeat'),
        col('heartbeat_end', 'Nullable(Int64)'),
        col('silence_ms', 'Nullable(Int64)'),
        col('phi', 'Nullable(Float64)'),
        col('phi_threshold', 'Nullable(Float64)'),
        col('min_silence_ms', 'Nullable(Int64)'),
        col('mean_interval_ms', 'Nullable(Float64)'),
        col('std_interval_ms', 'Nullable(Float64)'),
        col('tick_id', 'Nullable(UUID)'),
      ]),
      add('heartbeats', [
        col('queue_delay_ms', 'Float64'),
        col('cache_hit_buckets', 'Array(Float64)'),
        col('bucket_ms', 'Int32', '50'),
        col('completed', 'Int64'),
      ]),
      add('requests', [col('max_attempts', 'Nullable(Int32)')]),
      add('sessions', [
        col('context_base64', 'String'),
        col('context_bytes', 'Int64'),
        col('reason', lc('String'), "'SERVED'"),
        col('migrated_from', 'Nullable(String)'),
        col('model_digest', 'Nullable(String)'),
        col('epoch', 'Nullable(Int64)'),
      ]),
      add('results', [
        col('superseded_event_id', 'Nullable(UUID)'),
        col('superseded_type', lc('Nullable(String)')),
        ...position('superseded'),
        col('superseded_worker_id', lc('Nullable(String)')),
        col('superseded_attempt', 'Nullable(Int32)'),
        col('winner_event_id', 'Nullable(UUID)'),
        col('winner_type', lc('Nullable(String)')),
        ...position('winner'),
      ]),
      `CREATE TABLE IF NOT EXISTS ticks (
  ${[
    ...envelope(f, EVENT_TYPE_V5),
    `controller_id ${lc('String')}`,
    'epoch Nullable(Int64)',
    'seq Int64',
    'interval_ms Int32',
    `started_at ${instant}`,
    `policy ${lc('Nullable(String)')}`,
  ].join(',\n  ')}
) ENGINE = ReplacingMergeTree() PARTITION BY toYYYYMM(occurred_at) ORDER BY (controller_id, occurred_at, event_id)${ttl(f, 'toDateTime(occurred_at) + INTERVAL 30 DAY')}`,
    ];
  },
};

/** The tables of migration 002, each with a `type` column. */
export const EVENT_TABLES = ['requests', 'decisions', 'results', 'heartbeats', 'control', 'sessions', 'deadletters'] as const;

/** The `type` column from this migration on: 002's Enum and the controller's three events. */
export const EVENT_TYPE_V5 = `${EVENT_TYPE.slice(0, -1)}, 'ControllerElected' = 16, 'ControllerTick' = 17, 'ResultSuperseded' = 18)`;
