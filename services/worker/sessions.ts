import { LRUCache } from 'lru-cache';
import type { RequestRouted, SessionState, SessionStateInit } from '../../schemas/generated/events.js';

/**
 * What a worker keeps per session: its context (the recent inputs, newest last, cut to a byte
 * budget), how many requests it served, and what model served it. The durable copy is the
 * SessionState the worker writes to the compacted `sessions` topic with each answer; when the
 * controller moves a session off an evicted or draining worker it writes a SessionState
 * (MIGRATED) naming the new worker, which takes the context from it and loads the model before
 * the session's next request.
 */
export interface SessionEntry {
  context: Buffer;
  /** Size of the context before any cut. */
  contextBytes: number;
  requestCount: number;
  model: string;
  modelVersion: string;
  modelDigest: string;
}

export interface SessionBookOptions {
  /** Bytes of context kept per session (the tail). @default 8192 */
  contextBytes?: number;
  /** Sessions kept (least recently used dropped beyond). @default 10_000 */
  maxSessions?: number;
}

export class SessionBook {
  private readonly entries: LRUCache<string, SessionEntry>;
  private readonly budget: number;
  /** Sessions handed over to this worker by a migration. */
  adopted = 0;

  constructor({ contextBytes = 8192, maxSessions = 10_000 }: SessionBookOptions = {}) {
    this.budget = contextBytes;
    this.entries = new LRUCache({ max: maxSessions });
  }

  get size(): number {
    return this.entries.size;
  }

  get(sessionId: string): SessionEntry | undefined {
    return this.entries.get(sessionId);
  }

  /** The session after serving one more request of it. */
  served(decision: RequestRouted): SessionEntry | undefined {
    const sessionId = decision.sessionId;
    if (sessionId === null) return undefined;
    const prev = this.entries.get(sessionId);
    const turn = Buffer.concat([decision.input, Buffer.from('\n')]);
    const whole = prev === undefined ? turn : Buffer.concat([prev.context, turn]);
    // Keep the tail in an allocation of its own (a subarray would pin the whole concatenation).
    const context = whole.length <= this.budget ? whole : Buffer.from(whole.subarray(whole.length - this.budget));
    const entry: SessionEntry = {
      context,
      contextBytes: (prev?.contextBytes ?? 0) + turn.length,
      requestCount: (prev?.requestCount ?? 0) + 1,
      model: decision.model,
      modelVersion: decision.modelVersion,
      modelDigest: decision.modelDigest,
    };
    this.entries.set(sessionId, entry);
    return entry;
  }

  /** Take over a session the controller migrated to this worker. */
  adopt(s: SessionState): SessionEntry {
    const entry: SessionEntry = {
      context: Buffer.from(s.context),
      contextBytes: s.contextBytes,
      requestCount: s.requestCount,
      model: s.model,
      modelVersion: s.modelVersion,
      modelDigest: s.modelDigest ?? '',
    };
    this.entries.set(s.sessionId, entry);
    this.adopted++;
    return entry;
  }

  /** A session moved to another worker: forget it here. */
  release(sessionId: string): void {
    this.entries.delete(sessionId);
  }
}

/** The SessionState a worker writes after answering a request of the session. */
export function servedState(
  envelope: Pick<SessionStateInit, 'eventId' | 'occurredAt' | 'producer' | 'traceId' | 'causationId' | 'clock'>,
  decision: RequestRouted,
  workerId: string,
  lane: number,
  entry: SessionEntry,
): SessionStateInit {
  return {
    type: 'SessionState',
    ...envelope,
    requestId: decision.requestId,
    sessionId: decision.sessionId!,
    workerId,
    lane,
    model: entry.model,
    modelVersion: entry.modelVersion,
    lastRequestId: decision.requestId ?? decision.eventId,
    updatedAt: envelope.occurredAt,
    requestCount: entry.requestCount,
    context: entry.context,
    contextBytes: entry.contextBytes,
    reason: 'SERVED',
    migratedFrom: null,
    modelDigest: entry.modelDigest,
    epoch: null,
  };
}
