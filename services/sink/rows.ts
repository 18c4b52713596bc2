/**
 * The sink's pure core: which table an event goes to and the row it becomes there. The
 * tables are defined by `schemas/clickhouse/migrations/002_event_tables.ts` and changed by
 * `005_controller.ts`; column names are the events' field names in snake_case (a record
 * field flattened as `<field>_<subfield>`, e.g. `heartbeat_position_offset`). No I/O, no clock.
 */
import type { ArchivedEnvelope } from '../../lib/analytics/archive.js';
import { SwitchyardError } from '../../lib/errors.js';
import type {
  Accelerator,
  ClockEntry,
  DeadLettered,
  EventEnvelope,
  LogPosition as EventPosition,
  SwitchyardEvent,
} from '../../schemas/generated/events.js';

/** The base tables, one per event family. */
export type SinkTable = 'requests' | 'decisions' | 'results' | 'heartbeats' | 'ticks' | 'control' | 'sessions' | 'deadletters';

export const SINK_TABLES: readonly SinkTable[] = ['requests', 'decisions', 'results', 'heartbeats', 'ticks', 'control', 'sessions', 'deadletters'];

/** A row as the `AnalyticsStore` inserts it: column name → value (Dates for instants). */
export type Row = Record<string, unknown>;

export interface TableRow {
  table: SinkTable;
  row: Row;
}

/** Where the sink read the event. */
export interface LogPosition {
  topic: string;
  partition: number;
  offset: number;
}

/** The envelope fields the log archive keeps of an event (`lib/analytics/archive.ts`). */
export function archivedEnvelope(event: SwitchyardEvent): ArchivedEnvelope {
  return {
    type: event.type,
    eventId: event.eventId,
    requestId: event.requestId ?? null,
    sessionId: 'sessionId' in event ? (event.sessionId ?? null) : null,
    occurredAt: event.occurredAt,
  };
}

/**
 * The latest instant every supported server stores: `DateTime` ends at 2106-02-07T06:28:15Z
 * (unsigned 32-bit seconds). Earlier than 1970 is not storable either.
 */
export const MAX_INSTANT_MS = 4_294_967_295_000;

/**
 * The table and row of one event. Throws `SY_ERR_ANALYTICS` (not retriable) for an event no
 * table can hold as it is — an instant before 1970 or after 2106 — which the sink then
 * dead-letters with its original bytes; it never changes a value to make it fit.
 */
export function rowFor(event: SwitchyardEvent, at: LogPosition): TableRow {
  // Rows are built by assignment onto the envelope's object: object spread of a
  // many-property object costs tens of microseconds per event in V8 (measured), which at
  // the sink's rates was most of its time.
  const row = envelope(event, at);
  switch (event.type) {
    case 'InferenceRequested':
      row.model = event.model;
      row.model_version = event.modelVersion;
      row.session_id = event.sessionId;
      row.priority = event.priority;
      row.deadline_at = instantOrNull(event, 'deadlineAt', event.deadlineAt);
      row.zone = event.zone;
      row.tenant = event.tenant;
      row.source = event.source;
      row.idempotency_key = event.idempotencyKey;
      row.reply_topic = event.replyTopic;
      row.allow_fallback = event.allowFallback;
      row.cacheable = event.cacheable;
      row.content_type = event.contentType;
      row.input_bytes = event.input.length;
      row.input_base64 = event.input.toString('base64');
      pairs(row, 'parameters', 'key', 'value', event.parameters);
      pairs(row, 'attributes', 'key', 'value', event.attributes);
      row.max_attempts = event.maxAttempts;
      return { table: 'requests', row };
    case 'RequestRouted':
      row.model = event.model;
      row.requested_model = event.requestedModel;
      row.model_version = event.modelVersion;
      row.model_digest = event.modelDigest;
      row.worker_id = event.workerId;
      row.lane = event.lane;
      row.zone = event.zone;
      row.reason = event.reason;
      row.detail = null;
      row.retry_after_ms = null;
      row.degraded = event.degraded;
      row.fallback = event.fallback;
      row.session_id = event.sessionId;
      row.priority = event.priority;
      row.deadline_at = instantOrNull(event, 'deadlineAt', event.deadlineAt);
      row.policy_version = event.policyVersion;
      row.attempt = event.attempt;
      row.previous_worker_id = event.previousWorkerId;
      candidates(row, event.candidates);
      pendingDecisions(row, event.pendingDecisions);
      return { table: 'decisions', row };
    case 'RequestRejected':
      row.model = event.model;
      row.requested_model = null;
      row.model_version = null;
      row.model_digest = null;
      row.worker_id = null;
      row.lane = null;
      row.zone = null;
      row.reason = event.reason;
      row.detail = event.detail;
      row.retry_after_ms = event.retryAfterMs;
      row.degraded = false;
      row.fallback = false;
      row.session_id = event.sessionId;
      row.priority = event.priority;
      row.deadline_at = null;
      row.policy_version = event.policyVersion;
      row.attempt = event.attempt;
      row.previous_worker_id = null;
      candidates(row, event.candidates);
      pendingDecisions(row, event.pendingDecisions);
      return { table: 'decisions', row };
    case 'InferenceStarted':
      resultCommon(row, event);
      row.model_version = event.modelVersion;
      row.model_digest = event.modelDigest;
      row.batch_id = event.batchId;
      row.compute_ms = 0;
      row.latency_ms = event.queueMs;
      row.cache_hit = false;
      row.content_type = null;
      row.output_bytes = null;
      row.output_base64 = null;
      row.output_sha256 = null;
      row.input_tokens = null;
      row.output_tokens = null;
      row['metrics.name'] = [];
      row['metrics.value'] = [];
      row.error_code = null;
      row.error_message = null;
      row.retriable = null;
      supersededColumns(row, null);
      return { table: 'results', row };
    case 'InferenceCompleted':
      resultCommon(row, event);
      row.model_version = event.modelVersion;
      row.model_digest = event.modelDigest;
      row.batch_id = null;
      row.compute_ms = event.computeMs;
      row.latency_ms = event.queueMs + event.computeMs;
      row.cache_hit = event.cacheHit;
      row.content_type = event.contentType;
      row.output_bytes = event.output.length;
      row.output_base64 = event.output.toString('base64');
      row.output_sha256 = event.outputSha256;
      row.input_tokens = event.inputTokens;
      row.output_tokens = event.outputTokens;
      pairs(row, 'metrics', 'name', 'value', event.metrics);
      row.error_code = null;
      row.error_message = null;
      row.retriable = null;
      supersededColumns(row, null);
      return { table: 'results', row };
    case 'InferenceFailed':
      resultCommon(row, event);
      row.model_version = event.modelVersion;
      row.model_digest = event.modelDigest;
      row.batch_id = null;
      row.compute_ms = event.computeMs;
      row.latency_ms = event.queueMs + event.computeMs;
      row.cache_hit = false;
      row.content_type = null;
      row.output_bytes = null;
      row.output_base64 = null;
      row.output_sha256 = null;
      row.input_tokens = null;
      row.output_tokens = null;
      row['metrics.name'] = [];
      row['metrics.value'] = [];
      row.error_code = event.errorCode;
      row.error_message = event.errorMessage;
      row.retriable = event.retriable;
      supersededColumns(row, null);
      return { table: 'results', row };
    case 'ResultSuperseded':
      // No outcome of its own: the outcome columns say so ('' and -1, see 005_controller.ts).
      row.worker_id = '';
      row.lane = -1;
      row.model = '';
      row.model_version = null;
      row.model_digest = null;
      row.attempt = 0;
      row.batch_size = 0;
      row.batch_id = null;
      row.queue_ms = 0;
      row.compute_ms = 0;
      row.latency_ms = 0;
      row.cache_hit = false;
      row.content_type = null;
      row.output_bytes = null;
      row.output_base64 = null;
      row.output_sha256 = null;
      row.input_tokens = null;
      row.output_tokens = null;
      row['metrics.name'] = [];
      row['metrics.value'] = [];
      row.error_code = null;
      row.error_message = null;
      row.retriable = null;
      supersededColumns(row, event);
      return { table: 'results', row };
    case 'WorkerHeartbeat':
      row.worker_id = event.workerId;
      row.lane = event.lane;
      row.zone = event.zone;
      row.seq = event.seq;
      row.started_at = instantOrNull(event, 'startedAt', event.startedAt);
      row.load = event.load;
      row.queue_depth = event.queueDepth;
      row.in_flight = event.inFlight;
      row.capacity = event.capacity;
      row.cache_hit_ratio = event.cacheHitRatio;
      row.loaded_models = event.loadedModels;
      accelerator(row, event.accelerator);
      row.draining = event.draining;
      row.queue_delay_ms = event.queueDelayMs;
      row.cache_hit_buckets = event.cacheHitBuckets;
      row.bucket_ms = event.bucketMs;
      row.completed = event.completed;
      return { table: 'heartbeats', row };
    case 'ControllerTick':
      row.controller_id = event.controllerId;
      row.epoch = event.epoch;
      row.seq = event.seq;
      row.interval_ms = event.intervalMs;
      row.started_at = instant(event, 'startedAt', event.startedAt);
      row.policy = event.policy;
      return { table: 'ticks', row };
    case 'ControllerElected':
      controlDefaults(row);
      row.reason = event.reason;
      row.epoch = event.epoch;
      row.controller_id = event.controllerId;
      row.previous_controller_id = event.previousControllerId;
      row.lease_ms = event.leaseMs;
      row.leader_silence_ms = event.leaderSilenceMs;
      return { table: 'control', row };
    case 'WorkerJoined':
      controlDefaults(row);
      row.worker_id = event.workerId;
      row.lane = event.lane;
      row.zone = event.zone;
      row.capacity = event.capacity;
      row.models = event.models;
      row.backend = event.backend;
      row.max_batch_size = event.maxBatchSize;
      row.max_batch_delay_ms = event.maxBatchDelayMs;
      row.started_at = instantOrNull(event, 'startedAt', event.startedAt);
      accelerator(row, event.accelerator);
      return { table: 'control', row };
    case 'WorkerDraining':
      controlDefaults(row);
      row.worker_id = event.workerId;
      row.lane = event.lane;
      row.reason = event.reason;
      row.drain_deadline_at = instantOrNull(event, 'drainDeadlineAt', event.drainDeadlineAt);
      return { table: 'control', row };
    case 'WorkerEvicted':
      controlDefaults(row);
      row.worker_id = event.workerId;
      row.lane = event.lane;
      row.reason = event.reason;
      row.detail = event.detail;
      row.last_heartbeat_at = instantOrNull(event, 'lastHeartbeatAt', event.lastHeartbeatAt);
      row.last_heartbeat_seq = event.lastHeartbeatSeq;
      row.epoch = event.epoch;
      row.started_at = instantOrNull(event, 'startedAt', event.startedAt);
      position(row, 'heartbeat_position', event.heartbeatPosition);
      row.heartbeat_end = event.heartbeatEnd;
      row.silence_ms = event.silenceMs;
      row.phi = event.phi;
      row.phi_threshold = event.phiThreshold;
      row.min_silence_ms = event.minSilenceMs;
      row.mean_interval_ms = event.meanIntervalMs;
      row.std_interval_ms = event.stdIntervalMs;
      row.tick_id = event.tickId;
      return { table: 'control', row };
    case 'ModelVersionRegistered':
      controlDefaults(row);
      row.model = event.model;
      row.model_version = event.version;
      row.model_digest = event.digest;
      row.size_bytes = event.sizeBytes;
      row.model_kind = event.kind;
      row.fallback_model = event.fallbackModel;
      row.registered_by = event.registeredBy;
      pairs(row, 'metadata', 'key', 'value', event.metadata);
      return { table: 'control', row };
    case 'RolloutChanged':
      controlDefaults(row);
      row.model = event.model;
      row.reason = event.reason;
      row.detail = event.detail;
      row.stable_version = event.stableVersion;
      row.canary_version = event.canaryVersion;
      row.canary = event.canary;
      row['weights.version'] = event.weights.map((w) => w.version);
      row['weights.weight'] = event.weights.map((w) => w.weight);
      row.budget_max_p99_latency_ms = event.budget?.maxP99LatencyMs ?? null;
      row.budget_max_error_rate = event.budget?.maxErrorRate ?? null;
      row.budget_min_requests = event.budget?.minRequests ?? null;
      row.budget_window_ms = event.budget?.windowMs ?? null;
      row.epoch = event.epoch;
      return { table: 'control', row };
    case 'ScaleDecided':
      controlDefaults(row);
      row.model = event.model;
      row.zone = event.zone;
      row.reason = event.reason;
      row.pool = event.pool;
      row.workers_from = event.from;
      row.workers_to = event.to;
      row.cooldown_until = instantOrNull(event, 'cooldownUntil', event.cooldownUntil);
      pairs(row, 'signals', 'name', 'value', event.signals);
      row.epoch = event.epoch;
      return { table: 'control', row };
    case 'SessionState':
      row.session_id = event.sessionId;
      row.worker_id = event.workerId;
      row.lane = event.lane;
      row.model = event.model;
      row.model_version = event.modelVersion;
      row.last_request_id = event.lastRequestId;
      row.updated_at = instant(event, 'updatedAt', event.updatedAt);
      row.request_count = event.requestCount;
      row.context_base64 = event.context.toString('base64');
      row.context_bytes = event.contextBytes;
      row.reason = event.reason;
      row.migrated_from = event.migratedFrom;
      row.model_digest = event.modelDigest;
      row.epoch = event.epoch;
      return { table: 'sessions', row };
    case 'DeadLettered':
      deadLetterColumns(event, row);
      return { table: 'deadletters', row };
    default: {
      const unknown: never = event;
      throw new SwitchyardError('SY_ERR_ANALYTICS', `no table for event type ${JSON.stringify((unknown as { type?: unknown }).type)}`);
    }
  }
}

function envelope(event: SwitchyardEvent, at: LogPosition): Row {
  const c = clock(event.clock);
  return {
    event_id: event.eventId,
    type: event.type,
    occurred_at: instant(event, 'occurredAt', event.occurredAt),
    occurred_at_ms: event.occurredAt,
    request_id: event.requestId,
    trace_id: event.traceId,
    producer: event.producer,
    causation_id: event.causationId,
    'clock.topic': c.topics,
    'clock.partition': c.partitions,
    'clock.offset': c.offsets,
    log_topic: at.topic,
    log_partition: at.partition,
    log_offset: at.offset,
  };
}

function clock(entries: readonly ClockEntry[]): { topics: string[]; partitions: number[]; offsets: number[] } {
  const topics: string[] = [];
  const partitions: number[] = [];
  const offsets: number[] = [];
  for (const c of entries) {
    topics.push(c.topic);
    partitions.push(c.partition);
    offsets.push(c.offset);
  }
  return { topics, partitions, offsets };
}

function resultCommon(row: Row, event: Extract<SwitchyardEvent, { type: 'InferenceStarted' | 'InferenceCompleted' | 'InferenceFailed' }>): void {
  row.worker_id = event.workerId;
  row.lane = event.lane;
  row.model = event.model;
  row.attempt = event.attempt;
  row.batch_size = event.batchSize;
  row.queue_ms = event.queueMs;
}

function candidates(row: Row, list: Extract<SwitchyardEvent, { type: 'RequestRouted' }>['candidates']): void {
  row['candidates.worker_id'] = list.map((c) => c.workerId);
  row['candidates.lane'] = list.map((c) => c.lane);
  row['candidates.zone'] = list.map((c) => c.zone);
  row['candidates.model_version'] = list.map((c) => c.modelVersion);
  row['candidates.score'] = list.map((c) => c.score);
  row['candidates.load'] = list.map((c) => c.load);
  row['candidates.in_flight'] = list.map((c) => c.inFlight);
  row['candidates.excluded'] = list.map((c) => c.excluded);
}

function pendingDecisions(row: Row, list: Extract<SwitchyardEvent, { type: 'RequestRouted' }>['pendingDecisions']): void {
  row['pending_decisions.worker_id'] = list.map((p) => p.workerId);
  row['pending_decisions.lane'] = list.map((p) => p.lane);
  row['pending_decisions.count'] = list.map((p) => p.count);
}

/** A LogPosition as three columns `<prefix>_topic`, `_partition`, `_offset` (null when absent). */
function position(row: Row, prefix: string, p: EventPosition | null): void {
  row[`${prefix}_topic`] = p?.topic ?? null;
  row[`${prefix}_partition`] = p?.partition ?? null;
  row[`${prefix}_offset`] = p?.offset ?? null;
}

/** The ResultSuperseded columns of `results`: the event's, or null for an outcome. */
function supersededColumns(row: Row, e: Extract<SwitchyardEvent, { type: 'ResultSuperseded' }> | null): void {
  row.superseded_event_id = e?.supersededEventId ?? null;
  row.superseded_type = e?.supersededType ?? null;
  position(row, 'superseded_position', e?.supersededPosition ?? null);
  row.superseded_worker_id = e?.supersededWorkerId ?? null;
  row.superseded_attempt = e?.supersededAttempt ?? null;
  row.winner_event_id = e?.winnerEventId ?? null;
  row.winner_type = e?.winnerType ?? null;
  position(row, 'winner_position', e?.winnerPosition ?? null);
}

function accelerator(row: Row, a: Accelerator | null): void {
  row.accelerator_kind = a?.kind ?? null;
  row.accelerator_name = a?.name ?? null;
  row.accelerator_count = a?.count ?? null;
  row.accelerator_memory_total_bytes = a?.memoryTotalBytes ?? null;
  row.accelerator_memory_used_bytes = a?.memoryUsedBytes ?? null;
  row.accelerator_utilization = a?.utilization ?? null;
  row.accelerator_driver_version = a?.driverVersion ?? null;
}

/** A map as the two parallel arrays of a `Nested(k, v)` column, in key order (deterministic). */
function pairs<V>(row: Row, column: string, keyName: string, valueName: string, map: Record<string, V>): void {
  const keys = Object.keys(map).sort();
  row[`${column}.${keyName}`] = keys;
  row[`${column}.${valueName}`] = keys.map((k) => map[k]);
}

/** Every column of `control`, null or empty unless the event sets it (set in one order, so rows share a shape). */
function controlDefaults(row: Row): void {
  row.worker_id = null;
  row.lane = null;
  row.zone = null;
  row.model = null;
  row.model_version = null;
  row.reason = null;
  row.detail = null;
  row.capacity = null;
  row.models = [];
  row.backend = null;
  row.max_batch_size = null;
  row.max_batch_delay_ms = null;
  row.started_at = null;
  accelerator(row, null);
  row.drain_deadline_at = null;
  row.last_heartbeat_at = null;
  row.last_heartbeat_seq = null;
  row.model_digest = null;
  row.size_bytes = null;
  row.model_kind = null;
  row.fallback_model = null;
  row.registered_by = null;
  row['metadata.key'] = [];
  row['metadata.value'] = [];
  row.stable_version = null;
  row.canary_version = null;
  row.canary = null;
  row['weights.version'] = [];
  row['weights.weight'] = [];
  row.budget_max_p99_latency_ms = null;
  row.budget_max_error_rate = null;
  row.budget_min_requests = null;
  row.budget_window_ms = null;
  row.pool = null;
  row.workers_from = null;
  row.workers_to = null;
  row.cooldown_until = null;
  row['signals.name'] = [];
  row['signals.value'] = [];
  row.epoch = null;
  row.controller_id = null;
  row.previous_controller_id = null;
  row.lease_ms = null;
  row.leader_silence_ms = null;
  position(row, 'heartbeat_position', null);
  row.heartbeat_end = null;
  row.silence_ms = null;
  row.phi = null;
  row.phi_threshold = null;
  row.min_silence_ms = null;
  row.mean_interval_ms = null;
  row.std_interval_ms = null;
  row.tick_id = null;
}

/**
 * Sets the columns of `deadletters` for a DeadLettered event (its bytes as base64) on `row`,
 * a new object when none is given. A dead letter must never be refused (it would have
 * nowhere to go), so an original timestamp outside the storable range is stored as null.
 */
export function deadLetterColumns(event: Omit<DeadLettered, keyof EventEnvelope | 'type'>, row: Row = {}): Row {
  const headers = Object.keys(event.originalHeaders).sort();
  row.original_topic = event.originalTopic;
  row.original_partition = event.originalPartition;
  row.original_offset = event.originalOffset;
  row.original_key_base64 = event.originalKey === null ? null : Buffer.from(event.originalKey).toString('base64');
  row.original_value_base64 = event.originalValue === null ? null : Buffer.from(event.originalValue).toString('base64');
  row['original_headers.key'] = headers;
  row['original_headers.value_base64'] = headers.map((k) => Buffer.from(event.originalHeaders[k]!).toString('base64'));
  row.original_timestamp = event.originalTimestamp === null || !storable(event.originalTimestamp) ? null : new Date(event.originalTimestamp);
  row.error_code = event.errorCode;
  row.error_message = event.errorMessage;
  row.consumer_group = event.consumerGroup;
  row.attempts = event.attempts;
  return row;
}

const storable = (ms: number): boolean => Number.isFinite(ms) && ms >= 0 && ms <= MAX_INSTANT_MS;

function instant(event: SwitchyardEvent, field: string, ms: number): Date {
  if (!storable(ms)) {
    throw new SwitchyardError('SY_ERR_ANALYTICS', `${event.type} ${event.eventId}: ${field} ${ms} is outside the instants ClickHouse stores (1970 to 2106)`, {
      detail: { eventId: event.eventId, type: event.type, field, value: ms },
    });
  }
  return new Date(ms);
}

const instantOrNull = (event: SwitchyardEvent, field: string, ms: number | null): Date | null => (ms === null ? null : instant(event, field, ms));
