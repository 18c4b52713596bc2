/**
 * Event and command builders for the router's given/when/then specs and its benchmark. Each
 * builder fills the envelope and the defaulted fields, so a spec states only what matters to it.
 */
import type {
  EventEnvelope,
  InferenceCompleted,
  InferenceFailed,
  InferenceRequested,
  LogPosition,
  ModelVersionRegistered,
  PendingDecision,
  Priority,
  RequestRouted,
  RolloutChanged,
  SwitchyardEvent,
  VersionWeight,
  WorkerDraining,
  WorkerEvicted,
  WorkerHeartbeat,
  WorkerJoined,
} from '../../schemas/generated/events.js';
import type { RouteCommand } from './decide.js';
import type { RouterPolicy } from './policies/options.js';
import type { RouterState } from './state.js';
import { evolve, initialRouterState } from './state.js';

/** A fixed epoch for specs: 2025-01-01T00:00:00Z. */
export const T0 = 1_735_689_600_000;

let seq = 0;
function env(producer: string, at: number, requestId: string | null = null): EventEnvelope {
  seq++;
  return { eventId: `evt-${seq.toString().padStart(8, '0')}`, occurredAt: at, requestId, traceId: null, producer, causationId: null, clock: [] };
}

export const digestOf = (model: string, version: string): string => `sha256-${model}-${version}`;

export function joined(workerId: string, lane: number, o: { zone?: string; capacity?: number; models?: string[]; at?: number; startedAt?: number | null } = {}): WorkerJoined {
  return {
    type: 'WorkerJoined',
    ...env(workerId, o.at ?? T0),
    workerId,
    lane,
    zone: o.zone ?? 'zone-a',
    capacity: o.capacity ?? 8,
    models: o.models ?? [],
    backend: 'cpu',
    accelerator: null,
    maxBatchSize: 1,
    maxBatchDelayMs: 0,
    startedAt: o.startedAt ?? null,
  };
}

export function heartbeat(
  workerId: string,
  lane: number,
  o: {
    zone?: string;
    seq?: number;
    at?: number;
    load?: number;
    queueDepth?: number;
    inFlight?: number;
    capacity?: number;
    loadedModels?: string[];
    draining?: boolean;
    startedAt?: number | null;
    queueDelayMs?: number;
  } = {},
): WorkerHeartbeat {
  return {
    type: 'WorkerHeartbeat',
    ...env(workerId, o.at ?? T0),
    workerId,
    lane,
    zone: o.zone ?? 'zone-a',
    seq: o.seq ?? 0,
    startedAt: o.startedAt ?? null,
    load: o.load ?? 0,
    queueDepth: o.queueDepth ?? 0,
    inFlight: o.inFlight ?? 0,
    capacity: o.capacity ?? 8,
    cacheHitRatio: 0,
    loadedModels: o.loadedModels ?? [],
    accelerator: null,
    draining: o.draining ?? false,
    queueDelayMs: o.queueDelayMs ?? 0,
    cacheHitBuckets: [],
    bucketMs: 50,
    completed: 0,
  };
}

export function draining(workerId: string, lane: number, at = T0): WorkerDraining {
  return { type: 'WorkerDraining', ...env('controller', at), workerId, lane, reason: 'SIGTERM', drainDeadlineAt: null };
}

/** A WorkerEvicted without a controller's evidence (as a worker writes for its own drain). */
export const NO_EVIDENCE = {
  epoch: null,
  startedAt: null,
  heartbeatPosition: null,
  heartbeatEnd: null,
  silenceMs: null,
  phi: null,
  phiThreshold: null,
  minSilenceMs: null,
  meanIntervalMs: null,
  stdIntervalMs: null,
  tickId: null,
} as const;

export function evicted(workerId: string, lane: number, at = T0): WorkerEvicted {
  return { type: 'WorkerEvicted', ...env('controller', at), workerId, lane, reason: 'SUSPECTED_DEAD', lastHeartbeatAt: null, lastHeartbeatSeq: null, detail: null, ...NO_EVIDENCE };
}

export function registered(model: string, version: string, o: { fallbackModel?: string | null; at?: number; digest?: string } = {}): ModelVersionRegistered {
  return {
    type: 'ModelVersionRegistered',
    ...env('controller', o.at ?? T0),
    model,
    version,
    digest: o.digest ?? digestOf(model, version),
    sizeBytes: 1024,
    kind: 'linear',
    fallbackModel: o.fallbackModel ?? null,
    metadata: {},
    registeredBy: null,
  };
}

export function rollout(model: string, weights: VersionWeight[], o: { stable: string; canary?: string | null; at?: number }): RolloutChanged {
  return {
    type: 'RolloutChanged',
    ...env('controller', o.at ?? T0),
    model,
    weights,
    stableVersion: o.stable,
    canaryVersion: o.canary ?? null,
    canary: (o.canary ?? null) !== null,
    budget: null,
    reason: 'MANUAL',
    detail: null,
    epoch: null,
  };
}

/** A decision as some router made it (only what the fold reads is meaningful). */
export function routed(requestId: string, workerId: string, lane: number, o: { attempt?: number; at?: number; model?: string; version?: string } = {}): RequestRouted {
  const model = o.model ?? 'm';
  const version = o.version ?? 'v1';
  return {
    type: 'RequestRouted',
    ...env('router-x', o.at ?? T0, requestId),
    workerId,
    lane,
    zone: null,
    model,
    requestedModel: null,
    modelVersion: version,
    modelDigest: digestOf(model, version),
    reason: 'LEAST_LOADED',
    degraded: false,
    fallback: false,
    sessionId: null,
    priority: 'NORMAL',
    deadlineAt: null,
    candidates: [],
    pendingDecisions: [],
    policyVersion: 'router/3',
    attempt: o.attempt ?? 1,
    previousWorkerId: null,
    input: Buffer.from('{}'),
    contentType: 'application/json',
    parameters: {},
    cacheable: true,
    request: null,
  };
}

export function completed(requestId: string, workerId: string, lane: number, o: { latencyMs?: number; at?: number; attempt?: number } = {}): InferenceCompleted {
  const latency = o.latencyMs ?? 20;
  return {
    type: 'InferenceCompleted',
    ...env(workerId, o.at ?? T0, requestId),
    workerId,
    lane,
    model: 'm',
    modelVersion: 'v1',
    modelDigest: digestOf('m', 'v1'),
    output: Buffer.from('{}'),
    contentType: 'application/json',
    outputSha256: null,
    cacheHit: false,
    batchSize: 1,
    queueMs: Math.floor(latency / 2),
    computeMs: latency - Math.floor(latency / 2),
    inputTokens: null,
    outputTokens: null,
    attempt: o.attempt ?? 1,
    metrics: {},
  };
}

export function failed(requestId: string, workerId: string, lane: number, o: { errorCode?: string; at?: number; attempt?: number } = {}): InferenceFailed {
  return {
    type: 'InferenceFailed',
    ...env(workerId, o.at ?? T0, requestId),
    workerId,
    lane,
    model: 'm',
    modelVersion: 'v1',
    modelDigest: digestOf('m', 'v1'),
    errorCode: o.errorCode ?? 'BACKEND_ERROR',
    errorMessage: 'boom',
    retriable: true,
    batchSize: 1,
    queueMs: 0,
    computeMs: 5,
    attempt: o.attempt ?? 1,
  };
}

export function request(
  requestId: string,
  o: {
    model?: string;
    modelVersion?: string | null;
    sessionId?: string | null;
    priority?: Priority;
    deadlineAt?: number | null;
    zone?: string | null;
    allowFallback?: boolean;
    at?: number;
    maxAttempts?: number | null;
  } = {},
): InferenceRequested {
  return {
    type: 'InferenceRequested',
    ...env('gateway-1', o.at ?? T0, requestId),
    traceId: '0af7651916cd43dd8448eb211c80319c',
    model: o.model ?? 'm',
    modelVersion: o.modelVersion ?? null,
    input: Buffer.from('{"text":"hi"}'),
    contentType: 'application/json',
    parameters: {},
    sessionId: o.sessionId ?? null,
    priority: o.priority ?? 'NORMAL',
    deadlineAt: o.deadlineAt ?? null,
    zone: o.zone ?? null,
    idempotencyKey: null,
    tenant: null,
    source: 'GATEWAY',
    replyTopic: null,
    allowFallback: o.allowFallback ?? true,
    maxAttempts: o.maxAttempts ?? null,
    cacheable: true,
    attributes: {},
  };
}

let commandSeq = 0;
export function command(
  req: InferenceRequested,
  o: { now?: number; pending?: PendingDecision[]; policy?: RouterPolicy; attempt?: number; previousWorkerId?: string | null; requestPosition?: LogPosition | null; retry?: boolean } = {},
): RouteCommand {
  commandSeq++;
  return {
    eventId: `dec-${commandSeq.toString().padStart(8, '0')}`,
    now: o.now ?? T0 + 100,
    routerId: 'router-1',
    request: req,
    clock: [{ topic: 'switchyard.control', partition: 0, offset: 42 }],
    ...(o.pending !== undefined ? { pendingDecisions: o.pending } : {}),
    ...(o.policy !== undefined ? { policy: o.policy } : {}),
    ...(o.attempt !== undefined ? { attempt: o.attempt } : {}),
    ...(o.previousWorkerId !== undefined ? { previousWorkerId: o.previousWorkerId } : {}),
    ...(o.requestPosition !== undefined ? { requestPosition: o.requestPosition } : {}),
    ...(o.retry !== undefined ? { retry: o.retry } : {}),
  };
}

/** Fold events into a fresh state. */
export function given(events: readonly SwitchyardEvent[], state: RouterState = initialRouterState()): RouterState {
  for (const e of events) evolve(state, e);
  return state;
}

export interface FleetOptions {
  workers: number;
  /** Zones assigned round-robin. @default ['zone-a'] */
  zones?: string[];
  capacity?: number;
  /** Heartbeat time. @default T0 */
  at?: number;
  /** Models registered (each with version v1). @default ['m'] */
  models?: string[];
  /** Worker id prefix. @default 'w' */
  prefix?: string;
  /** First lane. @default 0 */
  firstLane?: number;
  /** Model names each worker declares it serves (WorkerJoined.models). @default [] (any) */
  serves?: string[];
}

/** Events of a healthy fleet: models registered, workers joined on lanes 0.. with a fresh heartbeat each. */
export function fleet({ workers, zones = ['zone-a'], capacity = 8, at = T0, models = ['m'], prefix = 'w', firstLane = 0, serves = [] }: FleetOptions): SwitchyardEvent[] {
  const events: SwitchyardEvent[] = models.map((m) => registered(m, 'v1', { at }));
  for (let i = 0; i < workers; i++) {
    const id = `${prefix}${i}`;
    const lane = firstLane + i;
    const zone = zones[i % zones.length]!;
    events.push(joined(id, lane, { zone, capacity, at, models: serves }));
    events.push(heartbeat(id, lane, { zone, capacity, at }));
  }
  return events;
}
