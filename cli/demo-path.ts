import type { Runtime } from '../lib/bootstrap.js';
import { renderTable } from '../lib/table.js';
import type { SwitchyardEvent } from '../schemas/generated/events.js';

/** One line describing what an event says about its request. */
function describe(e: SwitchyardEvent): string {
  switch (e.type) {
    case 'InferenceRequested':
      return `model ${e.model}${e.modelVersion ? `@${e.modelVersion}` : ''}, session ${e.sessionId ?? '-'}, priority ${e.priority}, from ${e.producer}`;
    case 'RequestRouted':
      return `to ${e.workerId} (lane ${e.lane}, ${e.zone ?? '-'}) — ${e.reason}${e.degraded ? ', degraded' : ''}; ${e.model}@${e.modelVersion}; ${e.candidates.length} candidates [${e.candidates.map((c) => `${c.workerId}:${c.excluded ?? c.score.toFixed(2)}`).join(' ')}]; by ${e.producer}`;
    case 'RequestRejected':
      return `${e.reason}: ${e.detail ?? ''}`;
    case 'InferenceStarted':
      return `on ${e.workerId}, batch of ${e.batchSize}, queued ${e.queueMs} ms`;
    case 'InferenceCompleted':
      return `on ${e.workerId}${e.cacheHit ? ' (cache hit)' : ''}, compute ${e.computeMs} ms, ${e.output.length} bytes`;
    case 'InferenceFailed':
      return `on ${e.workerId}: ${e.errorCode} ${e.errorMessage}`;
    default:
      return '';
  }
}

/** Prints the events of one request across requests, decisions and results, in time order. */
export async function printRequestPath(rt: Runtime, requestId: string): Promise<void> {
  const { ctx } = rt;
  const found: { event: SwitchyardEvent; topic: string; partition: number; offset: number }[] = [];
  for (const topic of [ctx.topics.requests, ctx.topics.decisions, ctx.topics.results]) {
    const ends = await ctx.log.endOffsets(topic.name);
    for (let partition = 0; partition < ends.length; partition++) {
      let from = 0;
      while (from < ends[partition]!) {
        const records = await ctx.log.read({ topic: topic.name, partition, from, to: ends[partition]! });
        if (records.length === 0) break;
        for (const r of records) {
          if (r.value === null) continue;
          const event = await ctx.codec.decode(r.value).catch(() => undefined);
          if (event && event.requestId === requestId) found.push({ event, topic: topic.name, partition, offset: r.offset });
        }
        from = records[records.length - 1]!.offset + 1;
      }
    }
  }
  found.sort((a, b) => a.event.occurredAt - b.event.occurredAt || (a.event.eventId < b.event.eventId ? -1 : 1));
  const t0 = found[0]?.event.occurredAt ?? 0;
  console.log(renderTable(['+ms', 'event', 'where', 'what'], found.map((f) => [f.event.occurredAt - t0, f.event.type, `${f.topic}/${f.partition}@${f.offset}`, describe(f.event)])));
}
