import type { LogRecord, RecordPosition } from '../lib/log/port.js';
import { partitionForKey } from '../lib/log/partitioner.js';
import type { TopicName } from '../lib/log/topics.js';
import type { InferenceRequested, SwitchyardEvent } from '../schemas/generated/events.js';
import { RequestIndex } from './request-index.js';
import { planScan, scanRecords, type ProgressFn, type TimeWindow } from './scan.js';
import { decodeRecord, readAt, undecodable, type LogSource, type PositionIndex, type Undecodable } from './source.js';

/**
 * Finding every record of some requests (or of a session) across the topics.
 *
 * Two strategies, chosen per source:
 * - `index` (embedded log): the request index (request-index.ts), brought up to date first, gives
 *   the positions; each is read and decoded, and kept only if it really names the id. The
 *   ClickHouse archive answers the same way from its `log_ids` table (archive.ts).
 * - `keyed` (Kafka, or `--no-index`): the topics' keys say where to look, so no lookup reads
 *   the whole log:
 *   1. `results` is keyed by requestId: its partition is `partitionForKey(requestId)`; that one
 *      partition is scanned comparing raw keys (only matches are decoded). It holds the
 *      InferenceStarted/Completed/Failed and RequestRejected of the request.
 *   2. `decisions` is partitioned by lane, keyed by requestId: the results name the lane of each
 *      attempt, so only those lanes are scanned, in a time window around the results. Attempts
 *      with no result yet (in flight, or the worker died) are not named anywhere else: when the
 *      request has no terminal result, or an attempt seen is missing its decision, every lane is
 *      scanned within the window.
 *   3. `requests` is keyed by sessionId, else requestId: RequestRouted.request gives the exact
 *      position; otherwise the partition of `sessionId ?? requestId` is scanned.
 *   4. `deadletter` (one partition, key = the original key) is scanned within the window.
 *   Scans after the first are bounded to `aroundMs` either side of the events found so far
 *   (unless an explicit window is given).
 */

export interface FoundEvent {
  event: SwitchyardEvent;
  /** Logical topic. */
  topic: TopicName;
  position: RecordPosition;
  /** The record's timestamp (log time). */
  timestamp: number;
}

export interface LookupOptions extends TimeWindow {
  /** Use the request index (embedded logs; default when the source has an index directory). `false`: the keyed strategy. */
  index?: RequestIndex | boolean | undefined;
  /** Keyed strategy: how far either side of the events found the other topics are scanned. @default 900_000 (15 min) */
  aroundMs?: number | undefined;
  onProgress?: ProgressFn | undefined;
}

export interface LookupResult {
  strategy: 'index' | 'keyed';
  /** Events per request id, in log-time order. */
  events: Map<string, FoundEvent[]>;
  /** Records that matched a key but do not decode. */
  undecodable: Undecodable[];
  /** Records read from the log (index: the hits; keyed: every record scanned). */
  recordsRead: number;
  /** Index upkeep before the lookup, when an index was used. */
  indexUpdate?: { scanned: number; added: number; rebuilt: boolean; ms: number };
}

function logicalTopic(source: LogSource, physical: string): TopicName | undefined {
  for (const [name, spec] of Object.entries(source.topics)) if (spec.name === physical) return name as TopicName;
  return undefined;
}

const byTime = (a: FoundEvent, b: FoundEvent): number =>
  a.event.occurredAt - b.event.occurredAt || a.timestamp - b.timestamp || (a.position.topic < b.position.topic ? -1 : a.position.topic > b.position.topic ? 1 : a.position.offset - b.position.offset);

/** The id a record belongs to, for matching: the event's requestId (deadletter: the record key). */
function belongsTo(found: FoundEvent, record: LogRecord): string | null {
  if (found.event.type === 'DeadLettered') return record.key?.toString('utf8') ?? null;
  return found.event.requestId;
}

async function openIndex(source: LogSource, o: LookupOptions): Promise<{ index: PositionIndex; owned: boolean } | undefined> {
  if (o.index === false) return undefined;
  if (o.index instanceof RequestIndex) return { index: o.index, owned: false };
  if (source.openIndex !== undefined) return { index: await source.openIndex(), owned: true };
  if (source.indexDir === undefined) return undefined;
  return { index: await RequestIndex.open(source), owned: true };
}

/** Every record of these requests, by the index when there is one, else by keys. */
export async function findRequests(source: LogSource, ids: readonly string[], o: LookupOptions = {}): Promise<LookupResult> {
  const opened = await openIndex(source, o);
  if (opened === undefined) return findKeyed(source, ids, o);
  try {
    const indexUpdate = await opened.index.update({ onProgress: o.onProgress });
    const result = await findIndexed(source, opened.index, ids, o);
    return { ...result, indexUpdate };
  } finally {
    if (opened.owned) await opened.index.close();
  }
}

async function readFound(source: LogSource, pos: RecordPosition, undecodables: Undecodable[]): Promise<{ found: FoundEvent; record: LogRecord } | undefined> {
  const record = await readAt(source, pos);
  if (record === undefined) return undefined;
  const topic = logicalTopic(source, record.topic);
  if (topic === undefined) return undefined;
  const d = await decodeRecord(source, record);
  if (!d.ok) {
    if (record.value !== null) undecodables.push(undecodable(record, d.code, d.error));
    return undefined;
  }
  return { found: { event: d.event, topic, position: { topic: record.topic, partition: record.partition, offset: record.offset }, timestamp: record.timestamp }, record };
}

async function findIndexed(source: LogSource, index: PositionIndex, ids: readonly string[], o: TimeWindow): Promise<Omit<LookupResult, 'indexUpdate'>> {
  const events = new Map<string, FoundEvent[]>();
  const undecodables: Undecodable[] = [];
  let recordsRead = 0;
  for (const id of ids) {
    const list: FoundEvent[] = [];
    for (const pos of await index.lookup('request', id)) {
      recordsRead++;
      const got = await readFound(source, pos, undecodables);
      if (got === undefined || belongsTo(got.found, got.record) !== id) continue;
      if (!inWindow(got.found, o)) continue;
      list.push(got.found);
    }
    events.set(id, list.sort(byTime));
  }
  return { strategy: 'index', events, undecodable: undecodables, recordsRead };
}

const inWindow = (f: FoundEvent, o: TimeWindow): boolean => (o.from === undefined || f.event.occurredAt >= o.from) && (o.to === undefined || f.event.occurredAt <= o.to);

/** Scan the given partitions for records whose key is one of `keys`; decode the matches. */
async function scanKeys(
  source: LogSource,
  topic: TopicName,
  partitions: ReadonlyMap<number, ReadonlySet<string>>,
  window: TimeWindow,
  onProgress: ProgressFn | undefined,
  sink: (found: FoundEvent, record: LogRecord) => void,
  undecodables: Undecodable[],
): Promise<number> {
  const spec = source.topics[topic];
  if (spec.partitions === 0 || partitions.size === 0) return 0;
  const { ranges } = await planScan(source, [spec.name], { ...window, partitions: new Map([[spec.name, [...partitions.keys()]]]) });
  const wanted = new Map<number, Buffer[]>([...partitions].map(([p, keys]) => [p, [...keys].map((k) => Buffer.from(k, 'utf8'))]));
  let read = 0;
  for await (const batch of scanRecords(source, ranges, { onProgress, phase: `scan ${topic}` })) {
    read += batch.length;
    for (const record of batch) {
      const keys = wanted.get(record.partition);
      if (record.key === null || keys === undefined || !keys.some((k) => k.equals(record.key!))) continue;
      const d = await decodeRecord(source, record);
      if (!d.ok) {
        if (record.value !== null) undecodables.push(undecodable(record, d.code, d.error));
        continue;
      }
      const found: FoundEvent = { event: d.event, topic, position: { topic: record.topic, partition: record.partition, offset: record.offset }, timestamp: record.timestamp };
      if (inWindow(found, window)) sink(found, record);
    }
  }
  return read;
}

function around(found: readonly FoundEvent[], o: LookupOptions): TimeWindow {
  if (o.from !== undefined || o.to !== undefined) return { from: o.from, to: o.to };
  if (found.length === 0) return {};
  const margin = o.aroundMs ?? 900_000;
  let lo = Infinity;
  let hi = -Infinity;
  for (const f of found) {
    lo = Math.min(lo, f.event.occurredAt, f.timestamp);
    hi = Math.max(hi, f.event.occurredAt, f.timestamp);
  }
  return { from: lo - margin, to: hi + margin };
}

/**
 * Whether the decisions found explain a request's whole path: it ended (completed or rejected)
 * and every attempt up to the last one seen was routed (a rejected attempt needs no routing).
 */
function pathClosed(list: readonly FoundEvent[]): boolean {
  if (!list.some((f) => f.event.type === 'InferenceCompleted' || f.event.type === 'RequestRejected')) return false;
  let last = 0;
  const routed = new Set<number>();
  const rejected = new Set<number>();
  for (const { event: e } of list) {
    if (!('attempt' in e)) continue;
    last = Math.max(last, e.attempt);
    if (e.type === 'RequestRouted') routed.add(e.attempt);
    if (e.type === 'RequestRejected') rejected.add(e.attempt);
  }
  for (let a = 1; a <= last; a++) if (!routed.has(a) && !rejected.has(a)) return false;
  return true;
}

async function findKeyed(source: LogSource, ids: readonly string[], o: LookupOptions): Promise<LookupResult> {
  const events = new Map<string, FoundEvent[]>(ids.map((id) => [id, []]));
  const undecodables: Undecodable[] = [];
  const seen = new Set<string>();
  const add = (found: FoundEvent, record: LogRecord): void => {
    const id = belongsTo(found, record);
    const list = id === null ? undefined : events.get(id);
    const k = `${found.position.topic}/${found.position.partition}/${found.position.offset}`;
    if (list === undefined || seen.has(k)) return;
    seen.add(k);
    list.push(found);
  };
  const all = (): FoundEvent[] => [...events.values()].flat();
  const byPartition = (topic: TopicName, keyOf: (id: string) => string | null): Map<number, Set<string>> => {
    const m = new Map<number, Set<string>>();
    const n = source.topics[topic].partitions;
    if (n === 0) return m;
    for (const id of ids) {
      const key = keyOf(id);
      if (key === null) continue;
      const p = partitionForKey(Buffer.from(key, 'utf8'), n);
      let set = m.get(p);
      if (set === undefined) m.set(p, (set = new Set()));
      set.add(key);
    }
    return m;
  };
  let read = 0;
  const explicit: TimeWindow = { from: o.from, to: o.to };

  // 1. results: the partition of each request id.
  read += await scanKeys(source, 'results', byPartition('results', (id) => id), explicit, o.onProgress, add, undecodables);

  // 2. decisions: the lanes the results name; every lane for requests whose path is not closed.
  const lanes = new Map<number, Set<string>>();
  for (const [id, list] of events) {
    for (const { event: e } of list) {
      if (e.type !== 'InferenceStarted' && e.type !== 'InferenceCompleted' && e.type !== 'InferenceFailed') continue;
      let set = lanes.get(e.lane);
      if (set === undefined) lanes.set(e.lane, (set = new Set()));
      set.add(id);
    }
  }
  read += await scanKeys(source, 'decisions', lanes, around(all(), o), o.onProgress, add, undecodables);
  const missing = ids.filter((id) => !pathClosed(events.get(id)!));
  if (missing.length > 0 && source.topics.decisions.partitions > 0) {
    const every = new Map<number, Set<string>>();
    for (let lane = 0; lane < source.topics.decisions.partitions; lane++) every.set(lane, new Set(missing));
    read += await scanKeys(source, 'decisions', every, around(all(), o), o.onProgress, add, undecodables);
  }

  // 3. requests: the recorded position, else the partition of sessionId ?? requestId.
  const sessions = new Map<string, string>();
  const toScan: string[] = [];
  for (const [id, list] of events) {
    const routed = list.find((f) => f.event.type === 'RequestRouted' && f.event.request !== null);
    if (routed !== undefined && routed.event.type === 'RequestRouted' && routed.event.request !== null) {
      const record = await readAt(source, routed.event.request);
      read++;
      if (record !== undefined) {
        const d = await decodeRecord(source, record);
        if (d.ok && d.event.requestId === id) {
          add({ event: d.event, topic: 'requests', position: routed.event.request, timestamp: record.timestamp }, record);
          continue;
        }
      }
    }
    const withSession = list.find((f) => 'sessionId' in f.event && typeof (f.event as { sessionId?: unknown }).sessionId === 'string');
    if (withSession !== undefined) sessions.set(id, (withSession.event as { sessionId: string }).sessionId);
    toScan.push(id);
  }
  if (toScan.length > 0) {
    const requestKeys = new Map<number, Set<string>>();
    const n = source.topics.requests.partitions;
    for (const id of toScan) {
      for (const key of new Set([id, sessions.get(id) ?? id])) {
        const p = partitionForKey(Buffer.from(key, 'utf8'), n);
        let set = requestKeys.get(p);
        if (set === undefined) requestKeys.set(p, (set = new Set()));
        set.add(key);
      }
    }
    if (n > 0) read += await scanKeys(source, 'requests', requestKeys, around(all(), o), o.onProgress, add, undecodables);
  }

  // 4. deadletter: the original key is the request id.
  const dl = new Map<number, Set<string>>();
  if (source.topics.deadletter.partitions > 0) for (let p = 0; p < source.topics.deadletter.partitions; p++) dl.set(p, new Set(ids));
  read += await scanKeys(source, 'deadletter', dl, around(all(), o), o.onProgress, add, undecodables);

  for (const list of events.values()) list.sort(byTime);
  return { strategy: 'keyed', events, undecodable: undecodables, recordsRead: read };
}

export interface SessionLookup {
  strategy: 'index' | 'keyed';
  sessionId: string;
  /** The session's requests, in log-time order. */
  requests: FoundEvent[];
  /** SessionState records of the session. */
  states: FoundEvent[];
  /** Every record of each request of the session. */
  events: Map<string, FoundEvent[]>;
  undecodable: Undecodable[];
  recordsRead: number;
}

/** A session's requests (InferenceRequested with that sessionId), its SessionState records, and each request's records. */
export async function findSession(source: LogSource, sessionId: string, o: LookupOptions = {}): Promise<SessionLookup> {
  const undecodables: Undecodable[] = [];
  const requests: FoundEvent[] = [];
  const states: FoundEvent[] = [];
  const take = (found: FoundEvent): void => {
    if (found.event.type === 'InferenceRequested' && found.event.sessionId === sessionId) requests.push(found);
    else if (found.event.type === 'SessionState' && found.event.sessionId === sessionId) states.push(found);
  };
  let read = 0;
  const opened = await openIndex(source, o);
  let strategy: 'index' | 'keyed' = 'keyed';
  if (opened !== undefined) {
    strategy = 'index';
    try {
      await opened.index.update({ onProgress: o.onProgress });
      for (const pos of await opened.index.lookup('session', sessionId)) {
        read++;
        const got = await readFound(source, pos, undecodables);
        if (got !== undefined && inWindow(got.found, o)) take(got.found);
      }
    } finally {
      if (opened.owned) await opened.index.close();
    }
  } else {
    const keyed = (topic: TopicName): Map<number, Set<string>> => {
      const n = source.topics[topic].partitions;
      return n === 0 ? new Map() : new Map([[partitionForKey(Buffer.from(sessionId, 'utf8'), n), new Set([sessionId])]]);
    };
    const window: TimeWindow = { from: o.from, to: o.to };
    read += await scanKeys(source, 'requests', keyed('requests'), window, o.onProgress, take, undecodables);
    read += await scanKeys(source, 'sessions', keyed('sessions'), window, o.onProgress, take, undecodables);
  }
  // One request id may be sent twice (a retried producer): keep its first record.
  const firstOf = new Map<string, FoundEvent>();
  for (const r of requests.sort(byTime)) {
    const id = (r.event as InferenceRequested).requestId ?? r.event.eventId;
    if (!firstOf.has(id)) firstOf.set(id, r);
  }
  const ids = [...firstOf.keys()];
  const found = ids.length === 0 ? undefined : await findRequests(source, ids, { ...o, index: opened === undefined ? false : o.index });
  return {
    strategy,
    sessionId,
    requests: [...firstOf.values()],
    states: states.sort(byTime),
    events: found?.events ?? new Map(),
    undecodable: [...undecodables, ...(found?.undecodable ?? [])],
    recordsRead: read + (found?.recordsRead ?? 0),
  };
}
