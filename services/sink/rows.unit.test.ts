import { describe, expect, it } from 'vitest';
import { SAMPLE_EVENTS } from '../../schemas/samples.js';
import { EVENT_TYPES, type EventType, type SwitchyardEvent } from '../../schemas/generated/events.js';
import { MAX_INSTANT_MS, SINK_TABLES, archivedEnvelope, deadLetterColumns, rowFor, type SinkTable } from './rows.js';

const at = { topic: 'switchyard.x', partition: 3, offset: 1234 };
const T0 = 1_767_225_600_000;

const TABLE_OF: Record<EventType, SinkTable> = {
  InferenceRequested: 'requests',
  RequestRouted: 'decisions',
  RequestRejected: 'decisions',
  InferenceStarted: 'results',
  InferenceCompleted: 'results',
  InferenceFailed: 'results',
  WorkerHeartbeat: 'heartbeats',
  ControllerTick: 'ticks',
  WorkerJoined: 'control',
  WorkerDraining: 'control',
  WorkerEvicted: 'control',
  ModelVersionRegistered: 'control',
  RolloutChanged: 'control',
  ScaleDecided: 'control',
  SessionState: 'sessions',
  DeadLettered: 'deadletters',
  ControllerElected: 'control',
  ResultSuperseded: 'results',
};

/** Fields stored under another name than their snake_case (null: deliberately not stored). */
const RENAMED: Partial<Record<EventType, Record<string, string | null>>> = {
  // The decision's copy of the request: the request itself is in `requests`.
  RequestRouted: { input: null, contentType: null, parameters: null, cacheable: null, request: null },
  ModelVersionRegistered: { version: 'model_version', digest: 'model_digest', kind: 'model_kind' },
  ScaleDecided: { from: 'workers_from', to: 'workers_to' },
};

describe('rowFor: the table and row of every event type', () => {
  it.each(EVENT_TYPES)('%s goes to its family table with the envelope and the log position', (type) => {
    const event = SAMPLE_EVENTS[type] as SwitchyardEvent;
    const { table, row } = rowFor(event, at);
    expect(table).toBe(TABLE_OF[type]);
    expect(row).toMatchObject({
      event_id: event.eventId,
      type,
      occurred_at: new Date(event.occurredAt),
      occurred_at_ms: event.occurredAt,
      request_id: event.requestId,
      trace_id: event.traceId,
      producer: event.producer,
      causation_id: event.causationId,
      'clock.topic': event.clock.map((c) => c.topic),
      'clock.partition': event.clock.map((c) => c.partition),
      'clock.offset': event.clock.map((c) => c.offset),
      log_topic: 'switchyard.x',
      log_partition: 3,
      log_offset: 1234,
    });
    // Nested columns are parallel arrays: every sub-column of one Nested has the same length.
    const nested = new Map<string, number[]>();
    for (const [k, v] of Object.entries(row)) {
      const dot = k.indexOf('.');
      if (dot < 0) continue;
      expect(Array.isArray(v)).toBe(true);
      nested.set(k.slice(0, dot), [...(nested.get(k.slice(0, dot)) ?? []), (v as unknown[]).length]);
    }
    for (const lengths of nested.values()) expect(new Set(lengths).size).toBe(1);
    // No undefined: a missing column would silently take its default.
    for (const v of Object.values(row)) expect(v).not.toBeUndefined();
  });

  it('every field of every event (latest schema) has its column: a new field comes with its migration', () => {
    const envelopeFields = new Set(['type', 'eventId', 'occurredAt', 'requestId', 'traceId', 'producer', 'causationId', 'clock']);
    const snake = (name: string) => name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
    for (const type of EVENT_TYPES) {
      const event = SAMPLE_EVENTS[type] as SwitchyardEvent;
      const { row } = rowFor(event, at);
      const columns = Object.keys(row);
      for (const field of Object.keys(event).filter((f) => !envelopeFields.has(f))) {
        const renamed = RENAMED[type]?.[field];
        if (renamed === null) continue; // deliberately not stored (see RENAMED)
        const name = renamed ?? snake(field);
        // The column itself, or its flattened parts (`budget_max_error_rate`, `candidates.score`, `input_base64`).
        const found = columns.some((c) => c === name || c.startsWith(`${name}_`) || c.startsWith(`${name}.`));
        expect(found, `${type}.${field} has no column (${name}…) in its table`).toBe(true);
      }
    }
  });

  it('events of one table produce the same columns (no column forgotten for one event type)', () => {
    const columns = new Map<SinkTable, Set<string>>();
    for (const type of EVENT_TYPES) {
      const { table, row } = rowFor(SAMPLE_EVENTS[type] as SwitchyardEvent, at);
      const keys = Object.keys(row).sort().join(',');
      const seen = columns.get(table);
      if (seen) expect([...seen][0]).toBe(keys);
      else columns.set(table, new Set([keys]));
    }
    expect([...columns.keys()].sort()).toEqual([...SINK_TABLES].sort());
  });

  it('InferenceRequested → requests: input as base64 with its size, maps as sorted key/value arrays', () => {
    const e = SAMPLE_EVENTS.InferenceRequested;
    const { row } = rowFor(e, at);
    expect(row).toMatchObject({
      model: 'sentiment-small',
      model_version: null,
      session_id: 'sess-8c1f2e',
      priority: 'HIGH',
      deadline_at: new Date(T0 + 2_000),
      zone: 'eu-west-1a',
      tenant: 'acme',
      source: 'GATEWAY',
      idempotency_key: 'idem-5f2a9c',
      reply_topic: null,
      allow_fallback: true,
      cacheable: true,
      content_type: 'application/json',
      input_bytes: e.input.length,
      'parameters.key': ['max_tokens', 'temperature'],
      'parameters.value': ['16', '0'],
      'attributes.key': ['client', 'region'],
      'attributes.value': ['web', 'eu'],
      max_attempts: 3,
    });
    expect(rowFor({ ...e, maxAttempts: null }, at).row.max_attempts).toBeNull();
    expect(Buffer.from(row.input_base64 as string, 'base64')).toEqual(e.input);
  });

  it('RequestRouted → decisions: chosen worker, reason, candidates and pending decisions as Nested arrays', () => {
    const { row } = rowFor(SAMPLE_EVENTS.RequestRouted, at);
    expect(row).toMatchObject({
      model: 'sentiment-small',
      requested_model: null,
      model_version: 'v3',
      worker_id: 'worker-b7',
      lane: 17,
      zone: 'eu-west-1a',
      reason: 'AFFINITY',
      detail: null,
      retry_after_ms: null,
      degraded: false,
      fallback: false,
      priority: 'HIGH',
      deadline_at: new Date(T0 + 2_000),
      policy_version: 'router-policy/3',
      attempt: 1,
      previous_worker_id: null,
      'candidates.worker_id': ['worker-b7', 'worker-c2', 'worker-a4'],
      'candidates.lane': [17, 23, 4],
      'candidates.zone': ['eu-west-1a', 'eu-west-1a', 'eu-west-1b'],
      'candidates.model_version': ['v3', 'v3', 'v4-canary'],
      'candidates.score': [0.41, 0.73, 0.2],
      'candidates.load': [0.38, 0.71, 0.12],
      'candidates.in_flight': [3, 6, 1],
      'candidates.excluded': [null, null, 'EJECTED'],
      'pending_decisions.worker_id': ['worker-c2'],
      'pending_decisions.lane': [23],
      'pending_decisions.count': [2],
    });
    expect(row['clock.offset']).toEqual([1842, 920_114, 55_301, 48_977]);
  });

  it('RequestRejected → decisions: no worker, the reason, detail and retry hint', () => {
    const { row } = rowFor(SAMPLE_EVENTS.RequestRejected, at);
    expect(row).toMatchObject({
      type: 'RequestRejected',
      worker_id: null,
      lane: null,
      zone: null,
      model_version: null,
      reason: 'SHED',
      priority: 'BACKGROUND',
      retry_after_ms: 500,
      detail: expect.stringContaining('shedding BACKGROUND'),
      'candidates.excluded': ['OVERLOADED', 'OVERLOADED', 'EJECTED'],
      'pending_decisions.worker_id': [],
    });
  });

  it('results: started carries the queue time as its latency; completed and failed queue + compute', () => {
    expect(rowFor(SAMPLE_EVENTS.InferenceStarted, at).row).toMatchObject({
      worker_id: 'worker-b7',
      lane: 17,
      model_version: 'v3',
      batch_size: 4,
      batch_id: 'batch-b7-000912',
      queue_ms: 15,
      compute_ms: 0,
      latency_ms: 15,
      cache_hit: false,
      error_code: null,
    });
    const completed = rowFor(SAMPLE_EVENTS.InferenceCompleted, at).row;
    expect(completed).toMatchObject({
      queue_ms: 15,
      compute_ms: 25,
      latency_ms: 40,
      cache_hit: false,
      output_bytes: SAMPLE_EVENTS.InferenceCompleted.output.length,
      output_sha256: 'c0535e4be2b79ffd93291305436bf889314e4a3faec05ecffcbb7df31ad9e51a',
      input_tokens: 11,
      output_tokens: 3,
      'metrics.name': ['time_to_first_token_ms', 'tokens_per_second'],
      'metrics.value': [9.5, 120.25],
      retriable: null,
    });
    expect(Buffer.from(completed.output_base64 as string, 'base64')).toEqual(SAMPLE_EVENTS.InferenceCompleted.output);
    expect(rowFor(SAMPLE_EVENTS.InferenceFailed, at).row).toMatchObject({
      model: 'llama-3.1-8b-instruct',
      attempt: 2,
      queue_ms: 4,
      compute_ms: 30_000,
      latency_ms: 30_004,
      error_code: 'BACKEND_TIMEOUT',
      retriable: true,
      output_base64: null,
    });
    // An outcome supersedes nothing.
    for (const type of ['InferenceStarted', 'InferenceCompleted', 'InferenceFailed'] as const) {
      expect(rowFor(SAMPLE_EVENTS[type], at).row, type).toMatchObject({ superseded_event_id: null, superseded_position_offset: null, winner_event_id: null, winner_type: null });
    }
  });

  it('ResultSuperseded → results: the losing and the winning outcome with their positions; no outcome columns of its own', () => {
    const e = SAMPLE_EVENTS.ResultSuperseded;
    const { row } = rowFor(e, at);
    expect(row).toMatchObject({
      type: 'ResultSuperseded',
      request_id: e.requestId,
      causation_id: e.supersededEventId,
      superseded_event_id: '0194d2a2-5fff-7f18-93a4-0c2e4a6c8e01',
      superseded_type: 'InferenceCompleted',
      superseded_position_topic: 'switchyard.results',
      superseded_position_partition: 4,
      superseded_position_offset: 99_119,
      superseded_worker_id: 'worker-d9',
      superseded_attempt: 1,
      winner_event_id: '0194d2a2-5ff0-7f18-93a4-0c2e4a6c8e00',
      winner_type: 'InferenceCompleted',
      winner_position_topic: 'switchyard.results',
      winner_position_partition: 4,
      winner_position_offset: 99_080,
      // Not an outcome: '' and -1 say so, and nothing counts as a latency or a cache hit.
      model: '',
      worker_id: '',
      lane: -1,
      attempt: 0,
      latency_ms: 0,
      cache_hit: false,
      error_code: null,
      output_base64: null,
      'metrics.name': [],
    });
    expect(rowFor({ ...e, supersededWorkerId: null, supersededType: 'RequestRejected' }, at).row).toMatchObject({ superseded_worker_id: null, superseded_type: 'RequestRejected' });
  });

  it('WorkerHeartbeat → heartbeats: load, queue, cache hit ratio and the accelerator flattened', () => {
    expect(rowFor(SAMPLE_EVENTS.WorkerHeartbeat, at).row).toMatchObject({
      worker_id: 'worker-b7',
      lane: 17,
      zone: 'eu-west-1a',
      seq: 3_611,
      started_at: new Date(T0 - 3_611_000),
      load: 0.38,
      queue_depth: 2,
      in_flight: 3,
      capacity: 8,
      cache_hit_ratio: 0.27,
      loaded_models: SAMPLE_EVENTS.WorkerHeartbeat.loadedModels,
      accelerator_kind: 'gpu',
      accelerator_name: 'NVIDIA L4',
      accelerator_count: 1,
      accelerator_memory_total_bytes: 24_146_608_128,
      accelerator_utilization: 0.62,
      accelerator_driver_version: '550.54.15',
      draining: false,
      queue_delay_ms: 12.5,
      cache_hit_buckets: [0.25, -1, 0.5, 0.2],
      bucket_ms: 50,
      completed: 88_412,
    });
    const bare = rowFor({ ...SAMPLE_EVENTS.WorkerHeartbeat, accelerator: null, startedAt: null, cacheHitBuckets: [] }, at).row;
    expect(bare).toMatchObject({ accelerator_kind: null, accelerator_count: null, started_at: null, cache_hit_buckets: [] });
  });

  it('ControllerTick → ticks: the controller, its epoch (null for a standby), tick number and interval', () => {
    const { table, row } = rowFor(SAMPLE_EVENTS.ControllerTick, at);
    expect(table).toBe('ticks');
    expect(row).toMatchObject({ controller_id: 'controller-2', epoch: 3, seq: 48_113, interval_ms: 100, started_at: new Date(T0 - 100_000), policy: 'controller/1' });
    expect(rowFor({ ...SAMPLE_EVENTS.ControllerTick, epoch: null, policy: null }, at).row).toMatchObject({ epoch: null, policy: null });
    expect(() => rowFor({ ...SAMPLE_EVENTS.ControllerTick, startedAt: -1 }, at)).toThrow(/startedAt .* outside/);
  });

  it('control events share one table; columns another event type owns stay null or empty', () => {
    expect(rowFor(SAMPLE_EVENTS.WorkerJoined, at).row).toMatchObject({
      worker_id: 'worker-b7',
      lane: 17,
      zone: 'eu-west-1a',
      capacity: 8,
      models: ['sentiment-small', 'llama-3.1-8b-instruct'],
      backend: 'http',
      max_batch_size: 8,
      max_batch_delay_ms: 5,
      accelerator_kind: 'gpu',
      reason: null,
      model: null,
      'weights.version': [],
    });
    expect(rowFor(SAMPLE_EVENTS.WorkerDraining, at).row).toMatchObject({ worker_id: 'worker-c2', lane: 23, reason: 'SIGTERM', drain_deadline_at: new Date(T0 + 90_000), capacity: null });
    expect(rowFor(SAMPLE_EVENTS.WorkerEvicted, at).row).toMatchObject({
      worker_id: 'worker-d9',
      lane: 31,
      reason: 'SUSPECTED_DEAD',
      last_heartbeat_at: new Date(T0 + 74_310),
      last_heartbeat_seq: 1_204,
      detail: 'no heartbeat for 690 ms (phi 9.2 ≥ 8, at least 500 ms)',
      // v2: the epoch and the failure detector's evidence.
      epoch: 3,
      started_at: new Date(T0 - 3_000_000),
      heartbeat_position_topic: 'switchyard.heartbeats',
      heartbeat_position_partition: 1,
      heartbeat_position_offset: 771_001,
      heartbeat_end: 771_002,
      silence_ms: 690,
      phi: 9.2,
      phi_threshold: 8,
      min_silence_ms: 500,
      mean_interval_ms: 101.5,
      std_interval_ms: 25,
      tick_id: SAMPLE_EVENTS.ControllerTick.eventId,
      controller_id: null,
    });
    // Evicted by the worker itself (DRAINED): no epoch, no evidence.
    const drained = { ...SAMPLE_EVENTS.WorkerEvicted, reason: 'DRAINED', epoch: null, startedAt: null, heartbeatPosition: null, heartbeatEnd: null, silenceMs: null, phi: null, phiThreshold: null, minSilenceMs: null, meanIntervalMs: null, stdIntervalMs: null, tickId: null };
    expect(rowFor(drained, at).row).toMatchObject({ reason: 'DRAINED', epoch: null, started_at: null, heartbeat_position_topic: null, heartbeat_position_partition: null, heartbeat_position_offset: null, phi: null, tick_id: null });
    expect(rowFor(SAMPLE_EVENTS.ControllerElected, at).row).toMatchObject({
      type: 'ControllerElected',
      controller_id: 'controller-2',
      epoch: 3,
      previous_controller_id: 'controller-1',
      reason: 'LEADER_SILENT',
      leader_silence_ms: 2_150,
      lease_ms: 2_000,
      worker_id: null,
      phi: null,
      started_at: null,
    });
    expect(rowFor(SAMPLE_EVENTS.ModelVersionRegistered, at).row).toMatchObject({
      model: 'sentiment-small',
      model_version: 'v3',
      model_digest: SAMPLE_EVENTS.ModelVersionRegistered.digest,
      size_bytes: 4_194_432,
      model_kind: 'mlp',
      fallback_model: 'sentiment-tiny',
      registered_by: 'ci@models',
      'metadata.key': ['dataset', 'framework', 'trained'],
      'metadata.value': ['reviews-2025q4', 'switchyard-cpu', '2025-12-14'],
      worker_id: null,
    });
    expect(rowFor(SAMPLE_EVENTS.RolloutChanged, at).row).toMatchObject({
      model: 'sentiment-small',
      reason: 'CANARY_START',
      stable_version: 'v3',
      canary_version: 'v4-canary',
      canary: true,
      'weights.version': ['v3', 'v4-canary'],
      'weights.weight': [0.95, 0.05],
      budget_max_p99_latency_ms: 120,
      budget_max_error_rate: 0.01,
      budget_min_requests: 500,
      budget_window_ms: 600_000,
      epoch: 3,
    });
    expect(rowFor({ ...SAMPLE_EVENTS.RolloutChanged, budget: null, canary: false, canaryVersion: null }, at).row).toMatchObject({
      canary: false,
      canary_version: null,
      budget_max_p99_latency_ms: null,
      budget_window_ms: null,
    });
    expect(rowFor(SAMPLE_EVENTS.ScaleDecided, at).row).toMatchObject({
      pool: 'sentiment-small',
      model: 'sentiment-small',
      zone: null,
      workers_from: 4,
      workers_to: 6,
      reason: 'QUEUE_DEPTH',
      cooldown_until: new Date(T0 + 300_000),
      'signals.name': ['cache_hit_ratio', 'consumer_lag', 'p99_ms', 'queue_depth_mean'],
      'signals.value': [0.27, 412, 180.5, 7.5],
      epoch: 3,
    });
    expect(rowFor({ ...SAMPLE_EVENTS.ScaleDecided, epoch: null }, at).row.epoch).toBeNull();
    // Control events without an epoch field have the column, empty.
    for (const type of ['WorkerJoined', 'WorkerDraining', 'ModelVersionRegistered'] as const) expect(rowFor(SAMPLE_EVENTS[type], at).row.epoch, type).toBeNull();
  });

  it('SessionState → sessions', () => {
    expect(rowFor(SAMPLE_EVENTS.SessionState, at).row).toMatchObject({
      session_id: 'sess-8c1f2e',
      worker_id: 'worker-b7',
      lane: 17,
      model_version: 'v3',
      last_request_id: SAMPLE_EVENTS.SessionState.lastRequestId,
      updated_at: new Date(T0 + 3),
      request_count: 12,
    });
  });

  it('DeadLettered → deadletters: the original key, value and headers as base64, byte for byte', () => {
    const e = SAMPLE_EVENTS.DeadLettered;
    const { row } = rowFor(e, at);
    expect(row).toMatchObject({
      original_topic: 'switchyard.requests',
      original_partition: 7,
      original_offset: 10_232,
      original_timestamp: new Date(T0 + 498),
      error_code: 'SY_ERR_CODEC_MAGIC',
      consumer_group: 'sink',
      attempts: 1,
      'original_headers.key': ['content-type', 'x-client'],
    });
    expect(Buffer.from(row.original_key_base64 as string, 'base64')).toEqual(e.originalKey);
    expect(Buffer.from(row.original_value_base64 as string, 'base64')).toEqual(e.originalValue);
    expect((row['original_headers.value_base64'] as string[]).map((v) => Buffer.from(v, 'base64').toString())).toEqual([
      'application/vnd.apache.avro',
      'legacy-producer/0.9',
    ]);
    // A tombstone has no value; a dead letter is never refused for its original timestamp.
    const tomb = deadLetterColumns({ ...e, originalKey: null, originalValue: null, originalTimestamp: -5 });
    expect(tomb).toMatchObject({ original_key_base64: null, original_value_base64: null, original_timestamp: null });
  });

  it('refuses (never clamps) an instant ClickHouse cannot store, naming the event and field', () => {
    const before1970 = { ...SAMPLE_EVENTS.WorkerHeartbeat, occurredAt: -1 };
    expect(() => rowFor(before1970, at)).toThrow(expect.objectContaining({ code: 'SY_ERR_ANALYTICS', retriable: false }));
    expect(() => rowFor({ ...SAMPLE_EVENTS.InferenceRequested, deadlineAt: MAX_INSTANT_MS + 1 }, at)).toThrow(/deadlineAt .* outside/);
    expect(rowFor({ ...SAMPLE_EVENTS.InferenceRequested, deadlineAt: MAX_INSTANT_MS }, at).row.deadline_at).toEqual(new Date(MAX_INSTANT_MS));
  });
});

describe('archivedEnvelope', () => {
  it('keeps the type, ids and time the archive filters on; a session id only where the event has one', () => {
    expect(archivedEnvelope(SAMPLE_EVENTS.InferenceRequested)).toEqual({
      type: 'InferenceRequested',
      eventId: SAMPLE_EVENTS.InferenceRequested.eventId,
      requestId: SAMPLE_EVENTS.InferenceRequested.requestId,
      sessionId: SAMPLE_EVENTS.InferenceRequested.sessionId,
      occurredAt: SAMPLE_EVENTS.InferenceRequested.occurredAt,
    });
    expect(archivedEnvelope(SAMPLE_EVENTS.SessionState).sessionId).toBe(SAMPLE_EVENTS.SessionState.sessionId);
    expect(archivedEnvelope(SAMPLE_EVENTS.WorkerHeartbeat)).toMatchObject({ type: 'WorkerHeartbeat', requestId: null, sessionId: null });
    expect(archivedEnvelope({ ...SAMPLE_EVENTS.InferenceCompleted, requestId: 'r-9' })).toMatchObject({ requestId: 'r-9', sessionId: null });
  });
});
