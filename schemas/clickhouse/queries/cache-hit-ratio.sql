-- Result-cache hit ratio per worker over time.
--
-- Over completed results deduplicated by event_id (FINAL): the share answered from the
-- worker's result cache. Client-visible completions only: one named by a ResultSuperseded
-- (it lost to an earlier outcome of its request) is left out.
--
-- @param since DateTime = -24h       start of the window (inclusive)
-- @param until DateTime = now        end of the window (exclusive)
-- @param model String = ''           only this model ('' = every model)
-- @param worker String = ''          only this worker ('' = every worker)
-- @param bucket_minutes UInt32 = 60  width of a time bucket, minutes
-- @column bucket           start of the time bucket (UTC)
-- @column worker_id        worker
-- @column completed        completed requests
-- @column cache_hits       of which answered from the cache
-- @column cache_hit_ratio  cache_hits / completed
SELECT
  toDateTime(intDiv(occurred_at_ms, 60000 * {bucket_minutes:UInt32}) * 60 * {bucket_minutes:UInt32}, 'UTC') AS bucket,
  worker_id,
  count() AS completed,
  countIf(cache_hit = 1) AS cache_hits,
  round(countIf(cache_hit = 1) / count(), 4) AS cache_hit_ratio
FROM results FINAL
WHERE type = 'InferenceCompleted'
  AND event_id NOT IN (SELECT superseded_event_id FROM results FINAL WHERE type = 'ResultSuperseded')
  AND occurred_at >= {since:DateTime} AND occurred_at < {until:DateTime}
  AND ({model:String} = '' OR model = {model:String})
  AND ({worker:String} = '' OR worker_id = {worker:String})
GROUP BY bucket, worker_id
ORDER BY bucket, worker_id
