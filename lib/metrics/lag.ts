import type { EventLog } from '../log/port.js';

/**
 * Records a consumer group has not committed yet on `topic` (all partitions, or those named):
 * the partition's end offset less the group's committed offset, or less the partition's first
 * retained offset where the group has committed nothing. What Kafka tools call consumer lag.
 */
export async function recordsBehind(log: EventLog, group: string, topic: string, partitions?: readonly number[]): Promise<number> {
  const [ends, starts, committed] = await Promise.all([log.endOffsets(topic), log.startOffsets(topic), log.committedOffsets(group, topic)]);
  let behind = 0;
  for (const p of partitions ?? ends.keys()) {
    const end = ends[p];
    if (end === undefined) continue;
    const from = committed[p] !== undefined && committed[p]! >= 0 ? committed[p]! : (starts[p] ?? 0);
    behind += Math.max(0, end - from);
  }
  return behind;
}
