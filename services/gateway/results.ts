import { SwitchyardError, errorMessage, isRetriable } from '../../lib/errors.js';
import { deadLetterFor, type DeadLetterDuty, type EventDecoder } from '../../lib/events/subscribe.js';
import type { Logger } from '../../lib/logger.js';
import type { Batch, EventLog, LogRecord, Subscription } from '../../lib/log/port.js';
import type { DeadLetteredInit } from '../../schemas/generated/events.js';
import { evolveStatus, isResultEvent, isTerminal, type RequestStatus, type ResultEvent } from './state.js';
import { StatusTable } from './status-table.js';

/** Options of the results tracker. Sizes and times are documented with their defaults. */
export interface ResultsTrackerOptions {
  log: EventLog;
  codec: EventDecoder;
  /** The physical `results` topic. */
  topic: string;
  /** Where undecodable records of `results` go (as the typed consumer does). */
  deadLetterTopic: string;
  /** The sink owns the dead letters of `results` (`DEAD_LETTER_OWNERS`): the tracker skips and counts. @default 'skip' */
  deadLetter?: DeadLetterDuty;
  /** Consumer group; must be unique to this gateway instance (every instance reads every partition). */
  groupId: string;
  /** This gateway's instance id (producer of DeadLettered events). */
  producer: string;
  /** Wall clock, ms. */
  now: () => number;
  logger: Logger;
  /** Most requests remembered. @default 100_000 */
  maxEntries?: number;
  /** Most bytes of remembered statuses and outputs (approximate). @default 268_435_456 (256 MiB) */
  maxBytes?: number;
  /** How long a request's status is remembered after its last event, ms. @default 900_000 (15 min) */
  ttlMs?: number;
  /** Records per partition read back from before the start, so GET works for recent requests after a restart. @default 1_000 */
  lookbackRecords?: number;
  /** Of those, only records newer than this are folded in, ms. @default ttlMs */
  lookbackMs?: number;
  /**
   * After each (re)assignment, for this long the tracker also reads forward with range reads
   * on partitions where the subscription has not yet delivered, closing the window in which a
   * new consumer resolves "latest" (see the class comment), ms. @default 10_000
   */
  settleMs?: number;
  /** Period of those reads, ms. @default 200 */
  sweepIntervalMs?: number;
  /** Most sync requests waiting at once (memory bound); the gateway answers 503 past it. @default 10_000 */
  maxWaiters?: number;
}

export type ResolvedResultsTrackerOptions = Required<ResultsTrackerOptions>;

const positiveInt = (name: string, v: number, min = 1): void => {
  if (!Number.isSafeInteger(v) || v < min) throw new SwitchyardError('SY_ERR_CONFIG', `results tracker: ${name} must be an integer ≥ ${min}, got ${v}`);
};

export function resolveResultsTrackerOptions(o: ResultsTrackerOptions): ResolvedResultsTrackerOptions {
  const ttlMs = o.ttlMs ?? 900_000;
  const r: ResolvedResultsTrackerOptions = {
    ...o,
    maxEntries: o.maxEntries ?? 100_000,
    maxBytes: o.maxBytes ?? 268_435_456,
    ttlMs,
    lookbackRecords: o.lookbackRecords ?? 1_000,
    lookbackMs: o.lookbackMs ?? ttlMs,
    settleMs: o.settleMs ?? 10_000,
    sweepIntervalMs: o.sweepIntervalMs ?? 200,
    maxWaiters: o.maxWaiters ?? 10_000,
    deadLetter: o.deadLetter ?? 'skip',
  };
  positiveInt('maxEntries', r.maxEntries);
  positiveInt('maxBytes', r.maxBytes, 1024);
  positiveInt('ttlMs', r.ttlMs);
  positiveInt('lookbackRecords', r.lookbackRecords, 0);
  positiveInt('lookbackMs', r.lookbackMs, 0);
  positiveInt('settleMs', r.settleMs, 0);
  positiveInt('sweepIntervalMs', r.sweepIntervalMs);
  positiveInt('maxWaiters', r.maxWaiters);
  if (!r.groupId) throw new SwitchyardError('SY_ERR_CONFIG', 'results tracker: groupId is required');
  return r;
}

/** A wait for a request's outcome (`ResultsTracker.waitFor`). */
export interface OutcomeWait {
  /** Its status once terminal, or what is known when the wait ends otherwise (undefined: nothing is). */
  readonly outcome: Promise<RequestStatus | undefined>;
  /** End the wait now; the outcome resolves with what is known. Idempotent. */
  cancel(): void;
}

const NOTHING = (): void => {};

interface Waiter {
  requestId: string;
  timer: NodeJS.Timeout | undefined;
  finish: (state: RequestStatus | undefined) => void;
}

export interface ResultsTrackerStats {
  /** Requests remembered. */
  entries: number;
  /** Their approximate size, bytes. */
  bytes: number;
  /** Sync requests waiting. */
  waiting: number;
  /** Result events folded in. */
  folded: number;
  /** Records of `results` that did not decode. */
  undecodable: number;
  /** Records read with range reads to fill gaps (lookback, settle window, holes before a batch). */
  rangeRead: number;
}

/**
 * The gateway's view of `results`: a bounded, expiring map of request statuses folded from
 * the topic, and the waiters of sync requests, woken by the fold itself (no polling).
 *
 * Reading. A consumer group unique to the instance subscribes to every partition from the end
 * ("latest"). Kafka resolves "latest" only once the new member fetches, a moment after it has
 * joined, so the tracker keeps its own position per partition and never relies on where the
 * subscription happened to start:
 * - at start it reads back the last `lookbackRecords` of each partition (those newer than
 *   `lookbackMs`) with range reads — so GET answers for recent requests after a restart;
 * - a delivered batch that begins past the position is preceded by a range read of the hole;
 *   records below the position (already folded) are skipped;
 * - for `settleMs` after each (re)assignment, partitions on which the subscription has not yet
 *   delivered are also read forward with range reads every `sweepIntervalMs`, so a result
 *   appended while "latest" was being resolved still wakes its waiter.
 * Per partition all of this is serialized, so each record is folded once, in order.
 *
 * Memory. Statuses live in an LRU bounded by count (`maxEntries`) and approximate bytes
 * (`maxBytes`, outputs included), expiring `ttlMs` after their last event, kept as columns
 * rather than objects (`StatusTable`: outputs copied into the table's own slabs, since decoded
 * bytes may be views into a shared slab that a kept view would pin). Under load the
 * oldest go first: a GET for an evicted or expired request answers 404, and a repeated
 * Idempotency-Key whose request was evicted is produced again (the router skips a requestId it
 * has decided, so it still runs once; its earlier result is then not returned). Waiters are
 * bounded by `maxWaiters`. The trade-off after a restart: GET knows requests whose results are
 * among the last `lookbackRecords` records of their partition and newer than `lookbackMs`;
 * older ones answer 404 (the log still has them: replay finds them).
 */
export class ResultsTracker {
  readonly options: ResolvedResultsTrackerOptions;
  private readonly table: StatusTable;
  private readonly waiters = new Map<string, Set<Waiter>>();
  private waiterCount = 0;
  private readonly appends = new Map<string, Promise<void>>();
  /** Next offset to fold, per partition. */
  private next: number[] = [];
  /** The subscription has delivered on this partition with no hole since the last assignment. */
  private anchored: boolean[] = [];
  private chains: Promise<void>[] = [];
  private subscription: Subscription | undefined;
  private caughtUp = false;
  private caughtUpPromise: Promise<void> = Promise.resolve();
  private sweepTimer: NodeJS.Timeout | undefined;
  private settleUntil = 0;
  private closed = false;
  private readonly counters = { folded: 0, undecodable: 0, rangeRead: 0 };

  constructor(options: ResultsTrackerOptions) {
    this.options = resolveResultsTrackerOptions(options);
    const { maxEntries, maxBytes, ttlMs, now } = this.options;
    this.table = new StatusTable({ maxEntries, maxBytes, ttlMs, now });
  }

  /**
   * Subscribe to `results` and start reading back the lookback; resolves once subscribed.
   * `whenCaughtUp()` resolves when the lookback is folded in.
   */
  async start(): Promise<void> {
    const { log, topic, groupId, lookbackRecords, lookbackMs, now, logger } = this.options;
    const partitions = await log.partitionCount(topic);
    if (partitions === undefined) throw new SwitchyardError('SY_ERR_LOG_UNKNOWN_TOPIC', `results topic ${topic} does not exist`, { detail: { topic } });
    const [starts, ends] = await Promise.all([log.startOffsets(topic), log.endOffsets(topic)]);
    this.next = ends.map((end, p) => Math.max(starts[p] ?? 0, end - lookbackRecords));
    this.anchored = ends.map(() => false);
    this.chains = ends.map(() => Promise.resolve());
    const minTimestamp = now() - lookbackMs;
    // Chained before subscribing, so a delivered batch waits for the lookback of its partition.
    const lookback = ends.map((end, p) => this.serial(p, () => this.fillTo(p, end, minTimestamp, 'lookback')));
    this.caughtUpPromise = this.retryUntilDone(lookback, ends).then(() => {
      this.caughtUp = true;
      logger.debug({ topic, partitions }, 'results tracker caught up');
    });
    this.subscription = await log.subscribe({
      groupId,
      topics: [topic],
      fromBeginning: false,
      onBatch: (batch) => this.onBatch(batch),
      onAssigned: () => this.settle(),
    });
    this.settle();
  }

  /** Resolves once the lookback is folded in (then `isCaughtUp()` is true). */
  whenCaughtUp(): Promise<void> {
    return this.caughtUpPromise;
  }

  isCaughtUp(): boolean {
    return this.caughtUp;
  }

  /** What is known of a request, or undefined. */
  get(requestId: string): RequestStatus | undefined {
    return this.table.get(requestId);
  }

  /**
   * Remember a request this gateway is producing, with the append in progress: a repeat of it
   * (same Idempotency-Key) waits for that append instead of producing again.
   */
  accept(status: RequestStatus, append: Promise<unknown>): Promise<void> {
    // Fold results that were already here (a request re-sent after a restart) over the acceptance.
    const known = this.table.peek(status.requestId);
    const version = this.table.set(status.requestId, known === undefined ? status : { ...known, acceptedAt: status.acceptedAt, fingerprint: status.fingerprint });
    const done = append.then(
      () => {
        this.appends.delete(status.requestId);
      },
      (err: unknown) => {
        this.appends.delete(status.requestId);
        // Forgotten again unless a result was folded in meanwhile.
        if (this.table.versionOf(status.requestId) === version) this.table.delete(status.requestId);
        throw err;
      },
    );
    this.appends.set(status.requestId, done);
    return done;
  }

  /** The append of a request being accepted here, when one is in progress. */
  appending(requestId: string): Promise<void> | undefined {
    return this.appends.get(requestId);
  }

  /** Sync requests waiting now. */
  get waiting(): number {
    return this.waiterCount;
  }

  /** Whether another sync request may wait (`maxWaiters`). */
  canWait(): boolean {
    return this.waiterCount < this.options.maxWaiters;
  }

  /**
   * Wait until the request is completed, failed or rejected, at most `timeoutMs`: the outcome
   * resolves with its status then, or with what is known when the time is up, the wait is
   * cancelled (the client went away) or the tracker closes (undefined when nothing is). A handle
   * to cancel, not an AbortSignal: an AbortController per request cost more than the rest of the wait.
   */
  waitFor(requestId: string, timeoutMs: number): OutcomeWait {
    const known = this.table.get(requestId);
    if ((known !== undefined && isTerminal(known.status)) || timeoutMs <= 0 || this.closed) return { outcome: Promise.resolve(known), cancel: NOTHING };
    let waiter!: Waiter;
    const outcome = new Promise<RequestStatus | undefined>((resolve) => {
      waiter = {
        requestId,
        timer: undefined,
        finish: (state) => {
          clearTimeout(waiter.timer);
          const set = this.waiters.get(requestId);
          if (set?.delete(waiter)) {
            this.waiterCount--;
            if (set.size === 0) this.waiters.delete(requestId);
          }
          resolve(state);
        },
      };
    });
    let set = this.waiters.get(requestId);
    if (set === undefined) this.waiters.set(requestId, (set = new Set()));
    set.add(waiter);
    this.waiterCount++;
    waiter.timer = setTimeout(() => waiter.finish(this.table.get(requestId)), timeoutMs);
    return { outcome, cancel: () => waiter.finish(this.table.get(requestId)) };
  }

  stats(): ResultsTrackerStats {
    return { entries: this.table.size, bytes: this.table.bytes, waiting: this.waiterCount, ...this.counters };
  }

  /** Stop reading; every waiter is answered with what is known now. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.sweepTimer);
    for (const set of [...this.waiters.values()]) for (const w of [...set]) w.finish(this.table.get(w.requestId));
    await this.subscription?.close();
    await Promise.allSettled(this.chains);
  }

  // -- reading ---------------------------------------------------------------------------

  private async onBatch(batch: Batch): Promise<void> {
    const p = batch.partition;
    if (batch.topic !== this.options.topic || p >= this.next.length) return;
    await this.serial(p, async () => {
      const first = batch.records[0]?.offset;
      if (first === undefined) return;
      if (first > this.next[p]!) await this.fillTo(p, first, 0, 'hole');
      this.anchored[p] = true;
      const dead: DeadLetteredInit[] = [];
      for (const record of batch.records) {
        if (record.offset < this.next[p]!) continue;
        const bad = await this.foldRecord(record);
        if (bad !== undefined) dead.push(bad);
        this.next[p] = record.offset + 1;
      }
      if (dead.length > 0 && this.options.deadLetter === 'write') await this.deadLetter(dead);
    });
  }

  /** Range-read partition `p` from its position up to `to`, folding records at or after `minTimestamp`. */
  private async fillTo(p: number, to: number, minTimestamp: number, why: 'lookback' | 'hole' | 'settle'): Promise<void> {
    const { log, topic, logger } = this.options;
    while (this.next[p]! < to && !this.closed) {
      const records = await log.read({ topic, partition: p, from: this.next[p]!, to, maxRecords: 2_000 });
      if (records.length === 0) {
        this.next[p] = to; // compacted or removed by retention
        break;
      }
      for (const record of records) {
        if (record.offset < this.next[p]!) continue;
        this.counters.rangeRead++;
        if (record.timestamp >= minTimestamp) {
          const bad = await this.foldRecord(record);
          if (bad !== undefined) logger.warn({ topic, partition: p, offset: record.offset, error: bad.errorCode, why }, 'results tracker: undecodable record skipped');
        }
        this.next[p] = record.offset + 1;
      }
    }
  }

  /** Fold one record; a DeadLettered event for it when it does not decode. Retriable failures throw. */
  private async foldRecord(record: LogRecord): Promise<DeadLetteredInit | undefined> {
    const { codec, groupId, producer, now } = this.options;
    let event;
    try {
      if (record.value === null || record.value.length === 0) throw new SwitchyardError('SY_ERR_CODEC_DECODE', 'record has no value');
      event = codec.decodeKnown?.(record.value) ?? (await codec.decode(record.value));
    } catch (err) {
      if (isRetriable(err)) throw err;
      this.counters.undecodable++;
      return deadLetterFor(record, err, groupId, producer, now());
    }
    if (isResultEvent(event) && event.requestId !== null && event.requestId !== '') this.fold(event);
    return undefined;
  }

  private fold(event: ResultEvent): void {
    const requestId = event.requestId!;
    const before = this.table.get(requestId);
    const after = evolveStatus(before, event);
    this.counters.folded++;
    if (after === before) return;
    // The table keeps a copy of the output; `after` (a waiter's answer) may view the decoder's memory for a moment.
    this.table.set(requestId, after);
    if (isTerminal(after.status)) {
      const set = this.waiters.get(requestId);
      if (set !== undefined) for (const w of [...set]) w.finish(after);
    }
  }

  private async deadLetter(dead: DeadLetteredInit[]): Promise<void> {
    const { log, codec, deadLetterTopic } = this.options;
    await log.append(dead.map((d) => ({ topic: deadLetterTopic, key: d.originalKey ?? null, value: codec.encode(d), headers: { 'sy-error': d.errorCode } })));
  }

  /** Run `task` after every earlier task of partition `p`. */
  private serial(p: number, task: () => Promise<void>): Promise<void> {
    const run = this.chains[p]!.then(task);
    this.chains[p] = run.catch(() => {});
    return run;
  }

  /** Lookback reads retried with backoff until they succeed or the tracker closes. */
  private async retryUntilDone(first: Promise<void>[], ends: number[]): Promise<void> {
    const { logger, topic, lookbackMs, now } = this.options;
    for (let attempt = 0; ; attempt++) {
      const results = await Promise.allSettled(attempt === 0 ? first : ends.map((end, p) => this.serial(p, () => this.fillTo(p, end, now() - lookbackMs, 'lookback'))));
      const failed = results.find((r) => r.status === 'rejected');
      if (failed === undefined || this.closed) return;
      logger.warn({ topic, attempt, err: errorMessage(failed.reason) }, 'results tracker: lookback read failed; retrying');
      await new Promise((r) => setTimeout(r, Math.min(100 * 2 ** attempt, 5_000)));
    }
  }

  /** (Re)start the settle window: read forward on partitions the subscription has not delivered on. */
  private settle(): void {
    if (this.closed || this.next.length === 0) return;
    this.anchored = this.anchored.map(() => false);
    this.settleUntil = this.options.now() + this.options.settleMs;
    if (this.sweepTimer !== undefined || this.options.settleMs === 0) return;
    this.sweepTimer = setInterval(() => void this.sweep(), this.options.sweepIntervalMs);
    this.sweepTimer.unref();
  }

  private sweeping = false;

  private async sweep(): Promise<void> {
    const { log, topic, logger, now } = this.options;
    if (this.closed || now() > this.settleUntil || this.anchored.every(Boolean)) {
      clearInterval(this.sweepTimer);
      this.sweepTimer = undefined;
      return;
    }
    if (this.sweeping) return;
    this.sweeping = true;
    try {
      const ends = await log.endOffsets(topic);
      await Promise.all(
        ends.map((end, p) => (this.anchored[p] || end <= (this.next[p] ?? end) ? undefined : this.serial(p, () => this.fillTo(p, end, 0, 'settle')))),
      );
    } catch (err) {
      logger.debug({ topic, err: errorMessage(err) }, 'results tracker: settle read failed');
    } finally {
      this.sweeping = false;
    }
  }
}
