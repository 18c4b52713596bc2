import { errorMessage } from '../../lib/errors.js';
import { deadLetterPolicy, subscribeEvents } from '../../lib/events/subscribe.js';
import type { LogRecord, Subscription, TopicPartitions } from '../../lib/log/port.js';
import { RecentIds } from '../../lib/recent-ids.js';
import type { ServiceContext } from '../../lib/runtime.js';
import { instanceId } from '../../lib/runtime.js';
import type { ClockEntry, InferenceRequested, PendingDecision, SwitchyardEvent } from '../../schemas/generated/events.js';
import { decide, REJECTED, type RouterDecision } from './decide.js';
import { resolveRouterPolicy, type RouterPolicy, type RouterPolicyInput } from './policies/options.js';
import { evolve, initialRouterState, type RouterState } from './state.js';

/** Options of one router replica. */
export interface RouterOptions {
  /** Instance id, the `producer` of its decisions. @default 'router-<random>' */
  routerId?: string;
  /** Routing policy options (compiled once). @default the defaults of RouterPolicy */
  policy?: RouterPolicyInput;
  /** Consumer group shared by all replicas for `requests`. @default '<prefix>router' */
  groupId?: string;
  /**
   * How many recently decided request ids are remembered to skip duplicates: the last this many
   * decided (~26 bytes each, outside the V8 heap). It also backs an Idempotency-Key's "runs once"
   * after the gateway's tracker has forgotten the request. @default 200_000
   */
  dedupWindow?: number;
  /**
   * A view whose newest heartbeat is older than this is suspect: before deciding, the router
   * checks that it has folded `heartbeats` and `control` to their end, and waits (up to
   * `maxViewWaitMs`) while it has not — after a broker restart its view consumer may resume
   * after its requests consumer, and a stale view would refuse requests healthy workers could
   * serve. The router also waits while its view is current but every worker's newest heartbeat
   * is older than the policy's `staleHeartbeatMs` and some worker is not evicted: on a saturated
   * host heartbeats arrive late, and whether a silent worker is dead is the controller's verdict
   * (an eviction), not this router's. @default 500
   */
  staleViewMs?: number;
  /** Longest a batch waits for the view to catch up, or for a silent fleet's heartbeats or eviction, ms. @default 10_000 */
  maxViewWaitMs?: number;
}

export interface RouterStats {
  decided: number;
  routed: number;
  rejected: number;
  duplicatesSkipped: number;
  undecodableViewRecords: number;
  reasons: Record<string, number>;
  /** Age of the newest heartbeat when it was folded, ms: how far the router's view trails the workers. */
  viewLagMs: number;
  /** The largest such age seen. */
  maxViewLagMs: number;
  /** Batches that waited for the view to reach the log's end before deciding, and for how long in all (ms). */
  viewWaits: number;
  viewWaitMs: number;
}

export interface RunningRouter {
  readonly id: string;
  readonly policy: RouterPolicy;
  /** The router's current state (read-only use). */
  state(): RouterState;
  /** The clock the state was folded from. */
  clock(): ClockEntry[];
  stats(): RouterStats;
  close(): Promise<void>;
}

/** Rejections that depend on the router's view of the fleet and the models (see `onEvents`). */
const VIEW_REFUSALS: ReadonlySet<string> = new Set([REJECTED.NO_CAPACITY, REJECTED.SHED, REJECTED.UNKNOWN_MODEL]);

/** Topics whose fold is the router's state. */
const VIEW_TOPICS = ['control', 'heartbeats', 'decisions', 'results'] as const;

/**
 * A router replica: folds `control`, `heartbeats`, `decisions` and `results` into its state
 * (every partition, from the start of retention), and decides each request of its share of
 * `requests` with the pure decider. A decision goes to the chosen worker's lane partition of
 * `decisions` (the dispatch); a rejection goes to `results`, where clients wait.
 *
 * The clock of a decision is exactly the per-partition prefix folded into the state when it
 * was made; the router's own decisions not yet read back are passed (and recorded) as
 * `pendingDecisions`. Together they let `replay verify` re-derive every decision.
 */
export async function startRouter(ctx: ServiceContext, options: RouterOptions = {}): Promise<RunningRouter> {
  const routerId = options.routerId ?? instanceId('router');
  const policy = resolveRouterPolicy(options.policy);
  const groupId = options.groupId ?? `${ctx.topics.requests.name.replace(/requests$/, '')}router`;
  const lanes = ctx.topics.decisions.partitions;
  const state = initialRouterState({ lanes });
  const clock = new Map<string, ClockEntry>();
  /** Own decisions appended but not yet folded back, by eventId. */
  const pending = new Map<string, { workerId: string; lane: number }>();
  // The last ids decided, kept outside the V8 heap (lib/recent-ids.ts): 200k strings held for
  // minutes were a fifth of what every mark-compact walked.
  const decided = new RecentIds(options.dedupWindow ?? 200_000);
  const stats: RouterStats = { decided: 0, routed: 0, rejected: 0, duplicatesSkipped: 0, undecodableViewRecords: 0, reasons: {}, viewLagMs: 0, maxViewLagMs: 0, viewWaits: 0, viewWaitMs: 0 };
  const staleViewMs = options.staleViewMs ?? 500;
  const maxViewWaitMs = options.maxViewWaitMs ?? 10_000;
  /** occurredAt of the newest heartbeat folded. */
  let newestHeartbeatAt = 0;

  const fold = (event: SwitchyardEvent) => {
    evolve(state, event);
    if (event.type === 'WorkerHeartbeat') {
      if (event.occurredAt > newestHeartbeatAt) newestHeartbeatAt = event.occurredAt;
      stats.viewLagMs = ctx.now() - event.occurredAt;
      if (stats.viewLagMs > stats.maxViewLagMs) stats.maxViewLagMs = stats.viewLagMs;
    }
    if (event.type === 'RequestRouted' || event.type === 'RequestRejected') {
      if (event.requestId !== null) decided.add(event.requestId);
      if (event.producer === routerId) pending.delete(event.eventId);
    }
  };
  /** The clock's entries in the order a decision records them (topic, then partition); sorted when a partition first appears. */
  const clockOrder: ClockEntry[] = [];
  const advance = (record: LogRecord) => {
    const key = `${record.topic}\u0000${record.partition}`;
    const entry = clock.get(key);
    if (entry) entry.offset = record.offset + 1;
    else {
      const added = { topic: record.topic, partition: record.partition, offset: record.offset + 1 };
      clock.set(key, added);
      clockOrder.push(added);
      clockOrder.sort((a, b) => (a.topic === b.topic ? a.partition - b.partition : a.topic < b.topic ? -1 : 1));
    }
  };

  // The view: every partition of the folded topics, from the beginning, with no consumer group
  // (`follow`): replicas do not split the view, each folds all of it, nothing is committed, and no
  // group session can expire and stop it on a starved host or wait for the group coordinator
  // after a broker restart (docs/RELIABILITY.md, "A saturated host").
  const viewTopics = VIEW_TOPICS.map((t) => ctx.topics[t]);
  // The view folds what workers and the controller say: decoded once for every consumer of
  // this process (`EventCodec.shared`: the controller, the worker and the gateway read the same records).
  const viewCodec = ctx.codec.shared;
  const view: Subscription = await ctx.log.subscribe({
    // Names the view in logs; unique per process start.
    groupId: `${groupId}-view.${routerId}.${ctx.newEventId()}`,
    topics: viewTopics.map((t) => t.name),
    fromBeginning: true,
    assignment: { kind: 'follow', partitions: viewTopics.map((t): TopicPartitions => ({ topic: t.name, partitions: [...Array(t.partitions).keys()] })) },
    maxBatchRecords: 2_000,
    onBatch: async (batch) => {
      for (const record of batch.records) {
        // A batch delivered again (a consumer restarted after a broker outage resumes from its last
        // commit) holds records already folded: the fold is never fed one twice, and the clock
        // never moves back, or a decision's clock would not name the state it was made in.
        if (record.offset < (clock.get(`${record.topic}\u0000${record.partition}`)?.offset ?? 0)) continue;
        // InferenceStarted, one of a request's three view records, changes nothing the router decides with (state.ts): not decoded.
        if (record.value !== null && viewCodec.typeOf(record.value) !== 'InferenceStarted') {
          try {
            fold(viewCodec.decodeKnown(record.value) ?? (await viewCodec.decode(record.value)));
          } catch (err) {
            // The sink dead-letters bad records of these topics; the view only skips them.
            stats.undecodableViewRecords++;
            ctx.logger.warn({ err: errorMessage(err), topic: record.topic, partition: record.partition, offset: record.offset }, 'router view: undecodable record skipped');
          }
        }
        advance(record);
      }
    },
  });

  // Catch up with the log as it was at start before deciding anything: a restarted router
  // must know what it (or a predecessor) already decided and where sessions live.
  const targets = await Promise.all(viewTopics.map(async (t) => ({ topic: t.name, ends: await ctx.log.endOffsets(t.name) })));
  const caughtUp = () => targets.every(({ topic, ends }) => ends.every((end, p) => end === 0 || (clock.get(`${topic}\u0000${p}`)?.offset ?? 0) >= end));
  while (!caughtUp()) await new Promise((r) => setTimeout(r, 5));

  /**
   * Never decide on a view known to be stale: when no heartbeat was folded for `staleViewMs`,
   * fold `heartbeats` and `control` to their current end first (bounded by `maxViewWaitMs`). A
   * fleet that is really silent (every worker gone) is then decided on as it is.
   */
  const viewTopicsToCheck = [ctx.topics.heartbeats.name, ctx.topics.control.name];
  const awaitFreshView = async (budgetFrom: number): Promise<void> => {
    if (state.candidates.length === 0 || ctx.now() - newestHeartbeatAt <= staleViewMs) return;
    await catchUpView('no heartbeat folded lately', budgetFrom);
  };

  /**
   * Folds `heartbeats` and `control` up to their ends as the log states them now, waiting while
   * the view is behind them until `maxViewWaitMs` after `budgetFrom` (one budget per batch, however
   * many waits it takes); true when the view was behind.
   */
  const catchUpView = async (why: string, budgetFrom: number): Promise<boolean> => {
    const started = ctx.now();
    let ends: { topic: string; ends: number[] }[];
    try {
      ends = await Promise.all(viewTopicsToCheck.map(async (topic) => ({ topic, ends: await ctx.log.endOffsets(topic) })));
    } catch (err) {
      // The log cannot say where its end is (broker down): wait for fresh heartbeats instead.
      ctx.logger.warn({ routerId, err: errorMessage(err) }, 'router: cannot read end offsets to check the view; waiting for heartbeats');
      ends = [];
    }
    // Every worker's heartbeat is late, yet the controller has not evicted them all: they are
    // starved or their heartbeats are in transit, and deciding now would refuse every request
    // (STALE_HEARTBEAT) that the next heartbeat would route. Wait for it, or for the evictions.
    const silentNotEvicted = () => ctx.now() - newestHeartbeatAt > policy.staleHeartbeatMs && state.candidates.some((c) => !c.evicted && !c.draining);
    const behind = () =>
      silentNotEvicted() ||
      (ends.length === 0 ? ctx.now() - newestHeartbeatAt > staleViewMs : ends.some(({ topic, ends: e }) => e.some((end, p) => end > 0 && (clock.get(`${topic}\u0000${p}`)?.offset ?? 0) < end)));
    if (!behind()) return false;
    stats.viewWaits++;
    while (behind() && ctx.now() - budgetFrom < maxViewWaitMs) await new Promise((r) => setTimeout(r, 5));
    stats.viewWaitMs += ctx.now() - started;
    ctx.logger.info({ routerId, waitedMs: ctx.now() - started, why }, 'router: waited for its view to catch up before deciding');
    return true;
  };

  const pendingDecisions = (): PendingDecision[] => {
    const counts = new Map<string, PendingDecision>();
    for (const { workerId, lane } of pending.values()) {
      const c = counts.get(workerId);
      if (c) c.count++;
      else counts.set(workerId, { workerId, lane, count: 1 });
    }
    return [...counts.values()].sort((a, b) => (a.workerId < b.workerId ? -1 : a.workerId > b.workerId ? 1 : 0));
  };
  // Copied per decision (a decision's clock must not move with the view): no sort on the hot path.
  const snapshotClock = (): ClockEntry[] => clockOrder.map((c) => ({ topic: c.topic, partition: c.partition, offset: c.offset }));

  const route = (request: InferenceRequested, record: LogRecord): RouterDecision => {
    const decision = decide(
      {
        eventId: ctx.newEventId(),
        now: ctx.now(),
        routerId,
        request,
        clock: snapshotClock(),
        pendingDecisions: pendingDecisions(),
        policy,
        requestPosition: { topic: record.topic, partition: record.partition, offset: record.offset },
      },
      state,
    );
    if (decision.type === 'RequestRouted') pending.set(decision.eventId, { workerId: decision.workerId, lane: decision.lane });
    return decision;
  };

  const requests = await subscribeEvents(ctx.log, {
    groupId,
    topics: [ctx.topics.requests.name],
    // Decoded once with the controller's fold, which reads every request too.
    codec: ctx.codec.shared,
    deadLetterTopic: ctx.topics.deadletter.name,
    deadLetter: deadLetterPolicy('router', ctx.topics),
    producer: routerId,
    now: ctx.now,
    maxBatchRecords: 500,
    onEvents: async ({ events }) => {
      const batchStarted = ctx.now();
      await awaitFreshView(batchStarted);
      const decideAll = (): { out: RouterDecision[]; duplicates: number } => {
        const out: RouterDecision[] = [];
        let duplicates = 0;
        for (const { event, record } of events) {
          if (event.type !== 'InferenceRequested') continue;
          const requestId = event.requestId ?? event.eventId;
          // A redelivered batch, a retried producer, or a repeated Idempotency-Key: decided once.
          if (decided.has(requestId)) {
            duplicates++;
            continue;
          }
          const decision = route(event, record);
          decided.add(requestId);
          out.push(decision);
        }
        return { out, duplicates };
      };
      const forget = (out: readonly RouterDecision[]) => {
        for (const d of out) {
          if (d.requestId !== null) decided.delete(d.requestId);
          pending.delete(d.eventId);
        }
      };
      let { out, duplicates } = decideAll();
      // A refusal that the view decides (no eligible worker, shed, unknown model) is made only on
      // a view that has reached the log's end as it stands now: a view behind it — a heartbeat, a
      // join or a registration not folded yet (after a broker outage, on a starved host) — would
      // refuse what the log already says can be served. Behind: fold up to that end, decide again.
      if (out.some((d) => d.type === 'RequestRejected' && VIEW_REFUSALS.has(d.reason)) && (await catchUpView('a refusal', batchStarted))) {
        forget(out);
        ({ out, duplicates } = decideAll());
      }
      stats.duplicatesSkipped += duplicates;
      if (out.length === 0) return;
      try {
        await ctx.log.append(
          out.map((d) =>
            d.type === 'RequestRouted'
              ? { topic: ctx.topics.decisions.name, partition: d.lane, key: d.requestId, value: ctx.codec.encode(d) }
              : { topic: ctx.topics.results.name, key: d.requestId, value: ctx.codec.encode(d) },
          ),
        );
      } catch (err) {
        // Not appended: forget them so the redelivered batch decides again.
        forget(out);
        throw err;
      }
      for (const d of out) {
        stats.decided++;
        if (d.type === 'RequestRouted') stats.routed++;
        else stats.rejected++;
        stats.reasons[d.reason] = (stats.reasons[d.reason] ?? 0) + 1;
      }
    },
  });

  return {
    id: routerId,
    policy,
    state: () => state,
    clock: snapshotClock,
    stats: () => ({ ...stats, reasons: { ...stats.reasons } }),
    close: async () => {
      await requests.close();
      await view.close();
    },
  };
}
