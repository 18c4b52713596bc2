import { EVENT_TYPE, PRIORITY } from './002_event_tables.js';
import { lowCardinality } from './gates.js';
import type { Migration } from './types.js';

/**
 * Per-minute rollups, filled by materialized views as the sink inserts into the base tables:
 *
 * - `results_by_minute` (`AggregatingMergeTree`) per model, model version and worker:
 *   started/completed/failed counts, cache hits, and the latency quantile state
 *   (`quantilesIf(0.5, 0.95, 0.99)` over completed results' `latency_ms`). Read with
 *   `sumMerge(completed)`, `quantilesIfMerge(0.5, 0.95, 0.99)(latency)`.
 * - `decisions_by_minute` (`SummingMergeTree`) per model, outcome (`type`), reason, priority
 *   and zone: decision counts, and how many were degraded or served by a fallback model.
 *   Read with `sum(decisions)`.
 *
 * Approximate under redelivery: a materialized view sees every insert, so an event inserted
 * twice is counted twice here even though its base table collapses the copies. The sink
 * skips events it has already inserted (a recent-eventId LRU), which removes producer
 * duplicates and duplicates within a run, but a batch re-inserted after a crash or after an
 * insert that failed half-way is counted again. The rollups are for dashboards over long
 * ranges; the query pack reads the deduplicated base tables and is exact.
 *
 * Core DDL only (ClickHouse 18.16 has `AggregateFunction` states, `-If` combinators and
 * `MATERIALIZED VIEW … TO`); `LowCardinality` where the server has it.
 */
export const minuteRollups: Migration = {
  version: 3,
  name: 'minute_rollups',
  up: ({ features: f }) => {
    const lc = (t: string) => lowCardinality(f, t);
    return [
      `CREATE TABLE IF NOT EXISTS results_by_minute (
  minute DateTime('UTC'),
  model ${lc('String')},
  model_version ${lc('String')},
  worker_id ${lc('String')},
  started AggregateFunction(sum, UInt64),
  completed AggregateFunction(sum, UInt64),
  failed AggregateFunction(sum, UInt64),
  cache_hits AggregateFunction(sum, UInt64),
  latency AggregateFunction(quantilesIf(0.5, 0.95, 0.99), Int64, UInt8)
) ENGINE = AggregatingMergeTree() PARTITION BY toYYYYMM(minute) ORDER BY (model, model_version, worker_id, minute)`,
      `CREATE MATERIALIZED VIEW IF NOT EXISTS results_by_minute_mv TO results_by_minute AS
SELECT
  toStartOfMinute(occurred_at) AS minute,
  model,
  ifNull(model_version, '') AS model_version,
  worker_id,
  sumState(toUInt64(type = 'InferenceStarted')) AS started,
  sumState(toUInt64(type = 'InferenceCompleted')) AS completed,
  sumState(toUInt64(type = 'InferenceFailed')) AS failed,
  sumState(toUInt64(type = 'InferenceCompleted' AND cache_hit = 1)) AS cache_hits,
  quantilesIfState(0.5, 0.95, 0.99)(latency_ms, toUInt8(type = 'InferenceCompleted')) AS latency
FROM results
GROUP BY minute, model, model_version, worker_id`,
      `CREATE TABLE IF NOT EXISTS decisions_by_minute (
  minute DateTime('UTC'),
  model ${lc('String')},
  type ${EVENT_TYPE},
  reason ${lc('String')},
  priority ${PRIORITY},
  zone ${lc('String')},
  decisions UInt64,
  degraded_decisions UInt64,
  fallback_decisions UInt64
) ENGINE = SummingMergeTree() PARTITION BY toYYYYMM(minute) ORDER BY (model, type, reason, priority, zone, minute)`,
      `CREATE MATERIALIZED VIEW IF NOT EXISTS decisions_by_minute_mv TO decisions_by_minute AS
SELECT
  toStartOfMinute(occurred_at) AS minute,
  model,
  type,
  reason,
  priority,
  ifNull(zone, '') AS zone,
  count() AS decisions,
  sum(toUInt64(degraded)) AS degraded_decisions,
  sum(toUInt64(fallback)) AS fallback_decisions
FROM decisions
GROUP BY minute, model, type, reason, priority, zone`,
    ];
  },
};
