import type { Runtime } from '../lib/bootstrap.js';
import { findRequests } from '../replay/lookup.js';
import { traceText } from '../replay/render-text.js';
import { logSourceFrom } from '../replay/source.js';
import { buildTrace } from '../replay/trace.js';

/** Prints one request's recorded path with the replay library (what `switchyard replay request` shows, brief). */
export async function printRequestPath(rt: Runtime, requestId: string): Promise<void> {
  const source = await logSourceFrom({ log: rt.log, registry: rt.registry, codec: rt.ctx.codec, topicPrefix: rt.config.topicPrefix, description: 'the demo log' });
  const found = await findRequests(source, [requestId], { index: false });
  console.log(traceText(buildTrace(requestId, found.events.get(requestId) ?? [], found.undecodable), { details: false }));
}
