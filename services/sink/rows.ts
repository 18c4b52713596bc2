/**
 * The sink's pure core: which table an event goes to and the row it becomes there. The
 * tables are defined by `schemas/clickhouse/migrations/002_event_tables.ts`; column names are
 * the events' field names in snake_case. No I/O, no clock.
 */
import { SwitchyardError } from '../../lib/errors.js';
import type {
  Accelerator,
  ClockEntry,
  DeadLettered,
  EventEnvelope,
  SwitchyardEvent,
} from '../../schemas/generated/events.js';

/** The base tables, one per event family. */
export type SinkTable = 'requests' | 'decisions' | 'results' | 'heartbeats' | 'control' | 'sessions' | 'deadletters';

export const SINK_TABLES: readonly SinkTable[] = ['requests', 'decisions', 'results', 'heartbeats', 'control', 'sessions', 'deadletters'];

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
  const e = envelope(event, at);
  switch (event.type) {
    case 'InferenceRequested':
      return {
        table: 'requests',
        row: {
          ...e,
          model: event.model,
          model_version: event.modelVersion,
          session_id: event.sessionId,
          priority: event.priority,
          deadline_at: instantOrNull(event, 'deadlineAt', event.deadlineAt),
          zone: event.zone,
          tenant: event.tenant,
          source: event.source,
          idempotency_key: event.idempotencyKey,
          reply_topic: event.replyTopic,
          allow_fallback: event.allowFallback,
          cacheable: event.cacheable,
          content_type: event.contentType,
          input_bytes: event.input.length,
          input_base64: event.input.toString('base64'),
          ...pairs('parameters', 'key', 'value', event.parameters),
          ...pairs('attributes', 'key', 'value', event.attributes),
        },
      };
    case 'RequestRouted':
      return {
        table: 'decisions',
        row: {
          ...e,
          model: event.model,
          requested_model: event.requestedModel,
          model_version: event.modelVersion,
          model_digest: event.modelDigest,
          worker_id: event.workerId,
          lane: event.lane,
          zone: event.zone,
          reason: event.reason,
          detail: null,
          retry_after_ms: null,
          degraded: event.degraded,
          fallback: event.fallback,
          session_id: event.sessionId,
          priority: event.priority,
          deadline_at: instantOrNull(event, 'deadlineAt', event.deadlineAt),
          policy_version: event.policyVersion,
          attempt: event.attempt,
          previous_worker_id: event.previousWorkerId,
          ...candidates(event.candidates),
          ...pendingDecisions(event.pendingDecisions),
        },
      };
    case 'RequestRejected':
      return {
        table: 'decisions',
        row: {
          ...e,
          model: event.model,
          requested_model: null,
          model_version: null,
          model_digest: null,
          worker_id: null,
          lane: null,
          zone: null,
          reason: event.reason,
          detail: event.detail,
          retry_after_ms: event.retryAfterMs,
          degraded: false,
          fallback: false,
          session_id: event.sessionId,
          priority: event.priority,
          deadline_at: null,
          policy_version: event.policyVersion,
          attempt: event.attempt,
          previous_worker_id: null,
          ...candidates(event.candidates),
          ...pendingDecisions(event.pendingDecisions),
        },
      };
    case 'InferenceStarted':
      return {
        table: 'results',
        row: {
          ...e,
          ...resultCommon(event),
          model_version: event.modelVersion,
          model_digest: event.modelDigest,
          batch_id: event.batchId,
          compute_ms: 0,
          latency_ms: event.queueMs,
          cache_hit: false,
          content_type: null,
          output_bytes: null,
          output_base64: null,
          output_sha256: null,
          input_tokens: null,
          output_tokens: null,
          'metrics.name': [],
          'metrics.value': [],
          error_code: null,
          error_message: null,
          retriable: null,
        },
      };
    case 'InferenceCompleted':
      return {
        table: 'results',
        row: {
          ...e,
          ...resultCommon(event),
          model_version: event.modelVersion,
          model_digest: event.modelDigest,
          batch_id: null,
          compute_ms: event.computeMs,
          latency_ms: event.queueMs + event.computeMs,
          cache_hit: event.cacheHit,
          content_type: event.contentType,
          output_bytes: event.output.length,
          output_base64: event.output.toString('base64'),
          output_sha256: event.outputSha256,
          input_tokens: event.inputTokens,
          output_tokens: event.outputTokens,
          ...pairs('metrics', 'name', 'value', event.metrics),
          error_code: null,
          error_message: null,
          retriable: null,
        },
      };
    case 'InferenceFailed':
      return {
        table: 'results',
        row: {
          ...e,
          ...resultCommon(event),
          model_version: event.modelVersion,
          model_digest: event.modelDigest,
          batch_id: null,
          compute_ms: event.computeMs,
          latency_ms: event.queueMs + event.computeMs,
          cache_hit: false,
          content_type: null,
          output_bytes: null,
          output_base64: null,
          output_sha256: null,
          input_tokens: null,
          output_tokens: null,
          'metrics.name': [],
          'metrics.value': [],
          error_code: event.errorCode,
          error_message: event.errorMessage,
          retriable: event.retriable,
        },
      };
    case 'WorkerHeartbeat':
      return {
        table: 'heartbeats',
        row: {
          ...e,
          worker_id: event.workerId,
          lane: event.lane,
          zone: event.zone,
          seq: event.seq,
          started_at: instantOrNull(event, 'startedAt', event.startedAt),
          load: event.load,
          queue_depth: event.queueDepth,
          in_flight: event.inFlight,
          capacity: event.capacity,
          cache_hit_ratio: event.cacheHitRatio,
          loaded_models: event.loadedModels,
          ...accelerator(event.accelerator),
          draining: event.draining,
        },
      };
    case 'WorkerJoined':
      return control(e, {
        worker_id: event.workerId,
        lane: event.lane,
        zone: event.zone,
        capacity: event.capacity,
        models: event.models,
        backend: event.backend,
        max_batch_size: event.maxBatchSize,
        max_batch_delay_ms: event.maxBatchDelayMs,
        started_at: instantOrNull(event, 'startedAt', event.startedAt),
        ...accelerator(event.accelerator),
      });
    case 'WorkerDraining':
      return control(e, {
        worker_id: event.workerId,
        lane: event.lane,
        reason: event.reason,
        drain_deadline_at: instantOrNull(event, 'drainDeadlineAt', event.drainDeadlineAt),
      });
    case 'WorkerEvicted':
      return control(e, {
        worker_id: event.workerId,
        lane: event.lane,
        reason: event.reason,
        detail: event.detail,
        last_heartbeat_at: instantOrNull(event, 'lastHeartbeatAt', event.lastHeartbeatAt),
        last_heartbeat_seq: event.lastHeartbeatSeq,
      });
    case 'ModelVersionRegistered':
      return control(e, {
        model: event.model,
        model_version: event.version,
        model_digest: event.digest,
        size_bytes: event.sizeBytes,
        model_kind: event.kind,
        fallback_model: event.fallbackModel,
        registered_by: event.registeredBy,
        ...pairs('metadata', 'key', 'value', event.metadata),
      });
    case 'RolloutChanged':
      return control(e, {
        model: event.model,
        reason: event.reason,
        detail: event.detail,
        stable_version: event.stableVersion,
        canary_version: event.canaryVersion,
        canary: event.canary,
        'weights.version': event.weights.map((w) => w.version),
        'weights.weight': event.weights.map((w) => w.weight),
        budget_max_p99_latency_ms: event.budget?.maxP99LatencyMs ?? null,
        budget_max_error_rate: event.budget?.maxErrorRate ?? null,
        budget_min_requests: event.budget?.minRequests ?? null,
        budget_window_ms: event.budget?.windowMs ?? null,
      });
    case 'ScaleDecided':
      return control(e, {
        model: event.model,
        zone: event.zone,
        reason: event.reason,
        pool: event.pool,
        workers_from: event.from,
        workers_to: event.to,
        cooldown_until: instantOrNull(event, 'cooldownUntil', event.cooldownUntil),
        ...pairs('signals', 'name', 'value', event.signals),
      });
    case 'SessionState':
      return {
        table: 'sessions',
        row: {
          ...e,
          session_id: event.sessionId,
          worker_id: event.workerId,
          lane: event.lane,
          model: event.model,
          model_version: event.modelVersion,
          last_request_id: event.lastRequestId,
          updated_at: instant(event, 'updatedAt', event.updatedAt),
          request_count: event.requestCount,
        },
      };
    case 'DeadLettered':
      return { table: 'deadletters', row: { ...e, ...deadLetterColumns(event) } };
    default: {
      const unknown: never = event;
      throw new SwitchyardError('SY_ERR_ANALYTICS', `no table for event type ${JSON.stringify((unknown as { type?: unknown }).type)}`);
    }
  }
}

function envelope(event: SwitchyardEvent, at: LogPosition): Row {
  return {
    event_id: event.eventId,
    type: event.type,
    occurred_at: instant(event, 'occurredAt', event.occurredAt),
    occurred_at_ms: event.occurredAt,
    request_id: event.requestId,
    trace_id: event.traceId,
    producer: event.producer,
    causation_id: event.causationId,
    ...clock(event.clock),
    log_topic: at.topic,
    log_partition: at.partition,
    log_offset: at.offset,
  };
}

function clock(entries: readonly ClockEntry[]): Row {
  return {
    'clock.topic': entries.map((c) => c.topic),
    'clock.partition': entries.map((c) => c.partition),
    'clock.offset': entries.map((c) => c.offset),
  };
}

function resultCommon(event: Extract<SwitchyardEvent, { type: 'InferenceStarted' | 'InferenceCompleted' | 'InferenceFailed' }>): Row {
  return {
    worker_id: event.workerId,
    lane: event.lane,
    model: event.model,
    attempt: event.attempt,
    batch_size: event.batchSize,
    queue_ms: event.queueMs,
  };
}

function candidates(list: Extract<SwitchyardEvent, { type: 'RequestRouted' }>['candidates']): Row {
  return {
    'candidates.worker_id': list.map((c) => c.workerId),
    'candidates.lane': list.map((c) => c.lane),
    'candidates.zone': list.map((c) => c.zone),
    'candidates.model_version': list.map((c) => c.modelVersion),
    'candidates.score': list.map((c) => c.score),
    'candidates.load': list.map((c) => c.load),
    'candidates.in_flight': list.map((c) => c.inFlight),
    'candidates.excluded': list.map((c) => c.excluded),
  };
}

function pendingDecisions(list: Extract<SwitchyardEvent, { type: 'RequestRouted' }>['pendingDecisions']): Row {
  return {
    'pending_decisions.worker_id': list.map((p) => p.workerId),
    'pending_decisions.lane': list.map((p) => p.lane),
    'pending_decisions.count': list.map((p) => p.count),
  };
}

function accelerator(a: Accelerator | null): Row {
  return {
    accelerator_kind: a?.kind ?? null,
    accelerator_name: a?.name ?? null,
    accelerator_count: a?.count ?? null,
    accelerator_memory_total_bytes: a?.memoryTotalBytes ?? null,
    accelerator_memory_used_bytes: a?.memoryUsedBytes ?? null,
    accelerator_utilization: a?.utilization ?? null,
    accelerator_driver_version: a?.driverVersion ?? null,
  };
}

/** A map as the two parallel arrays of a `Nested(k, v)` column, in key order (deterministic). */
function pairs<V>(column: string, keyName: string, valueName: string, map: Record<string, V>): Row {
  const keys = Object.keys(map).sort();
  return { [`${column}.${keyName}`]: keys, [`${column}.${valueName}`]: keys.map((k) => map[k]) };
}

/** Every column of `control`, null or empty unless the event sets it. */
const CONTROL_DEFAULTS: Row = {
  worker_id: null,
  lane: null,
  zone: null,
  model: null,
  model_version: null,
  reason: null,
  detail: null,
  capacity: null,
  models: [],
  backend: null,
  max_batch_size: null,
  max_batch_delay_ms: null,
  started_at: null,
  ...accelerator(null),
  drain_deadline_at: null,
  last_heartbeat_at: null,
  last_heartbeat_seq: null,
  model_digest: null,
  size_bytes: null,
  model_kind: null,
  fallback_model: null,
  registered_by: null,
  'metadata.key': [],
  'metadata.value': [],
  stable_version: null,
  canary_version: null,
  canary: null,
  'weights.version': [],
  'weights.weight': [],
  budget_max_p99_latency_ms: null,
  budget_max_error_rate: null,
  budget_min_requests: null,
  budget_window_ms: null,
  pool: null,
  workers_from: null,
  workers_to: null,
  cooldown_until: null,
  'signals.name': [],
  'signals.value': [],
};

const control = (e: Row, columns: Row): TableRow => ({ table: 'control', row: { ...e, ...CONTROL_DEFAULTS, ...columns } });

/** The columns of `deadletters` for a DeadLettered event (its bytes as base64). */
export function deadLetterColumns(event: Omit<DeadLettered, keyof EventEnvelope | 'type'>): Row {
  const headers = Object.keys(event.originalHeaders).sort();
  return {
    original_topic: event.originalTopic,
    original_partition: event.originalPartition,
    original_offset: event.originalOffset,
    original_key_base64: event.originalKey === null ? null : Buffer.from(event.originalKey).toString('base64'),
    original_value_base64: event.originalValue === null ? null : Buffer.from(event.originalValue).toString('base64'),
    'original_headers.key': headers,
    'original_headers.value_base64': headers.map((k) => Buffer.from(event.originalHeaders[k]!).toString('base64')),
    original_timestamp:
      event.originalTimestamp === null || !storable(event.originalTimestamp) ? null : new Date(event.originalTimestamp),
    error_code: event.errorCode,
    error_message: event.errorMessage,
    consumer_group: event.consumerGroup,
    attempts: event.attempts,
  };
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
