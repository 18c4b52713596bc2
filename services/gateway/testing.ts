import { subscribeEvents } from '../../lib/events/subscribe.js';
import type { Subscription } from '../../lib/log/port.js';
import type { ServiceContext } from '../../lib/runtime.js';
import type {
  InferenceCompletedInit,
  InferenceFailedInit,
  InferenceRequested,
  InferenceStartedInit,
  RequestRejectedInit,
} from '../../schemas/generated/events.js';

/**
 * Test helpers for the gateway (used by its unit and integration tests; not part of the
 * service): result events as a worker or the router writes them, and a stand-in "worker" that
 * answers every InferenceRequested on `requests` by appending events to `results`.
 */

export type ResultInit = InferenceStartedInit | InferenceCompletedInit | InferenceFailedInit | RequestRejectedInit;

let seq = 0;
const envelope = (requestId: string, producer = 'test-worker') => ({
  eventId: `test-${Date.now().toString(36)}-${++seq}`,
  occurredAt: Date.now(),
  requestId,
  producer,
});

const worker = { workerId: 'w1', lane: 0, modelVersion: 'v1', modelDigest: 'a'.repeat(64) };

export const started = (req: Pick<InferenceRequested, 'requestId' | 'model'>, extra: Partial<InferenceStartedInit> = {}): InferenceStartedInit => ({
  type: 'InferenceStarted',
  ...envelope(req.requestId!),
  ...worker,
  model: req.model,
  ...extra,
});

export const completed = (req: Pick<InferenceRequested, 'requestId' | 'model'>, output: Buffer, extra: Partial<InferenceCompletedInit> = {}): InferenceCompletedInit => ({
  type: 'InferenceCompleted',
  ...envelope(req.requestId!),
  ...worker,
  model: req.model,
  output,
  contentType: 'application/json',
  computeMs: 1,
  ...extra,
});

export const failed = (req: Pick<InferenceRequested, 'requestId' | 'model'>, errorCode: string, retriable: boolean): InferenceFailedInit => ({
  type: 'InferenceFailed',
  ...envelope(req.requestId!),
  workerId: worker.workerId,
  lane: worker.lane,
  model: req.model,
  errorCode,
  errorMessage: `failed: ${errorCode}`,
  retriable,
});

export const rejected = (req: Pick<InferenceRequested, 'requestId' | 'model'>, reason: string, retryAfterMs: number | null = null): RequestRejectedInit => ({
  type: 'RequestRejected',
  ...envelope(req.requestId!, 'test-router'),
  reason,
  model: req.model,
  detail: `rejected: ${reason}`,
  retryAfterMs,
});

/** Append result events to `results`, keyed by requestId (as workers and the router do). */
export async function appendResults(ctx: ServiceContext, events: ResultInit[]): Promise<void> {
  await ctx.log.append(events.map((e) => ({ topic: ctx.topics.results.name, key: e.requestId!, value: ctx.codec.encode(e) })));
}

/**
 * A stand-in worker: reads `requests` from the beginning (its own group) and appends whatever
 * `respond` returns for each request to `results`. `seen` collects the requests.
 */
export async function startTestWorker(
  ctx: ServiceContext,
  respond: (req: InferenceRequested) => ResultInit[] | Promise<ResultInit[]>,
  groupId = `test-worker-${Date.now().toString(36)}-${++seq}`,
): Promise<{ seen: InferenceRequested[]; subscription: Subscription }> {
  const seen: InferenceRequested[] = [];
  const subscription = await subscribeEvents(ctx.log, {
    groupId,
    topics: [ctx.topics.requests.name],
    fromBeginning: true,
    codec: ctx.codec,
    deadLetterTopic: ctx.topics.deadletter.name,
    deadLetter: 'skip',
    producer: 'test-worker',
    now: Date.now,
    onEvents: async (batch) => {
      for (const { event } of batch.events) {
        if (event.type !== 'InferenceRequested') continue;
        seen.push(event);
        const out = await respond(event);
        if (out.length > 0) await appendResults(ctx, out);
      }
    },
  });
  return { seen, subscription };
}
