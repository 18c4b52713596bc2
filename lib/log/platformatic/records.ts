import { IS_CONTROL, type fetchV17 } from '@platformatic/kafka';
import type { Headers, LogRecord } from '../port.js';

export type FetchedPartition = fetchV17.FetchResponsePartition;

/** A fetched partition's records from `from` on, and the offset to fetch next. */
export interface FetchedRecords {
  records: LogRecord[];
  /**
   * The offset after the last record batch in the response (control batches, which carry no
   * records for the application, included), or `from` when it held none.
   */
  next: number;
  highWatermark: number;
}

function headersOf(raw: [Buffer | null, Buffer | null][]): Headers {
  const headers: Headers = {};
  // A repeated key keeps its last value, as the kafkajs adapter does.
  for (const [k, v] of raw) if (k !== null) headers[k.toString()] = v ?? Buffer.alloc(0);
  return headers;
}

/**
 * The records of one fetched partition, as the port's `LogRecord`s: offsets and timestamps from
 * the record batch's base and each record's deltas. A fetch returns whole record batches, which
 * may begin before the offset asked for; those records are dropped, as are control batches
 * (transaction markers) and records at or past `to`.
 */
export function recordsOf(topic: string, partition: number, fetched: FetchedPartition, from: number, to = Number.POSITIVE_INFINITY): FetchedRecords {
  const records: LogRecord[] = [];
  let next = from;
  for (const batch of fetched.records ?? []) {
    const base = Number(batch.firstOffset);
    next = Math.max(next, base + batch.lastOffsetDelta + 1);
    if (batch.attributes & IS_CONTROL) continue;
    const firstTimestamp = Number(batch.firstTimestamp);
    for (const r of batch.records) {
      const offset = base + r.offsetDelta;
      if (offset < from || offset >= to) continue;
      records.push({ topic, partition, offset, key: r.key, value: r.value, headers: headersOf(r.headers), timestamp: firstTimestamp + Number(r.timestampDelta) });
    }
  }
  return { records, next, highWatermark: Number(fetched.highWatermark) };
}
