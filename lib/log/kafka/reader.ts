import type { Kafka } from 'kafkajs';
import { SwitchyardError } from '../../errors.js';
import type { LogRecord } from '../port.js';
import { fromKafkaError, withKafkaRetry } from './errors.js';
import { toHeaders } from './headers.js';

export interface RangeReader {
  read(range: { topic: string; partition: number; from: number; to: number; maxRecords: number }): Promise<LogRecord[]>;
  close(): Promise<void>;
}

/** The parts of kafkajs' internal Cluster and Broker that an offset-range read needs. */
export interface FetchedMessage {
  offset: string;
  key: Buffer | null;
  value: Buffer | null;
  headers?: Record<string, unknown>;
  timestamp: string;
  isControlRecord?: boolean;
}
export interface InternalBroker {
  fetch(request: {
    replicaId: number;
    isolationLevel: number;
    maxWaitTime: number;
    minBytes: number;
    maxBytes: number;
    topics: { topic: string; partitions: { partition: number; fetchOffset: string; maxBytes: number }[] }[];
  }): Promise<{ responses: { topicName: string; partitions: { partition: number; errorCode: number; highWatermark: string; messages: FetchedMessage[] }[] }[] }>;
}
export interface InternalCluster {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  addTargetTopic(topic: string): Promise<void>;
  refreshMetadata(): Promise<void>;
  findLeaderForPartitions(topic: string, partitions: number[]): Record<string, number[]>;
  findBroker(args: { nodeId: string }): Promise<InternalBroker>;
}

export const READ_COMMITTED = 1;
const PARTITION_FETCH_BYTES = 8 * 1024 * 1024;

/**
 * Offset-range reads for replay and bootstrap. kafkajs' public consumer only reads
 * through a consumer group, which costs a join/sync round and cannot seek without one;
 * a range read instead sends Fetch requests straight to the partition leader through
 * kafkajs' own Cluster (its connection pool, metadata and protocol codecs). That Cluster
 * is internal API: kafkajs is pinned to 2.2.4, and the EventLog contract suite, run
 * against a real broker in CI, exercises every path here, so a change breaks CI loudly.
 */
export function createRangeReader(kafka: Kafka, maxWaitMs: number): RangeReader {
  let cluster: InternalCluster | undefined;
  let connecting: Promise<InternalCluster> | undefined;

  const getCluster = (): Promise<InternalCluster> => {
    if (cluster) return Promise.resolve(cluster);
    connecting ??= (async () => {
      const c = await connectCluster(kafka);
      cluster = c;
      return c;
    })();
    return connecting;
  };

  const fetchOnce = async (topic: string, partition: number, offset: number): Promise<FetchedMessage[]> => {
    const c = await getCluster();
    await c.addTargetTopic(topic);
    let leaders = c.findLeaderForPartitions(topic, [partition]);
    if (Object.keys(leaders).length === 0) {
      await c.refreshMetadata();
      leaders = c.findLeaderForPartitions(topic, [partition]);
    }
    const nodeId = Object.keys(leaders)[0];
    if (nodeId === undefined) throw new SwitchyardError('SY_ERR_LOG_BROKER', `no leader for ${topic}/${partition}`, { retriable: true });
    const broker = await c.findBroker({ nodeId });
    const res = await broker
      .fetch({
      replicaId: -1,
      isolationLevel: READ_COMMITTED,
      maxWaitTime: maxWaitMs,
      minBytes: 1,
      maxBytes: PARTITION_FETCH_BYTES,
        topics: [{ topic, partitions: [{ partition, fetchOffset: String(offset), maxBytes: PARTITION_FETCH_BYTES }] }],
      })
      .catch(async (err: unknown) => {
        // Leadership may have moved: the next attempt asks for fresh metadata.
        await c.refreshMetadata().catch(() => {});
        throw err;
      });
    return res.responses[0]?.partitions[0]?.messages ?? [];
  };

  return {
    async read({ topic, partition, from, to, maxRecords }) {
      const out: LogRecord[] = [];
      let offset = from;
      while (offset < to && out.length < maxRecords) {
        let messages: FetchedMessage[];
        try {
          messages = await withKafkaRetry(`reading ${topic}/${partition} from ${offset}`, () => fetchOnce(topic, partition, offset));
        } catch (err) {
          throw fromKafkaError(err, `reading ${topic}/${partition} from ${offset}`, { topic, partition, offset });
        }
        if (messages.length === 0) break;
        let last = offset - 1;
        for (const m of messages) {
          const o = Number(m.offset);
          last = Math.max(last, o);
          // A fetch returns whole record batches, which may begin before the asked offset.
          if (o < offset || o >= to || m.isControlRecord) continue;
          if (out.length >= maxRecords) break;
          out.push({ topic, partition, offset: o, key: m.key, value: m.value, headers: toHeaders(m.headers), timestamp: Number(m.timestamp) });
        }
        if (out.length >= maxRecords) break;
        if (last < offset) break;
        offset = last + 1;
      }
      return out;
    },
    async close() {
      if (connecting) await (await connecting.catch(() => undefined))?.disconnect();
      cluster = undefined;
      connecting = undefined;
    },
  };
}

/** A kafkajs Cluster of its own (connections, metadata) for sending Fetch requests straight to partition leaders. */
export async function connectCluster(kafka: Kafka): Promise<InternalCluster> {
  const create = Object.getOwnPropertySymbols(kafka).find((s) => s.description === 'private:Kafka:createCluster');
  if (!create) throw new SwitchyardError('SY_ERR_LOG_BROKER', 'kafkajs internals changed: cannot create a cluster for range reads');
  const factory = (kafka as unknown as Record<symbol, (o: object) => InternalCluster>)[create]!;
  const c = factory({ allowAutoTopicCreation: false, maxInFlightRequests: null, isolationLevel: READ_COMMITTED });
  await c.connect();
  return c;
}
