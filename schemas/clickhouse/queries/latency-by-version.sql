-- Latency percentiles of completed requests per model version, over time.
--
-- Latency is routing → completion as the worker measured it (queue_ms + compute_ms).
-- Exact percentiles (quantileExact: the value at rank floor(p * n) of the sorted latencies)
-- over completed results deduplicated by event_id (FINAL).
--
-- Each request counts one outcome: an outcome named by a ResultSuperseded (a later terminal
-- outcome of a request that already had one) is left out.
--
-- @param since DateTime = -24h       start of the window (inclusive)
-- @param until DateTime = now        end of the window (exclusive)
-- @param model String = ''           only this model ('' = every model)
-- @param bucket_minutes UInt32 = 60  width of a time bucket, minutes
-- @column bucket         start of the time bucket (UTC)
-- @column model          model name
-- @column model_version  model version that served the requests
-- @column completed      completed requests
-- @column p50_ms         median latency, ms
-- @column p95_ms         95th percentile latency, ms
-- @column p99_ms         99th percentile latency, ms
SELECT
  toDateTime(intDiv(occurred_at_ms, 60000 * {bucket_minutes:UInt32}) * 60 * {bucket_minutes:UInt32}, 'UTC') AS bucket,
  model,
  model_version,
  count() AS completed,
  quantileExact(0.5)(latency_ms) AS p50_ms,
  quantileExact(0.95)(latency_ms) AS p95_ms,
  quantileExact(0.99)(latency_ms) AS p99_ms
FROM results FINAL
WHERE type = 'InferenceCompleted'
  AND event_id NOT IN (SELECT superseded_event_id FROM results FINAL WHERE type = 'ResultSuperseded')
  AND occurred_at >= {since:DateTime} AND occurred_at < {until:DateTime}
  AND ({model:String} = '' OR model = {model:String})
GROUP BY bucket, model, model_version
ORDER BY bucket, model, model_version
