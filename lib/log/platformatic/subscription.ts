import {
  Consumer,
  FetchIsolationLevels,
  type ConsumerGroupJoinPayload,
  type fetchV17,
  type GroupAssignment,
  type GroupPartitionsAssigner,
  type GroupPartitionsAssignments,
} from '@platformatic/kafka';
import { backoffDelayMs } from '../../backoff.js';
import { OffsetCommitter } from '../commits.js';
import { SwitchyardError, errorMessage } from '../../errors.js';
import type { Logger } from '../../logger.js';
import type { LogRecord, SubscribeOptions, Subscription, TopicPartitions } from '../port.js';
import { baseOptions, retrySchedule, type ClientSettings } from './clients.js';
import { brokerErrors, fromPlatformaticError } from './errors.js';
import { recordsOf } from './records.js';

/** What a subscription needs from the log that opened it. */
export interface SubscriptionContext {
  client: ClientSettings;
  logger: Logger;
  sessionTimeoutMs: number;
  heartbeatIntervalMs: number;
  maxWaitMs: number;
  joinTimeoutMs: number;
  partitionConcurrency: number;
  /** Committed offsets of a group for a topic, indexed by partition; -1 = none. */
  committedOffsets(groupId: string, topic: string): Promise<number[]>;
  /** First (`earliest`) or next (`latest`) offsets of a topic, indexed by partition. */
  listOffsets(topic: string, which: 'earliest' | 'latest'): Promise<number[]>;
}

/** Protocol names shared with the kafkajs adapter, so that members of either client can share a group (a rolling switch). */
const ROUND_ROBIN = 'RoundRobinAssigner';
const STATIC = 'SwitchyardStatic';
/** Bytes one fetch may return per partition and in all (kafkajs' defaults). */
const PARTITION_FETCH_BYTES = 1024 * 1024;
const FETCH_BYTES = 10 * 1024 * 1024;

interface PartitionState {
  readonly topic: string;
  readonly partition: number;
  /** The next offset to fetch; undefined until the group's committed offset is known. */
  position: number | undefined;
  /** Fetched records not yet handed to `onBatch`, in offset order. */
  queue: LogRecord[];
  highWatermark: number;
  /** The loop handing this partition's records to `onBatch`, while it runs. */
  worker: Promise<void> | undefined;
  /** Set when a rebalance replaced this state: its fetched records are dropped. */
  stale: boolean;
}

const tpKey = (topic: string, partition: number): string => `${topic}\u0000${partition}`;

/**
 * The assigner of static (lane) subscriptions: every member announces the partitions it wants
 * in its subscription metadata (JSON, as the kafkajs adapter's `staticAssigner` does) and gets
 * exactly those. (With a single member, the library hands it every partition without asking the
 * assigner; the subscription then consumes only what it asked for.)
 */
const staticAssigner: GroupPartitionsAssigner = (_current, members) => {
  const out: GroupPartitionsAssignments[] = [];
  for (const [memberId, member] of members) {
    const asked = member.metadata && member.metadata.length > 0 ? (JSON.parse(member.metadata.toString()) as TopicPartitions[]) : [];
    const assignments = new Map<string, GroupAssignment>();
    for (const { topic, partitions } of asked) assignments.set(topic, { topic, partitions: [...(assignments.get(topic)?.partitions ?? []), ...partitions] });
    out.push({ memberId, assignments });
  }
  return out;
};

/**
 * Round robin of every subscribed topic's partitions over the members sorted by id, as kafkajs'
 * RoundRobinAssigner (the kafkajs adapter's) does, so a group spreads the same way whichever
 * client leads it. (The library's own round robin is not exported.)
 */
const roundRobinAssigner: GroupPartitionsAssigner = (_current, members, topics, metadata) => {
  const ids = [...members.keys()].sort();
  const out = ids.map((memberId) => ({ memberId, assignments: new Map<string, GroupAssignment>() }));
  let i = 0;
  for (const topic of [...topics].sort()) {
    const count = metadata.topics.get(topic)?.partitionsCount ?? 0;
    for (let partition = 0; partition < count; partition++) {
      const { assignments } = out[i++ % out.length]!;
      const a = assignments.get(topic) ?? { topic, partitions: [] };
      assignments.set(topic, a);
      a.partitions.push(partition);
    }
  }
  return out;
};

/** At most `n` at once. */
class Slots {
  private free: number;
  private readonly waiting: (() => void)[] = [];
  constructor(n: number) {
    this.free = n;
  }
  async acquire(): Promise<void> {
    if (this.free > 0) {
      this.free--;
      return;
    }
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }
  release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.free++;
  }
}

/**
 * A consumer-group subscription over @platformatic/kafka. The library's `Consumer` keeps the
 * group membership (join, sync, heartbeats on a timer of their own — also while `onBatch` runs —
 * and rejoining on a rebalance) and commits; its message stream is not used, because the port
 * hands out batches per partition with their high watermark, commits after each, and must drop
 * what it fetched for partitions a rebalance took away. Instead this fetches with the library's
 * `fetch` (the Fetch API on a client of its own, so a long poll never delays a heartbeat) from
 * each partition leader, one request per leader in flight, prefetching while earlier records are
 * handled; each partition's records go through `onBatch` in order, one batch at a time, and
 * different partitions' batches run concurrently (up to `partitionConcurrency`).
 */
export class PlatformaticSubscription implements Subscription {
  private readonly member: Consumer;
  private readonly fetcher: Consumer;
  private readonly states = new Map<string, PartitionState>();
  private assignedNow: TopicPartitions[] = [];
  private generation = 0;
  private stopping = false;
  private closing: Promise<void> | undefined;
  private wake: () => void = () => {};
  private readonly fetching = new Map<number, Promise<void>>();
  private loop: Promise<void> | undefined;
  private readonly slots: Slots;
  private readonly wanted: Set<string> | undefined;
  private readonly maxBatchRecords: number;
  private readonly maxQueued: number;
  private rejoining = false;
  private fetchFailures = 0;
  /** A `follow` subscription: no group is joined and nothing is committed; the member stays unused. */
  private readonly follow: boolean;
  /** Commits each handled batch's position without holding up the next batch. */
  private readonly committer: OffsetCommitter;

  constructor(
    private readonly ctx: SubscriptionContext,
    private readonly options: SubscribeOptions,
  ) {
    const { groupId, topics, assignment = { kind: 'group' }, maxBatchRecords = 500 } = options;
    this.maxBatchRecords = maxBatchRecords;
    // Prefetch up to a few batches per partition while one is being handled.
    this.maxQueued = Math.max(4 * maxBatchRecords, 2_000);
    this.slots = new Slots(ctx.partitionConcurrency);
    this.follow = assignment.kind === 'follow';
    this.wanted = assignment.kind === 'static' ? new Set(assignment.partitions.flatMap(({ topic, partitions }) => partitions.map((p) => tpKey(topic, p)))) : undefined;
    const protocol =
      assignment.kind === 'static'
        ? { name: STATIC, version: 1, metadata: Buffer.from(JSON.stringify(assignment.partitions)) }
        : { name: ROUND_ROBIN, version: 1, metadata: Buffer.alloc(0) };
    const base = baseOptions(ctx.client);
    this.member = new Consumer({
      ...base,
      groupId,
      sessionTimeout: ctx.sessionTimeoutMs,
      heartbeatInterval: ctx.heartbeatIntervalMs,
      // How long the coordinator waits for members to rejoin; the library rejoins as soon as a
      // heartbeat reports the rebalance, so this only bounds a stuck member.
      rebalanceTimeout: 25_000,
      requestTimeout: 30_000,
      protocols: [protocol],
      partitionAssigner: assignment.kind === 'static' ? staticAssigner : roundRobinAssigner,
      autocommit: false,
    });
    // The fetcher never joins: it only sends Fetch requests, on connections of its own, and
    // retries nothing itself (the fetch loop backs off and refreshes metadata).
    this.fetcher = new Consumer({ ...base, retries: 0, groupId, autocommit: false, isolationLevel: FetchIsolationLevels.READ_COMMITTED });
    this.member.topics.trackAll(...topics);
    this.committer = new OffsetCommitter(
      (offsets) => this.member.commit({ offsets: offsets.map(({ topic, partition, offset }) => ({ topic, partition, offset: BigInt(offset), leaderEpoch: -1 })) }),
      (offsets, err) => ctx.logger.warn({ groupId, offsets, err: errorMessage(err) }, 'kafka consumer (platformatic): commit failed; the records after the last commit may be delivered again'),
    );
  }

  assigned(): TopicPartitions[] {
    return this.assignedNow;
  }

  /** Joins the group and starts fetching; resolves once this member has its first assignment. */
  async start(): Promise<void> {
    const { groupId } = this.options;
    const { assignment } = this.options;
    if (assignment?.kind === 'follow') {
      // No group: own exactly the given partitions from here on, from the beginning or the end.
      const owned = new Map<string, number[]>();
      for (const { topic, partitions } of assignment.partitions) {
        if (this.options.topics.includes(topic)) owned.set(topic, [...new Set([...(owned.get(topic) ?? []), ...partitions])].sort((a, b) => a - b));
      }
      // Positions known before subscribe returns: "the end" is the end as of now.
      const positioned = this.own(owned, undefined);
      this.loop = this.fetchLoop();
      await positioned;
      return;
    }
    this.member.on('consumer:group:join', (payload: ConsumerGroupJoinPayload) => this.onJoin(payload));
    // The library stops heartbeating after a heartbeat fails for any reason but a rebalance (a
    // timeout, the coordinator restarting), and reports a failed rejoin as an `error` event; in
    // both cases the member would sit outside its group. Join again, with backoff, until it is in.
    this.member.on('consumer:heartbeat:error', ({ error }: { error: Error }) => {
      this.ctx.logger.warn({ groupId, err: errorMessage(error) }, 'kafka consumer (platformatic): heartbeat failed; joining the group again');
      void this.rejoin();
    });
    this.member.on('error', (error: Error) => {
      this.ctx.logger.warn({ groupId, err: errorMessage(error) }, 'kafka consumer (platformatic): rejoining the group failed; trying again');
      void this.rejoin();
    });
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.member.joinGroup({}),
        new Promise((_, reject) => {
          timer = setTimeout(
            () => reject(new SwitchyardError('SY_ERR_GROUP_REBALANCE', `group ${groupId}: no assignment within ${this.ctx.joinTimeoutMs} ms`, { retriable: true })),
            this.ctx.joinTimeoutMs,
          );
        }),
      ]);
    } catch (err) {
      this.stopping = true;
      await Promise.allSettled([this.member.close(), this.fetcher.close()]);
      throw fromPlatformaticError(err, `subscribing ${groupId}`);
    } finally {
      clearTimeout(timer);
    }
    this.loop = this.fetchLoop();
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      this.stopping = true;
      this.wake();
      await this.loop;
      await Promise.allSettled(this.fetching.values());
      // The batches in hand finish and commit; nothing more is handed out.
      await Promise.allSettled([...this.states.values()].map((s) => s.worker));
      await this.committer.settled();
      if (!this.follow) await this.member.close().catch((err: unknown) => this.ctx.logger.warn({ groupId: this.options.groupId, err: errorMessage(err) }, 'kafka consumer (platformatic): leaving the group failed'));
      await this.fetcher.close().catch(() => {});
    })();
    return this.closing;
  }

  private async rejoin(): Promise<void> {
    if (this.rejoining) return;
    this.rejoining = true;
    const schedule = retrySchedule(this.ctx.client.retryMaxMs);
    try {
      for (let attempt = 1; !this.stopping; attempt++) {
        try {
          await this.member.joinGroup({});
          return;
        } catch (err) {
          this.ctx.logger.debug({ groupId: this.options.groupId, err: errorMessage(err), attempt }, 'kafka consumer (platformatic): cannot join the group yet');
          await sleep(backoffDelayMs(schedule, attempt, Math.random()));
        }
      }
    } finally {
      this.rejoining = false;
    }
  }

  /**
   * A new generation: the partitions this member owns now. Every partition's state starts
   * afresh from the group's committed offset, once the batches in hand (which commit) are done,
   * so a partition kept across the rebalance is neither skipped nor delivered twice; records
   * fetched under the old generation are dropped.
   */
  private onJoin(payload: ConsumerGroupJoinPayload): void {
    const owned = new Map<string, number[]>();
    for (const { topic, partitions } of payload.assignments ?? []) {
      if (!this.options.topics.includes(topic)) continue;
      const mine = partitions.filter((p) => this.wanted === undefined || this.wanted.has(tpKey(topic, p)));
      if (mine.length > 0) owned.set(topic, [...mine].sort((a, b) => a - b));
    }
    void this.own(owned, payload);
  }

  /** Takes `owned` as this member's partitions (a new generation, or a `follow` subscription's start); resolves once they are positioned. */
  private own(owned: Map<string, number[]>, payload: ConsumerGroupJoinPayload | undefined): Promise<void> {
    const generation = ++this.generation;
    const previous = [...this.states.values()];
    for (const s of previous) {
      s.stale = true;
      s.queue = [];
    }
    this.states.clear();
    for (const [topic, partitions] of owned) {
      for (const partition of partitions) this.states.set(tpKey(topic, partition), { topic, partition, position: undefined, queue: [], highWatermark: 0, worker: undefined, stale: false });
    }
    this.assignedNow = [...owned].map(([topic, partitions]) => ({ topic, partitions }));
    // A partition another member owns now is committed by it.
    this.committer.retain((topic, partition) => this.states.has(tpKey(topic, partition)));
    this.ctx.logger.debug({ groupId: this.options.groupId, memberId: payload?.memberId, generationId: payload?.generationId, assigned: this.assignedNow }, 'kafka consumer (platformatic): assigned');
    this.options.onAssigned?.(this.assignedNow);
    const positioned = this.seek(generation, previous);
    this.wake();
    return positioned;
  }

  /** Positions of the owned partitions: the group's committed offsets, else earliest or latest. */
  private async seek(generation: number, previous: PartitionState[]): Promise<void> {
    await Promise.allSettled(previous.map((s) => s.worker));
    await this.committer.settled();
    const schedule = retrySchedule(this.ctx.client.retryMaxMs);
    for (let attempt = 1; generation === this.generation && !this.stopping; attempt++) {
      try {
        for (const { topic } of this.assignedNow) {
          const committed = this.follow ? [] : await this.ctx.committedOffsets(this.options.groupId, topic);
          const fallback = this.follow || committed.some((c) => c < 0) ? await this.ctx.listOffsets(topic, this.options.fromBeginning === false ? 'latest' : 'earliest') : [];
          if (generation !== this.generation) return;
          for (const s of this.states.values()) {
            if (s.topic !== topic) continue;
            const c = committed[s.partition] ?? -1;
            s.position = c >= 0 ? c : fallback[s.partition]!;
          }
        }
        this.wake();
        return;
      } catch (err) {
        this.ctx.logger.warn({ groupId: this.options.groupId, err: errorMessage(err), attempt }, 'kafka consumer (platformatic): cannot read the committed offsets yet');
        await sleep(backoffDelayMs(schedule, attempt, Math.random()));
      }
    }
  }

  private async fetchLoop(): Promise<void> {
    while (!this.stopping) {
      const woken = new Promise<void>((resolve) => (this.wake = resolve));
      try {
        await this.startFetches();
      } catch (err) {
        // Metadata unavailable (the broker away): try again after a backoff.
        this.ctx.logger.warn({ groupId: this.options.groupId, err: errorMessage(err) }, 'kafka consumer (platformatic): cannot fetch yet');
        await this.backoffFetch();
        continue;
      }
      await woken;
    }
  }

  /** Starts a fetch from every leader that has none in flight, for its partitions with room to prefetch. */
  private async startFetches(): Promise<void> {
    const ready = [...this.states.values()].filter((s) => s.position !== undefined && s.queue.length < this.maxQueued);
    if (ready.length === 0) return;
    const metadata = await this.fetcher.metadata({ topics: [...new Set(ready.map((s) => s.topic))] });
    const byLeader = new Map<number, PartitionState[]>();
    let leaderless = false;
    for (const s of ready) {
      const leader = metadata.topics.get(s.topic)?.partitions[s.partition]?.leader;
      if (leader === undefined || leader < 0) {
        leaderless = true;
        continue;
      }
      if (this.fetching.has(leader)) continue;
      const parts = byLeader.get(leader);
      if (parts === undefined) byLeader.set(leader, [s]);
      else parts.push(s);
    }
    if (leaderless) {
      // Partitions between leaders (a broker restarting, an election in progress): no fetch of
      // theirs will end and wake the loop, so ask for fresh metadata again after a backoff.
      this.fetcher.clearMetadata();
      const delayMs = this.nextFetchDelayMs();
      this.ctx.logger.warn({ groupId: this.options.groupId, failures: this.fetchFailures }, 'kafka consumer (platformatic): partitions without a leader; asking again');
      setTimeout(() => this.wake(), delayMs).unref();
    }
    const ids = new Map<string, string>();
    for (const [topic, t] of metadata.topics) ids.set(t.id, topic);
    for (const [leader, parts] of byLeader) {
      const fetch = this.fetchFrom(leader, parts, ids, metadata.topics).finally(() => {
        this.fetching.delete(leader);
        this.wake();
      });
      this.fetching.set(leader, fetch);
    }
  }

  private async fetchFrom(leader: number, parts: PartitionState[], ids: Map<string, string>, topics: Map<string, { id: string }>): Promise<void> {
    const generation = this.generation;
    // Each partition's state and the position asked, by topic then partition (no key strings per
    // partition per fetch: a view's fetch names every partition of several topics). Within one
    // generation these are the states `this.states` holds.
    const asked = new Map<string, Map<number, { s: PartitionState; from: number }>>();
    for (const s of parts) {
      let byPartition = asked.get(s.topic);
      if (byPartition === undefined) asked.set(s.topic, (byPartition = new Map()));
      byPartition.set(s.partition, { s, from: s.position! });
    }
    const request = new Map<string, fetchV17.FetchRequestTopic>();
    for (const s of parts) {
      const topicId = topics.get(s.topic)!.id;
      const t = request.get(topicId) ?? { topicId, partitions: [] };
      request.set(topicId, t);
      t.partitions.push({ partition: s.partition, fetchOffset: BigInt(s.position!), partitionMaxBytes: PARTITION_FETCH_BYTES, currentLeaderEpoch: -1, lastFetchedEpoch: -1 });
    }
    try {
      const response = await this.fetcher.fetch({ node: leader, topics: [...request.values()], maxWaitTime: this.ctx.maxWaitMs, minBytes: 1, maxBytes: FETCH_BYTES });
      this.fetchFailures = 0;
      if (generation !== this.generation || this.stopping) return;
      for (const t of response.responses) {
        const topic = ids.get(t.topicId);
        if (topic === undefined) continue;
        const byPartition = asked.get(topic);
        if (byPartition === undefined) continue;
        for (const p of t.partitions) {
          const a = byPartition.get(p.partitionIndex);
          if (a === undefined) continue;
          const { s, from } = a;
          // A rebalance or a reset since the request: its records are not this position's.
          if (s.stale || s.position !== from) continue;
          if (p.records === undefined || p.records.length === 0) {
            // Nothing new here (most partitions of a view's fetch): only the high watermark.
            s.highWatermark = Math.max(s.highWatermark, Number(p.highWatermark));
            continue;
          }
          const { records, next, highWatermark } = recordsOf(topic, p.partitionIndex, p, from);
          s.position = next;
          s.highWatermark = Math.max(s.highWatermark, highWatermark);
          if (records.length > 0) {
            for (const r of records) s.queue.push(r);
            this.drain(s);
          }
        }
      }
    } catch (err) {
      if (this.stopping) return;
      if (brokerErrors(err).has('OFFSET_OUT_OF_RANGE')) await this.resetOutOfRange(generation, parts);
      else {
        // A leader moved or the broker went away: fresh metadata before the next fetch.
        this.fetcher.clearMetadata();
        this.ctx.logger.warn({ groupId: this.options.groupId, leader, err: errorMessage(err) }, 'kafka consumer (platformatic): fetch failed; fetching again');
        await this.backoffFetch();
      }
    }
  }

  private async backoffFetch(): Promise<void> {
    await sleep(this.nextFetchDelayMs());
  }

  /** Counts one more failed (or impossible) fetch and gives the backoff before the next. */
  private nextFetchDelayMs(): number {
    this.fetchFailures++;
    return backoffDelayMs(retrySchedule(this.ctx.client.retryMaxMs), this.fetchFailures, Math.random());
  }

  /**
   * Records were deleted (retention) before this member read them, or the log was truncated:
   * move positions outside [earliest, latest] to the earliest retained offset, or to the end
   * (Kafka's `auto.offset.reset`, here by `fromBeginning`).
   */
  private async resetOutOfRange(generation: number, parts: PartitionState[]): Promise<void> {
    for (const topic of new Set(parts.map((s) => s.topic))) {
      const [earliest, latest] = await Promise.all([this.ctx.listOffsets(topic, 'earliest'), this.ctx.listOffsets(topic, 'latest')]);
      if (generation !== this.generation) return;
      for (const s of parts) {
        if (s.topic !== topic || s.stale || s.position === undefined) continue;
        const low = earliest[s.partition]!;
        const high = latest[s.partition]!;
        if (s.position >= low && s.position <= high) continue;
        const to = this.options.fromBeginning === false ? high : low;
        this.ctx.logger.warn({ groupId: this.options.groupId, topic, partition: s.partition, from: s.position, to }, 'kafka consumer (platformatic): offset out of range; moved');
        s.position = to;
      }
    }
  }

  /** Hands a partition's queued records to `onBatch`, one batch at a time, unless it already is. */
  private drain(s: PartitionState): void {
    if (s.worker !== undefined) return;
    s.worker = this.handle(s).finally(() => {
      s.worker = undefined;
      if (!s.stale && !this.stopping && s.queue.length > 0) this.drain(s);
      this.wake();
    });
  }

  private async handle(s: PartitionState): Promise<void> {
    const { groupId, onBatch } = this.options;
    while (s.queue.length > 0 && !s.stale && !this.stopping) {
      const records = s.queue.slice(0, this.maxBatchRecords);
      await this.slots.acquire();
      try {
        for (let attempt = 0; ; attempt++) {
          if (this.stopping || s.stale) return;
          try {
            await onBatch({ topic: s.topic, partition: s.partition, records, highWatermark: s.highWatermark });
            break;
          } catch (err) {
            this.ctx.logger.warn({ err: errorMessage(err), groupId, topic: s.topic, partition: s.partition, attempt }, 'batch handler failed; redelivering');
            await sleep(Math.min(50 * 2 ** attempt, 2_000));
          }
        }
      } finally {
        this.slots.release();
      }
      if (!s.stale) s.queue.splice(0, records.length);
      this.commit(s, records[records.length - 1]!.offset + 1);
    }
  }

  /**
   * Records the offset after a handled batch for the committer; the handler goes on to the next
   * batch without waiting for the coordinator's answer (`OffsetCommitter`).
   */
  private commit(s: PartitionState, offset: number): void {
    // A rebalance gave the partition to another member meanwhile: that member commits it (and
    // delivers these records again: at-least-once).
    if (this.follow || (s.stale && !this.states.has(tpKey(s.topic, s.partition)))) return;
    this.committer.add({ topic: s.topic, partition: s.partition, offset });
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
