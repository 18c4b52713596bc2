import type { InferenceRequested, RequestRouted, SessionState } from '../schemas/generated/events.js';
import type { FoundEvent, SessionLookup } from './lookup.js';
import { buildTrace, type Outcome } from './trace.js';

/**
 * The path of a session (`replay session <id>`): its requests in order, which worker served each
 * (the last routing's worker), and every move — a request served elsewhere than the previous one,
 * or routed for another reason or model version — with why, read from the decision that moved it:
 * the previous worker's candidate entry says why it was passed over (DRAINING, EVICTED, EJECTED,
 * OVERLOADED by bounded load, STALE_HEARTBEAT, …), or its absence says it no longer held a lane.
 */

export interface SessionStep {
  requestId: string;
  at: number;
  outcome: Outcome;
  workerId: string | null;
  lane: number | null;
  zone: string | null;
  reason: string | null;
  modelVersion: string | null;
  attempts: number;
  totalMs: number | null;
  /** Set when this request moved the session. */
  move: SessionMove | null;
}

export interface SessionMove {
  from: string | null;
  to: string | null;
  /** What changed: worker, reason, model version. */
  changed: ('worker' | 'reason' | 'version')[];
  why: string;
}

export interface SessionTrace {
  sessionId: string;
  steps: SessionStep[];
  /** Workers that served the session, in order of first use. */
  workers: string[];
  moves: number;
  /** The latest SessionState record, when the log has one. */
  state: SessionState | null;
  /** The controller's migrations of the session (SessionState MIGRATED), in log order. */
  migrations: SessionMigration[];
}

export interface SessionMigration {
  at: number;
  from: string | null;
  to: string;
  by: string;
  contextBytes: number;
  requestCount: number;
}

function explainMove(prevWorker: string | null, routed: RequestRouted | undefined, previous: RequestRouted | undefined, changed: SessionMove['changed'], prev: SessionStep): string {
  const parts: string[] = [];
  if (changed.includes('worker') && routed !== undefined && prevWorker !== null) {
    const c = routed.candidates.find((x) => x.workerId === prevWorker);
    const chosen = routed.workerId;
    const before = previous?.candidates.find((x) => x.workerId === chosen);
    if (c === undefined) parts.push(`${prevWorker} was no longer a candidate (its lane was freed or re-claimed)`);
    else if (c.excluded !== null) parts.push(`${prevWorker} was excluded: ${c.excluded}${c.excluded === 'OVERLOADED' ? ` (score ${c.score.toFixed(3)} above the bounded-load limit)` : ''}`);
    else if (previous !== undefined && before === undefined) parts.push(`${chosen} was not a candidate at the previous request (it joined or came back) and ranks above ${prevWorker} for this session`);
    else if (before !== undefined && before.excluded !== null) parts.push(`${chosen} ranks above ${prevWorker} for this session and was ${before.excluded} at the previous request; it is eligible again`);
    else parts.push(`${prevWorker} was eligible (score ${c.score.toFixed(3)}) but ${chosen} was chosen (${routed.reason})`);
    if (routed.attempt > 1) parts.push(`re-dispatch attempt ${routed.attempt} (previous worker ${routed.previousWorkerId ?? '—'})`);
  }
  if (changed.includes('reason') && routed !== undefined) parts.push(`routed ${routed.reason}${routed.degraded ? ' (degraded)' : ''} instead of ${prev.reason ?? '—'}`);
  if (changed.includes('version') && routed !== undefined) parts.push(`model version ${prev.modelVersion ?? '—'} → ${routed.modelVersion}`);
  if (routed === undefined) parts.push('not routed (rejected or not decided)');
  return parts.join('; ');
}

/** The session's path from its lookup. */
export function buildSessionTrace(lookup: SessionLookup): SessionTrace {
  const steps: SessionStep[] = [];
  let prev: SessionStep | undefined;
  /** The decision of the last request that was routed. */
  let lastRouted: RequestRouted | undefined;
  for (const r of lookup.requests) {
    const req = r.event as InferenceRequested;
    const id = req.requestId ?? req.eventId;
    const found: FoundEvent[] = lookup.events.get(id) ?? [r];
    const trace = buildTrace(id, found);
    const routedAll = found.map((f) => f.event).filter((e): e is RequestRouted => e.type === 'RequestRouted');
    const routed = routedAll[routedAll.length - 1];
    const step: SessionStep = {
      requestId: id,
      at: req.occurredAt,
      outcome: trace.outcome,
      workerId: routed?.workerId ?? null,
      lane: routed?.lane ?? null,
      zone: routed?.zone ?? null,
      reason: routed?.reason ?? (found.find((f) => f.event.type === 'RequestRejected')?.event as { reason?: string } | undefined)?.reason ?? null,
      modelVersion: routed?.modelVersion ?? null,
      attempts: routedAll.length,
      totalMs: trace.totalMs,
      move: null,
    };
    if (prev !== undefined && step.workerId !== null) {
      const changed: SessionMove['changed'] = [];
      const lastServed = [...steps].reverse().find((s) => s.workerId !== null);
      if (lastServed !== undefined && lastServed.workerId !== step.workerId) changed.push('worker');
      if (lastServed !== undefined && lastServed.reason !== step.reason) changed.push('reason');
      if (lastServed !== undefined && lastServed.modelVersion !== step.modelVersion) changed.push('version');
      if (changed.length > 0 && lastServed !== undefined) {
        step.move = { from: lastServed.workerId, to: step.workerId, changed, why: explainMove(lastServed.workerId, routed, lastRouted, changed, lastServed) };
      }
    }
    steps.push(step);
    prev = step;
    if (routed !== undefined) lastRouted = routed;
  }
  const workers: string[] = [];
  for (const s of steps) if (s.workerId !== null && !workers.includes(s.workerId)) workers.push(s.workerId);
  const last = lookup.states[lookup.states.length - 1];
  const migrations: SessionMigration[] = lookup.states
    .map((f) => f.event as SessionState)
    .filter((s) => s.reason === 'MIGRATED')
    .map((s) => ({ at: s.occurredAt, from: s.migratedFrom, to: s.workerId, by: s.producer, contextBytes: s.contextBytes, requestCount: s.requestCount }));
  // A move that follows a migration to the new worker says so first.
  for (let i = 0; i < steps.length; i++) {
    const move = steps[i]!.move;
    if (move === null || !move.changed.includes('worker')) continue;
    const since = i > 0 ? steps[i - 1]!.at : 0;
    const m = migrations.find((x) => x.to === move.to && x.at >= since && x.at <= steps[i]!.at);
    if (m !== undefined) move.why = `the controller (${m.by}) migrated the session from ${m.from ?? '—'} to ${m.to} with its context (${m.contextBytes} bytes) and pre-warmed it; ${move.why}`;
  }
  return {
    migrations,
    sessionId: lookup.sessionId,
    steps,
    workers,
    moves: steps.filter((s) => s.move?.changed.includes('worker')).length,
    state: (last?.event as SessionState | undefined) ?? null,
  };
}
