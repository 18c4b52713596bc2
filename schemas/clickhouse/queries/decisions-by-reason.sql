-- Routing decisions by outcome and reason: why requests went where they went, or nowhere.
--
-- Over decisions deduplicated by event_id (FINAL). outcome is `routed` (RequestRouted:
-- AFFINITY, LEAST_LOADED, CANARY, PINNED, ZONE_FAILOVER, FALLBACK_MODEL, REDISPATCH…) or
-- `rejected` (RequestRejected: SHED, NO_CAPACITY, DEADLINE_EXCEEDED, UNKNOWN_MODEL…).
-- Every decision a router made counts, a rejection named by a ResultSuperseded (the request
-- already had an outcome) included: this counts decisions, not the requests' outcomes (for
-- those see throughput-and-errors and rejected-and-shed).
--
-- @param since DateTime = -24h  start of the window (inclusive)
-- @param until DateTime = now   end of the window (exclusive)
-- @param model String = ''      only this model ('' = every model)
-- @column outcome    routed or rejected
-- @column reason     the decision's reason
-- @column decisions  decisions with this outcome and reason
-- @column degraded   of which made under degraded conditions (routed only)
-- @column share      decisions / all decisions in the window
SELECT
  if(type = 'RequestRouted', 'routed', 'rejected') AS outcome,
  reason,
  count() AS decisions,
  countIf(degraded = 1) AS degraded,
  round(count() / (
    SELECT count() FROM decisions FINAL
    WHERE occurred_at >= {since:DateTime} AND occurred_at < {until:DateTime}
      AND ({model:String} = '' OR model = {model:String})
  ), 4) AS share
FROM decisions FINAL
WHERE occurred_at >= {since:DateTime} AND occurred_at < {until:DateTime}
  AND ({model:String} = '' OR model = {model:String})
GROUP BY outcome, reason
ORDER BY decisions DESC, outcome, reason
