-- Canary against stable for a model's rollout: errors, latency and cache hits per role.
--
-- The versions compared are those of the model's latest RolloutChanged before `until` that
-- named a canary (the canary start, or a later weight change while it ran): its
-- canary_version is the canary and its stable_version the stable version. Results of each
-- version in the window, deduplicated by event_id (FINAL); exact latency percentiles over
-- completed results (latency = queue_ms + compute_ms). No rows when the model never had a
-- canary before `until`. One outcome per request: an outcome named by a ResultSuperseded is
-- left out.
--
-- @param model String              the model (required)
-- @param since DateTime = -24h     start of the window (inclusive)
-- @param until DateTime = now      end of the window (exclusive)
-- @column role             canary or stable
-- @column model_version    the version in that role
-- @column completed        completed requests
-- @column failed           failed requests
-- @column error_rate       failed / (completed + failed), 0 when both are 0
-- @column p50_ms           median latency of completed requests, ms
-- @column p95_ms           95th percentile latency, ms
-- @column p99_ms           99th percentile latency, ms
-- @column cache_hit_ratio  completed requests answered from a result cache / completed
WITH
  (
    SELECT argMax(ifNull(canary_version, ''), tuple(occurred_at_ms, event_id)) FROM control FINAL
    WHERE type = 'RolloutChanged' AND model = {model:String} AND canary_version IS NOT NULL AND occurred_at < {until:DateTime}
  ) AS canary_name,
  (
    SELECT argMax(ifNull(stable_version, ''), tuple(occurred_at_ms, event_id)) FROM control FINAL
    WHERE type = 'RolloutChanged' AND model = {model:String} AND canary_version IS NOT NULL AND occurred_at < {until:DateTime}
  ) AS stable_name
SELECT
  if(version = canary_name, 'canary', 'stable') AS role,
  version AS model_version,
  countIf(type = 'InferenceCompleted') AS completed,
  countIf(type = 'InferenceFailed') AS failed,
  round(if(count() = 0, 0, countIf(type = 'InferenceFailed') / count()), 4) AS error_rate,
  quantileExactIf(0.5)(latency_ms, type = 'InferenceCompleted') AS p50_ms,
  quantileExactIf(0.95)(latency_ms, type = 'InferenceCompleted') AS p95_ms,
  quantileExactIf(0.99)(latency_ms, type = 'InferenceCompleted') AS p99_ms,
  round(if(countIf(type = 'InferenceCompleted') = 0, 0, countIf(type = 'InferenceCompleted' AND cache_hit = 1) / countIf(type = 'InferenceCompleted')), 4) AS cache_hit_ratio
FROM
(
  SELECT ifNull(toString(model_version), '') AS version, type, latency_ms, cache_hit
  FROM results FINAL
  WHERE type IN ('InferenceCompleted', 'InferenceFailed') AND model = {model:String}
    AND occurred_at >= {since:DateTime} AND occurred_at < {until:DateTime}
    AND event_id NOT IN (SELECT superseded_event_id FROM results FINAL WHERE type = 'ResultSuperseded')
)
WHERE canary_name != '' AND version IN (canary_name, stable_name)
GROUP BY role, version
ORDER BY role, version
