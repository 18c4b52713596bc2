-- Rejected and shed requests by priority class.
--
-- requests counts InferenceRequested events of the class; rejected counts RequestRejected
-- decisions (every reason), shed those with reason SHED (overload: the router sheds the
-- lowest class first). Base tables deduplicated by event_id (FINAL). A rejection named by a
-- ResultSuperseded (the request already had an outcome) is not counted: no client saw it.
--
-- @param since DateTime = -24h  start of the window (inclusive)
-- @param until DateTime = now   end of the window (exclusive)
-- @param model String = ''      only this model ('' = every model)
-- @column priority        priority class, highest first
-- @column requests        requests received
-- @column rejected        requests rejected (any reason)
-- @column shed            of which shed under overload
-- @column rejected_ratio  rejected / requests (0 when no requests)
-- @column shed_ratio      shed / requests (0 when no requests)
SELECT
  priority,
  sum(n_requests) AS requests,
  sum(n_rejected) AS rejected,
  sum(n_shed) AS shed,
  round(if(sum(n_requests) = 0, 0, sum(n_rejected) / sum(n_requests)), 4) AS rejected_ratio,
  round(if(sum(n_requests) = 0, 0, sum(n_shed) / sum(n_requests)), 4) AS shed_ratio
FROM
(
  SELECT priority, count() AS n_requests, toUInt64(0) AS n_rejected, toUInt64(0) AS n_shed
  FROM requests FINAL
  WHERE occurred_at >= {since:DateTime} AND occurred_at < {until:DateTime}
    AND ({model:String} = '' OR model = {model:String})
  GROUP BY priority
  UNION ALL
  SELECT priority, toUInt64(0) AS n_requests, count() AS n_rejected, countIf(reason = 'SHED') AS n_shed
  FROM decisions FINAL
  WHERE type = 'RequestRejected'
    AND occurred_at >= {since:DateTime} AND occurred_at < {until:DateTime}
    AND ({model:String} = '' OR model = {model:String})
    AND event_id NOT IN (SELECT superseded_event_id FROM results FINAL WHERE type = 'ResultSuperseded')
  GROUP BY priority
)
GROUP BY priority
ORDER BY priority
