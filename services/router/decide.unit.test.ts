import { describe, expect, it } from 'vitest';
import type { RequestRejected, RequestRouted, SwitchyardEvent } from '../../schemas/generated/events.js';
import type { RouterDecision } from './decide.js';
import { decide, routeCommandFromDecision } from './decide.js';
import {
  T0,
  command,
  completed,
  digestOf,
  draining,
  evicted,
  failed,
  fleet,
  given,
  heartbeat,
  joined,
  registered,
  request,
  rollout,
  routed,
} from './fixtures.js';
import { resolveRouterPolicy } from './policies/options.js';
import type { RouterState } from './state.js';
import { evolve } from './state.js';

function asRouted(d: RouterDecision): RequestRouted {
  if (d.type !== 'RequestRouted') throw new Error(`expected RequestRouted, got ${d.type} ${d.reason}: ${d.detail ?? ''}`);
  return d;
}
function asRejected(d: RouterDecision): RequestRejected {
  if (d.type !== 'RequestRejected') throw new Error(`expected RequestRejected, got ${d.type} to ${d.workerId}`);
  return d;
}
const excludedOf = (d: RouterDecision) => Object.fromEntries(d.candidates.map((c) => [c.workerId, c.excluded]));

describe('envelope and recording', () => {
  it('fills the envelope from the command and records candidates, version, digest, clock, pending decisions and policy', () => {
    const state = given(fleet({ workers: 2 }));
    const req = request('r1');
    const position = { topic: 'switchyard.requests', partition: 3, offset: 1234 };
    const cmd = command(req, { pending: [{ workerId: 'w0', lane: 0, count: 1 }], requestPosition: position });
    const d = asRouted(decide(cmd, state));
    expect(d).toMatchObject({
      eventId: cmd.eventId,
      occurredAt: cmd.now,
      requestId: 'r1',
      traceId: req.traceId,
      producer: 'router-1',
      causationId: req.eventId,
      clock: cmd.clock,
      model: 'm',
      modelVersion: 'v1',
      modelDigest: digestOf('m', 'v1'),
      requestedModel: null,
      pendingDecisions: [{ workerId: 'w0', lane: 0, count: 1 }],
      policyVersion: 'router/4',
      attempt: 1,
      previousWorkerId: null,
      priority: 'NORMAL',
      // The decision is the dispatch: it carries the request.
      input: req.input,
      contentType: 'application/json',
      parameters: {},
      cacheable: true,
      request: position,
    });
    expect(d.candidates).toEqual([
      { workerId: 'w0', lane: 0, zone: 'zone-a', modelVersion: 'v1', score: 1 / 8, load: 0, inFlight: 1, excluded: null },
      { workerId: 'w1', lane: 1, zone: 'zone-a', modelVersion: 'v1', score: 0, load: 0, inFlight: 0, excluded: null },
    ]);
  });

  it('rejects a request without a requestId as INVALID_REQUEST', () => {
    const state = given(fleet({ workers: 1 }));
    const req = { ...request('x'), requestId: null };
    expect(asRejected(decide(command(req), state)).reason).toBe('INVALID_REQUEST');
  });
});

describe('deadline', () => {
  it('given a deadline at or before now, when routed, then DEADLINE_EXCEEDED and no candidates', () => {
    const state = given(fleet({ workers: 2 }));
    const d = asRejected(decide(command(request('r1', { deadlineAt: T0 + 100 }), { now: T0 + 100 }), state));
    expect(d).toMatchObject({ reason: 'DEADLINE_EXCEEDED', candidates: [], retryAfterMs: null });
  });

  it('given a deadline still ahead, then the request is routed with the deadline copied', () => {
    const state = given(fleet({ workers: 2 }));
    const d = asRouted(decide(command(request('r1', { deadlineAt: T0 + 101 }), { now: T0 + 100 }), state));
    expect(d.deadlineAt).toBe(T0 + 101);
  });
});

describe('request rules (requests Kafka clients wrote straight to the log)', () => {
  it('given a Kafka client request whose JSON input does not parse and whose model name is malformed, then INVALID_REQUEST naming both', () => {
    const state = given(fleet({ workers: 2 }));
    const bad = { ...request('r1'), source: 'KAFKA_CLIENT' as const, model: 'bad model!', input: Buffer.from('{not json') };
    const d = asRejected(decide(command(bad), state));
    expect(d).toMatchObject({ reason: 'INVALID_REQUEST', candidates: [] });
    expect(d.detail).toMatch(/model: .*\[FORMAT\]/);
    expect(d.detail).toMatch(/input: .*\[NOT_JSON\]/);
  });

  it('given the same non-JSON input from the gateway (which checked it), then it is not parsed again and the request routes', () => {
    const state = given(fleet({ workers: 2 }));
    const fromGateway = { ...request('r1'), source: 'GATEWAY' as const, input: Buffer.from('{not json') };
    expect(decide(command(fromGateway), state).type).toBe('RequestRouted');
  });

  it('given a request without a requestId, then INVALID_REQUEST', () => {
    const state = given(fleet({ workers: 2 }));
    const d = asRejected(decide(command({ ...request('r1'), requestId: null }), state));
    expect(d).toMatchObject({ reason: 'INVALID_REQUEST' });
    expect(d.detail).toMatch(/requestId/);
  });
});

describe('model version', () => {
  const events = (): SwitchyardEvent[] => [
    ...fleet({ workers: 4 }),
    registered('m', 'v2'),
    rollout('m', [{ version: 'v1', weight: 90 }, { version: 'v2', weight: 10 }], { stable: 'v1', canary: 'v2' }),
  ];

  it('given an unknown model, then UNKNOWN_MODEL', () => {
    const d = asRejected(decide(command(request('r1', { model: 'nope' })), given(events())));
    expect(d.reason).toBe('UNKNOWN_MODEL');
  });

  it('given a pinned version, then that version regardless of the rollout; an unregistered pin is UNKNOWN_MODEL', () => {
    const state = given(events());
    for (let i = 0; i < 50; i++) {
      expect(asRouted(decide(command(request(`r${i}`, { modelVersion: 'v2' })), state)).modelVersion).toBe('v2');
    }
    const d = asRejected(decide(command(request('r', { modelVersion: 'v9' })), state));
    expect(d).toMatchObject({ reason: 'UNKNOWN_MODEL' });
    expect(d.detail).toContain('v9');
  });

  it('given no rollout, then the version registered last', () => {
    const state = given([...fleet({ workers: 2 }), registered('m', 'v2'), registered('m', 'v3')]);
    const d = asRouted(decide(command(request('r1')), state));
    expect(d).toMatchObject({ modelVersion: 'v3', modelDigest: digestOf('m', 'v3') });
  });

  it('given a 90/10 canary, then about 10% of sessions get the canary, and each session keeps its version', () => {
    const state = given(events());
    const sessions = 10_000;
    const version = new Map<string, string>();
    for (let s = 0; s < sessions; s++) version.set(`s${s}`, asRouted(decide(command(request(`a${s}`, { sessionId: `s${s}` })), state)).modelVersion);
    const canary = [...version.values()].filter((v) => v === 'v2').length / sessions;
    expect(canary).toBeGreaterThan(0.085);
    expect(canary).toBeLessThan(0.115);
    // Sticky: a later request of the same session gets the same version.
    for (let s = 0; s < 500; s++) {
      expect(asRouted(decide(command(request(`b${s}`, { sessionId: `s${s}` })), state)).modelVersion).toBe(version.get(`s${s}`));
    }
  });

  it('given the canary weight raised to 50%, then every canary session stays on the canary (only stable sessions move)', () => {
    const state = given(events());
    const before = new Map<string, string>();
    for (let s = 0; s < 2000; s++) before.set(`s${s}`, asRouted(decide(command(request(`a${s}`, { sessionId: `s${s}` })), state)).modelVersion);
    evolve(state, rollout('m', [{ version: 'v2', weight: 50 }, { version: 'v1', weight: 50 }], { stable: 'v1', canary: 'v2' }));
    let canary = 0;
    for (let s = 0; s < 2000; s++) {
      const v = asRouted(decide(command(request(`b${s}`, { sessionId: `s${s}` })), state)).modelVersion;
      if (before.get(`s${s}`) === 'v2') expect(v).toBe('v2');
      if (v === 'v2') canary++;
    }
    expect(canary / 2000).toBeGreaterThan(0.45);
    expect(canary / 2000).toBeLessThan(0.55);
  });

  it('given requests without a session, then the split follows the requestId', () => {
    const state = given(events());
    let canary = 0;
    for (let i = 0; i < 5000; i++) if (asRouted(decide(command(request(`r${i}`)), state)).modelVersion === 'v2') canary++;
    expect(canary / 5000).toBeGreaterThan(0.08);
    expect(canary / 5000).toBeLessThan(0.12);
  });
});

describe('candidate exclusions', () => {
  it('given draining, evicted, stale, silent and model-less workers, then each carries its reason and only the healthy one is chosen', () => {
    const now = T0 + 10_000;
    const state = given([
      registered('m', 'v1'),
      registered('other', 'v1'),
      joined('ok', 0),
      heartbeat('ok', 0, { at: now - 100 }),
      joined('drain', 1),
      heartbeat('drain', 1, { at: now - 100 }),
      draining('drain', 1),
      joined('drainhb', 2),
      heartbeat('drainhb', 2, { at: now - 100, draining: true }),
      joined('gone', 3),
      heartbeat('gone', 3, { at: now - 100 }),
      evicted('gone', 3),
      joined('stale', 4),
      heartbeat('stale', 4, { at: now - 2001 }),
      joined('silent', 5),
      joined('other-model', 6, { models: ['other'] }),
      heartbeat('other-model', 6, { at: now - 100 }),
      joined('not-loaded', 7),
      heartbeat('not-loaded', 7, { at: now - 100, loadedModels: [digestOf('m', 'v0')] }),
      joined('loaded', 8),
      heartbeat('loaded', 8, { at: now - 100, loadedModels: [digestOf('m', 'v1')], queueDepth: 8 }),
      joined('elsewhere', 9),
      heartbeat('elsewhere', 2, { at: now - 100 }), // a heartbeat for another lane: not this claim's
    ]);
    const d = asRouted(decide(command(request('r1'), { now }), state));
    expect(excludedOf(d)).toEqual({
      ok: null,
      drain: 'DRAINING',
      drainhb: 'DRAINING',
      gone: 'EVICTED',
      stale: 'STALE_HEARTBEAT',
      silent: 'UNHEALTHY',
      'other-model': 'NO_MODEL',
      'not-loaded': null, // loaded digests exclude nothing: weights load on demand
      loaded: null,
      elsewhere: 'UNHEALTHY',
    });
    expect(d.workerId).toBe('ok'); // 'loaded' has a queue
  });

  it('given a heartbeat from an older incarnation than the claim, then UNHEALTHY until the new one heartbeats', () => {
    const state = given([registered('m', 'v1'), joined('w', 0, { startedAt: T0 }), heartbeat('w', 0, { startedAt: T0 - 5000, seq: 99 })]);
    expect(excludedOf(asRejected(decide(command(request('r1')), state)))).toEqual({ w: 'UNHEALTHY' });
    evolve(state, heartbeat('w', 0, { startedAt: T0, seq: 0 }));
    expect(asRouted(decide(command(request('r2')), state)).workerId).toBe('w');
  });

  it('given no eligible worker and no fallback, then NO_CAPACITY with the candidates and a retry hint', () => {
    const state = given([...fleet({ workers: 2 }), draining('w0', 0), evicted('w1', 1)]);
    const d = asRejected(decide(command(request('r1')), state));
    expect(d).toMatchObject({ reason: 'NO_CAPACITY', retryAfterMs: 1000 });
    expect(excludedOf(d)).toEqual({ w0: 'DRAINING', w1: 'EVICTED' });
  });
});

describe('lane claims', () => {
  it('given two claims of one lane, then the first in log order wins and the loser is no candidate', () => {
    const state = given([registered('m', 'v1'), joined('a', 0), joined('b', 0), heartbeat('a', 0), heartbeat('b', 0)]);
    expect(state.claimsRefused).toBe(1);
    expect(state.laneHolders.get(0)).toBe('a');
    const d = asRouted(decide(command(request('r1')), state));
    expect(d.candidates.map((c) => c.workerId)).toEqual(['a']);
    expect(d).toMatchObject({ workerId: 'a', lane: 0 });
  });

  it('given the holder evicted, then a new claim of the lane wins and the evicted worker leaves the candidates', () => {
    const state = given([registered('m', 'v1'), joined('a', 0), evicted('a', 0), joined('b', 0), heartbeat('b', 0)]);
    const d = asRouted(decide(command(request('r1')), state));
    expect(d.candidates.map((c) => [c.workerId, c.lane])).toEqual([['b', 0]]);
  });

  it('given a claim outside the lanes, then it is refused', () => {
    const state = given([registered('m', 'v1'), joined('a', 64), joined('b', -1)]);
    expect(state.claimsRefused).toBe(2);
    expect(state.candidates).toHaveLength(0);
  });

  it('given a live worker claiming another free lane, then it moves and its old lane is free', () => {
    const state = given([registered('m', 'v1'), joined('a', 0), joined('a', 5), joined('b', 0)]);
    expect([...state.laneHolders.entries()].sort()).toEqual([
      [0, 'b'],
      [5, 'a'],
    ]);
  });
});

describe('zone preference and failover', () => {
  const zones = () => fleet({ workers: 4, zones: ['zone-a', 'zone-b'] }); // w0,w2 in a; w1,w3 in b

  it('given a preferred zone with capacity, then a worker in it; the others are excluded as ZONE', () => {
    const state = given(zones());
    for (let i = 0; i < 20; i++) {
      const d = asRouted(decide(command(request(`r${i}`, { zone: 'zone-b' })), state));
      expect(['w1', 'w3']).toContain(d.workerId);
      expect(d).toMatchObject({ zone: 'zone-b', degraded: false, reason: 'LEAST_LOADED' });
      expect(excludedOf(d)).toMatchObject({ w0: 'ZONE', w2: 'ZONE' });
    }
  });

  it('given the preferred zone has no healthy worker, then cross-zone failover, degraded', () => {
    const state = given([...zones(), draining('w1', 1), evicted('w3', 3)]);
    const d = asRouted(decide(command(request('r1', { zone: 'zone-b' })), state));
    expect(['w0', 'w2']).toContain(d.workerId);
    expect(d).toMatchObject({ zone: 'zone-a', degraded: true, reason: 'ZONE_FAILOVER' });
  });

  it('given every worker of the preferred zone at capacity and another zone below it, then spill over (in-zone ones OVERLOADED)', () => {
    const state = given([...zones(), heartbeat('w1', 1, { zone: 'zone-b', seq: 1, inFlight: 8 }), heartbeat('w3', 3, { zone: 'zone-b', seq: 1, inFlight: 6, queueDepth: 3 })]);
    const d = asRouted(decide(command(request('r1', { zone: 'zone-b' })), state));
    expect(d).toMatchObject({ zone: 'zone-a', degraded: true, reason: 'ZONE_FAILOVER' });
    expect(excludedOf(d)).toMatchObject({ w1: 'OVERLOADED', w3: 'OVERLOADED' });
  });

  it('given the whole fleet at capacity, then no spill: the preferred zone keeps the request', () => {
    const hot = (id: string, lane: number, zone: string) => heartbeat(id, lane, { zone, seq: 1, inFlight: 8 });
    const state = given([...zones(), hot('w0', 0, 'zone-a'), hot('w1', 1, 'zone-b'), hot('w2', 2, 'zone-a'), hot('w3', 3, 'zone-b')]);
    const d = asRouted(decide(command(request('r1', { zone: 'zone-b', priority: 'HIGH' })), state));
    expect(d).toMatchObject({ zone: 'zone-b', degraded: false });
  });
});

describe('session affinity (rendezvous hashing with bounded load)', () => {
  it('given the same session, then the same worker every time', () => {
    const state = given(fleet({ workers: 8 }));
    const first = asRouted(decide(command(request('r0', { sessionId: 'sess-42' })), state));
    expect(first.reason).toBe('AFFINITY');
    for (let i = 1; i < 20; i++) expect(asRouted(decide(command(request(`r${i}`, { sessionId: 'sess-42' })), state)).workerId).toBe(first.workerId);
  });

  it('given an idle fleet where the session worker still counts one request in flight, then it keeps the session (the floor), and past the floor the bound applies', () => {
    const state = given(fleet({ workers: 3, capacity: 4 }));
    const home = asRouted(decide(command(request('r0', { sessionId: 'sess-7' })), state)).workerId;
    const lane = Number(home.slice(1));
    // Its previous request's result is not read back yet: 1 outstanding, the others 0. The bound
    // alone, ⌈1.25·2·4/12⌉ = 1, would move the session; the floor ⌊0.5·4⌋ = 2 keeps it.
    const one = asRouted(decide(command(request('r1', { sessionId: 'sess-7' }), { pending: [{ workerId: home, lane, count: 1 }] }), state));
    expect(one).toMatchObject({ workerId: home, reason: 'AFFINITY', degraded: false });
    // Two in flight reaches the floor, and above the bound: the session spills, degraded.
    const two = asRouted(decide(command(request('r2', { sessionId: 'sess-7' }), { pending: [{ workerId: home, lane, count: 2 }] }), state));
    expect(two.workerId).not.toBe(home);
    expect(two).toMatchObject({ reason: 'AFFINITY', degraded: true });
    // With the floor off, the classic bound moves it at one in flight.
    const classic = resolveRouterPolicy({ affinityFloor: 0 });
    expect(asRouted(decide(command(request('r3', { sessionId: 'sess-7' }), { pending: [{ workerId: home, lane, count: 1 }], policy: classic }), state)).workerId).not.toBe(home);
  });

  it('given a ninth worker joins, then most sessions keep their worker and those that move go to the new one', () => {
    const state = given(fleet({ workers: 8 }));
    const sessions = 2000;
    const before = new Map<string, string>();
    for (let s = 0; s < sessions; s++) before.set(`s${s}`, asRouted(decide(command(request(`a${s}`, { sessionId: `s${s}` })), state)).workerId);
    evolve(state, joined('w8', 8));
    evolve(state, heartbeat('w8', 8));
    let kept = 0;
    for (let s = 0; s < sessions; s++) {
      const now = asRouted(decide(command(request(`b${s}`, { sessionId: `s${s}` })), state)).workerId;
      if (now === before.get(`s${s}`)) kept++;
      else expect(now).toBe('w8');
    }
    expect(kept / sessions).toBeGreaterThanOrEqual(0.75);
    expect(kept / sessions).toBeGreaterThan(0.85); // ≈ 8/9 expected
  });

  it('given a worker leaves, then only its sessions move', () => {
    const state = given(fleet({ workers: 8 }));
    const before = new Map<string, string>();
    for (let s = 0; s < 1000; s++) before.set(`s${s}`, asRouted(decide(command(request(`a${s}`, { sessionId: `s${s}` })), state)).workerId);
    evolve(state, evicted('w3', 3));
    for (let s = 0; s < 1000; s++) {
      const now = asRouted(decide(command(request(`b${s}`, { sessionId: `s${s}` })), state)).workerId;
      if (before.get(`s${s}`) !== 'w3') expect(now).toBe(before.get(`s${s}`));
      else expect(now).not.toBe('w3');
    }
  });

  it('given the session worker above (1+ε)·average load, then the next worker in rendezvous order, degraded, the first OVERLOADED', () => {
    const events = fleet({ workers: 4 });
    const top = asRouted(decide(command(request('probe', { sessionId: 'S' })), given(events))).workerId;
    const lane = Number(top.slice(1));
    // Six requests in flight on the session's worker: M = 6, C = 32, bound = ⌈1.25 · 7 · 8 / 32⌉ = 3 < 7.
    const busy = Array.from({ length: 6 }, (_, i) => routed(`busy${i}`, top, lane));
    const state = given([...events, ...busy]);
    const d = asRouted(decide(command(request('r1', { sessionId: 'S' })), state));
    expect(d.workerId).not.toBe(top);
    expect(d).toMatchObject({ reason: 'AFFINITY', degraded: true });
    expect(excludedOf(d)[top]).toBe('OVERLOADED');
    // The fallback is the session's second rendezvous choice: the same one every time.
    expect(asRouted(decide(command(request('r2', { sessionId: 'S' })), state)).workerId).toBe(d.workerId);
  });

  it('given the session worker within the bound, then it keeps the session', () => {
    const events = fleet({ workers: 4 });
    const top = asRouted(decide(command(request('probe', { sessionId: 'S' })), given(events))).workerId;
    const lane = Number(top.slice(1));
    // Two in flight on it and one on each other: M = 5, bound = ⌈1.25 · 6 · 8 / 32⌉ = 2, 2 + 1 > 2 → moves;
    // with one on it and one on each other: M = 4, bound = ⌈1.25 · 5 / 4⌉ = 2, 1 + 1 ≤ 2 → stays.
    const others = ['w0', 'w1', 'w2', 'w3'].filter((w) => w !== top);
    const state = given([...events, routed('x', top, lane), ...others.map((w, i) => routed(`o${i}`, w, Number(w.slice(1))))]);
    const d = asRouted(decide(command(request('r1', { sessionId: 'S' })), state));
    expect(d).toMatchObject({ workerId: top, degraded: false });
  });

  it('given the session worker unhealthy, then the next in rendezvous order, and back when it recovers', () => {
    const events = fleet({ workers: 4 });
    const top = asRouted(decide(command(request('probe', { sessionId: 'S' })), given(events))).workerId;
    const lane = Number(top.slice(1));
    const state = given(events);
    const now = T0 + 5000; // every heartbeat is stale…
    for (const w of ['w0', 'w1', 'w2', 'w3'].filter((x) => x !== top)) evolve(state, heartbeat(w, Number(w.slice(1)), { seq: 1, at: now })); // …but the others'
    const d = asRouted(decide(command(request('r1', { sessionId: 'S' }), { now }), state));
    expect(d.workerId).not.toBe(top);
    expect(excludedOf(d)[top]).toBe('STALE_HEARTBEAT');
    evolve(state, heartbeat(top, lane, { seq: 1, at: now }));
    expect(asRouted(decide(command(request('r2', { sessionId: 'S' }), { now }), state)).workerId).toBe(top);
  });
});

describe('power of two choices', () => {
  it('given a stream of requests read back into the state, then load spreads evenly', () => {
    const state = given(fleet({ workers: 16, capacity: 1000 }));
    for (let i = 0; i < 1600; i++) {
      const d = asRouted(decide(command(request(`r${i}`)), state));
      expect(d.reason).toBe('LEAST_LOADED');
      evolve(state, routed(d.requestId!, d.workerId, d.lane));
    }
    const counts = state.candidates.map((w) => w.inFlight);
    expect(counts.reduce((a, b) => a + b, 0)).toBe(1600);
    expect(Math.max(...counts) - Math.min(...counts)).toBeLessThanOrEqual(3);
  });

  it('given one much busier worker, then it is not chosen when sampled against an idle one', () => {
    const events = fleet({ workers: 2 });
    const state = given([...events, heartbeat('w0', 0, { seq: 1, inFlight: 8, queueDepth: 4 })]);
    for (let i = 0; i < 50; i++) expect(asRouted(decide(command(request(`r${i}`)), state)).workerId).toBe('w1');
  });

  it('given an idle fleet, then ties are broken by a hash of the request id: deterministic per request, spread over workers', () => {
    const state = given(fleet({ workers: 8 }));
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const a = asRouted(decide(command(request(`r${i}`)), state)).workerId;
      expect(asRouted(decide(command(request(`r${i}`)), state)).workerId).toBe(a);
      seen.add(a);
    }
    expect(seen.size).toBe(8);
  });

  it('given P2C off, then the least loaded worker', () => {
    const state = given([...fleet({ workers: 4 }), heartbeat('w0', 0, { seq: 1, inFlight: 3 }), heartbeat('w1', 1, { seq: 1, inFlight: 1 }), heartbeat('w2', 2, { seq: 1, inFlight: 2 }), heartbeat('w3', 3, { seq: 1, inFlight: 4 })]);
    const policy = resolveRouterPolicy({ powerOfTwoChoices: false });
    const d = asRouted(decide(command(request('r1'), { policy }), state));
    expect(d).toMatchObject({ workerId: 'w1', policyVersion: 'router/4;powerOfTwoChoices=false' });
  });

  it("given this router's pending decisions, then they count as load", () => {
    const state = given(fleet({ workers: 2 }));
    const pending = [{ workerId: 'w0', lane: 0, count: 5 }];
    for (let i = 0; i < 30; i++) {
      const d = asRouted(decide(command(request(`r${i}`), { pending }), state));
      expect(d.workerId).toBe('w1');
      expect(d.candidates[0]).toMatchObject({ workerId: 'w0', inFlight: 5, score: 5 / 8 });
    }
  });
});

describe('priority classes and load shedding (on real queueing)', () => {
  /**
   * 4 workers × capacity 10, each reporting `queueDepth` queued jobs of which the oldest waited
   * `delay` ms at its heartbeat (made at T0; decisions at T0 + 100, so 100 ms more).
   */
  const queued = (delay: number, o: { queueDepth?: number; idle?: number[] } = {}): RouterState =>
    given([
      ...fleet({ workers: 4, capacity: 10 }),
      ...[0, 1, 2, 3].map((i) =>
        o.idle?.includes(i)
          ? heartbeat(`w${i}`, i, { seq: 1, capacity: 10, inFlight: 2 })
          : heartbeat(`w${i}`, i, { seq: 1, capacity: 10, inFlight: 10, queueDepth: o.queueDepth ?? 5, queueDelayMs: delay }),
      ),
    ]);
  const outcome = (state: RouterState, priority: 'CRITICAL' | 'HIGH' | 'NORMAL' | 'LOW' | 'BACKGROUND', attempt = 1) => {
    const d = decide(command(request(`r-${priority}`, { priority }), { attempt }), state);
    return d.type === 'RequestRouted' ? 'routed' : d.reason;
  };
  const classes = ['BACKGROUND', 'LOW', 'NORMAL', 'HIGH', 'CRITICAL'] as const;

  it.each([
    [0, ['routed', 'routed', 'routed', 'routed', 'routed']],
    [200, ['SHED', 'routed', 'routed', 'routed', 'routed']],
    [450, ['SHED', 'SHED', 'routed', 'routed', 'routed']],
    [2_000, ['SHED', 'SHED', 'SHED', 'routed', 'routed']],
    [60_000, ['SHED', 'SHED', 'SHED', 'SHED', 'routed']],
  ])('given every worker has queued work waiting %d ms (+100 ms since its heartbeat), then the lowest classes are shed first', (delay, expected) => {
    const state = queued(delay);
    expect(classes.map((p) => outcome(state, p))).toEqual(expected);
  });

  it('given one worker is not queueing, then nothing is shed however long the others queue', () => {
    const state = queued(60_000, { idle: [2] });
    expect(classes.map((p) => outcome(state, p))).toEqual(['routed', 'routed', 'routed', 'routed', 'routed']);
  });

  it('given a large backlog just routed (a takeover) while the workers report no queue, then nothing is shed', () => {
    const events: SwitchyardEvent[] = [...fleet({ workers: 2, capacity: 4 }), heartbeat('w0', 0, { seq: 1, capacity: 4 }), heartbeat('w1', 1, { seq: 1, capacity: 4 })];
    for (let i = 0; i < 100; i++) events.push(routed(`backlog-${i}`, `w${i % 2}`, i % 2));
    const state = given(events);
    const pending = [{ workerId: 'w0', lane: 0, count: 50 }, { workerId: 'w1', lane: 1, count: 50 }];
    for (const priority of classes) expect(decide(command(request(`r-${priority}`, { priority }), { pending }), state).type).toBe('RequestRouted');
  });

  it('given a retry or a re-dispatch (attempt > 1), then it is never shed', () => {
    const state = queued(60_000);
    expect(classes.map((p) => outcome(state, p, 2))).toEqual(['routed', 'routed', 'routed', 'routed', 'routed']);
  });

  it('given a shed request, then SHED with the retry hint, its priority, the candidates and the queue delay in the detail', () => {
    const d = asRejected(decide(command(request('r1', { priority: 'BACKGROUND', sessionId: 's' })), queued(400)));
    expect(d).toMatchObject({ reason: 'SHED', priority: 'BACKGROUND', retryAfterMs: 1000, sessionId: 's' });
    expect(d.candidates).toHaveLength(4);
    expect(d.detail).toContain('500 ms');
  });

  it('given custom thresholds, then they apply and the policy version says so', () => {
    const policy = resolveRouterPolicy({ shedAtQueueDelayMs: { BACKGROUND: 40, LOW: 40 }, shedRetryAfterMs: 250 });
    const d = asRejected(decide(command(request('r1', { priority: 'LOW' }), { policy }), queued(0, { queueDepth: 1 })));
    expect(d).toMatchObject({ reason: 'SHED', retryAfterMs: 250, policyVersion: 'router/4;shedAtQueueDelayMs.LOW=40;shedAtQueueDelayMs.BACKGROUND=40;shedRetryAfterMs=250' });
    expect(outcome(queued(0, { queueDepth: 1 }), 'NORMAL')).toBe('routed');
  });
});

describe('fallback model', () => {
  const events = (): SwitchyardEvent[] => [
    registered('small', 'v1'),
    registered('big', 'v1', { fallbackModel: 'small' }),
    joined('w0', 0, { models: ['small'] }),
    heartbeat('w0', 0),
    joined('w1', 1, { models: ['small', 'big'] }),
    heartbeat('w1', 1),
  ];

  it('given the model has healthy capacity, then no fallback', () => {
    const d = asRouted(decide(command(request('r1', { model: 'big' })), given(events())));
    expect(d).toMatchObject({ model: 'big', fallback: false, workerId: 'w1', requestedModel: null });
  });

  it('given no healthy capacity for the model, then its fallback model, degraded, with both candidate sets recorded', () => {
    const state = given([...events(), draining('w1', 1)]);
    const d = asRouted(decide(command(request('r1', { model: 'big' })), state));
    expect(d).toMatchObject({
      model: 'small',
      requestedModel: 'big',
      modelVersion: 'v1',
      modelDigest: digestOf('small', 'v1'),
      fallback: true,
      degraded: true,
      reason: 'FALLBACK_MODEL',
      workerId: 'w0',
    });
    expect(d.candidates.map((c) => [c.workerId, c.modelVersion, c.excluded])).toEqual([
      ['w0', 'v1', 'NO_MODEL'],
      ['w1', 'v1', 'DRAINING'],
      ['w0', 'v1', null],
      ['w1', 'v1', 'DRAINING'],
    ]);
  });

  it('given the request forbids fallback, then NO_CAPACITY', () => {
    const state = given([...events(), draining('w1', 1)]);
    expect(asRejected(decide(command(request('r1', { model: 'big', allowFallback: false })), state)).reason).toBe('NO_CAPACITY');
  });

  it('given the fallback has no capacity either, then NO_CAPACITY naming both', () => {
    const state = given([...events(), draining('w1', 1), draining('w0', 0)]);
    const d = asRejected(decide(command(request('r1', { model: 'big' })), state));
    expect(d.reason).toBe('NO_CAPACITY');
    expect(d.detail).toContain('fallback small');
    expect(d.candidates).toHaveLength(4);
  });
});

describe('outlier ejection', () => {
  /** Four workers; w0..w2 serve 20 fast results each over 5 s, w3 `bad` ones. Heartbeats fresh at `now`. */
  function scenario(bad: (i: number, at: number) => SwitchyardEvent) {
    const events: SwitchyardEvent[] = [...fleet({ workers: 4 })];
    for (let i = 0; i < 20; i++) {
      const at = T0 + i * 250;
      for (let w = 0; w < 3; w++) events.push(completed(`ok-${w}-${i}`, `w${w}`, w, { at, latencyMs: 20 }));
      events.push(bad(i, at));
    }
    return events;
  }
  const fresh = (state: RouterState, now: number) => {
    for (let w = 0; w < 4; w++) evolve(state, heartbeat(`w${w}`, w, { seq: now, at: now }));
  };
  const lastBad = T0 + 19 * 250;

  it('given a worker failing most requests, then it is EJECTED and nobody routes to it', () => {
    const state = given(scenario((i, at) => failed(`bad-${i}`, 'w3', 3, { at })));
    fresh(state, lastBad);
    for (let i = 0; i < 40; i++) {
      const d = asRouted(decide(command(request(`r${i}`), { now: lastBad }), state));
      expect(d.workerId).not.toBe('w3');
      expect(excludedOf(d).w3).toBe('EJECTED');
    }
  });

  it('given a worker 10× slower than its peers, then it is EJECTED', () => {
    const state = given(scenario((i, at) => completed(`slow-${i}`, 'w3', 3, { at, latencyMs: 400 })));
    fresh(state, lastBad);
    expect(excludedOf(decide(command(request('r1'), { now: lastBad }), state)).w3).toBe('EJECTED');
  });

  it('given the breaker on absolute compute time, then a worker over it is backed out however its peers do, and a fleet all over it falls back (degraded)', () => {
    // Compute time is half of latencyMs in the fixtures: w3 computes 4 ms (its p90 bin edge 5.66 ms), the others 10 ms (bin edge 11.3 ms).
    const policy = resolveRouterPolicy({ ejection: { maxComputeMs: 5 } });
    const onlyW3 = given(scenario((i, at) => completed(`w3-${i}`, 'w3', 3, { at, latencyMs: 8 })));
    fresh(onlyW3, lastBad);
    // Every worker computes ≥ 5 ms: every one is over the objective, though none is a relative outlier.
    const ex = excludedOf(decide(command(request('r1'), { now: lastBad, policy }), onlyW3));
    expect(ex).toEqual({ w0: 'EJECTED', w1: 'EJECTED', w2: 'EJECTED', w3: 'EJECTED' });
    const relaxed = resolveRouterPolicy({ ejection: { maxComputeMs: 6 } });
    expect(excludedOf(decide(command(request('r2'), { now: lastBad, policy: relaxed }), onlyW3))).toEqual({ w0: 'EJECTED', w1: 'EJECTED', w2: 'EJECTED', w3: null });
    // All over it, and the model has a fallback served by a fast worker: the fallback answers, degraded.
    const events = [...scenario((i, at) => completed(`w3-${i}`, 'w3', 3, { at, latencyMs: 8 })), registered('tiny', 'v1'), registered('m', 'v2', { fallbackModel: 'tiny' }), joined('w9', 9, { models: ['tiny'] })];
    const state = given(events);
    fresh(state, lastBad);
    evolve(state, heartbeat('w9', 9, { seq: lastBad, at: lastBad }));
    const d = asRouted(decide(command(request('r3', { model: 'm' }), { now: lastBad, policy }), state));
    expect(d).toMatchObject({ workerId: 'w9', model: 'tiny', fallback: true, degraded: true, reason: 'FALLBACK_MODEL', requestedModel: 'm' });
  });

  it('given failures the client caused (deadline passed), then no ejection', () => {
    const state = given(scenario((i, at) => failed(`late-${i}`, 'w3', 3, { at, errorCode: 'DEADLINE_EXCEEDED' })));
    fresh(state, lastBad);
    expect(excludedOf(decide(command(request('r1'), { now: lastBad }), state)).w3).toBeNull();
  });

  it('given a slow worker only slightly slower, or below minLatencyMs, then no ejection', () => {
    const state = given(scenario((i, at) => completed(`slow-${i}`, 'w3', 3, { at, latencyMs: 50 })));
    fresh(state, lastBad);
    expect(excludedOf(decide(command(request('r1'), { now: lastBad }), state)).w3).toBeNull();
  });

  it('given every worker failing alike, then nobody is an outlier', () => {
    const events: SwitchyardEvent[] = [...fleet({ workers: 4 })];
    for (let i = 0; i < 20; i++) for (let w = 0; w < 4; w++) events.push(failed(`f-${w}-${i}`, `w${w}`, w, { at: T0 + i * 250 }));
    const state = given(events);
    fresh(state, lastBad);
    expect(Object.values(excludedOf(decide(command(request('r1'), { now: lastBad }), state)))).toEqual([null, null, null, null]);
  });

  it('given more outliers than maxEjectedFraction allows, then only the worst are ejected', () => {
    const events: SwitchyardEvent[] = [...fleet({ workers: 4 })];
    for (let i = 0; i < 20; i++) {
      const at = T0 + i * 250;
      events.push(completed(`ok-${i}`, 'w0', 0, { at }));
      events.push(failed(`a-${i}`, 'w1', 1, { at })); // 100% errors
      events.push(i % 4 === 0 ? completed(`b-${i}`, 'w2', 2, { at }) : failed(`b-${i}`, 'w2', 2, { at })); // 75%
      events.push(i % 2 === 0 ? completed(`c-${i}`, 'w3', 3, { at }) : failed(`c-${i}`, 'w3', 3, { at })); // 50%
    }
    const state = given(events);
    fresh(state, lastBad);
    const policy = resolveRouterPolicy({ ejection: { maxEjectedFraction: 0.25, errorRateMargin: 0.1 } });
    expect(excludedOf(decide(command(request('r1'), { now: lastBad, policy }), state))).toEqual({ w0: null, w1: 'EJECTED', w2: null, w3: null });
  });

  it('given the cool-down has passed in log time, then half-open: one probe at a time, and back once the bad results leave the window', () => {
    const state = given(scenario((i, at) => failed(`bad-${i}`, 'w3', 3, { at })));
    const cooldown = 5000;
    // Log time moves on with the peers' results, not with the router's clock.
    let t = lastBad + cooldown - 1;
    evolve(state, completed('tick-1', 'w0', 0, { at: t }));
    fresh(state, t);
    expect(excludedOf(decide(command(request('a'), { now: t }), state)).w3).toBe('EJECTED');

    t = lastBad + cooldown;
    evolve(state, completed('tick-2', 'w0', 0, { at: t }));
    fresh(state, t);
    expect(excludedOf(decide(command(request('b'), { now: t }), state)).w3).toBeNull(); // half-open
    // A probe is in flight: no second one.
    evolve(state, routed('probe-1', 'w3', 3));
    expect(excludedOf(decide(command(request('c'), { now: t }), state)).w3).toBe('EJECTED');
    // The probe succeeds, but the window before it still holds the failures: ejected for another cool-down.
    evolve(state, completed('probe-1', 'w3', 3, { at: t + 10 }));
    expect(state.workers.get('w3')!.inFlight).toBe(0);
    expect(excludedOf(decide(command(request('d'), { now: t + 10 }), state)).w3).toBe('EJECTED');

    // Next cool-down over, second probe: the failures are now older than the window (10 s).
    t = t + 10 + cooldown;
    evolve(state, completed('tick-3', 'w0', 0, { at: t }));
    fresh(state, t);
    expect(excludedOf(decide(command(request('e'), { now: t }), state)).w3).toBeNull();
    evolve(state, routed('probe-2', 'w3', 3));
    evolve(state, completed('probe-2', 'w3', 3, { at: t + 10 }));
    fresh(state, t + 10);
    const d = decide(command(request('f'), { now: t + 10 }), state);
    expect(excludedOf(d).w3).toBeNull();
    // Closed: it takes ordinary traffic again, more than one request at a time.
    evolve(state, routed('more-1', 'w3', 3));
    expect(excludedOf(decide(command(request('g'), { now: t + 10 }), state)).w3).toBeNull();
  });

  it('given a failing probe, then ejected again for a cool-down', () => {
    const state = given(scenario((i, at) => failed(`bad-${i}`, 'w3', 3, { at })));
    const t = lastBad + 5000;
    evolve(state, completed('tick', 'w0', 0, { at: t }));
    fresh(state, t);
    evolve(state, routed('probe', 'w3', 3));
    evolve(state, failed('probe', 'w3', 3, { at: t + 10 }));
    expect(excludedOf(decide(command(request('x'), { now: t + 10 }), state)).w3).toBe('EJECTED');
    evolve(state, completed('tick-2', 'w0', 0, { at: t + 10 + 4999 }));
    fresh(state, t + 10 + 4999);
    expect(excludedOf(decide(command(request('y'), { now: t + 10 + 4999 }), state)).w3).toBe('EJECTED');
  });

  describe('panic rule: a relative outlier is routed to when no other worker is eligible', () => {
    /** Only w3 heartbeats at `now`; the others' heartbeats are from T0, stale by then. */
    const onlyW3Fresh = (state: RouterState, now: number) => evolve(state, heartbeat('w3', 3, { seq: now, at: now }));

    it('given the latency outlier is the only worker with a fresh heartbeat, then it takes the request, degraded, not NO_CAPACITY', () => {
      const state = given(scenario((i, at) => completed(`slow-${i}`, 'w3', 3, { at, latencyMs: 400 })));
      onlyW3Fresh(state, lastBad);
      const d = asRouted(decide(command(request('r1'), { now: lastBad }), state));
      expect(d).toMatchObject({ workerId: 'w3', degraded: true, fallback: false, reason: 'LEAST_LOADED' });
      expect(excludedOf(d)).toEqual({ w0: 'STALE_HEARTBEAT', w1: 'STALE_HEARTBEAT', w2: 'STALE_HEARTBEAT', w3: null });
      // One fresh peer is enough: the outlier is ejected again.
      evolve(state, heartbeat('w0', 0, { seq: lastBad, at: lastBad }));
      const e = asRouted(decide(command(request('r2'), { now: lastBad }), state));
      expect(e).toMatchObject({ workerId: 'w0', degraded: false });
      expect(excludedOf(e).w3).toBe('EJECTED');
    });

    it('given an error-rate outlier half-open with its probe outstanding and no other worker eligible, then it takes more', () => {
      const state = given(scenario((i, at) => failed(`bad-${i}`, 'w3', 3, { at })));
      const t = lastBad + 5000;
      evolve(state, completed('tick', 'w0', 0, { at: t }));
      evolve(state, routed('probe', 'w3', 3));
      for (const w of [0, 1, 2]) evolve(state, draining(`w${w}`, w));
      onlyW3Fresh(state, t);
      const d = asRouted(decide(command(request('r1'), { now: t }), state));
      expect(d).toMatchObject({ workerId: 'w3', degraded: true });
      expect(excludedOf(d)).toEqual({ w0: 'DRAINING', w1: 'DRAINING', w2: 'DRAINING', w3: null });
    });

    it('given the model has a fallback with an eligible worker, then the fallback answers rather than the outlier', () => {
      const events = [...scenario((i, at) => completed(`slow-${i}`, 'w3', 3, { at, latencyMs: 400 })), registered('tiny', 'v1'), registered('m', 'v2', { fallbackModel: 'tiny' }), joined('w9', 9, { models: ['tiny'] })];
      const state = given(events);
      onlyW3Fresh(state, lastBad);
      evolve(state, heartbeat('w9', 9, { seq: lastBad, at: lastBad }));
      const d = asRouted(decide(command(request('r1', { model: 'm' }), { now: lastBad }), state));
      expect(d).toMatchObject({ workerId: 'w9', model: 'tiny', fallback: true, reason: 'FALLBACK_MODEL' });
      expect(excludedOf(d).w3).toBe('EJECTED');
    });

    it('given the breaker on absolute compute time tripped, then it never gives way: NO_CAPACITY', () => {
      const policy = resolveRouterPolicy({ ejection: { maxComputeMs: 5 } });
      const state = given(scenario((i, at) => completed(`w3-${i}`, 'w3', 3, { at, latencyMs: 8 })));
      onlyW3Fresh(state, lastBad);
      const d = asRejected(decide(command(request('r1'), { now: lastBad, policy }), state));
      expect(d.reason).toBe('NO_CAPACITY');
      expect(excludedOf(d).w3).toBe('EJECTED');
    });

    it('given the outlier is the worker of the failed attempt, then a re-dispatch does not panic back onto it', () => {
      const state = given(scenario((i, at) => completed(`slow-${i}`, 'w3', 3, { at, latencyMs: 400 })));
      onlyW3Fresh(state, lastBad);
      const req = request('r1');
      const d = asRejected(decide(command(req, { now: lastBad, attempt: 2, previousWorkerId: 'w3' }), state));
      expect(d.reason).toBe('NO_CAPACITY');
      expect(excludedOf(d).w3).toBe('PREVIOUS_ATTEMPT');
      expect(decide(routeCommandFromDecision(d, req), state)).toEqual(d);
    });

    it('given a panic decision, then replay re-derives it exactly from the state and the recorded command', () => {
      const state = given(scenario((i, at) => completed(`slow-${i}`, 'w3', 3, { at, latencyMs: 400 })));
      onlyW3Fresh(state, lastBad);
      const req = request('r1', { sessionId: 's1' });
      const d = asRouted(decide(command(req, { now: lastBad }), state));
      expect(d.workerId).toBe('w3');
      const again = decide(routeCommandFromDecision(d, req), state);
      expect(again).toEqual(d);
    });
  });

  it('given ejection disabled, then nobody is ejected', () => {
    const state = given(scenario((i, at) => failed(`bad-${i}`, 'w3', 3, { at })));
    fresh(state, lastBad);
    const policy = resolveRouterPolicy({ ejection: { enabled: false } });
    expect(excludedOf(decide(command(request('r1'), { now: lastBad, policy }), state)).w3).toBeNull();
  });
});

describe('re-dispatch', () => {
  it('given attempt 2 after a worker failed, then another worker, reason REDISPATCH, the previous one excluded', () => {
    const state = given(fleet({ workers: 3 }));
    const d = asRouted(decide(command(request('r1', { sessionId: 's' }), { attempt: 2, previousWorkerId: 'w1' }), state));
    expect(d).toMatchObject({ attempt: 2, previousWorkerId: 'w1', reason: 'REDISPATCH' });
    expect(d.workerId).not.toBe('w1');
    expect(excludedOf(d).w1).toBe('PREVIOUS_ATTEMPT');
  });
});

describe('re-derivability (replay verify)', () => {
  it('given any decision, when its command is rebuilt from the event and the request, then decide returns an identical event', () => {
    const events: SwitchyardEvent[] = [
      ...fleet({ workers: 6, zones: ['zone-a', 'zone-b'], models: ['m', 'small'], serves: ['m', 'small'] }),
      registered('big', 'v1', { fallbackModel: 'small' }),
      registered('m', 'v2'),
      rollout('m', [{ version: 'v1', weight: 3 }, { version: 'v2', weight: 1 }], { stable: 'v1', canary: 'v2' }),
      draining('w4', 4),
      // Every worker serves m and small but not big: big falls back to small.
      ...[0, 1, 2, 3, 4, 5].map((i) =>
        heartbeat(`w${i}`, i, { seq: 1, inFlight: i === 2 ? 7 : 0, queueDepth: i === 2 ? 2 : 1, queueDelayMs: i === 2 ? 30 : 10, loadedModels: [digestOf('m', 'v1'), digestOf('m', 'v2'), digestOf('small', 'v1')] }),
      ),
      routed('old-1', 'w0', 0),
      routed('old-2', 'w0', 0),
      completed('old-2', 'w0', 0),
    ];
    const state = given(events);
    const policies = [undefined, resolveRouterPolicy({ affinityEpsilon: 0.1, powerOfTwoChoices: false, shedAtQueueDelayMs: { BACKGROUND: 5 } })];
    const decisions: { d: RouterDecision; req: ReturnType<typeof request> }[] = [];
    let n = 0;
    for (const policy of policies) {
      for (const sessionId of [null, 'sess-1', 'sess-2']) {
        for (const o of [
          {},
          { zone: 'zone-b' },
          { zone: 'zone-c' },
          { model: 'big' },
          { model: 'big', allowFallback: false },
          { priority: 'BACKGROUND' as const },
          { deadlineAt: T0 },
          { model: 'm', modelVersion: 'v2' },
          { model: 'unknown' },
        ]) {
          const req = request(`req-${n++}`, { sessionId, ...o });
          const pending = n % 2 === 0 ? [{ workerId: 'w1', lane: 1, count: 2 }] : [];
          const attempt = n % 5 === 0 ? { attempt: 2, previousWorkerId: 'w3' } : n % 7 === 0 ? { attempt: 3, previousWorkerId: 'w1', retry: true } : {};
          const requestPosition = n % 3 === 0 ? { topic: 'switchyard.requests', partition: n % 12, offset: n * 10 } : null;
          decisions.push({ d: decide(command(req, { pending, requestPosition, ...(policy ? { policy } : {}), ...attempt }), state), req });
        }
      }
    }
    expect(new Set(decisions.map(({ d }) => (d.type === 'RequestRouted' ? d.reason : d.reason)))).toEqual(
      new Set(['LEAST_LOADED', 'AFFINITY', 'ZONE_FAILOVER', 'FALLBACK_MODEL', 'REDISPATCH', 'RETRY', 'NO_CAPACITY', 'SHED', 'DEADLINE_EXCEEDED', 'UNKNOWN_MODEL']),
    );
    // Replay: a fresh state from the same log, the command taken out of the recorded event.
    const rebuilt = given(events);
    for (const { d, req } of decisions) {
      const again = decide(routeCommandFromDecision(structuredClone(d), req), rebuilt);
      expect(again).toEqual(d);
    }
  });
});
