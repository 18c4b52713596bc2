import type { EventLog, LogRecord } from './port.js';

/**
 * The latest record per key of a compacted topic, as a consumer bootstrapping from it
 * sees it: later records win, a tombstone (null value) removes the key. Reads every
 * partition to its end offset at call time, so it gives the same answer whether or not
 * the adapter has physically compacted its segments yet.
 */
export async function readCompacted(log: EventLog, topic: string): Promise<Map<string, LogRecord>> {
  const latest = new Map<string, LogRecord>();
  const ends = await log.endOffsets(topic);
  const starts = await log.startOffsets(topic);
  for (let partition = 0; partition < ends.length; partition++) {
    let from = starts[partition] ?? 0;
    const to = ends[partition] ?? 0;
    while (from < to) {
      const records = await log.read({ topic, partition, from, to });
      if (records.length === 0) break;
      for (const record of records) {
        if (record.key === null) continue;
        const key = record.key.toString('utf8');
        if (record.value === null) latest.delete(key);
        else latest.set(key, record);
      }
      from = records[records.length - 1]!.offset + 1;
    }
  }
  return latest;
}
