import { exhaustMap, from, timer, type Subscription as RxSubscription } from 'rxjs';
import { errorMessage } from '../../lib/errors.js';
import type { AppendRecord, LogRecord, Subscription, TopicPartitions } from '../../lib/log/port.js';
import { instanceId, type ServiceContext } from '../../lib/runtime.js';
import type {
  ClockEntry,
  ControllerElectedInit,
  ControllerTickInit,
  InferenceFailedInit,
  InferenceRequested,
  ResultSupersededInit,
  SessionStateInit,
  SwitchyardEvent,
  WorkerEvictedInit,
} from '../../schemas/generated/events.js';
import { decide as routeDecide } from '../router/decide.js';
import { resolveRouterPolicy, type RouterPolicy, type RouterPolicyInput } from '../router/policies/options.js';
import { decideTick, type ControllerAction, type Tick } from './decide.js';
import { resolveControllerPolicy, type ControllerPolicy, type ControllerPolicyInput } from './options.js';
import { evolve, initialControllerState, positionOf, type ControllerState } from './state.js';

/** Options of one controller instance. */
export interface ControllerOptions {
  /** Instance id, the `producer` of its events. @default 'controller-<random>' */
  controllerId?: string;
  /** Detection, retries, deadlines (compiled once). */
  policy?: ControllerPolicyInput;
  /** The routing policy re-dispatches and retries are decided under (the routers'). */
  routerPolicy?: RouterPolicyInput;
  /** Tick interval, ms: how often the leader writes a tick and decides. @default 100 */
  tickIntervalMs?: number;
  /** A leader silent this long (log time) may be replaced. @default 2000 */
  leaseMs?: number;
  /** How long a tick may wait for its fold to reach the log's end before it acts, ms. @default 500 */
  freshnessWaitMs?: number;
  /** Called whenever this instance gains or loses leadership. */
  onLeadership?: (leading: boolean, epoch: number) => void;
}

export interface ControllerStats {
  id: string;
  leading: boolean;
  epoch: number;
  leader: string | null;
  ticks: number;
  decidingTicks: number;
  /** Ticks whose actions waited for the fold to reach the log's end and gave up. */
  staleTicks: number;
  evictions: number;
  redispatches: number;
  retries: number;
  failed: number;
  superseded: number;
  /** Re-dispatches the router's decide could not place (no capacity): tried again next tick. */
  unplaced: number;
  /** Sessions moved off evicted or draining workers. */
  migrations: number;
  elections: number;
  trackedRequests: number;
}

export interface RunningController {
  readonly id: string;
  readonly policy: ControllerPolicy;
  state(): ControllerState;
  stats(): ControllerStats;
  isLeader(): boolean;
  close(): Promise<void>;
}

/** Topics the controller folds. */
const TOPICS = ['control', 'heartbeats', 'requests', 'decisions', 'results', 'sessions'] as const;

/**
 * The controller: a pure fold of the log (state.ts) and a tick decider (decide.ts), wired here.
 *
 * Leadership is claimed on the log: every instance folds everything; the leader writes a
 * ControllerTick every `tickIntervalMs` to `heartbeats` and acts; a standby that sees no tick from
 * the leader for `leaseMs` (after checking its own fold is at the log's end) appends a
 * ControllerElected for epoch + 1; the first such claim in `control` order wins (state fold).
 * Every control event the leader writes carries its epoch, and every fold ignores events of an
 * epoch that is no longer in force.
 *
 * A tick: decide on the current fold; when that yields actions, read the end offsets of every
 * folded partition, wait (≤ freshnessWaitMs) until the fold has reached them — so nothing is
 * decided on a view the controller knows is stale, and a leader deposed while paused learns it
 * here before acting — and decide again on that fresh fold. The actions become events caused by
 * the tick, all with the clock of that fold, appended in one call. The next decision waits until
 * the fold has read them back, so it never acts twice on the same cause and its re-dispatches'
 * pendingDecisions are always empty.
 */
export async function startController(ctx: ServiceContext, options: ControllerOptions = {}): Promise<RunningController> {
  const controllerId = options.controllerId ?? instanceId('controller');
  const policy = resolveControllerPolicy(options.policy);
  const routerPolicy: RouterPolicy = resolveRouterPolicy(options.routerPolicy);
  const tickIntervalMs = options.tickIntervalMs ?? 100;
  const leaseMs = options.leaseMs ?? 2000;
  const freshnessWaitMs = options.freshnessWaitMs ?? 500;
  const startedAt = ctx.now();
  const lanes = ctx.topics.decisions.partitions;
  const state = initialControllerState(policy, lanes);
  const clock = new Map<string, ClockEntry>();
  // The fold reads a decision's control offset from its clock, never a decision's candidates or
  // pending decisions (replay decides again from the log's bytes): the shared decoder, which leaves
  // those out and decodes each record once for every consumer of this process (the router's view,
  // the worker, the gateway's tracker read the same records).
  const readsCodec = ctx.codec.shared;
  /** Own events appended and not yet folded back. */
  const unread = new Set<string>();
  const stats: ControllerStats = {
    id: controllerId,
    leading: false,
    epoch: 0,
    leader: null,
    ticks: 0,
    decidingTicks: 0,
    staleTicks: 0,
    evictions: 0,
    redispatches: 0,
    retries: 0,
    failed: 0,
    superseded: 0,
    unplaced: 0,
    migrations: 0,
    elections: 0,
    trackedRequests: 0,
  };
  let seq = 0;
  let claimedEpoch: number | null = null;
  /** Set while a tick decides and builds its events: the fold waits. */
  let gate: Promise<void> | null = null;
  let closed = false;
  const topics = TOPICS.map((t) => ctx.topics[t]);
  await ctx.log.ensureTopics(topics);

  const key = (topic: string, partition: number) => `${topic}\u0000${partition}`;
  const fold = (event: SwitchyardEvent, record: LogRecord) => {
    evolve(state, event, record);
    if (event.producer === controllerId) unread.delete(event.eventId);
  };
  const view: Subscription = await ctx.log.subscribe({
    groupId: `${ctx.topics.control.name.replace(/control$/, '')}controller-view.${controllerId}.${ctx.newEventId()}`,
    topics: topics.map((t) => t.name),
    fromBeginning: true,
    assignment: { kind: 'follow', partitions: topics.map((t): TopicPartitions => ({ topic: t.name, partitions: [...Array(t.partitions).keys()] })) },
    maxBatchRecords: 2_000,
    onBatch: async (batch) => {
      const decoded: (SwitchyardEvent | null)[] = [];
      for (const record of batch.records) {
        let event: SwitchyardEvent | null = null;
        // InferenceStarted changes nothing in the controller's fold (state.ts: the router view's
        // evolve, which ignores it) and the controller never writes one: not decoded.
        if (record.value !== null && record.value.length > 0 && readsCodec.typeOf(record.value) !== 'InferenceStarted') {
          try {
            event = readsCodec.decodeKnown(record.value) ?? (await readsCodec.decode(record.value));
          } catch (err) {
            ctx.logger.warn({ err: errorMessage(err), topic: record.topic, partition: record.partition, offset: record.offset }, 'controller: undecodable record skipped');
          }
        }
        decoded.push(event);
      }
      // A tick deciding holds the fold still, so its actions are made from exactly its clock.
      while (gate !== null) await gate;
      for (let i = 0; i < batch.records.length; i++) {
        const record = batch.records[i]!;
        const event = decoded[i]!;
        const k = key(record.topic, record.partition);
        const entry = clock.get(k);
        // Delivered again (a consumer resuming from its last commit): already folded, never twice.
        if (entry !== undefined && record.offset < entry.offset) continue;
        if (event !== null) fold(event, record);
        if (entry) entry.offset = record.offset + 1;
        else clock.set(k, { topic: record.topic, partition: record.partition, offset: record.offset + 1 });
      }
    },
  });

  const endsOfAll = async (): Promise<{ topic: string; ends: number[] }[]> => Promise.all(topics.map(async (t) => ({ topic: t.name, ends: await ctx.log.endOffsets(t.name) })));
  const reached = (targets: { topic: string; ends: number[] }[]) =>
    targets.every(({ topic, ends }) => ends.every((end, p) => end === 0 || (clock.get(key(topic, p))?.offset ?? 0) >= end));
  /** Wait until the fold has reached the log's end as it is now; false when that took longer than `waitMs`. */
  const catchUp = async (waitMs: number): Promise<boolean> => {
    const targets = await endsOfAll();
    const until = ctx.now() + waitMs;
    while (!reached(targets)) {
      if (closed || ctx.now() >= until) return false;
      await new Promise((r) => setTimeout(r, 2));
    }
    return true;
  };
  const snapshotClock = (): ClockEntry[] =>
    [...clock.values()].map((c) => ({ ...c })).sort((a, b) => (a.topic === b.topic ? a.partition - b.partition : a.topic < b.topic ? -1 : 1));

  // Know the log as it was at start before claiming or deciding anything.
  await catchUp(Number.POSITIVE_INFINITY);

  const leading = (): boolean => state.view.leader === controllerId && state.view.epoch > 0;
  const noteLeadership = () => {
    const now = leading();
    if (now !== stats.leading) {
      stats.leading = now;
      ctx.logger.info({ controllerId, epoch: state.view.epoch }, now ? 'controller: leading' : 'controller: standing by');
      options.onLeadership?.(now, state.view.epoch);
    }
    stats.epoch = state.view.epoch;
    stats.leader = state.view.leader;
  };

  const append = async (records: AppendRecord[], ids: string[]) => {
    for (const id of ids) unread.add(id);
    try {
      await ctx.log.append(records);
    } catch (err) {
      for (const id of ids) unread.delete(id);
      throw err;
    }
  };

  /** A standby: claim the next epoch when the leader has been silent for the lease (or there is none). */
  const maybeClaim = async () => {
    if (claimedEpoch !== null && state.view.epoch < claimedEpoch) return; // our claim is not folded yet
    claimedEpoch = null;
    const now0 = ctx.now();
    const leader = state.view.leader;
    const leaderTick = leader === null ? undefined : state.ticks.get(leader);
    const lastSign = Math.max(leaderTick?.lastAt ?? 0, state.view.electedAt);
    if (leader !== null && now0 - lastSign <= leaseMs) return;
    // Be sure the silence is the leader's, not our fold's lag.
    if (!(await catchUp(freshnessWaitMs))) return;
    const now = ctx.now();
    const again = state.view.leader === null ? undefined : state.ticks.get(state.view.leader);
    const silence = state.view.leader === null ? null : now - Math.max(again?.lastAt ?? 0, state.view.electedAt);
    if (state.view.leader === controllerId || (silence !== null && silence <= leaseMs)) return;
    const epoch = state.view.epoch + 1;
    const event: ControllerElectedInit = {
      type: 'ControllerElected',
      eventId: ctx.newEventId(),
      occurredAt: now,
      producer: controllerId,
      clock: [{ topic: ctx.topics.control.name, partition: 0, offset: clock.get(key(ctx.topics.control.name, 0))?.offset ?? 0 }],
      controllerId,
      epoch,
      previousControllerId: state.view.leader,
      reason: state.view.leader === null ? 'FIRST_LEADER' : 'LEADER_SILENT',
      leaderSilenceMs: silence,
      leaseMs,
    };
    claimedEpoch = epoch;
    stats.elections++;
    await append([{ topic: ctx.topics.control.name, partition: 0, key: controllerId, value: ctx.codec.encode(event) }], [event.eventId]);
    ctx.logger.info({ controllerId, epoch, previous: state.view.leader, silence }, 'controller: claimed leadership');
  };

  const tickCommand = (tickId: string, now: number): Tick => ({
    tickId,
    now,
    controllerId,
    epoch: state.view.epoch,
    previousTickAt: state.ticks.get(controllerId)?.lastAt ?? null,
    runStartAt: state.ticks.get(controllerId)?.runStartAt ?? null,
  });

  /** The leader's tick: write it, and act when the fold calls for it. */
  const leaderTick = async () => {
    const tickId = ctx.newEventId();
    let now = ctx.now();
    let actions: ControllerAction[] = unread.size > 0 ? [] : decideTick(state, tickCommand(tickId, now));
    let actionClock: ClockEntry[] = [];
    let release: (() => void) | null = null;
    if (actions.length > 0) {
      // Decide again on a fold at the log's end (and learn of a newer epoch before acting).
      if (!(await catchUp(freshnessWaitMs))) {
        stats.staleTicks++;
        actions = [];
      } else if (!leading() || unread.size > 0) {
        actions = [];
      } else {
        gate = new Promise<void>((r) => (release = r));
        now = ctx.now();
        actions = decideTick(state, tickCommand(tickId, now));
        actionClock = snapshotClock();
      }
    }
    try {
      await writeTick(tickId, now, actions, actionClock, () => {
        gate = null;
        (release as (() => void) | null)?.();
      });
    } finally {
      gate = null;
      (release as (() => void) | null)?.();
    }
  };

  /** Build the tick and its actions' events on the held fold, let the fold go, append. */
  const writeTick = async (tickId: string, now: number, actions: ControllerAction[], actionClock: ClockEntry[], letFoldGo: () => void) => {
    const tick: ControllerTickInit = {
      type: 'ControllerTick',
      eventId: tickId,
      occurredAt: now,
      producer: controllerId,
      clock: actionClock,
      controllerId,
      epoch: state.view.epoch,
      seq: seq++,
      intervalMs: tickIntervalMs,
      startedAt,
      policy: actions.length > 0 ? policy.version : null,
    };
    const records: AppendRecord[] = [{ topic: ctx.topics.heartbeats.name, key: controllerId, value: ctx.codec.encode(tick) }];
    const ids = [tickId];
    if (actions.length > 0) {
      stats.decidingTicks++;
      for (const action of actions) {
        const built = await eventFor(action, tickId, now, actionClock);
        if (built === null) continue;
        records.push(built.record);
        ids.push(built.eventId);
      }
    }
    letFoldGo();
    await append(records, ids);
  };

  const eventFor = async (action: ControllerAction, tickId: string, now: number, actionClock: ClockEntry[]): Promise<{ record: AppendRecord; eventId: string } | null> => {
    const eventId = ctx.newEventId();
    const envelope = { eventId, occurredAt: now, producer: controllerId, causationId: tickId, clock: actionClock };
    switch (action.kind) {
      case 'evict': {
        const event: WorkerEvictedInit = {
          type: 'WorkerEvicted',
          ...envelope,
          workerId: action.workerId,
          lane: action.lane,
          reason: 'SUSPECTED_DEAD',
          lastHeartbeatAt: action.lastHeartbeatAt,
          lastHeartbeatSeq: action.lastHeartbeatSeq,
          detail: `no heartbeat for ${action.silenceMs} ms (phi ${action.phi} ≥ ${policy.detector.phiThreshold}, at least ${policy.detector.minSilenceMs} ms)`,
          epoch: state.view.epoch,
          startedAt: action.startedAt,
          heartbeatPosition: action.heartbeatPosition,
          heartbeatEnd: action.heartbeatPosition === null ? null : (clock.get(key(action.heartbeatPosition.topic, action.heartbeatPosition.partition))?.offset ?? null),
          silenceMs: action.silenceMs,
          phi: action.phi,
          phiThreshold: policy.detector.phiThreshold,
          minSilenceMs: policy.detector.minSilenceMs,
          meanIntervalMs: action.meanIntervalMs,
          stdIntervalMs: action.stdIntervalMs,
          tickId,
        };
        stats.evictions++;
        ctx.logger.warn({ controllerId, workerId: action.workerId, lane: action.lane, silenceMs: action.silenceMs, phi: action.phi }, 'controller: evicting a worker');
        return { eventId, record: { topic: ctx.topics.control.name, partition: 0, key: action.workerId, value: ctx.codec.encode(event) } };
      }
      case 'fail': {
        const event: InferenceFailedInit = {
          type: 'InferenceFailed',
          ...envelope,
          requestId: action.requestId,
          traceId: action.traceId,
          workerId: action.workerId,
          lane: action.lane,
          model: action.model,
          errorCode: action.errorCode,
          errorMessage: action.errorMessage,
          retriable: false,
          attempt: action.attempt,
        };
        stats.failed++;
        ctx.logger.warn({ controllerId, requestId: action.requestId, traceId: action.traceId, attempt: action.attempt, workerId: action.workerId, errorCode: action.errorCode }, `controller: ending a request (${action.errorCode})`);
        return { eventId, record: { topic: ctx.topics.results.name, key: action.requestId, value: ctx.codec.encode(event) } };
      }
      case 'supersede': {
        const { loser, winner } = action.loss;
        const event: ResultSupersededInit = {
          type: 'ResultSuperseded',
          ...envelope,
          requestId: loser.requestId,
          supersededEventId: loser.eventId,
          supersededType: loser.type,
          supersededPosition: positionOf(loser),
          supersededWorkerId: loser.workerId,
          supersededAttempt: loser.attempt,
          winnerEventId: winner.eventId,
          winnerType: winner.type,
          winnerPosition: positionOf(winner),
        };
        stats.superseded++;
        ctx.logger.info({ controllerId, requestId: loser.requestId, superseded: loser.eventId, winner: winner.eventId, workerId: loser.workerId }, 'controller: a later outcome is superseded');
        return { eventId, record: { topic: ctx.topics.results.name, key: loser.requestId, value: ctx.codec.encode(event) } };
      }
      case 'migrate': {
        const s = action.session;
        const event: SessionStateInit = {
          type: 'SessionState',
          ...envelope,
          requestId: null,
          sessionId: s.sessionId,
          workerId: action.toWorkerId,
          lane: action.toLane,
          model: s.model,
          modelVersion: s.modelVersion,
          lastRequestId: s.lastRequestId,
          updatedAt: now,
          requestCount: s.requestCount,
          context: s.context,
          contextBytes: s.contextBytes,
          reason: 'MIGRATED',
          migratedFrom: s.workerId,
          modelDigest: s.modelDigest,
          epoch: state.view.epoch,
        };
        stats.migrations++;
        return { eventId, record: { topic: ctx.topics.sessions.name, key: s.sessionId, value: ctx.codec.encode(event) } };
      }
      case 'route': {
        const [record] = await ctx.log.read({ topic: action.requestPosition.topic, partition: action.requestPosition.partition, from: action.requestPosition.offset, to: action.requestPosition.offset + 1, maxRecords: 1 });
        if (record?.value == null) return null;
        const request = (await ctx.codec.decode(record.value)) as InferenceRequested;
        const command = {
          eventId,
          now,
          routerId: controllerId,
          request,
          clock: actionClock,
          pendingDecisions: [],
          policy: routerPolicy,
          attempt: action.attempt,
          previousWorkerId: action.previousWorkerId,
          retry: action.reason === 'RETRY',
          requestPosition: action.requestPosition,
        };
        let decision = routeDecide(command, state.view);
        // Away from the previous worker when another can take it; back to it when it is the only one.
        if (decision.type === 'RequestRejected' && decision.reason === 'NO_CAPACITY') decision = routeDecide({ ...command, previousWorkerId: null }, state.view);
        if (decision.type !== 'RequestRouted') {
          stats.unplaced++;
          return null;
        }
        if (action.reason === 'RETRY') stats.retries++;
        else stats.redispatches++;
        ctx.logger.info({ controllerId, requestId: action.requestId, traceId: request.traceId, attempt: action.attempt, from: action.previousWorkerId, workerId: decision.workerId, reason: action.reason }, `controller: routing a request again (${action.reason})`);
        return { eventId, record: { topic: ctx.topics.decisions.name, partition: decision.lane, key: decision.requestId, value: ctx.codec.encode(decision) } };
      }
    }
  };

  const onTick = async () => {
    if (closed) return;
    stats.ticks++;
    try {
      noteLeadership();
      if (leading()) await leaderTick();
      else await maybeClaim();
      noteLeadership();
    } catch (err) {
      ctx.logger.warn({ controllerId, err: errorMessage(err) }, 'controller tick failed');
    }
    stats.trackedRequests = state.requests.size;
  };

  // Ticks that overrun are not queued behind each other: the next starts when one ends (exhaustMap).
  const ticks: RxSubscription = timer(0, tickIntervalMs)
    .pipe(exhaustMap(() => from(onTick())))
    .subscribe();

  return {
    id: controllerId,
    policy,
    state: () => state,
    stats: () => ({ ...stats, trackedRequests: state.requests.size }),
    isLeader: leading,
    close: async () => {
      closed = true;
      ticks.unsubscribe();
      await view.close();
    },
  };
}
