-- The slowest completed requests, with the ids to hand to `switchyard replay request <id>`.
--
-- duration_ms is end to end — from the request's InferenceRequested to its
-- InferenceCompleted — when the request is in ClickHouse, else the worker's latency
-- (routing → completion, queue_ms + compute_ms). Results and requests deduplicated by
-- event_id (FINAL). Client-visible completions only: one named by a ResultSuperseded (a
-- presumed-dead worker answering after the re-dispatch did) is left out.
--
-- @param since DateTime = -24h  start of the window (inclusive), by completion time
-- @param until DateTime = now   end of the window (exclusive)
-- @param model String = ''      only this model ('' = every model)
-- @param limit UInt32 = 20      how many requests
-- @column request_id     the request (for `switchyard replay request <id>`)
-- @column model          model name
-- @column model_version  model version that served it
-- @column worker_id      worker that served it
-- @column duration_ms    end-to-end time, ms (worker latency when the request is unknown)
-- @column latency_ms     routing → completion as the worker measured it, ms
-- @column queue_ms       waiting in the worker, ms
-- @column compute_ms     computing, ms
-- @column cache_hit      1 when answered from the result cache
-- @column completed_at   completion time (UTC)
SELECT
  rid AS request_id,
  model_name AS model,
  version AS model_version,
  worker AS worker_id,
  if(requested_ms = 0, latency, completed_ms - requested_ms) AS duration_ms,
  latency AS latency_ms,
  queue AS queue_ms,
  compute AS compute_ms,
  hit AS cache_hit,
  at AS completed_at
FROM
(
  SELECT
    ifNull(request_id, '') AS rid, toString(model) AS model_name, ifNull(toString(model_version), '') AS version, toString(worker_id) AS worker,
    latency_ms AS latency, queue_ms AS queue, compute_ms AS compute, cache_hit AS hit, occurred_at AS at, occurred_at_ms AS completed_ms
  FROM results FINAL
  WHERE type = 'InferenceCompleted'
    AND occurred_at >= {since:DateTime} AND occurred_at < {until:DateTime}
    AND ({model:String} = '' OR model = {model:String})
    AND event_id NOT IN (SELECT superseded_event_id FROM results FINAL WHERE type = 'ResultSuperseded')
) AS completions
ANY LEFT JOIN
(
  SELECT ifNull(request_id, '') AS rid, min(occurred_at_ms) AS requested_ms
  FROM requests FINAL
  WHERE request_id IN
  (
    SELECT request_id FROM results FINAL
    WHERE type = 'InferenceCompleted' AND occurred_at >= {since:DateTime} AND occurred_at < {until:DateTime}
  )
  GROUP BY rid
) AS arrivals USING (rid)
ORDER BY duration_ms DESC, request_id
LIMIT {limit:UInt32}
