/**
 * Test harness for the worker's end-to-end tests (embedded contract and real-Kafka int): a
 * service context on a given log with the shipped models registered, hand-made routing
 * decisions encoded with the codec, and readers of what the worker wrote. Not used by
 * production code.
 */
import { MemoryBlobStore } from '../../lib/blob/memory.js';
import type { EventLog, LogRecord } from '../../lib/log/port.js';
import { InMemoryRegistry } from '../../lib/registry/core.js';
import { createServiceContext, type ServiceContext } from '../../lib/runtime.js';
import { EventCodec } from '../../schemas/codec.js';
import type { RequestRoutedInit, SwitchyardEvent } from '../../schemas/generated/events.js';
import { installShippedModels } from './publish.js';

export interface WorkerHarness {
  ctx: ServiceContext;
  store: MemoryBlobStore;
  /** digest of each shipped model version, by `model@version`. */
  digests: Map<string, string>;
  /** Append routing decisions (RequestRouted) to their lanes; returns their eventIds. */
  route(decisions: RoutedInput[]): Promise<string[]>;
  /** Every event of a topic (all partitions), decoded, in partition then offset order. */
  events(topic: 'results' | 'heartbeats' | 'control' | 'decisions' | 'deadletter'): Promise<{ event: SwitchyardEvent; record: LogRecord }[]>;
  /** Results (Started/Completed/Failed) of one request, in log order. */
  resultsOf(requestId: string): Promise<SwitchyardEvent[]>;
  /** The end of control (for clocks). */
  controlEnd(): Promise<number>;
}

export interface RoutedInput {
  requestId: string;
  workerId: string;
  lane: number;
  /** `model@version` of a shipped model, or give modelDigest. @default 'sentiment-small@v1' */
  model?: string;
  modelDigest?: string;
  input?: unknown;
  contentType?: string;
  parameters?: Record<string, string>;
  cacheable?: boolean;
  deadlineAt?: number | null;
  priority?: RequestRoutedInit['priority'];
  /** The control offset the router had read. @default the end of control now */
  controlOffset?: number;
  occurredAt?: number;
}

export async function workerHarness(log: EventLog, { prefix, lanes = 4 }: { prefix: string; lanes?: number }): Promise<WorkerHarness> {
  const codec = await EventCodec.create({ registry: new InMemoryRegistry() });
  const ctx = createServiceContext({ log, codec, topicPrefix: prefix, lanes });
  await log.ensureTopics(Object.values(ctx.topics));
  const store = new MemoryBlobStore();
  const digests = new Map<string, string>();
  for (const m of await installShippedModels(ctx, store)) digests.set(`${m.model}@${m.version}`, m.digest);

  const controlEnd = async () => (await log.endOffsets(ctx.topics.control.name))[0] ?? 0;

  const events: WorkerHarness['events'] = async (name) => {
    const topic = ctx.topics[name].name;
    const out: { event: SwitchyardEvent; record: LogRecord }[] = [];
    const ends = await log.endOffsets(topic);
    for (let p = 0; p < ends.length; p++) {
      if ((ends[p] ?? 0) === 0) continue;
      for (const record of await log.read({ topic, partition: p, from: 0, maxRecords: 100_000 })) {
        if (record.value !== null) out.push({ event: await codec.decode(record.value), record });
      }
    }
    return out;
  };

  return {
    ctx,
    store,
    digests,
    controlEnd,
    events,
    async route(decisions) {
      const control = await controlEnd();
      const records = decisions.map((d) => {
        const [model, version] = (d.model ?? 'sentiment-small@v1').split('@') as [string, string];
        const event: RequestRoutedInit = {
          type: 'RequestRouted',
          eventId: ctx.newEventId(),
          occurredAt: d.occurredAt ?? ctx.now(),
          requestId: d.requestId,
          producer: 'test-router',
          clock: [{ topic: ctx.topics.control.name, partition: 0, offset: d.controlOffset ?? control }],
          workerId: d.workerId,
          lane: d.lane,
          model,
          modelVersion: version,
          modelDigest: d.modelDigest ?? digests.get(`${model}@${version}`) ?? '0'.repeat(64),
          reason: 'LEAST_LOADED',
          priority: d.priority ?? 'NORMAL',
          deadlineAt: d.deadlineAt ?? null,
          input: Buffer.from(JSON.stringify(d.input ?? { text: 'a good day' })),
          contentType: d.contentType ?? 'application/json',
          parameters: d.parameters ?? {},
          cacheable: d.cacheable ?? true,
        };
        return { event, record: { topic: ctx.topics.decisions.name, partition: d.lane, key: d.requestId, value: codec.encode(event) } };
      });
      await log.append(records.map((r) => r.record));
      return records.map((r) => r.event.eventId);
    },
    async resultsOf(requestId) {
      return (await events('results')).map((e) => e.event).filter((e) => e.requestId === requestId);
    },
  };
}
