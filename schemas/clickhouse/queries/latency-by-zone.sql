-- Latency percentiles of completed requests per zone, over time.
--
-- A request's zone is the zone of the worker its routing decision chose (the RequestRouted
-- of the same request and attempt); '' when that decision is not in ClickHouse or named no
-- zone. Latency is routing → completion as the worker measured it. Exact percentiles over
-- results and decisions deduplicated by event_id (FINAL).
--
-- Each request counts one outcome: an outcome named by a ResultSuperseded (a later terminal
-- outcome of a request that already had one) is left out.
--
-- @param since DateTime = -24h       start of the window (inclusive)
-- @param until DateTime = now        end of the window (exclusive)
-- @param model String = ''           only this model ('' = every model)
-- @param bucket_minutes UInt32 = 60  width of a time bucket, minutes
-- @column bucket     start of the time bucket (UTC)
-- @column zone       zone of the serving worker
-- @column completed  completed requests
-- @column p50_ms     median latency, ms
-- @column p95_ms     95th percentile latency, ms
-- @column p99_ms     99th percentile latency, ms
SELECT
  bucket,
  routed_zone AS zone,
  count() AS completed,
  quantileExact(0.5)(latency) AS p50_ms,
  quantileExact(0.95)(latency) AS p95_ms,
  quantileExact(0.99)(latency) AS p99_ms
FROM
(
  SELECT
    toDateTime(intDiv(occurred_at_ms, 60000 * {bucket_minutes:UInt32}) * 60 * {bucket_minutes:UInt32}, 'UTC') AS bucket,
    ifNull(request_id, '') AS rid,
    attempt AS try,
    latency_ms AS latency
  FROM results FINAL
  WHERE type = 'InferenceCompleted'
    AND occurred_at >= {since:DateTime} AND occurred_at < {until:DateTime}
    AND ({model:String} = '' OR model = {model:String})
    AND event_id NOT IN (SELECT superseded_event_id FROM results FINAL WHERE type = 'ResultSuperseded')
) AS completions
ANY LEFT JOIN
(
  SELECT ifNull(request_id, '') AS rid, attempt AS try, ifNull(toString(zone), '') AS routed_zone
  FROM decisions FINAL
  WHERE type = 'RequestRouted'
    AND request_id IN
    (
      SELECT request_id FROM results FINAL
      WHERE type = 'InferenceCompleted' AND occurred_at >= {since:DateTime} AND occurred_at < {until:DateTime}
    )
) AS routings USING (rid, try)
GROUP BY bucket, zone
ORDER BY bucket, zone
