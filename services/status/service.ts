import { SwitchyardError, errorMessage, isRetriable } from '../../lib/errors.js';
import type { EventLog, LogRecord } from '../../lib/log/port.js';
import { topicLayout } from '../../lib/log/topics.js';
import type { Logger } from '../../lib/logger.js';
import { silentLogger } from '../../lib/logger.js';
import type { CompatibilityLevel, CompatibilityResult, SchemaRegistry, SchemaVersion } from '../../lib/registry/port.js';
import type { ServiceContext } from '../../lib/runtime.js';
import { findRequests } from '../../replay/lookup.js';
import { logSourceFrom } from '../../replay/source.js';
import { buildTrace, type RequestTrace } from '../../replay/trace.js';
import type { EventCodec } from '../../schemas/codec.js';
import { resolveRouterPolicy, type RouterPolicy, type RouterPolicyInput } from '../router/policies/options.js';
import { StatusError } from './errors.js';
import { evolveStatus, initialStatusState, statusDocument, type StatusDocument, type StatusState } from './model.js';

/** Where the status service reads: a Switchyard log and its codec. */
export interface StatusSource {
  log: EventLog;
  codec: EventCodec;
  /** Topic name prefix. @default 'switchyard.' */
  topicPrefix?: string;
  /**
   * The schema registry, for request lookups (replay's reader). @default a read-only view of
   * the codec's registry (schema text by id), which is all a lookup asks of it
   */
  registry?: SchemaRegistry;
  /** For the page and the CLI: "embedded log …", "kafka …". @default the log's kind */
  description?: string;
}

/** Options of the status service. Every default is applied in `resolveStatusOptions`. */
export interface StatusServiceOptions {
  /** Wall clock, ms. @default Date.now */
  now?: () => number;
  logger?: Logger;
  /** How often the log is read for new records, ms. @default 500 */
  pollMs?: number;
  /** Seconds of per-second throughput and latency kept (and read back at start). @default 300 */
  seriesSeconds?: number;
  /** At start, records read back per partition of heartbeats, decisions and results (`control` is read whole). @default 20_000 */
  lookbackRecords?: number;
  /** Of those, only records newer than this are folded, ms. @default seriesSeconds × 1000 */
  lookbackMs?: number;
  /** Recent actions listed, of each kind (control; re-dispatches/sheds/superseded). @default 100 */
  recentActions?: number;
  /** The routing policy whose rules judge health and ejection (its stale-heartbeat limit, ejection window). @default the default policy */
  policy?: RouterPolicyInput;
  /** How far back a request-id lookup reads, ms. Older requests: `switchyard replay request`. @default 3_600_000 (1 h) */
  lookupWindowMs?: number;
}

export type ResolvedStatusOptions = Required<Omit<StatusServiceOptions, 'policy'>> & { policy: RouterPolicy };

export function resolveStatusOptions(o: StatusServiceOptions = {}): ResolvedStatusOptions {
  const seriesSeconds = o.seriesSeconds ?? 300;
  const r: ResolvedStatusOptions = {
    now: o.now ?? Date.now,
    logger: o.logger ?? silentLogger,
    pollMs: o.pollMs ?? 500,
    seriesSeconds,
    lookbackRecords: o.lookbackRecords ?? 20_000,
    lookbackMs: o.lookbackMs ?? seriesSeconds * 1000,
    recentActions: o.recentActions ?? 100,
    policy: resolveRouterPolicy(o.policy),
    lookupWindowMs: o.lookupWindowMs ?? 3_600_000,
  };
  const check = (name: string, v: number, min: number, max = Number.MAX_SAFE_INTEGER) => {
    if (!Number.isSafeInteger(v) || v < min || v > max) throw new SwitchyardError('SY_ERR_CONFIG', `status: ${name} must be an integer in ${min}..${max}, got ${v}`);
  };
  check('pollMs', r.pollMs, 10, 60_000);
  check('seriesSeconds', r.seriesSeconds, 10, 86_400);
  check('lookbackRecords', r.lookbackRecords, 0);
  check('lookbackMs', r.lookbackMs, 0);
  check('recentActions', r.recentActions, 1, 10_000);
  check('lookupWindowMs', r.lookupWindowMs, 1);
  return r;
}

/** Where the document was read from, and how the reading goes. */
export interface SourceInfo {
  description: string;
  kind: EventLog['kind'];
  /** When the log was last read to its end, ms; null before the first time. */
  caughtUpAt: number | null;
  /** The last read's failure, when the last read failed. */
  error: { code: string; message: string; at: number } | null;
  /** Records read and skipped because they did not decode (the sink dead-letters them). */
  undecodable: number;
  recordsRead: number;
}

/** The status document with where it came from: what `/status.json` serves and `switchyard status --json` prints. */
export interface LiveStatus extends StatusDocument {
  source: SourceInfo;
}

/** The topics the status is a fold of, control first (membership before the rest). */
const FOLDED = ['control', 'heartbeats', 'decisions', 'results'] as const;

interface PartitionCursor {
  next: number;
  /** Records below this offset were part of the look-back: folded only when newer than `minTimestamp`. */
  lookbackEnd: number;
  minTimestamp: number;
}

/**
 * The status service: a fold of the log's recent past and its tail (model.ts), read with
 * offset-range reads — no consumer group.
 *
 * Why range reads rather than a subscription: the status is a view, not a worker of the log; it
 * needs an exact position per partition and a bounded look-back, which range reads give directly
 * (a "latest" subscription needs the results tracker's hole-filling to be exact), it leaves no
 * consumer group behind on Kafka each time a page or a `switchyard status` starts, and the one
 * reading code serves both the live page (`start`: read every `pollMs`) and a one-off snapshot
 * (`refresh` once). The cost is one end-offsets query per topic per poll and one read per
 * partition that moved.
 *
 * At start `control` is read whole (membership, lanes, models, rollouts and elections are all
 * there, and it is small); `heartbeats`, `decisions` and `results` from their last
 * `lookbackRecords` records, folding those newer than `lookbackMs`. Then each poll reads every
 * partition from its position to the end offset read at the poll's start, in order.
 */
export class StatusService {
  readonly options: ResolvedStatusOptions;
  readonly source: Required<Pick<StatusSource, 'log' | 'codec' | 'topicPrefix' | 'description'>> & { registry: SchemaRegistry | undefined };
  private state: StatusState | undefined;
  private readonly cursors = new Map<string, PartitionCursor[]>();
  private readonly names: Record<(typeof FOLDED)[number], string>;
  private refreshing: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private info: SourceInfo;

  constructor(source: StatusSource, options: StatusServiceOptions = {}) {
    this.options = resolveStatusOptions(options);
    const topicPrefix = source.topicPrefix ?? 'switchyard.';
    this.source = { log: source.log, codec: source.codec, topicPrefix, description: source.description ?? `${source.log.kind} log`, registry: source.registry };
    const layout = topicLayout({ prefix: topicPrefix });
    this.names = { control: layout.control.name, heartbeats: layout.heartbeats.name, decisions: layout.decisions.name, results: layout.results.name };
    this.info = { description: this.source.description, kind: source.log.kind, caughtUpAt: null, error: null, undecodable: 0, recordsRead: 0 };
  }

  /** Read the look-back, then keep reading every `pollMs`. Resolves once the look-back is folded (a failed first read is retried by the polls). */
  async start(): Promise<void> {
    await this.refresh().catch(() => {});
    if (this.closed || this.timer !== undefined) return;
    this.timer = setInterval(() => void this.refresh().catch(() => {}), this.options.pollMs);
    this.timer.unref();
  }

  /**
   * Read every folded partition to its current end (the look-back first, the first time). One
   * read at a time: a call while one runs waits for it. Rejects when the log cannot be read
   * (`SY_ERR_STATUS_UNAVAILABLE`); positions are kept, so the next call resumes.
   */
  refresh(): Promise<void> {
    this.refreshing ??= this.readToEnd().finally(() => {
      this.refreshing = undefined;
    });
    return this.refreshing;
  }

  /** The status now. */
  document(): LiveStatus {
    const { now, policy } = this.options;
    const doc = statusDocument(this.state ?? initialStatusState({ seriesSeconds: this.options.seriesSeconds }), { now: now(), policy });
    return { ...doc, source: { ...this.info, error: this.info.error === null ? null : { ...this.info.error } } };
  }

  /**
   * A request's replayed path (replay's lookup by the topics' keys, then its trace), within the
   * last `lookupWindowMs`. `SY_ERR_STATUS_NOT_FOUND` when no record names it.
   */
  async lookup(requestId: string): Promise<RequestTrace> {
    const { log, codec, topicPrefix, description } = this.source;
    let trace: RequestTrace;
    try {
      // Made per lookup: it reads the topics' partition counts, which may have changed since.
      const source = await logSourceFrom({ log, codec, registry: this.source.registry ?? codecRegistry(codec), topicPrefix, description });
      const found = await findRequests(source, [requestId], { index: false, from: this.options.now() - this.options.lookupWindowMs });
      trace = buildTrace(requestId, found.events.get(requestId) ?? [], found.undecodable);
    } catch (err) {
      throw new StatusError('SY_ERR_STATUS_UNAVAILABLE', `cannot read the log to look up request ${requestId}: ${errorMessage(err)}`, { cause: err });
    }
    if (trace.hops.length === 0) {
      throw new StatusError(
        'SY_ERR_STATUS_NOT_FOUND',
        `no record of request ${requestId} in ${description} within the last ${Math.round(this.options.lookupWindowMs / 60_000)} min (older requests: switchyard replay request ${requestId})`,
        { detail: { requestId } },
      );
    }
    return trace;
  }

  /** Stop reading (a read in progress is finished first). */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    this.timer = undefined;
    await this.refreshing?.catch(() => {});
  }

  // -- reading -------------------------------------------------------------------------

  private async readToEnd(): Promise<void> {
    const { now, logger } = this.options;
    try {
      if (this.state === undefined) {
        const lanes = await this.source.log.partitionCount(this.names.decisions);
        this.state = initialStatusState({ lanes: lanes ?? 64, seriesSeconds: this.options.seriesSeconds, recentActions: this.options.recentActions });
      }
      await this.readTopic('control');
      await Promise.all(FOLDED.filter((t) => t !== 'control').map((t) => this.readTopic(t)));
      this.info.caughtUpAt = now();
      if (this.info.error !== null) logger.info({ log: this.source.description }, 'status: reading the log again');
      this.info.error = null;
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      const message = errorMessage(err);
      if (this.info.error?.message !== message) logger.warn({ err: message, log: this.source.description }, 'status: cannot read the log; retrying');
      this.info.error = { code: typeof code === 'string' ? code : 'SY_ERR_STATUS_UNAVAILABLE', message, at: now() };
      throw new StatusError('SY_ERR_STATUS_UNAVAILABLE', `status: cannot read ${this.source.description}: ${message}`, { cause: err });
    }
  }

  private async readTopic(logical: (typeof FOLDED)[number]): Promise<void> {
    const topic = this.names[logical];
    const { log } = this.source;
    let cursors = this.cursors.get(topic);
    if (cursors === undefined) {
      const partitions = await log.partitionCount(topic);
      if (partitions === undefined) return; // not created yet: looked for again at the next read
      const [starts, ends] = await Promise.all([log.startOffsets(topic), log.endOffsets(topic)]);
      const whole = logical === 'control';
      const minTimestamp = whole ? 0 : this.options.now() - this.options.lookbackMs;
      cursors = ends.map((end, p) => {
        const start = starts[p] ?? 0;
        return { next: whole ? start : Math.max(start, end - this.options.lookbackRecords), lookbackEnd: end, minTimestamp };
      });
      this.cursors.set(topic, cursors);
    }
    const ends = await log.endOffsets(topic);
    await Promise.all(cursors.map((c, p) => (ends[p] !== undefined && ends[p] > c.next ? this.readPartition(topic, p, c, ends[p]) : undefined)));
  }

  private async readPartition(topic: string, partition: number, c: PartitionCursor, end: number): Promise<void> {
    const { log } = this.source;
    while (c.next < end && !this.closed) {
      const records = await log.read({ topic, partition, from: c.next, to: end, maxRecords: 5_000 });
      if (records.length === 0) {
        c.next = end; // removed by retention meanwhile
        return;
      }
      for (const record of records) {
        if (record.offset < c.next) continue;
        this.info.recordsRead++;
        if (!(record.offset < c.lookbackEnd && record.timestamp < c.minTimestamp)) await this.fold(record);
        c.next = record.offset + 1;
      }
    }
  }

  private async fold(record: LogRecord): Promise<void> {
    if (record.value === null || record.value.length === 0) return;
    let event;
    try {
      event = await this.source.codec.decode(record.value);
    } catch (err) {
      if (isRetriable(err)) throw err; // the registry is unreachable: read this record again next time
      this.info.undecodable++;
      return;
    }
    evolveStatus(this.state!, event);
  }
}

/** A status service on a service context (the gateway's), reading the context's log. */
export function statusSourceFromContext(ctx: Pick<ServiceContext, 'log' | 'codec' | 'topics'>, description?: string): StatusSource {
  return { log: ctx.log, codec: ctx.codec, topicPrefix: ctx.topics.requests.name.replace(/requests$/, ''), description: description ?? `${ctx.log.kind} log` };
}

const readOnly = (what: string): never => {
  throw new SwitchyardError('SY_ERR_CONFIG', `status: the registry view is read-only (${what})`);
};

/**
 * A read-only registry over the codec: schema text by id, which is all a lookup's decoding asks
 * of a registry (the codec fetched and cached it from the real registry). Used when the process
 * has a codec but no registry handle (the gateway).
 */
export function codecRegistry(codec: EventCodec): SchemaRegistry {
  return {
    getById: async (id: number) => (await codec.writerSchema(id)).schema,
    register: async () => readOnly('register'),
    lookup: async (): Promise<SchemaVersion> => readOnly('lookup'),
    getLatest: async (): Promise<SchemaVersion> => readOnly('getLatest'),
    getVersion: async (): Promise<SchemaVersion> => readOnly('getVersion'),
    listSubjects: async () => readOnly('listSubjects'),
    listVersions: async () => readOnly('listVersions'),
    checkCompatibility: async (): Promise<CompatibilityResult> => readOnly('checkCompatibility'),
    getCompatibility: async (): Promise<CompatibilityLevel> => readOnly('getCompatibility'),
    setCompatibility: async () => readOnly('setCompatibility'),
    deleteSubject: async () => readOnly('deleteSubject'),
    deleteVersion: async () => readOnly('deleteVersion'),
  };
}
