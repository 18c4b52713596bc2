-- Requests, completions, failures and rejections per model over time, with the error rate.
--
-- Each event is counted once (base tables deduplicated by event_id with FINAL), in the
-- bucket of its own occurred_at: a request received at 10:59 and completed at 11:00 counts
-- as received in the 10:00 bucket and completed in the 11:00 one. Each request counts one
-- outcome: a completion, failure or rejection named by a ResultSuperseded (a later terminal
-- outcome of a request that already had one) is left out.
--
-- @param since DateTime = -24h       start of the window (inclusive)
-- @param until DateTime = now        end of the window (exclusive)
-- @param model String = ''           only this model ('' = every model)
-- @param bucket_minutes UInt32 = 60  width of a time bucket, minutes
-- @column bucket               start of the time bucket (UTC)
-- @column model                model name
-- @column requests             InferenceRequested events
-- @column requests_per_second  requests / bucket width
-- @column completed            InferenceCompleted events (client-visible)
-- @column failed               InferenceFailed events (client-visible)
-- @column rejected             RequestRejected decisions (client-visible)
-- @column error_rate           failed / (completed + failed), 0 when both are 0
SELECT
  bucket,
  model_name AS model,
  sum(n_requests) AS requests,
  round(sum(n_requests) / (60 * {bucket_minutes:UInt32}), 3) AS requests_per_second,
  sum(n_completed) AS completed,
  sum(n_failed) AS failed,
  sum(n_rejected) AS rejected,
  round(if(sum(n_completed) + sum(n_failed) = 0, 0, sum(n_failed) / (sum(n_completed) + sum(n_failed))), 4) AS error_rate
FROM
(
  SELECT
    toDateTime(intDiv(occurred_at_ms, 60000 * {bucket_minutes:UInt32}) * 60 * {bucket_minutes:UInt32}, 'UTC') AS bucket,
    toString(model) AS model_name,
    count() AS n_requests, toUInt64(0) AS n_completed, toUInt64(0) AS n_failed, toUInt64(0) AS n_rejected
  FROM requests FINAL
  WHERE occurred_at >= {since:DateTime} AND occurred_at < {until:DateTime}
    AND ({model:String} = '' OR model = {model:String})
  GROUP BY bucket, model_name
  UNION ALL
  SELECT
    toDateTime(intDiv(occurred_at_ms, 60000 * {bucket_minutes:UInt32}) * 60 * {bucket_minutes:UInt32}, 'UTC') AS bucket,
    toString(model) AS model_name,
    toUInt64(0) AS n_requests, countIf(type = 'InferenceCompleted') AS n_completed, countIf(type = 'InferenceFailed') AS n_failed, toUInt64(0) AS n_rejected
  FROM results FINAL
  WHERE type IN ('InferenceCompleted', 'InferenceFailed')
    AND occurred_at >= {since:DateTime} AND occurred_at < {until:DateTime}
    AND ({model:String} = '' OR model = {model:String})
    AND event_id NOT IN (SELECT superseded_event_id FROM results FINAL WHERE type = 'ResultSuperseded')
  GROUP BY bucket, model_name
  UNION ALL
  SELECT
    toDateTime(intDiv(occurred_at_ms, 60000 * {bucket_minutes:UInt32}) * 60 * {bucket_minutes:UInt32}, 'UTC') AS bucket,
    toString(model) AS model_name,
    toUInt64(0) AS n_requests, toUInt64(0) AS n_completed, toUInt64(0) AS n_failed, count() AS n_rejected
  FROM decisions FINAL
  WHERE type = 'RequestRejected'
    AND occurred_at >= {since:DateTime} AND occurred_at < {until:DateTime}
    AND ({model:String} = '' OR model = {model:String})
    AND event_id NOT IN (SELECT superseded_event_id FROM results FINAL WHERE type = 'ResultSuperseded')
  GROUP BY bucket, model_name
)
GROUP BY bucket, model
ORDER BY bucket, model
