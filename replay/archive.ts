import { LRUCache } from 'lru-cache';
import { ARCHIVE_TABLES, ARCHIVED_RECORD_COLUMNS, recordFromArchive, type ArchivedRecordRow } from '../lib/analytics/archive.js';
import type { AnalyticsStore } from '../lib/analytics/port.js';
import { errorMessage } from '../lib/errors.js';
import type { EventLog, LogRecord, ReadRange, RecordPosition, Subscription } from '../lib/log/port.js';
import { parseSchema, type RegistryRecord, StateBackedRegistry } from '../lib/registry/core.js';
import { ReplayError } from './errors.js';
import type { IndexKind, IndexUpdate } from './request-index.js';

/**
 * ClickHouse as a replay source: the log archive the sink keeps (`log_records`, `log_ids`,
 * `log_schemas`, `log_topics`; schemas/clickhouse/migrations/004_log_archive.ts) read back as
 * the log it copied, so every replay command — request, session, at, verify — works on it
 * unchanged, long after Kafka's retention dropped the records.
 *
 * - `ArchiveLog`: a read-only `EventLog`. Offsets are the log's own (the archive keeps
 *   positions), so decisions' clocks mean what they meant on the log. A position archived
 *   twice (redelivery before ClickHouse merged the copies) is read once. The sink archives every
 *   record it reads, undecodable ones included; a position it never wrote (`--no-archive` for a
 *   while) is a gap, as compaction leaves gaps.
 * - `ArchiveIndex`: lookups by request or session id through `log_ids` (ClickHouse's inverted
 *   index of request ids and record keys), the archive's equivalent of the embedded log's
 *   request index.
 * - `ArchiveRegistry`: the writer schemas archived in `log_schemas`, so the archive decodes
 *   without the deployment's registry.
 */

const readOnly = (what: string): ReplayError =>
  new ReplayError('SY_ERR_REPLAY_SOURCE', `the ClickHouse archive is read-only: ${what} needs the live log (drop --clickhouse)`);

/** A ClickHouse failure while reading the archive, as a replay error with the SQL's reason. */
async function archiveQuery<T extends object>(store: AnalyticsStore, sql: string, params: Record<string, string | number>): Promise<T[]> {
  try {
    return await store.query<T>(sql, params);
  } catch (err) {
    const missing = /UNKNOWN_TABLE|doesn't exist|does not exist|Unknown table/i.test(errorMessage(err));
    throw new ReplayError(
      'SY_ERR_REPLAY_SOURCE',
      missing
        ? `ClickHouse has no log archive (${errorMessage(err)}): run the sink with the archive on (the default) after \`switchyard analytics migrate\``
        : `reading the ClickHouse log archive failed: ${errorMessage(err)}`,
      { cause: err, retriable: (err as { retriable?: boolean }).retriable === true },
    );
  }
}

/** Drop repeated positions (copies not merged yet) from rows sorted by offset. */
function distinctByOffset(rows: ArchivedRecordRow[]): ArchivedRecordRow[] {
  const out: ArchivedRecordRow[] = [];
  let last = -1;
  for (const row of rows) {
    if (row.log_offset === last) continue;
    last = row.log_offset;
    out.push(row);
  }
  return out;
}

/** A LIMIT as literal SQL (ClickHouse 18.16 takes no placeholder there): a positive integer. */
function limitOf(n: number): number {
  if (!Number.isSafeInteger(n) || n < 1) throw new ReplayError('SY_ERR_REPLAY_BAD_ARGUMENT', `maxRecords must be a positive integer, got ${n}`);
  return n;
}

/** Records read ahead per query by scans (a ClickHouse query costs milliseconds; a block of this many, a few). */
const READ_AHEAD = 5_000;

const positionKey = (topic: string, partition: number, offset: number): string => `${topic}\u0000${partition}\u0000${offset}`;

/** Index of the first record with offset ≥ `offset`. */
function lowerBound(records: readonly LogRecord[], offset: number): number {
  let lo = 0;
  let hi = records.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (records[mid]!.offset < offset) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

interface Block {
  from: number;
  /** One past the last offset the block covers. */
  end: number;
  records: LogRecord[];
}

export class ArchiveLog implements EventLog {
  readonly kind = 'clickhouse' as const;
  /** Read-ahead blocks by partition, bounded by records held. */
  private readonly blocks = new LRUCache<string, Block>({ maxSize: 400_000, sizeCalculation: (b) => Math.max(1, b.records.length) });
  /** Records fetched by index lookups, by position. */
  private readonly primed = new LRUCache<string, LogRecord>({ max: 10_000 });
  /** Partition bounds by topic, for a second. */
  private readonly boundsCache = new LRUCache<string, Promise<{ starts: number[]; ends: number[] }>>({ max: 64, ttl: 1_000 });

  private readonly readAhead: number;

  /** @param o.readAhead records a scan's query fetches at least (tests make it small to cross blocks). @default 5000 */
  constructor(
    private readonly store: AnalyticsStore,
    o: { readAhead?: number } = {},
  ) {
    this.readAhead = limitOf(o.readAhead ?? READ_AHEAD);
  }

  async ensureTopics(): Promise<void> {
    throw readOnly('creating topics');
  }

  async append(): Promise<RecordPosition[]> {
    throw readOnly('appending');
  }

  async subscribe(): Promise<Subscription> {
    throw readOnly('subscribing');
  }

  /** The partition count the sink recorded, or one past the highest partition archived; undefined when neither. */
  async partitionCount(topic: string): Promise<number | undefined> {
    const { starts } = await this.bounds(topic);
    return starts.length > 0 ? starts.length : undefined;
  }

  /**
   * Per partition, the first and one past the last archived offset (0 and 0 when empty); as many
   * partitions as the sink recorded, or one past the highest archived. Asked once for a scan's
   * start and end offsets together (kept a second: the archive may still be growing).
   */
  private bounds(topic: string): Promise<{ starts: number[]; ends: number[] }> {
    let pending = this.boundsCache.get(topic);
    if (pending === undefined) {
      pending = this.readBounds(topic);
      pending.catch(() => this.boundsCache.delete(topic));
      this.boundsCache.set(topic, pending);
    }
    return pending;
  }

  private async readBounds(topic: string): Promise<{ starts: number[]; ends: number[] }> {
    const [[declared], rows] = await Promise.all([
      archiveQuery<{ n: number | null }>(this.store, `SELECT max(partitions) AS n FROM ${ARCHIVE_TABLES.topics} WHERE log_topic = {topic:String}`, { topic }),
      archiveQuery<{ p: number; lo: number; hi: number }>(
        this.store,
        `SELECT log_partition AS p, min(log_offset) AS lo, max(log_offset) + 1 AS hi FROM ${ARCHIVE_TABLES.records} WHERE log_topic = {topic:String} GROUP BY log_partition`,
        { topic },
      ),
    ]);
    const n = Math.max(declared?.n ?? 0, ...rows.map((r) => r.p + 1));
    const starts = new Array<number>(n).fill(0);
    const ends = new Array<number>(n).fill(0);
    for (const r of rows) {
      starts[r.p] = r.lo;
      ends[r.p] = r.hi;
    }
    return { starts, ends };
  }

  /** The first archived offset per partition (what the archive retains; 0 for an empty partition). */
  async startOffsets(topic: string): Promise<number[]> {
    return (await this.bounds(topic)).starts;
  }

  /** One past the last archived offset per partition. */
  async endOffsets(topic: string): Promise<number[]> {
    return (await this.bounds(topic)).ends;
  }

  /**
   * Records of one partition in [from, to). Scans (more than one record asked) read ahead in
   * blocks of at least READ_AHEAD records, kept per partition, so the many small sequential reads
   * of verify's per-partition streams cost one query per block rather than one each. A single
   * record (a lookup's `readAt`) comes from what the index's lookup fetched, else one query.
   */
  async read({ topic, partition, from, to, maxRecords = 10_000 }: ReadRange): Promise<LogRecord[]> {
    limitOf(maxRecords);
    if (to !== undefined && to <= from) return [];
    if (maxRecords === 1) {
      const primed = this.primed.get(positionKey(topic, partition, from));
      if (primed !== undefined) return [primed];
      return this.query(topic, partition, from, to, 1);
    }
    const key = `${topic}\u0000${partition}`;
    const out: LogRecord[] = [];
    // Every record of [from, to) up to maxRecords, like the log: a block that ends early is followed by the next.
    let at = from;
    while (out.length < maxRecords && (to === undefined || at < to)) {
      let block = this.blocks.get(key);
      if (block === undefined || at < block.from || at >= block.end) {
        const records = await this.query(topic, partition, at, undefined, Math.max(maxRecords - out.length, this.readAhead));
        const last = records[records.length - 1];
        if (last === undefined) break;
        block = { from: at, end: last.offset + 1, records };
        this.blocks.set(key, block, { size: records.length });
      }
      const records = block.records;
      for (let i = lowerBound(records, at); i < records.length && out.length < maxRecords; i++) {
        const r = records[i]!;
        if (to !== undefined && r.offset >= to) break;
        out.push(r);
      }
      at = block.end;
    }
    return out;
  }

  /** Keep the records a lookup fetched, for the `readAt` that follows. */
  prime(records: readonly LogRecord[]): void {
    for (const r of records) this.primed.set(positionKey(r.topic, r.partition, r.offset), r);
  }

  private async query(topic: string, partition: number, from: number, to: number | undefined, limit: number): Promise<LogRecord[]> {
    const upper = to === undefined ? '' : ' AND log_offset < {to:Int64}';
    const rows = await archiveQuery<ArchivedRecordRow>(
      this.store,
      `SELECT ${ARCHIVED_RECORD_COLUMNS} FROM ${ARCHIVE_TABLES.records}
WHERE log_topic = {topic:String} AND log_partition = {partition:Int32} AND log_offset >= {from:Int64}${upper}
ORDER BY log_offset LIMIT ${limitOf(limit)}`,
      { topic, partition, from, ...(to === undefined ? {} : { to }) },
    );
    return distinctByOffset(rows).map(recordFromArchive);
  }

  /** First offset in [lo, hi) whose record timestamp is ≥ t (hi when none), in one query. */
  async offsetForTime(topic: string, partition: number, t: number, lo: number, hi: number): Promise<number> {
    const [row] = await archiveQuery<{ o: number; c: number }>(
      this.store,
      `SELECT min(log_offset) AS o, count() AS c FROM ${ARCHIVE_TABLES.records}
WHERE log_topic = {topic:String} AND log_partition = {partition:Int32} AND log_offset >= {lo:Int64} AND log_offset < {hi:Int64} AND log_timestamp_ms >= {t:Int64}`,
      { topic, partition, lo, hi, t },
    );
    return row === undefined || row.c === 0 ? hi : row.o;
  }

  async committedOffsets(): Promise<number[]> {
    throw readOnly('reading consumer groups');
  }

  /** The store belongs to whoever opened the source. */
  async close(): Promise<void> {}
}

/**
 * Lookups by id through `log_ids`; nothing to keep up to date (ClickHouse's views fill it as the
 * sink inserts). One query answers a lookup: the positions and their records (kept in the
 * `ArchiveLog` for the reads that follow).
 */
export class ArchiveIndex {
  constructor(
    private readonly store: AnalyticsStore,
    private readonly log: ArchiveLog,
  ) {}

  async update(): Promise<IndexUpdate> {
    return { scanned: 0, added: 0, rebuilt: false, ms: 0 };
  }

  /**
   * Positions that may hold records of the id: records whose request id or key is the id. Like
   * the embedded index, a candidate list — callers decode and keep what really belongs.
   */
  async lookup(_kind: IndexKind, id: string): Promise<RecordPosition[]> {
    const rows = await archiveQuery<ArchivedRecordRow>(
      this.store,
      `SELECT ${ARCHIVED_RECORD_COLUMNS} FROM ${ARCHIVE_TABLES.records}
WHERE (log_topic, log_partition, log_offset) IN (SELECT log_topic, log_partition, log_offset FROM ${ARCHIVE_TABLES.ids} WHERE id = {id:String})
ORDER BY log_topic, log_partition, log_offset`,
      { id },
    );
    const records: LogRecord[] = [];
    let last = '';
    for (const row of rows) {
      const key = positionKey(row.log_topic, row.log_partition, row.log_offset);
      if (key === last) continue;
      last = key;
      records.push(recordFromArchive(row));
    }
    this.log.prime(records);
    return records.map((r) => ({ topic: r.topic, partition: r.partition, offset: r.offset }));
  }

  async close(): Promise<void> {}
}

/**
 * A registry holding exactly the archived schema ids (read once at open), plus whatever the
 * local codec registers on top (in memory, new ids above the archived ones; compatibility NONE,
 * so a local schema newer than the archive never fails to load).
 */
export class ArchiveRegistry extends StateBackedRegistry {
  private constructor() {
    super();
  }

  static async open(store: AnalyticsStore): Promise<ArchiveRegistry> {
    const rows = await archiveQuery<{ schema_id: number; subject: string; schema: string }>(
      store,
      `SELECT DISTINCT schema_id, subject, schema FROM ${ARCHIVE_TABLES.schemas} ORDER BY schema_id`,
      {},
    );
    const registry = new ArchiveRegistry();
    const versions = new Map<string, number>();
    const records: RegistryRecord[] = [{ keytype: 'CONFIG', subject: null, compatibilityLevel: 'NONE' }];
    for (const r of rows) {
      const version = (versions.get(r.subject) ?? 0) + 1;
      versions.set(r.subject, version);
      let text: string;
      try {
        text = parseSchema(r.schema).text;
      } catch {
        continue; // not Avro: its records will not decode and are reported as such
      }
      records.push({ keytype: 'SCHEMA', subject: r.subject, version, id: r.schema_id, schema: text, deleted: false });
    }
    await registry.persist(records);
    return registry;
  }

  protected async sync(): Promise<void> {}

  protected async persist(records: RegistryRecord[]): Promise<void> {
    for (const record of records) this.state.apply(record);
  }
}
