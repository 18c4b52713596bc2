-- Failover and eviction incidents, in time order.
--
-- incident is one of:
--   eviction        a worker was evicted (WorkerEvicted: SUSPECTED_DEAD, DRAINED, ADMIN; the
--                   failure detector's evidence is in control-actions)
--   redispatch      a request routed again after its worker was evicted or failed (attempt > 1 or reason REDISPATCH)
--   zone_failover   a request routed out of its preferred zone (reason ZONE_FAILOVER)
--   fallback_model  a request served by its model's fallback model (fallback)
-- Base tables deduplicated by event_id (FINAL). For a redispatch, detail names the
-- previous worker.
--
-- @param since DateTime = -24h  start of the window (inclusive)
-- @param until DateTime = now   end of the window (exclusive)
-- @param limit UInt32 = 100     most incidents to list (the earliest first)
-- @column occurred_at     when (UTC; milliseconds where the server stores them)
-- @column occurred_at_ms  when, ms since the Unix epoch
-- @column incident        eviction, redispatch, zone_failover or fallback_model
-- @column worker_id       the evicted worker, or the worker the request went to
-- @column lane            that worker's lane
-- @column zone            that worker's zone ('' when unknown)
-- @column request_id      the request ('' for evictions)
-- @column reason          the eviction's or the decision's reason
-- @column detail          explanation, or the previous worker of a redispatch
SELECT
  at AS occurred_at,
  at_ms AS occurred_at_ms,
  kind AS incident,
  worker AS worker_id,
  worker_lane AS lane,
  worker_zone AS zone,
  rid AS request_id,
  why AS reason,
  note AS detail
FROM
(
  SELECT
    occurred_at AS at, occurred_at_ms AS at_ms, 'eviction' AS kind,
    ifNull(toString(worker_id), '') AS worker, ifNull(lane, -1) AS worker_lane, ifNull(toString(zone), '') AS worker_zone,
    '' AS rid, ifNull(toString(reason), '') AS why, ifNull(detail, '') AS note
  FROM control FINAL
  WHERE type = 'WorkerEvicted' AND occurred_at >= {since:DateTime} AND occurred_at < {until:DateTime}
  UNION ALL
  SELECT
    occurred_at AS at, occurred_at_ms AS at_ms, 'redispatch' AS kind,
    ifNull(toString(worker_id), '') AS worker, ifNull(lane, -1) AS worker_lane, ifNull(toString(zone), '') AS worker_zone,
    ifNull(request_id, '') AS rid, toString(reason) AS why, concat('previous worker ', ifNull(previous_worker_id, '?')) AS note
  FROM decisions FINAL
  WHERE type = 'RequestRouted' AND (attempt > 1 OR reason = 'REDISPATCH')
    AND occurred_at >= {since:DateTime} AND occurred_at < {until:DateTime}
  UNION ALL
  SELECT
    occurred_at AS at, occurred_at_ms AS at_ms, 'zone_failover' AS kind,
    ifNull(toString(worker_id), '') AS worker, ifNull(lane, -1) AS worker_lane, ifNull(toString(zone), '') AS worker_zone,
    ifNull(request_id, '') AS rid, toString(reason) AS why, '' AS note
  FROM decisions FINAL
  WHERE type = 'RequestRouted' AND reason = 'ZONE_FAILOVER'
    AND occurred_at >= {since:DateTime} AND occurred_at < {until:DateTime}
  UNION ALL
  SELECT
    occurred_at AS at, occurred_at_ms AS at_ms, 'fallback_model' AS kind,
    ifNull(toString(worker_id), '') AS worker, ifNull(lane, -1) AS worker_lane, ifNull(toString(zone), '') AS worker_zone,
    ifNull(request_id, '') AS rid, toString(reason) AS why, concat(ifNull(requested_model, '?'), ' served by ', toString(model)) AS note
  FROM decisions FINAL
  WHERE type = 'RequestRouted' AND fallback = 1
    AND occurred_at >= {since:DateTime} AND occurred_at < {until:DateTime}
)
ORDER BY occurred_at_ms, incident, request_id, worker_id
LIMIT {limit:UInt32}
