import type { LogRecord, ReadRange, RecordPosition } from '../lib/log/port.js';
import { partitionForKey } from '../lib/log/partitioner.js';
import { eventType } from '../schemas/codec.js';
import { EVENT_SCHEMAS, type ClockEntry, type InferenceRequested, type SwitchyardEvent } from '../schemas/generated/events.js';
import { WIRE_HEADER_BYTES } from '../schemas/wire.js';
import { decide, routeCommandFromDecision, type DecisionCommandFields, type RouteCommand, type RouterDecision } from '../services/router/decide.js';
import { ALL_BUT_CLOCK, FULL, type FoldDecoder } from './decoder.js';
import { deepEqual, diffValues, type FieldDiff } from './diff.js';
import { CompactClock, EnvelopePeeker, type ListedEnvelope } from './envelope.js';
import { ClockFold } from './fold.js';
import { RecordBytes } from './match.js';
import { RequestIndex } from './request-index.js';
import { planScan, scanRecords, type OffsetBound, type PartitionRange, type ProgressFn, type TimeWindow } from './scan.js';
import { RecordStreams } from './streams.js';
import { decodeRecord, readAt, type LogSource, type PositionIndex } from './source.js';

/**
 * `replay verify`: re-derive every routing decision in a window and compare it with the record.
 *
 * For each RequestRouted / RequestRejected (on `decisions` or `results`) in the window:
 * 1. rebuild the router state the decision was made in — the fold (fold.ts, the router's own
 *    `evolve`) of exactly the records below each offset of the decision's clock;
 * 2. take the request it answers — the InferenceRequested at `RequestRouted.request`, or, for a
 *    rejection (or a decision without a position), the InferenceRequested whose eventId is the
 *    decision's causationId, found by request id (index, or the `requests` partition of its key);
 * 3. `routeCommandFromDecision` (everything the decision recorded besides the state: time,
 *    router, clock, pending decisions, policy version, attempt), `decide`, and compare the two
 *    events field by field.
 *
 * Speed: a router's clocks only grow, so each router (producer) gets one fold that only moves
 * forward — its decisions are verified in clock order (Σ offsets, which grows with the clock),
 * and each record of the prefix is folded once per router, not once per decision. A first pass
 * reads only envelopes (envelope.ts) to list and order the decisions; the second reads each
 * decision and its request with forward cursors and decodes the fold's records without the fields
 * the router state never reads (decoder.ts). A clock that does not dominate the fold (a router id
 * reused by a restarted router) restarts that router's fold from the beginning (`rebuilds`).
 *
 * In place: a decision written with the local schema is not decoded in full. Only the fields the
 * command needs are read, and the re-derived event is checked against the recorded bytes
 * (match.ts: true only when decoding them would give an equal event). Anything else — another
 * writer version, a difference, a request not at its position — takes the full path (decode,
 * compare field by field, diff), which alone decides divergences; `inPlace: false` takes it for
 * every decision. The common case also waits for nothing: records already read are used
 * synchronously, and only a partition to read or a schema to learn costs a promise.
 *
 * Outcomes: verified (identical), diverged (a field differs — a bug in the router core or
 * shell: zero is the expected result), inconclusive (differs, but retention removed the start
 * of a partition the clock names, so the fold may miss what the router saw), skipped (the
 * policy version was made by other routing code, or the request cannot be found).
 */

export interface VerifyOptions extends TimeWindow {
  /** Bounds on the decisions considered (on `decisions` / `results`). */
  offsets?: readonly OffsetBound[] | undefined;
  /** Widening of time bounds for record timestamps vs occurredAt. @default 60_000 */
  slackMs?: number | undefined;
  /** Only the decisions of these routers (producers). */
  producers?: readonly string[] | undefined;
  onProgress?: ProgressFn | undefined;
  /** Divergences reported in full (all are counted). @default 50 */
  maxDivergences?: number | undefined;
  /** Keyed search for the requests of rejections: how long before the decision the request may lie. @default 3_600_000 */
  requestLookbackMs?: number | undefined;
  /** Use the request index (embedded; the ClickHouse archive's log_ids) to find requests of rejections. @default true when the source has one */
  index?: RequestIndex | boolean | undefined;
  /**
   * Check decisions against their recorded bytes, decoding only what the command needs
   * (match.ts); any decision that does not match exactly is then decoded and compared in full.
   * False decodes and compares every decision in full (the reference path; same report).
   * @default true
   */
  inPlace?: boolean | undefined;
}

export interface Divergence {
  requestId: string | null;
  eventId: string;
  type: 'RequestRouted' | 'RequestRejected';
  producer: string;
  position: RecordPosition;
  occurredAt: number;
  /** The fields that differ, recorded vs re-derived. */
  diffs: FieldDiff[];
  recorded: RouterDecision;
  rederived: RouterDecision;
}

export type SkipReason = 'policy-version' | 'request-not-found' | 'decision-unreadable';

export interface VerifyReport {
  source: string;
  window: TimeWindow;
  /** Decisions in the window. */
  decisions: number;
  verified: number;
  /** Of the verified, those checked against their recorded bytes without decoding them in full (match.ts). */
  verifiedInPlace: number;
  diverged: number;
  inconclusive: number;
  skipped: Record<SkipReason, number>;
  /** A few examples per skip reason. */
  skippedExamples: Partial<Record<SkipReason, string[]>>;
  divergences: Divergence[];
  inconclusiveExamples: Divergence[];
  producers: { producer: string; decisions: number; rebuilds: number; foldedRecords: number }[];
  /** Records folded across all routers. */
  foldedRecords: number;
  /** Records of the prefixes that did not decode (skipped, as the router skips them). */
  undecodableRecords: number;
  /** Pass 1 (listing decisions) and pass 2 (verifying), ms. */
  listMs: number;
  verifyMs: number;
  ms: number;
  decisionsPerSec: number;
  /** True when nothing diverged. */
  ok: boolean;
  /** Threads that verified (replay/parallel.ts); 1 in this thread. */
  threads: number;
}

const DECISION_TOPICS = ['decisions', 'results'] as const;

/**
 * The decisions of a window as columns (plain data: it crosses to worker threads). The order is
 * the log's; `verifyListed` sorts.
 */
export interface DecisionList {
  producers: string[];
  n: number;
  producer: number[];
  clockSum: number[];
  occurredAt: number[];
  /** Index into DECISION_TOPICS. */
  topic: number[];
  partition: number[];
  offset: number[];
  /** Records on the decision topics that are decisions but do not read. */
  unreadable: number;
}

const emptyList = (): DecisionList => ({ producers: [], n: 0, producer: [], clockSum: [], occurredAt: [], topic: [], partition: [], offset: [], unreadable: 0 });

/** The decisions `indices` of a list, as a list of its own. */
export function sublist(list: DecisionList, indices: readonly number[]): DecisionList {
  const out = emptyList();
  const ids = new Map<number, number>();
  for (const i of indices) {
    const p = list.producer[i]!;
    let q = ids.get(p);
    if (q === undefined) {
      q = out.producers.length;
      out.producers.push(list.producers[p]!);
      ids.set(p, q);
    }
    out.producer.push(q);
    out.clockSum.push(list.clockSum[i]!);
    out.occurredAt.push(list.occurredAt[i]!);
    out.topic.push(list.topic[i]!);
    out.partition.push(list.partition[i]!);
    out.offset.push(list.offset[i]!);
    out.n++;
  }
  return out;
}

/** Where a rejection's request may be: its request id, session and causation (the request's eventId). */
interface WantedRequest {
  requestId: string;
  sessionId: string | null;
  causationId: string | null;
  at: number;
}

/**
 * Pass 1: the decisions in the window, from their envelopes only (envelope.ts), and the requests
 * of the rejections among them (found up front: one scan per `requests` partition when keyed).
 */
export async function listDecisions(source: LogSource, o: VerifyOptions = {}): Promise<{ list: DecisionList; requests: Map<string, InferenceRequested>; listMs: number }> {
  const t0 = performance.now();
  const topicNames = DECISION_TOPICS.map((t) => source.topics[t].name);
  const producersWanted = o.producers === undefined ? undefined : new Set(o.producers);
  const list = emptyList();
  /** Peeker's producer id → index in list.producers (-1: not wanted). */
  const producerIds: number[] = [];
  const wanted = new Map<string, WantedRequest>(); // by causationId (or requestId when none)
  const { ranges, total } = await planScan(source, topicNames, { from: o.from, to: o.to, offsets: o.offsets, slackMs: o.slackMs });
  const { peeker } = source;
  const env: ListedEnvelope = { occurredAt: 0, producer: 0, clockSum: 0 };
  let done = 0;
  o.onProgress?.({ phase: 'list decisions', done, total });
  for await (const batch of readAhead(source, ranges)) {
    const topic = topicNames.indexOf(batch[0]!.topic);
    for (const record of batch) {
      let type = peeker.typeOf(record.value);
      if (type === undefined) type = await peeker.resolve(record.value!.readInt32BE(1));
      if (type !== 'RequestRouted' && type !== 'RequestRejected') continue;
      if (!peeker.listed(record.value, env)) {
        list.unreadable++;
        continue;
      }
      if ((o.from !== undefined && env.occurredAt < o.from) || (o.to !== undefined && env.occurredAt > o.to)) continue;
      let p = producerIds[env.producer];
      if (p === undefined) {
        const name = peeker.producerName(env.producer);
        p = producersWanted !== undefined && !producersWanted.has(name) ? -1 : list.producers.push(name) - 1;
        producerIds[env.producer] = p;
      }
      if (p < 0) continue;
      list.producer.push(p);
      list.clockSum.push(env.clockSum);
      list.occurredAt.push(env.occurredAt);
      list.topic.push(topic);
      list.partition.push(record.partition);
      list.offset.push(record.offset);
      list.n++;
      const full = type === 'RequestRejected' ? peeker.peek(record.value) : null;
      if (full !== null && full.requestId !== null) {
        // The session decides the request's partition; only a full decode has it (rejections are few).
        const d = await decodeRecord(source, record);
        const sessionId = d.ok && d.event.type === 'RequestRejected' ? d.event.sessionId : null;
        wanted.set(full.causationId ?? full.requestId, { requestId: full.requestId, sessionId, causationId: full.causationId, at: full.occurredAt });
      }
    }
    done += batch.length;
    o.onProgress?.({ phase: 'list decisions', done, total });
  }
  const requests = await findWantedRequests(source, [...wanted.values()], o);
  return { list, requests, listMs: performance.now() - t0 };
}

/**
 * The records of `ranges` in order, in batches of at most `chunk` offsets, with up to `ahead`
 * reads under way while a batch is handled: each read is a window of offsets of its own, so they
 * need not wait for each other (a window with gaps — compaction — just returns fewer records). A
 * read that stops short of its window (a source may return fewer records than asked) is followed
 * from its last record before the next window is handed out.
 */
async function* readAhead(source: LogSource, ranges: readonly PartitionRange[], chunk = 4_000, ahead = 2): AsyncGenerator<LogRecord[]> {
  const windows: (ReadRange & { to: number })[] = [];
  for (const r of ranges) for (let from = r.from; from < r.to; from += chunk) windows.push({ topic: r.topic, partition: r.partition, from, to: Math.min(r.to, from + chunk), maxRecords: chunk });
  const reads: { window: ReadRange & { to: number }; records: Promise<LogRecord[]> }[] = [];
  let issued = 0;
  const issue = () => {
    while (issued < windows.length && reads.length < ahead) {
      const window = windows[issued++]!;
      const records = source.log.read(window);
      // Awaited in turn; until then a failure must not count as unhandled.
      records.catch(() => {});
      reads.push({ window, records });
    }
  };
  issue();
  while (reads.length > 0) {
    const { window, records } = reads.shift()!;
    let batch = await records;
    issue();
    while (batch.length > 0) {
      yield batch;
      const next = batch[batch.length - 1]!.offset + 1;
      if (next >= window.to) break;
      batch = await source.log.read({ ...window, from: next });
    }
  }
}

/** `replay verify` in this thread: list the decisions, then verify them all. */
export async function verifyDecisions(source: LogSource, o: VerifyOptions = {}): Promise<VerifyReport> {
  const t0 = performance.now();
  const { list, requests, listMs } = await listDecisions(source, o);
  const report = await verifyListed(source, list, requests, o);
  report.listMs = listMs;
  report.ms = performance.now() - t0;
  report.decisionsPerSec = report.ms > 0 ? (list.n / report.ms) * 1000 : 0;
  return report;
}

/**
 * Pass 2 over a list (all of a window's decisions, or a share of them): every router's
 * decisions in clock order, one forward fold per router. `requests` holds the requests of the
 * list's rejections (from `listDecisions`).
 */
export async function verifyListed(source: LogSource, listing: DecisionList, requestsByCause: ReadonlyMap<string, InferenceRequested>, o: VerifyOptions = {}): Promise<VerifyReport> {
  const t0 = performance.now();
  const maxDivergences = o.maxDivergences ?? 50;
  const topicNames = DECISION_TOPICS.map((t) => source.topics[t].name);
  const { peeker } = source;
  const report: VerifyReport = {
    source: source.description,
    window: { from: o.from, to: o.to },
    decisions: listing.n,
    verified: 0,
    verifiedInPlace: 0,
    diverged: 0,
    inconclusive: 0,
    skipped: { 'policy-version': 0, 'request-not-found': 0, 'decision-unreadable': listing.unreadable },
    skippedExamples: {},
    divergences: [],
    inconclusiveExamples: [],
    producers: [],
    foldedRecords: 0,
    undecodableRecords: 0,
    listMs: 0,
    verifyMs: 0,
    ms: 0,
    decisionsPerSec: 0,
    ok: true,
    threads: 1,
  };
  const skip = (reason: SkipReason, example: string) => {
    report.skipped[reason]++;
    const ex = (report.skippedExamples[reason] ??= []);
    if (ex.length < 5) ex.push(example);
  };

  // Pass 2: every router's decisions in clock order (Σ offsets; routers' clocks move together), one
  // forward fold per router over partitions read once for all of them.
  let done = 0;
  o.onProgress?.({ phase: 'verify', done, total: listing.n });
  const order = Array.from({ length: listing.n }, (_, i) => i);
  order.sort((a, b) => listing.clockSum[a]! - listing.clockSum[b]! || listing.producer[a]! - listing.producer[b]! || listing.occurredAt[a]! - listing.occurredAt[b]! || listing.topic[a]! - listing.topic[b]! || listing.partition[a]! - listing.partition[b]! || listing.offset[a]! - listing.offset[b]!);
  const remaining = listing.producers.map(() => 0);
  for (let i = 0; i < listing.n; i++) remaining[listing.producer[i]!]!++;
  const decoder = source.foldDecoder();
  const streams = new RecordStreams(source, 500);
  const viewPartitions: [string, number][] = [];
  for (const t of ['control', 'heartbeats', 'decisions', 'results'] as const) for (let p = 0; p < source.topics[t].partitions; p++) viewPartitions.push([source.topics[t].name, p]);
  const stats = listing.producers.map((producer, p) => ({ producer, decisions: remaining[p]!, rebuilds: 0, foldedRecords: 0 }));
  const folds: (ClockFold | undefined)[] = [];
  for (let p = 0; p < listing.producers.length; p++) {
    const fold = new ClockFold(source, decoder, streams);
    // Take a place in every partition now, so the shared streams keep what this fold still needs.
    for (const [topic, partition] of viewPartitions) await fold.join(topic, partition);
    folds.push(fold);
  }
  const retire = (p: number, fold: ClockFold) => {
    stats[p]!.foldedRecords += fold.records;
    report.undecodableRecords += fold.undecodable;
    fold.release();
  };

  const decisionDecoder = source.foldDecoder(ALL_BUT_CLOCK);
  const requestDecoder = source.foldDecoder(FULL);
  /** A record's event with a synchronous decoder (null when it does not decode). */
  const decodeWith = async (d: FoldDecoder, value: Buffer | null): Promise<SwitchyardEvent | null> => {
    if (d.needsPrepare(value) && !(await d.prepare(value))) return null;
    return d.decode(value);
  };
  /** The record at a position: from the shared stream (read once for the folds too), else from the log. */
  const recordAt = async (pos: RecordPosition) => {
    const stream = await streams.partition(pos.topic, pos.partition);
    const index = await stream.find(pos.offset);
    const record = index === undefined ? await readAt(source, pos) : stream.at(index);
    return record ?? undefined;
  };
  /** The recorded decision, with its clock read by envelope.ts. */
  const readDecision = async (pos: RecordPosition): Promise<RouterDecision | undefined> => {
    const record = await recordAt(pos);
    if (record === undefined) return undefined;
    const event = await decodeWith(decisionDecoder, record.value);
    const clock = peeker.clock(record.value);
    if (event === null || clock === null || (event.type !== 'RequestRouted' && event.type !== 'RequestRejected')) return undefined;
    event.clock = clock;
    return event;
  };
  /** A router's fold, advanced to a clock (started over when the clock is behind it: a router id reused by a restarted router). */
  const foldAt = async (p: number, clock: readonly ClockEntry[]): Promise<ClockFold> => {
    let fold = folds[p]!;
    if (!fold.canReach(clock)) {
      // On streams of its own: the shared ones have moved on.
      retire(p, fold);
      fold = folds[p] = new ClockFold(source, decoder);
      stats[p]!.rebuilds++;
    }
    await fold.advanceTo(clock);
    return fold;
  };

  /**
   * The common case, cheaply: read only what the command needs from the recorded bytes (and the
   * clock, compactly), decide, and check the re-derived event against the bytes (match.ts). True
   * when it is identical; false whenever anything is out of the ordinary (another writer schema, no
   * request at its position, another policy version, a clock behind the fold, a difference), and
   * the full path below then decides what it is.
   */
  const fast = o.inPlace === false ? new Map<number, RecordBytes>() : await commandReaders(source);
  const clock = new CompactClock();
  /** The decision's lean fields and clock (into `clock`), when it has a fast path. */
  const leanOf = (value: Buffer | null): { lean: LeanDecision; bytes: RecordBytes } | undefined => {
    const bytes = fast.get(EnvelopePeeker.schemaId(value));
    if (bytes === undefined || bytes.eventType === 'InferenceRequested' || !peeker.readClock(value, clock)) return undefined;
    try {
      return { lean: bytes.read(value!, WIRE_HEADER_BYTES) as unknown as LeanDecision, bytes };
    } catch {
      return undefined;
    }
  };
  /** Each router's last clock, whose unchanged entries the next one shares. */
  const lastClock: ClockEntry[][] = [];
  const decideAndMatch = (p: number, fold: ClockFold, lean: LeanDecision, request: InferenceRequested, bytes: RecordBytes, value: Buffer): boolean => {
    lean.clock = lastClock[p] = peeker.entries(clock, lastClock[p]);
    let command: RouteCommand;
    try {
      command = routeCommandFromDecision(lean, request);
    } catch {
      return false;
    }
    // `lean` was decoded from these bytes: fields the decision took over unchanged are not compared again.
    return bytes.matches(decide(command, fold.state), value, WIRE_HEADER_BYTES, lean);
  };
  /** The fast path without waiting: undefined when a record must be read or a schema learnt first (then `verifiedFast`). */
  const verifiedNow = (p: number, pos: RecordPosition): boolean | undefined => {
    const stream = streams.peek(pos.topic, pos.partition);
    const index = stream?.findLoaded(pos.offset);
    if (index === undefined) return undefined;
    const value = stream!.at(index)!.value;
    const found = leanOf(value);
    if (found === undefined) return false;
    const { lean, bytes } = found;
    // The folds need not decode it again (the fold's projection of a RequestRouted is a subset;
    // RequestRejected the folds ignore).
    if (lean.type === 'RequestRouted') stream!.offer(index, lean as unknown as SwitchyardEvent);
    let request: InferenceRequested | null | undefined;
    if (lean.type === 'RequestRouted' && lean.request !== null) {
      request = requestNow(lean.request, lean.causationId);
      if (request === undefined) return undefined;
    }
    if (request == null && lean.requestId !== null) request = requestsByCause.get(lean.causationId ?? lean.requestId);
    if (request == null) return false;
    const fold = folds[p]!;
    if (!fold.canReachCompact(clock) || fold.advanceLoaded(clock) !== undefined) return undefined;
    return decideAndMatch(p, fold, lean, request, bytes, value!);
  };
  /** The request at a position without waiting: null when it is not the one the decision names, undefined when it must be read first. */
  const requestNow = (pos: RecordPosition, eventId: string | null): InferenceRequested | null | undefined => {
    const stream = streams.peek(pos.topic, pos.partition);
    const index = stream?.findLoaded(pos.offset);
    if (index === undefined) return undefined;
    const value = stream!.at(index)!.value;
    // Read in place when written with the local schema (a value read wrongly could only make the
    // decision differ, and the full path then reads it with the codec's decoder).
    let event: SwitchyardEvent | null;
    const bytes = fast.get(EnvelopePeeker.schemaId(value));
    if (bytes?.eventType === 'InferenceRequested') {
      try {
        event = bytes.read(value!, WIRE_HEADER_BYTES) as unknown as SwitchyardEvent;
      } catch {
        event = null;
      }
    } else {
      if (requestDecoder.needsPrepare(value)) return undefined;
      event = requestDecoder.decode(value);
    }
    return event?.type === 'InferenceRequested' && event.eventId === eventId ? event : null;
  };
  /** The fast path, reading what it needs. */
  const verifiedFast = async (p: number, pos: RecordPosition): Promise<boolean> => {
    const record = await recordAt(pos);
    const found = record === undefined ? undefined : leanOf(record.value);
    if (found === undefined) return false;
    const { lean, bytes } = found;
    let request: InferenceRequested | undefined;
    if (lean.type === 'RequestRouted' && lean.request !== null) request = await readRequest(lean.request, lean.causationId);
    if (request === undefined && lean.requestId !== null) request = requestsByCause.get(lean.causationId ?? lean.requestId);
    if (request === undefined) return false;
    let fold = folds[p]!;
    if (!fold.canReachCompact(clock)) {
      // A clock behind this router's fold (a router id reused by a restarted router): start over, on streams of its own.
      retire(p, fold);
      fold = folds[p] = new ClockFold(source, decoder);
      stats[p]!.rebuilds++;
    }
    for (let wait = fold.advanceLoaded(clock); wait !== undefined; wait = fold.advanceLoaded(clock)) await wait;
    return decideAndMatch(p, fold, lean, request, bytes, record!.value!);
  };

  /** The request at a position, when it is the one the decision names. */
  const readRequest = async (pos: RecordPosition, eventId: string | null): Promise<InferenceRequested | undefined> => {
    const record = await recordAt(pos);
    const event = record === undefined ? null : await decodeWith(requestDecoder, record.value);
    return event?.type === 'InferenceRequested' && event.eventId === eventId ? event : undefined;
  };

  for (const i of order) {
    const p = listing.producer[i]!;
    const position = { topic: topicNames[listing.topic[i]!]!, partition: listing.partition[i]!, offset: listing.offset[i]! };
    done++;
    if ((done & 1023) === 0) o.onProgress?.({ phase: 'verify', done, total: listing.n });
    remaining[p]!--;
    if (fast.size > 0 && (verifiedNow(p, position) ?? (await verifiedFast(p, position)))) {
      report.verified++;
      report.verifiedInPlace++;
      if (remaining[p] === 0) retire(p, folds[p]!);
      continue;
    }
    const where = `${position.topic}/${position.partition}@${position.offset}`;
    const recorded = await readDecision(position);
    if (recorded === undefined) {
      skip('decision-unreadable', where);
      if (remaining[p] === 0) retire(p, folds[p]!);
      continue;
    }

    // The request.
    let request: InferenceRequested | undefined;
    if (recorded.type === 'RequestRouted' && recorded.request !== null) request = await readRequest(recorded.request, recorded.causationId);
    if (request === undefined && recorded.requestId !== null) {
      request = requestsByCause.get(recorded.causationId ?? recorded.requestId);
      if (request === undefined && recorded.type === 'RequestRouted') {
        // A decision without a position (re-dispatch): look it up on its own.
        const found = await findWantedRequests(source, [{ requestId: recorded.requestId, sessionId: recorded.sessionId, causationId: recorded.causationId, at: recorded.occurredAt }], o);
        request = found.get(recorded.causationId ?? recorded.requestId);
      }
    }
    let command: RouteCommand | undefined;
    if (request === undefined) skip('request-not-found', `${recorded.type} ${recorded.requestId ?? '(no request id)'} at ${where}`);
    else {
      try {
        command = routeCommandFromDecision(recorded, request);
      } catch (err) {
        skip('policy-version', `${recorded.policyVersion} at ${where}: ${(err as Error).message}`);
      }
    }
    if (command !== undefined) {
      const fold = await foldAt(p, recorded.clock);

      const rederived = decide(command, fold.state);
      const diffs = deepEqual(recorded, rederived) ? [] : diffValues(recorded, rederived);
      if (diffs.length === 0) report.verified++;
      else {
        const divergence: Divergence = {
          requestId: recorded.requestId,
          eventId: recorded.eventId,
          type: recorded.type,
          producer: recorded.producer,
          position,
          occurredAt: recorded.occurredAt,
          diffs,
          recorded,
          rederived: structuredCloneDecision(rederived),
        };
        if (fold.truncated.size > 0) {
          report.inconclusive++;
          if (report.inconclusiveExamples.length < maxDivergences) report.inconclusiveExamples.push(divergence);
        } else {
          report.diverged++;
          if (report.divergences.length < maxDivergences) report.divergences.push(divergence);
        }
      }
    }
    // A router with no decision left lets go of the shared streams.
    if (remaining[p] === 0) retire(p, folds[p]!);
  }
  report.producers = stats;
  o.onProgress?.({ phase: 'verify', done: listing.n, total: listing.n });
  report.foldedRecords = report.producers.reduce((a, x) => a + x.foldedRecords, 0);
  report.verifyMs = performance.now() - t0;
  report.ms = performance.now() - t0;
  report.decisionsPerSec = report.ms > 0 ? (listing.n / report.ms) * 1000 : 0;
  report.ok = report.diverged === 0;
  return report;
}

/** What the fast path reads of a recorded decision: the command's fields and where its request is. */
type LeanDecision = DecisionCommandFields & Pick<RouterDecision, 'requestId' | 'causationId' | 'sessionId'>;

const LEAN_FIELDS: Record<RouterDecision['type'], readonly string[]> = {
  // workerId too: the folds take the lean decision as their event (it holds what `evolve` reads).
  RequestRouted: ['eventId', 'occurredAt', 'requestId', 'producer', 'causationId', 'workerId', 'sessionId', 'pendingDecisions', 'policyVersion', 'attempt', 'previousWorkerId', 'request'],
  RequestRejected: ['eventId', 'occurredAt', 'requestId', 'producer', 'causationId', 'sessionId', 'candidates', 'pendingDecisions', 'policyVersion', 'attempt'],
};

/**
 * Fields of a request `decide` does not read, left out by the fast path (should decide start to
 * read one, its decisions would differ there and take the full path, which decodes everything).
 */
const REQUEST_UNREAD: ReadonlySet<string> = new Set(['occurredAt', 'producer', 'causationId', 'clock', 'replyTopic']);

/**
 * Readers of the decisions (and requests) this codec writes, by schema id — only where the
 * registered schema is the local one, whose shape `decide`'s events have (another writer version
 * takes the full path).
 */
async function commandReaders(source: LogSource): Promise<Map<number, RecordBytes>> {
  const out = new Map<number, RecordBytes>();
  for (const type of ['RequestRouted', 'RequestRejected', 'InferenceRequested'] as const) {
    try {
      const id = source.codec.schemaId(type);
      const registered = JSON.stringify(JSON.parse(await source.registry.getById(id)));
      if (registered !== JSON.stringify(JSON.parse(EVENT_SCHEMAS[type].schema))) continue;
      const writer = eventType(registered);
      const fields = type === 'InferenceRequested' ? (writer as unknown as { fields: { name: string }[] }).fields.map((f) => f.name).filter((f) => !REQUEST_UNREAD.has(f)) : LEAN_FIELDS[type];
      out.set(id, new RecordBytes(writer, type, fields));
    } catch {
      // No fast path for this type: every decision of it takes the full path.
    }
  }
  return out;
}

/** decide's output shares arrays with its command; keep a copy that later decisions cannot touch. */
function structuredCloneDecision(d: RouterDecision): RouterDecision {
  return { ...d, candidates: d.candidates.map((c) => ({ ...c })) } as RouterDecision;
}

/**
 * The InferenceRequested of each wanted request, by causationId (the request's eventId; the
 * request id when the decision has none). With an index: its positions; keyed: the `requests`
 * partition of `sessionId ?? requestId`, from `requestLookbackMs` before the earliest decision.
 */
async function findWantedRequests(source: LogSource, wanted: readonly WantedRequest[], o: VerifyOptions): Promise<Map<string, InferenceRequested>> {
  const out = new Map<string, InferenceRequested>();
  if (wanted.length === 0) return out;
  const take = (event: SwitchyardEvent): void => {
    if (event.type !== 'InferenceRequested' || event.requestId === null) return;
    for (const key of [event.eventId, event.requestId]) {
      if (!out.has(key)) out.set(key, event);
    }
  };
  const matches = (w: WantedRequest, e: InferenceRequested) => e.requestId === w.requestId && (w.causationId === null || e.eventId === w.causationId);
  let index: PositionIndex | undefined;
  let owned = false;
  if (o.index instanceof RequestIndex) index = o.index;
  else if (o.index !== false && source.openIndex !== undefined) {
    // The ClickHouse archive's log_ids: nothing to bring up to date.
    index = await source.openIndex();
    owned = true;
  } else if (o.index !== false && source.indexDir !== undefined) {
    index = await RequestIndex.open(source);
    owned = true;
    await index.update();
  }
  if (index !== undefined) {
    const ix = index;
    try {
      const found: InferenceRequested[][] = [];
      const lookup = async (k: number): Promise<void> => {
        const w = wanted[k]!;
        const events: InferenceRequested[] = [];
        for (const pos of await ix.lookup('request', w.requestId)) {
          if (pos.topic !== source.topics.requests.name) continue;
          const r = await readAt(source, pos);
          const d = r === undefined ? undefined : await decodeRecord(source, r);
          if (d?.ok && d.event.type === 'InferenceRequested' && matches(w, d.event)) events.push(d.event);
        }
        found[k] = events;
      };
      // The first alone (it opens the index's files), then several at a time; taken in order.
      if (wanted.length > 0) await lookup(0);
      let next = 1;
      await Promise.all(
        Array.from({ length: Math.min(16, wanted.length - 1) }, async () => {
          while (next < wanted.length) await lookup(next++);
        }),
      );
      for (const events of found) for (const e of events) take(e);
    } finally {
      if (owned) await index.close();
    }
    return out;
  }
  const n = source.topics.requests.partitions;
  if (n === 0) return out;
  const keys = new Map<number, Set<string>>();
  let from = Infinity;
  let to = -Infinity;
  for (const w of wanted) {
    const key = w.sessionId ?? w.requestId;
    const p = partitionForKey(Buffer.from(key, 'utf8'), n);
    let set = keys.get(p);
    if (set === undefined) keys.set(p, (set = new Set()));
    set.add(key);
    from = Math.min(from, w.at);
    to = Math.max(to, w.at);
  }
  const byRequest = new Map(wanted.map((w) => [w.requestId, w]));
  const { ranges } = await planScan(source, [source.topics.requests.name], {
    from: from - (o.requestLookbackMs ?? 3_600_000),
    to,
    partitions: new Map([[source.topics.requests.name, [...keys.keys()]]]),
    slackMs: o.slackMs,
  });
  const wantedKeys = new Map([...keys].map(([p, set]) => [p, [...set].map((k) => Buffer.from(k, 'utf8'))]));
  for await (const batch of scanRecords(source, ranges, { onProgress: o.onProgress, phase: 'find rejected requests' })) {
    for (const record of batch) {
      const ks = wantedKeys.get(record.partition);
      if (record.key === null || ks === undefined || !ks.some((k) => k.equals(record.key!))) continue;
      const d = await decodeRecord(source, record);
      if (!d.ok || d.event.type !== 'InferenceRequested' || d.event.requestId === null) continue;
      const w = byRequest.get(d.event.requestId);
      if (w !== undefined && matches(w, d.event)) take(d.event);
    }
  }
  return out;
}
