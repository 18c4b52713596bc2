-- What the controller did, in time order: elections, evictions with their evidence, re-dispatches and superseded outcomes.
--
-- action is one of:
--   election    a controller claimed leadership for a new epoch (ControllerElected);
--               silence_ms is how long the leader it replaced had been silent
--   eviction    a worker was evicted (WorkerEvicted) with the failure detector's evidence:
--               silence_ms (log time since its last heartbeat), phi against phi_threshold,
--               the min_silence_ms required whatever phi says, and the heartbeat interval
--               it had learnt (mean_interval_ms, std_interval_ms); detail names the last
--               heartbeat's position, the partition's end and the deciding tick
--   redispatch  a request routed again (RequestRouted with attempt > 1), by its reason
--   superseded  a terminal outcome that lost to an earlier one of its request
--               (ResultSuperseded): reason is the losing outcome's type, worker_id and
--               attempt are the loser's; detail names both positions in results
-- Times are the events' own (occurred_at). Base tables deduplicated by event_id (FINAL).
-- Null where an action has no such value.
--
-- @param since DateTime = -24h  start of the window (inclusive)
-- @param until DateTime = now   end of the window (exclusive)
-- @param action String = ''     only this action: election, eviction, redispatch or superseded ('' = all)
-- @param limit UInt32 = 1000    most actions to list (the earliest first)
-- @column occurred_at       when (UTC; milliseconds where the server stores them)
-- @column occurred_at_ms    when, ms since the Unix epoch
-- @column action            election, eviction, redispatch or superseded
-- @column epoch             the controller epoch it was written under (the epoch claimed, for an election)
-- @column actor             the controller elected, or the producer of the event
-- @column worker_id         the evicted worker, the worker re-dispatched to, or the losing outcome's worker ('' when none)
-- @column lane              that worker's lane (-1 when unknown)
-- @column request_id        the request ('' for elections and evictions)
-- @column attempt           the re-dispatch's attempt, or the losing outcome's
-- @column reason            why: the event's reason, or the losing outcome's type
-- @column silence_ms        log time the evicted worker (or the replaced leader) had been silent, ms
-- @column phi               phi-accrual suspicion level at the deciding tick
-- @column phi_threshold     the level phi had to reach
-- @column min_silence_ms    the silence required whatever phi says, ms
-- @column mean_interval_ms  the worker's mean heartbeat interval the detector had learnt, ms
-- @column std_interval_ms   its standard deviation, ms
-- @column detail            explanation (positions, the deciding tick, the replaced leader, the previous worker)
SELECT
  at AS occurred_at,
  at_ms AS occurred_at_ms,
  kind AS action,
  era AS epoch,
  who AS actor,
  worker AS worker_id,
  worker_lane AS lane,
  rid AS request_id,
  try AS attempt,
  why AS reason,
  silence AS silence_ms,
  suspicion AS phi,
  suspicion_threshold AS phi_threshold,
  min_silence AS min_silence_ms,
  mean_interval AS mean_interval_ms,
  std_interval AS std_interval_ms,
  note AS detail
FROM
(
  SELECT
    occurred_at AS at, occurred_at_ms AS at_ms, 'election' AS kind, epoch AS era, ifNull(toString(controller_id), '') AS who,
    '' AS worker, toInt32(-1) AS worker_lane, '' AS rid, CAST(NULL AS Nullable(Int32)) AS try, ifNull(toString(reason), '') AS why,
    leader_silence_ms AS silence, CAST(NULL AS Nullable(Float64)) AS suspicion, CAST(NULL AS Nullable(Float64)) AS suspicion_threshold,
    CAST(NULL AS Nullable(Int64)) AS min_silence, CAST(NULL AS Nullable(Float64)) AS mean_interval, CAST(NULL AS Nullable(Float64)) AS std_interval,
    concat(if(isNull(previous_controller_id), 'first leader', concat('replaces ', assumeNotNull(previous_controller_id))), ', lease ', toString(ifNull(lease_ms, 0)), ' ms') AS note
  FROM control FINAL
  WHERE type = 'ControllerElected' AND occurred_at >= {since:DateTime} AND occurred_at < {until:DateTime}
  UNION ALL
  SELECT
    occurred_at AS at, occurred_at_ms AS at_ms, 'eviction' AS kind, epoch AS era, toString(producer) AS who,
    ifNull(toString(worker_id), '') AS worker, ifNull(lane, -1) AS worker_lane, '' AS rid, CAST(NULL AS Nullable(Int32)) AS try, ifNull(toString(reason), '') AS why,
    silence_ms AS silence, phi AS suspicion, phi_threshold AS suspicion_threshold,
    min_silence_ms AS min_silence, mean_interval_ms AS mean_interval, std_interval_ms AS std_interval,
    if(
      isNull(heartbeat_position_topic),
      ifNull(detail, ''),
      concat(
        'last heartbeat ', toString(assumeNotNull(heartbeat_position_topic)), '/', toString(assumeNotNull(heartbeat_position_partition)), ':', toString(assumeNotNull(heartbeat_position_offset)),
        ' (partition end ', if(isNull(heartbeat_end), '?', toString(assumeNotNull(heartbeat_end))), ')',
        if(isNull(tick_id), '', concat(', decided at tick ', toString(assumeNotNull(tick_id))))
      )
    ) AS note
  FROM control FINAL
  WHERE type = 'WorkerEvicted' AND occurred_at >= {since:DateTime} AND occurred_at < {until:DateTime}
  UNION ALL
  SELECT
    occurred_at AS at, occurred_at_ms AS at_ms, 'redispatch' AS kind, CAST(NULL AS Nullable(Int64)) AS era, toString(producer) AS who,
    ifNull(toString(worker_id), '') AS worker, ifNull(lane, -1) AS worker_lane, ifNull(request_id, '') AS rid, toNullable(attempt) AS try, toString(reason) AS why,
    CAST(NULL AS Nullable(Int64)) AS silence, CAST(NULL AS Nullable(Float64)) AS suspicion, CAST(NULL AS Nullable(Float64)) AS suspicion_threshold,
    CAST(NULL AS Nullable(Int64)) AS min_silence, CAST(NULL AS Nullable(Float64)) AS mean_interval, CAST(NULL AS Nullable(Float64)) AS std_interval,
    concat('previous worker ', ifNull(previous_worker_id, '?')) AS note
  FROM decisions FINAL
  WHERE type = 'RequestRouted' AND attempt > 1 AND occurred_at >= {since:DateTime} AND occurred_at < {until:DateTime}
  UNION ALL
  SELECT
    occurred_at AS at, occurred_at_ms AS at_ms, 'superseded' AS kind, CAST(NULL AS Nullable(Int64)) AS era, toString(producer) AS who,
    ifNull(toString(superseded_worker_id), '') AS worker, toInt32(-1) AS worker_lane, ifNull(request_id, '') AS rid, superseded_attempt AS try, ifNull(toString(superseded_type), '') AS why,
    CAST(NULL AS Nullable(Int64)) AS silence, CAST(NULL AS Nullable(Float64)) AS suspicion, CAST(NULL AS Nullable(Float64)) AS suspicion_threshold,
    CAST(NULL AS Nullable(Int64)) AS min_silence, CAST(NULL AS Nullable(Float64)) AS mean_interval, CAST(NULL AS Nullable(Float64)) AS std_interval,
    concat(
      ifNull(toString(superseded_type), '?'), ' at ', ifNull(toString(superseded_position_topic), '?'), '/', toString(ifNull(superseded_position_partition, -1)), ':', toString(ifNull(superseded_position_offset, -1)),
      ' lost to ', ifNull(toString(winner_type), '?'), ' at ', ifNull(toString(winner_position_topic), '?'), '/', toString(ifNull(winner_position_partition, -1)), ':', toString(ifNull(winner_position_offset, -1))
    ) AS note
  FROM results FINAL
  WHERE type = 'ResultSuperseded' AND occurred_at >= {since:DateTime} AND occurred_at < {until:DateTime}
)
WHERE {action:String} = '' OR kind = {action:String}
ORDER BY occurred_at_ms, action, request_id, worker_id
LIMIT {limit:UInt32}
