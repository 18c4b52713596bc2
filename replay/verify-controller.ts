import type { LogRecord } from '../lib/log/port.js';
import type { ClockEntry, ControllerTick, SwitchyardEvent } from '../schemas/generated/events.js';
import { decideTick, type ControllerAction } from '../services/controller/decide.js';
import { CONTROLLER_CODE_VERSION, resolveControllerPolicy, type ControllerPolicy, type ControllerPolicyInput } from '../services/controller/options.js';
import { evolve, initialControllerState, positionOf, type ControllerState } from '../services/controller/state.js';
import { deepEqual } from './diff.js';
import type { LogSource } from './source.js';

/**
 * `replay verify`, the controller's half: re-derive every controller decision from the log.
 *
 * A controller acts only at a tick, and every event a tick caused (WorkerEvicted, InferenceFailed,
 * ResultSuperseded, RequestRouted with attempt > 1) carries the tick's eventId as causationId and
 * the clock of the fold it was decided on; the tick records that clock and the policy version. So
 * for each deciding tick: fold the controller state (services/controller/state.ts, with record
 * positions) to exactly that clock, run `decideTick` with the tick's time, and compare the
 * actions with the recorded events:
 * - evictions, failures and supersessions must match one to one, field by field;
 * - every recorded re-dispatch or retry must be one of the route actions (same request, attempt,
 *   reason); a route action without a record is one the router's decide could not place (no
 *   capacity at that instant), tried again at a later tick. The re-dispatch's routing itself (the
 *   worker chosen) is re-derived by the routing verify, like any RequestRouted.
 *
 * Ticks of one controller are folded forward (its clocks only grow); a clock that does not
 * dominate the fold (a restarted controller reusing an id) refolds from the start.
 *
 * Reads the five folded topics whole into memory: fine for the logs CI and incident review deal
 * with; a windowed version is future work.
 */

export interface ControllerDivergence {
  tickId: string;
  controller: string;
  occurredAt: number;
  kind: 'missing' | 'unexpected' | 'different';
  recorded: unknown;
  rederived: unknown;
}

export interface ControllerVerifyReport {
  /** Ticks that caused events. */
  ticks: number;
  /** Recorded controller events re-derived identically. */
  verified: number;
  /** Of those, by kind ('elect': leadership claims, each checked against the control prefix it was made on). */
  byKind: Record<ControllerAction['kind'] | 'elect', number>;
  diverged: number;
  /** Ticks whose policy was made by other controller code (not re-derived). */
  skipped: number;
  /** Route actions re-derived without a recorded event (unplaced, tried again later). */
  unplaced: number;
  divergences: ControllerDivergence[];
  ok: boolean;
}

const TOPICS = ['control', 'heartbeats', 'requests', 'decisions', 'results', 'sessions'] as const;

interface Logged {
  event: SwitchyardEvent;
  record: LogRecord;
}

/** The policy a tick recorded (`controller/N;{json}`), or null when other controller code made it. */
export function controllerPolicyFromVersion(version: string): ControllerPolicy | null {
  const semi = version.indexOf(';');
  const code = semi < 0 ? version : version.slice(0, semi);
  if (code !== CONTROLLER_CODE_VERSION) return null;
  const input = (semi < 0 ? {} : JSON.parse(version.slice(semi + 1))) as ControllerPolicyInput & { detector?: object };
  const policy = resolveControllerPolicy(input);
  return policy.version === version ? policy : null;
}

async function readAll(source: LogSource): Promise<Map<string, Logged[][]>> {
  const out = new Map<string, Logged[][]>();
  for (const t of TOPICS) {
    const topic = source.topics[t].name;
    const parts: Logged[][] = [];
    const [starts, ends] = await Promise.all([source.log.startOffsets(topic), source.log.endOffsets(topic)]);
    for (let p = 0; p < ends.length; p++) {
      const list: Logged[] = [];
      for (let from = starts[p] ?? 0; from < ends[p]!; ) {
        const records = await source.log.read({ topic, partition: p, from, to: ends[p]! });
        if (records.length === 0) break;
        for (const record of records) {
          if (record.value === null || record.value.length === 0) continue;
          try {
            list.push({ event: await source.codec.decode(record.value), record });
          } catch {
            // Undecodable records are skipped, as the controller's fold skips them.
          }
        }
        from = records.at(-1)!.offset + 1;
      }
      parts.push(list);
    }
    out.set(topic, parts);
  }
  return out;
}

/** A forward-only controller fold over records in memory. */
class Fold {
  state: ControllerState;
  private readonly next = new Map<string, number>();
  constructor(
    private readonly logs: Map<string, Logged[][]>,
    private readonly policy: ControllerPolicy,
    private readonly lanes: number,
  ) {
    this.state = initialControllerState(policy, lanes);
  }
  canReach(clock: readonly ClockEntry[]): boolean {
    const named = new Set(clock.map((c) => `${c.topic}/${c.partition}`));
    for (const [k, i] of this.next) if (i > 0 && !named.has(k)) return false;
    for (const c of clock) {
      const list = this.logs.get(c.topic)?.[c.partition] ?? [];
      const i = this.next.get(`${c.topic}/${c.partition}`) ?? 0;
      if (i > 0 && list[i - 1]!.record.offset >= c.offset) return false;
    }
    return true;
  }
  reset(): void {
    this.state = initialControllerState(this.policy, this.lanes);
    this.next.clear();
  }
  advanceTo(clock: readonly ClockEntry[]): void {
    for (const c of clock) {
      const list = this.logs.get(c.topic)?.[c.partition] ?? [];
      const k = `${c.topic}/${c.partition}`;
      let i = this.next.get(k) ?? 0;
      while (i < list.length && list[i]!.record.offset < c.offset) {
        evolve(this.state, list[i]!.event, list[i]!.record);
        i++;
      }
      this.next.set(k, i);
    }
  }
}

const clockSum = (clock: readonly ClockEntry[]): number => clock.reduce((s, c) => s + c.offset, 0);

/** What of a recorded event a re-derived action must equal. */
function recordedAction(e: SwitchyardEvent): { kind: ControllerAction['kind']; key: string; fields: unknown } | null {
  switch (e.type) {
    case 'WorkerEvicted':
      return {
        kind: 'evict',
        key: e.workerId,
        fields: { workerId: e.workerId, lane: e.lane, startedAt: e.startedAt, lastHeartbeatAt: e.lastHeartbeatAt, lastHeartbeatSeq: e.lastHeartbeatSeq, heartbeatPosition: e.heartbeatPosition, silenceMs: e.silenceMs, phi: e.phi, meanIntervalMs: e.meanIntervalMs, stdIntervalMs: e.stdIntervalMs },
      };
    case 'InferenceFailed':
      return { kind: 'fail', key: e.requestId ?? '', fields: { requestId: e.requestId, attempt: e.attempt, errorCode: e.errorCode, errorMessage: e.errorMessage, workerId: e.workerId, lane: e.lane, model: e.model } };
    case 'ResultSuperseded':
      return { kind: 'supersede', key: e.supersededEventId, fields: { superseded: e.supersededEventId, winner: e.winnerEventId, position: e.supersededPosition } };
    case 'RequestRouted':
      return { kind: 'route', key: `${e.requestId}#${e.attempt}`, fields: { requestId: e.requestId, attempt: e.attempt, reason: e.reason === 'RETRY' ? 'RETRY' : 'REDISPATCH' } };
    case 'SessionState':
      return { kind: 'migrate', key: e.sessionId, fields: { sessionId: e.sessionId, from: e.migratedFrom, to: e.workerId, lane: e.lane, contextBytes: e.contextBytes, requestCount: e.requestCount } };
    default:
      return null;
  }
}

function derivedAction(a: ControllerAction): { kind: ControllerAction['kind']; key: string; fields: unknown } {
  switch (a.kind) {
    case 'evict':
      return {
        kind: 'evict',
        key: a.workerId,
        fields: { workerId: a.workerId, lane: a.lane, startedAt: a.startedAt, lastHeartbeatAt: a.lastHeartbeatAt, lastHeartbeatSeq: a.lastHeartbeatSeq, heartbeatPosition: a.heartbeatPosition, silenceMs: a.silenceMs, phi: a.phi, meanIntervalMs: a.meanIntervalMs, stdIntervalMs: a.stdIntervalMs },
      };
    case 'fail':
      return { kind: 'fail', key: a.requestId, fields: { requestId: a.requestId, attempt: a.attempt, errorCode: a.errorCode, errorMessage: a.errorMessage, workerId: a.workerId, lane: a.lane, model: a.model } };
    case 'supersede':
      return { kind: 'supersede', key: a.loss.loser.eventId, fields: { superseded: a.loss.loser.eventId, winner: a.loss.winner.eventId, position: positionOf(a.loss.loser) } };
    case 'route':
      return { kind: 'route', key: `${a.requestId}#${a.attempt}`, fields: { requestId: a.requestId, attempt: a.attempt, reason: a.reason } };
    case 'migrate':
      return { kind: 'migrate', key: a.session.sessionId, fields: { sessionId: a.session.sessionId, from: a.session.workerId, to: a.toWorkerId, lane: a.toLane, contextBytes: a.session.contextBytes, requestCount: a.session.requestCount } };
  }
}

export async function verifyController(source: LogSource, o: { maxDivergences?: number } = {}): Promise<ControllerVerifyReport> {
  const logs = await readAll(source);
  const lanes = Math.max(1, source.topics.decisions.partitions);
  const report: ControllerVerifyReport = { ticks: 0, verified: 0, byKind: { evict: 0, fail: 0, supersede: 0, route: 0, migrate: 0, elect: 0 }, diverged: 0, skipped: 0, unplaced: 0, divergences: [], ok: true };
  const maxDivergences = o.maxDivergences ?? 50;

  // Deciding ticks, and what each caused.
  const ticks: { tick: ControllerTick; position: LogRecord }[] = [];
  const caused = new Map<string, SwitchyardEvent[]>();
  const routedBy = new Map<string, SwitchyardEvent[]>();
  for (const parts of logs.values()) {
    for (const list of parts) {
      for (const { event, record } of list) {
        if (event.type === 'ControllerTick') {
          if (event.policy !== null) ticks.push({ tick: event, position: record });
        } else if (event.causationId !== null && (event.type === 'WorkerEvicted' || event.type === 'InferenceFailed' || event.type === 'ResultSuperseded' || (event.type === 'SessionState' && event.reason === 'MIGRATED'))) {
          const list2 = caused.get(event.causationId);
          if (list2) list2.push(event);
          else caused.set(event.causationId, [event]);
        } else if (event.type === 'RequestRouted' && event.attempt > 1) {
          // A routing decision's causation is its request; the tick is found by who decided and on what fold (time and clock).
          const k = `${event.producer}@${event.occurredAt}@${clockSum(event.clock)}`;
          const list2 = routedBy.get(k);
          if (list2) list2.push(event);
          else routedBy.set(k, [event]);
        }
      }
    }
  }
  verifyElections(logs, source.topics.control.name, report, maxDivergences);
  const byController = new Map<string, typeof ticks>();
  for (const t of ticks) {
    const list = byController.get(t.tick.controllerId);
    if (list) list.push(t);
    else byController.set(t.tick.controllerId, [t]);
  }
  const diverge = (d: ControllerDivergence) => {
    report.diverged++;
    if (report.divergences.length < maxDivergences) report.divergences.push(d);
  };

  for (const [controller, list] of byController) {
    list.sort((a, b) => clockSum(a.tick.clock) - clockSum(b.tick.clock) || a.tick.seq - b.tick.seq);
    const folds = new Map<string, Fold>();
    for (const { tick } of list) {
      const policy = controllerPolicyFromVersion(tick.policy!);
      if (policy === null) {
        report.skipped++;
        continue;
      }
      let fold = folds.get(policy.version);
      if (fold === undefined) folds.set(policy.version, (fold = new Fold(logs, policy, lanes)));
      if (!fold.canReach(tick.clock)) fold.reset();
      fold.advanceTo(tick.clock);
      report.ticks++;
      const state = fold.state;
      const actions = decideTick(state, {
        tickId: tick.eventId,
        now: tick.occurredAt,
        controllerId: controller,
        epoch: state.view.epoch,
        previousTickAt: state.ticks.get(controller)?.lastAt ?? null,
        runStartAt: state.ticks.get(controller)?.runStartAt ?? null,
      });
      const derived = new Map(actions.map((a) => [`${a.kind}:${derivedAction(a).key}`, derivedAction(a)]));
      for (const event of [...(caused.get(tick.eventId) ?? []), ...(routedBy.get(`${controller}@${tick.occurredAt}@${clockSum(tick.clock)}`) ?? [])]) {
        const rec = recordedAction(event);
        if (rec === null) continue;
        const k = `${rec.kind}:${rec.key}`;
        const d = derived.get(k);
        if (d === undefined) {
          diverge({ tickId: tick.eventId, controller, occurredAt: tick.occurredAt, kind: 'unexpected', recorded: rec.fields, rederived: null });
        } else if (!deepEqual(d.fields, rec.fields)) {
          diverge({ tickId: tick.eventId, controller, occurredAt: tick.occurredAt, kind: 'different', recorded: rec.fields, rederived: d.fields });
          derived.delete(k);
        } else {
          report.verified++;
          report.byKind[rec.kind]++;
          derived.delete(k);
        }
      }
      for (const d of derived.values()) {
        if (d.kind === 'route') report.unplaced++;
        else diverge({ tickId: tick.eventId, controller, occurredAt: tick.occurredAt, kind: 'missing', recorded: null, rederived: d.fields });
      }
    }
  }
  report.ok = report.diverged === 0;
  return report;
}

/**
 * Leadership claims: a ControllerElected is the controller's own decision, made on the `control`
 * prefix its clock names. Folding that prefix must justify it: FIRST_LEADER when no leader was in
 * force; LEADER_SILENT when the leader it names was the one in force and its recorded silence
 * exceeds the lease; and the epoch claimed is the one after the epoch in force. (A claim that lost
 * the race for its epoch is refused by every fold; it is still a well-made claim.)
 */
function verifyElections(logs: Map<string, Logged[][]>, controlTopic: string, report: ControllerVerifyReport, maxDivergences: number): void {
  const control = logs.get(controlTopic)?.[0] ?? [];
  for (const { event } of control) {
    if (event.type === 'ControllerElected') {
      const at = event.clock.find((c) => c.topic === controlTopic)?.offset;
      // Fold exactly the prefix the claim was made on (control is one partition, in order).
      const prefix = initialControllerState(resolveControllerPolicy(), 1);
      for (const x of control) {
        if (at === undefined || x.record.offset >= at) break;
        evolve(prefix, x.event, x.record);
      }
      const v = prefix.view;
      const ok =
        event.epoch === v.epoch + 1 &&
        (event.reason === 'FIRST_LEADER'
          ? v.leader === null
          : event.reason === 'LEADER_SILENT'
            ? event.previousControllerId === v.leader && event.leaderSilenceMs !== null && event.leaderSilenceMs > event.leaseMs
            : true);
      if (ok) {
        report.verified++;
        report.byKind.elect++;
      } else {
        report.diverged++;
        if (report.divergences.length < maxDivergences) {
          report.divergences.push({ tickId: event.eventId, controller: event.controllerId, occurredAt: event.occurredAt, kind: 'different', recorded: { epoch: event.epoch, reason: event.reason, previous: event.previousControllerId, silenceMs: event.leaderSilenceMs }, rederived: { epochInForce: v.epoch, leader: v.leader } });
        }
      }
    }
  }
}

/** Text summary of a controller verify. */
export function controllerVerifyText(r: ControllerVerifyReport): string {
  const lines = [
    `controller decisions: ${r.verified} re-derived identically over ${r.ticks} deciding tick(s) (evictions ${r.byKind.evict}, re-dispatches/retries ${r.byKind.route}, ends ${r.byKind.fail}, superseded ${r.byKind.supersede}, session migrations ${r.byKind.migrate}, elections ${r.byKind.elect}); diverged ${r.diverged}; skipped ticks ${r.skipped}; unplaced re-dispatches ${r.unplaced}`,
  ];
  for (const d of r.divergences) lines.push(`  DIVERGED ${d.kind} at tick ${d.tickId} (${d.controller}): recorded ${JSON.stringify(d.recorded)} re-derived ${JSON.stringify(d.rederived)}`);
  return lines.join('\n');
}
