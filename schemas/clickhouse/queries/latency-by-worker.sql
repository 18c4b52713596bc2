-- Latency percentiles of completed requests per worker, over time.
--
-- Latency is routing → completion as the worker measured it (queue_ms + compute_ms).
-- Exact percentiles over completed results deduplicated by event_id (FINAL).
--
-- Each request counts one outcome: an outcome named by a ResultSuperseded (a later terminal
-- outcome of a request that already had one) is left out.
--
-- @param since DateTime = -24h       start of the window (inclusive)
-- @param until DateTime = now        end of the window (exclusive)
-- @param model String = ''           only this model ('' = every model)
-- @param worker String = ''          only this worker ('' = every worker)
-- @param bucket_minutes UInt32 = 60  width of a time bucket, minutes
-- @column bucket     start of the time bucket (UTC)
-- @column worker_id  worker
-- @column completed  completed requests
-- @column p50_ms     median latency, ms
-- @column p95_ms     95th percentile latency, ms
-- @column p99_ms     99th percentile latency, ms
SELECT
  toDateTime(intDiv(occurred_at_ms, 60000 * {bucket_minutes:UInt32}) * 60 * {bucket_minutes:UInt32}, 'UTC') AS bucket,
  worker_id,
  count() AS completed,
  quantileExact(0.5)(latency_ms) AS p50_ms,
  quantileExact(0.95)(latency_ms) AS p95_ms,
  quantileExact(0.99)(latency_ms) AS p99_ms
FROM results FINAL
WHERE type = 'InferenceCompleted'
  AND event_id NOT IN (SELECT superseded_event_id FROM results FINAL WHERE type = 'ResultSuperseded')
  AND occurred_at >= {since:DateTime} AND occurred_at < {until:DateTime}
  AND ({model:String} = '' OR model = {model:String})
  AND ({worker:String} = '' OR worker_id = {worker:String})
GROUP BY bucket, worker_id
ORDER BY bucket, worker_id
