import { describe, expect, it } from 'vitest';
import type { SwitchyardEvent, WorkerEvicted, WorkerJoined } from '../../schemas/generated/events.js';
import { chooseLane, LaneTable } from './lanes.js';
import { NO_EVIDENCE } from '../router/fixtures.js';

const T0 = 1_735_689_600_000;
const joined = (workerId: string, lane: number): WorkerJoined => ({
  type: 'WorkerJoined',
  eventId: `j-${workerId}-${lane}`,
  occurredAt: T0,
  requestId: null,
  traceId: null,
  producer: workerId,
  causationId: null,
  clock: [],
  workerId,
  lane,
  zone: 'z',
  capacity: 4,
  models: [],
  backend: 'cpu',
  accelerator: null,
  maxBatchSize: 1,
  maxBatchDelayMs: 0,
  startedAt: T0,
});
const evicted = (workerId: string, lane: number, reason = 'DRAINED'): WorkerEvicted => ({
  type: 'WorkerEvicted',
  eventId: `e-${workerId}-${lane}`,
  occurredAt: T0,
  requestId: null,
  traceId: null,
  producer: workerId,
  causationId: null,
  clock: [],
  workerId,
  lane,
  reason,
  lastHeartbeatAt: null,
  lastHeartbeatSeq: null,
  detail: null,
  ...NO_EVIDENCE,
});
const fold = (events: SwitchyardEvent[], lanes = 4) => {
  const t = new LaneTable(lanes);
  for (const e of events) t.apply(e);
  return t;
};

describe('lane table (the router fold over control)', () => {
  it('gives a lane to the first claim in log order; a later claim of a held lane is refused', () => {
    const t = fold([joined('a', 1), joined('b', 1)]);
    expect(t.holder(1)).toBe('a');
    expect(t.laneOf('a')).toBe(1);
    expect(t.laneOf('b')).toBeUndefined();
    expect(t.claimsRefused).toBe(1);
  });

  it('frees a lane when its holder is evicted or releases it after draining; it can then be claimed', () => {
    const t = fold([joined('a', 1), evicted('a', 1), joined('b', 1)]);
    expect(t.holder(1)).toBe('b');
    expect(t.isEvicted('a')).toBe(true);
    expect(t.laneOf('a')).toBeUndefined();
  });

  it("applies a controller's eviction only under the epoch in force: a deposed leader's is ignored", () => {
    const elected = (epoch: number, controllerId: string): SwitchyardEvent => ({
      type: 'ControllerElected', eventId: `el-${epoch}`, occurredAt: T0, requestId: null, traceId: null, producer: controllerId, causationId: null, clock: [],
      controllerId, epoch, previousControllerId: null, reason: 'FIRST_LEADER', leaderSilenceMs: null, leaseMs: 2000,
    });
    const byEpoch = (workerId: string, lane: number, epoch: number): WorkerEvicted => ({ ...evicted(workerId, lane, 'SUSPECTED_DEAD'), epoch });
    expect(fold([elected(1, 'c1'), joined('a', 1), byEpoch('a', 1, 1)]).laneOf('a')).toBeUndefined();
    const deposed = fold([elected(1, 'c1'), joined('a', 1), elected(2, 'c2'), byEpoch('a', 1, 1)]);
    expect(deposed.laneOf('a')).toBe(1);
    expect(deposed.isEvicted('a')).toBe(false);
  });

  it('ignores an eviction that names another lane than the worker holds', () => {
    expect(fold([joined('a', 1), evicted('a', 2)]).holder(1)).toBe('a');
  });

  it('lets a worker re-claim its own lane (a restart under the same id)', () => {
    const t = fold([joined('a', 1), joined('a', 1)]);
    expect(t.laneOf('a')).toBe(1);
    expect(t.claimsRefused).toBe(0);
  });

  it('refuses claims of lanes that do not exist', () => {
    const t = fold([joined('a', 9)]);
    expect(t.laneOf('a')).toBeUndefined();
    expect(t.freeLanes()).toEqual([0, 1, 2, 3]);
  });
});

describe('choosing a lane to claim', () => {
  it('keeps the lane a worker already holds', () => {
    expect(chooseLane(fold([joined('a', 3)]), 'a', 0)).toBe(3);
  });

  it('takes the preferred lane when free, else a free lane found from a hash of the id', () => {
    const t = fold([joined('x', 0)]);
    expect(chooseLane(t, 'a', 2)).toBe(2);
    const other = chooseLane(t, 'a', 0);
    expect(other).not.toBe(0);
    expect(t.holder(other!)).toBeUndefined();
  });

  it('spreads workers racing to join over different lanes', () => {
    const t = new LaneTable(64);
    const picks = new Set(Array.from({ length: 20 }, (_, i) => chooseLane(t, `worker-${i}`)));
    expect(picks.size).toBeGreaterThan(12);
  });

  it('skips lanes it already lost and says when none is free', () => {
    const t = fold([joined('x', 0), joined('y', 1)], 3);
    expect(chooseLane(t, 'a', undefined, new Set([2]))).toBeUndefined();
    expect(chooseLane(t, 'a')).toBe(2);
  });
});
