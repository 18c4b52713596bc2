import type { Kafka } from 'kafkajs';
import { backoffDelayMs, backoffSchedule } from '../../backoff.js';
import { SwitchyardError, errorMessage } from '../../errors.js';
import type { Logger } from '../../logger.js';
import type { Batch, LogRecord, Subscription, TopicPartitions } from '../port.js';
import { fromKafkaError } from './errors.js';
import { toHeaders } from './headers.js';
import { READ_COMMITTED, connectCluster, type FetchedMessage, type InternalCluster } from './reader.js';

const PARTITION_FETCH_BYTES = 1024 * 1024;
const FETCH_BYTES = 8 * 1024 * 1024;

export interface FollowOptions {
  /** Names the subscription in logs (the port's `groupId`; no group is joined). */
  readonly name: string;
  readonly partitions: readonly TopicPartitions[];
  readonly fromBeginning: boolean;
  readonly maxBatchRecords: number;
  /** How long a fetch waits at the leader for new records, ms. */
  readonly maxWaitMs: number;
  /** The backoff cap while the leaders cannot be fetched from, ms. */
  readonly retryMaxMs: number;
  readonly onBatch: (batch: Batch) => Promise<void>;
  readonly onAssigned?: (assigned: TopicPartitions[]) => void;
  /** The partitions' first or next offsets (the adapter's startOffsets/endOffsets). */
  readonly offsets: (topic: string, which: 'start' | 'end') => Promise<number[]>;
  readonly logger: Logger;
}

interface Position {
  readonly topic: string;
  readonly partition: number;
  offset: number;
}

const key = (topic: string, partition: number) => `${topic}\u0000${partition}`;

/**
 * A `follow` subscription on Kafka: no consumer group. Fetch requests go straight to the
 * partitions' leaders through a kafkajs Cluster of its own (as the range reader's do), one loop
 * per leader, each a long poll of `maxWaitMs` for all of that leader's partitions; each
 * partition's records go to `onBatch` in order (a rejected batch is delivered again after a
 * backoff). When a fetch fails — the broker restarting, leadership moving — every leader loop
 * stops after its fetch in hand, metadata is refreshed and the loops are planned again after a
 * backoff on the project's schedule, capped at `retryMaxMs`: the view is delivering again as soon
 * as the leaders answer, with no group to rejoin and no session to wait out.
 */
export async function followPartitions(kafka: Kafka, o: FollowOptions): Promise<Subscription> {
  let cluster: InternalCluster;
  const positions = new Map<string, Position>();
  const assigned = o.partitions.map(({ topic, partitions }) => ({ topic, partitions: [...new Set(partitions)].sort((a, b) => a - b) })).filter((tp) => tp.partitions.length > 0);
  try {
    cluster = await connectCluster(kafka);
    for (const { topic, partitions } of assigned) {
      await cluster.addTargetTopic(topic);
      const offsets = await o.offsets(topic, o.fromBeginning ? 'start' : 'end');
      for (const partition of partitions) positions.set(key(topic, partition), { topic, partition, offset: offsets[partition] ?? 0 });
    }
  } catch (err) {
    throw fromKafkaError(err, `following ${o.name}`);
  }
  o.onAssigned?.(assigned.map((tp) => ({ topic: tp.topic, partitions: [...tp.partitions] })));

  const schedule = backoffSchedule({ baseMs: Math.min(50, o.retryMaxMs), factor: 2, capMs: o.retryMaxMs });
  let stopping = false;
  const sleepers = new Set<() => void>();
  const pause = (ms: number) =>
    new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        sleepers.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      sleepers.add(done);
    });

  /** Every position, by the node id of its partition's leader; undefined when a leader is unknown. */
  const plan = (): Map<string, Position[]> | undefined => {
    const byLeader = new Map<string, Position[]>();
    let planned = 0;
    for (const { topic, partitions } of assigned) {
      for (const [nodeId, ps] of Object.entries(cluster.findLeaderForPartitions(topic, partitions))) {
        for (const p of ps) {
          const pos = positions.get(key(topic, p));
          if (pos === undefined) continue;
          const list = byLeader.get(nodeId);
          if (list) list.push(pos);
          else byLeader.set(nodeId, [pos]);
          planned++;
        }
      }
    }
    return planned === positions.size ? byLeader : undefined;
  };

  const deliver = async (pos: Position, messages: FetchedMessage[], highWatermark: number): Promise<void> => {
    const records: LogRecord[] = [];
    let next = pos.offset;
    for (const m of messages) {
      const offset = Number(m.offset);
      // A fetch returns whole record batches, which may begin before the asked offset.
      if (offset < pos.offset) continue;
      next = offset + 1;
      if (m.isControlRecord) continue;
      records.push({ topic: pos.topic, partition: pos.partition, offset, key: m.key, value: m.value, headers: toHeaders(m.headers), timestamp: Number(m.timestamp) });
    }
    for (let i = 0; i < records.length && !stopping; i += o.maxBatchRecords) {
      const chunk = records.slice(i, i + o.maxBatchRecords);
      for (let attempt = 1; ; attempt++) {
        try {
          await o.onBatch({ topic: pos.topic, partition: pos.partition, records: chunk, highWatermark });
          break;
        } catch (err) {
          o.logger.warn({ err: errorMessage(err), subscription: o.name, topic: pos.topic, partition: pos.partition, attempt }, 'batch handler failed; redelivering');
          if (stopping) return;
          await pause(Math.min(50 * 2 ** (attempt - 1), 2_000));
          if (stopping) return;
        }
      }
      pos.offset = chunk[chunk.length - 1]!.offset + 1;
    }
    // Past trailing control records (transaction markers) too, once everything before them is handed over.
    if (!stopping && pos.offset < next) pos.offset = next;
  };

  /** Long-polls one leader for its partitions and hands over what comes, until stopping or a fetch fails (then `failed` says why). */
  const leaderLoop = async (nodeId: string, parts: Position[], failed: { err?: unknown; fetched?: boolean }): Promise<void> => {
    while (!stopping && failed.err === undefined) {
      let response: Awaited<ReturnType<Awaited<ReturnType<InternalCluster['findBroker']>>['fetch']>>;
      try {
        const broker = await cluster.findBroker({ nodeId });
        const byTopic = new Map<string, { partition: number; fetchOffset: string; maxBytes: number }[]>();
        for (const p of parts) {
          const list = byTopic.get(p.topic) ?? [];
          list.push({ partition: p.partition, fetchOffset: String(p.offset), maxBytes: PARTITION_FETCH_BYTES });
          byTopic.set(p.topic, list);
        }
        response = await broker.fetch({
          replicaId: -1,
          isolationLevel: READ_COMMITTED,
          maxWaitTime: o.maxWaitMs,
          minBytes: 1,
          maxBytes: FETCH_BYTES,
          topics: [...byTopic].map(([topic, partitions]) => ({ topic, partitions })),
        });
      } catch (err) {
        failed.err ??= err;
        return;
      }
      failed.fetched = true;
      for (const { topicName, partitions } of response.responses) {
        for (const { partition, highWatermark, messages } of partitions) {
          const pos = positions.get(key(topicName, partition));
          if (pos !== undefined && messages.length > 0 && !stopping) await deliver(pos, messages, Number(highWatermark));
        }
      }
    }
  };

  /** After `OFFSET_OUT_OF_RANGE` (retention removed what a position names, or a topic was recreated): back within the partition's range. */
  const clamp = async (topic: string, partition: number): Promise<void> => {
    const pos = positions.get(key(topic, partition));
    if (pos === undefined) return;
    const [start, end] = await Promise.all([o.offsets(topic, 'start'), o.offsets(topic, 'end')]);
    const from = pos.offset;
    pos.offset = Math.min(Math.max(pos.offset, start[partition] ?? 0), end[partition] ?? 0);
    o.logger.warn({ subscription: o.name, topic, partition, from, to: pos.offset }, 'kafka follower: position out of range; moved within the partition');
  };

  const run = async (): Promise<void> => {
    let failures = 0;
    while (!stopping) {
      let byLeader = plan();
      let failure: unknown;
      if (byLeader === undefined) {
        await cluster.refreshMetadata().catch((err: unknown) => (failure = err));
        byLeader = failure === undefined ? plan() : undefined;
        failure ??= byLeader === undefined ? new SwitchyardError('SY_ERR_LOG_BROKER', `${o.name}: no leader for some of its partitions`, { retriable: true }) : undefined;
      }
      if (byLeader !== undefined) {
        const failed: { err?: unknown; fetched?: boolean } = {};
        await Promise.all([...byLeader].map(([nodeId, parts]) => leaderLoop(nodeId, parts, failed)));
        failure = failed.err;
        if (failure === undefined) continue; // stopping
        if (failed.fetched) failures = 0;
        const range = failure as { name?: string; topic?: string; partition?: number };
        if (range.name === 'KafkaJSOffsetOutOfRange' && range.topic !== undefined && range.partition !== undefined) {
          await clamp(range.topic, range.partition).catch(() => {});
          continue;
        }
        await cluster.refreshMetadata().catch(() => {});
      }
      if (stopping) break;
      failures++;
      if (failures === 1 || failures % 20 === 0) o.logger.warn({ subscription: o.name, err: errorMessage(failure), failures }, 'kafka follower: cannot fetch from the leaders yet; retrying');
      await pause(backoffDelayMs(schedule, failures, Math.random()));
    }
  };
  const running = run();

  let closing: Promise<void> | undefined;
  return {
    assigned: () => assigned.map((tp) => ({ topic: tp.topic, partitions: [...tp.partitions] })),
    close: () => {
      closing ??= (async () => {
        stopping = true;
        for (const wake of [...sleepers]) wake();
        await running;
        await cluster.disconnect().catch(() => {});
      })();
      return closing;
    },
  };
}
