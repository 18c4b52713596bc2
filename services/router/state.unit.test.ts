import { describe, expect, it } from 'vitest';
import type { SwitchyardEvent } from '../../schemas/generated/events.js';
import { decide } from './decide.js';
import {
  T0,
  command,
  completed,
  digestOf,
  draining,
  evicted,
  failed,
  given,
  heartbeat,
  joined,
  registered,
  request,
  rollout,
  routed,
} from './fixtures.js';
import { hash32 } from './hash.js';
import type { RouterState } from './state.js';
import { RESULT_BUCKET_MS, RESULT_RING_SIZE, evolve, initialRouterState, latencyBin, latencyBinUpperMs, windowStats } from './state.js';
import { mulberry32 } from '../../lib/prng.js';

const inFlight = (s: RouterState, w: string) => s.workers.get(w)?.inFlight;

describe('in-flight ledger (decisions minus results, per request)', () => {
  const base = () => [registered('m', 'v1'), joined('w0', 0), joined('w1', 1)];

  it('given a decision, then +1 on its worker; given its result, then back to 0', () => {
    const s = given([...base(), routed('r1', 'w0', 0)]);
    expect(inFlight(s, 'w0')).toBe(1);
    evolve(s, completed('r1', 'w0', 0));
    expect(inFlight(s, 'w0')).toBe(0);
    expect(s.ledger.size).toBe(0);
  });

  it('given the result folded before its decision, then it still nets out to 0, and never goes negative in between', () => {
    const s = given([...base(), failed('r1', 'w0', 0)]);
    expect(inFlight(s, 'w0')).toBe(0);
    evolve(s, routed('r1', 'w0', 0));
    expect(inFlight(s, 'w0')).toBe(0);
    expect(s.ledger.size).toBe(0);
  });

  it('given duplicates of a pending decision or result, then they count once', () => {
    const s = given([...base(), routed('r1', 'w0', 0), routed('r1', 'w0', 0)]);
    expect(inFlight(s, 'w0')).toBe(1);
    const t = given([...base(), completed('r2', 'w1', 1), completed('r2', 'w1', 1), routed('r2', 'w1', 1)]);
    expect(inFlight(t, 'w1')).toBe(0);
  });

  it('given a re-dispatch (attempt 2), then each attempt is its own entry', () => {
    const s = given([...base(), routed('r1', 'w0', 0), routed('r1', 'w1', 1, { attempt: 2 }), completed('r1', 'w1', 1, { attempt: 2 })]);
    expect([inFlight(s, 'w0'), inFlight(s, 'w1')]).toEqual([1, 0]);
  });

  it('given the worker evicted, then its count is cleared and its later decisions and results are ignored', () => {
    const s = given([...base(), routed('r1', 'w0', 0), routed('r2', 'w0', 0), evicted('w0', 0), routed('r3', 'w0', 0), completed('r1', 'w0', 0)]);
    expect(inFlight(s, 'w0')).toBe(0);
    expect(s.ledger.size).toBe(0);
    expect(s.workers.get('w0')!.results).toBeNull();
  });
});

describe('heartbeats (latest per worker)', () => {
  it('given heartbeats out of order, then the highest seq wins', () => {
    const s = given([heartbeat('w0', 0, { seq: 5, queueDepth: 5 }), heartbeat('w0', 0, { seq: 3, queueDepth: 3 }), heartbeat('w0', 0, { seq: 5, queueDepth: 9 })]);
    expect(s.workers.get('w0')!.heartbeat).toMatchObject({ seq: 5, queueDepth: 5 });
  });

  it('given a restart (later startedAt), then its heartbeats win even with a lower seq', () => {
    const s = given([heartbeat('w0', 0, { seq: 900, startedAt: T0 }), heartbeat('w0', 0, { seq: 0, startedAt: T0 + 1, queueDepth: 1 }), heartbeat('w0', 0, { seq: 901, startedAt: T0 })]);
    expect(s.workers.get('w0')!.heartbeat).toMatchObject({ seq: 0, startedAt: T0 + 1, queueDepth: 1 });
  });
});

describe('models and rollouts', () => {
  it('given a version registered twice, then the first digest stands; fallback follows the latest registration', () => {
    const s = given([registered('m', 'v1', { digest: 'd1' }), registered('m', 'v1', { digest: 'other', fallbackModel: 'small' })]);
    const m = s.models.get('m')!;
    expect(m.versions.get('v1')!.digest).toBe('d1');
    expect(m.fallbackModel).toBe('small');
  });

  it('given a rollout, then its weights are kept stable first, canary last, without zero weights', () => {
    const s = given([rollout('m', [{ version: 'c', weight: 1 }, { version: 'x', weight: 0 }, { version: 'o', weight: 2 }, { version: 's', weight: 7 }], { stable: 's', canary: 'c' })]);
    expect(s.models.get('m')!.rollout!.weights.map((w) => w.version)).toEqual(['s', 'o', 'c']);
  });
});

describe('result windows', () => {
  it('buckets latency in half-octaves', () => {
    expect([0, 0.5, 1, 1.5, 2, 3, 100, 1e9].map(latencyBin)).toEqual([0, 0, 1, 2, 3, 4, 14, 39]);
    expect(latencyBinUpperMs(14)).toBeCloseTo(128, 5);
    for (const ms of [1, 7, 20, 99, 1000]) expect(latencyBinUpperMs(latencyBin(ms))).toBeGreaterThanOrEqual(ms);
  });

  it('given results across more than the ring, then only the newest window counts, whatever the order', () => {
    const events: SwitchyardEvent[] = [];
    for (let i = 0; i < RESULT_RING_SIZE + 10; i++) events.push(completed(`r${i}`, 'w0', 0, { at: T0 + i * RESULT_BUCKET_MS, latencyMs: 10 }));
    events.push(failed('f', 'w0', 0, { at: T0 + (RESULT_RING_SIZE + 9) * RESULT_BUCKET_MS }));
    const forward = given(events);
    const backward = given([...events].reverse());
    for (const s of [forward, backward]) {
      expect(windowStats(s.workers.get('w0')!.results!, 10_000, 0.9)).toEqual({ results: 11, errors: 1, latencyMs: latencyBinUpperMs(latencyBin(10)), computeMs: null });
    }
    expect(Array.from(forward.workers.get('w0')!.results!.cells)).toEqual(Array.from(backward.workers.get('w0')!.results!.cells));
  });
});

describe('unhandled events', () => {
  it('ignores events the router does not decide with', () => {
    const s = initialRouterState();
    evolve(s, { ...request('r1') });
    expect(s.workers.size).toBe(0);
  });
});

describe('interleaving independence', () => {
  /** A log as topic-partitions, each in its own order (the only order a consumer is promised). */
  function log(seed: number): Map<string, SwitchyardEvent[]> {
    const rnd = mulberry32(seed);
    const parts = new Map<string, SwitchyardEvent[]>();
    const put = (p: string, e: SwitchyardEvent) => {
      let list = parts.get(p);
      if (!list) parts.set(p, (list = []));
      list.push(e);
    };
    const workers = Array.from({ length: 10 }, (_, i) => ({ id: `w${i}`, lane: i, zone: i % 2 === 0 ? 'zone-a' : 'zone-b' }));
    put('control', registered('m', 'v1'));
    put('control', registered('m', 'v2'));
    put('control', rollout('m', [{ version: 'v1', weight: 4 }, { version: 'v2', weight: 1 }], { stable: 'v1', canary: 'v2' }));
    for (const w of workers) put('control', joined(w.id, w.lane, { zone: w.zone }));
    put('control', joined('intruder', 0)); // loses: lane 0 is taken
    put('control', draining('w8', 8));
    put('control', evicted('w9', 9));
    for (const w of workers) {
      for (let seq = 0; seq < 5; seq++) {
        put(`heartbeats-${hash32(w.id) % 6}`, heartbeat(w.id, w.lane, { zone: w.zone, seq, at: T0 + 2000 + seq * 200, inFlight: Math.floor(rnd() * 4), queueDepth: Math.floor(rnd() * 3), loadedModels: [digestOf('m', 'v1'), digestOf('m', 'v2')] }));
      }
    }
    for (let i = 0; i < 400; i++) {
      const w = workers[Math.floor(rnd() * workers.length)]!;
      const rid = `req-${i}`;
      const at = T0 + i * 8;
      put(`decisions-${w.lane}`, routed(rid, w.id, w.lane, { at }));
      if (rnd() < 0.8) {
        const p = `results-${hash32(rid) % 12}`;
        if (w.id === 'w5' && rnd() < 0.7) put(p, failed(rid, w.id, w.lane, { at: at + 30 }));
        else put(p, completed(rid, w.id, w.lane, { at: at + 30, latencyMs: w.id === 'w3' ? 600 : 10 + Math.floor(rnd() * 30) }));
      }
    }
    return parts;
  }

  /** One consumer's interleaving: repeatedly take the head of a random non-empty partition. */
  function interleave(parts: Map<string, SwitchyardEvent[]>, rnd: () => number): SwitchyardEvent[] {
    const queues = [...parts.values()].map((q) => ({ q, i: 0 }));
    const out: SwitchyardEvent[] = [];
    for (;;) {
      const open = queues.filter((x) => x.i < x.q.length);
      if (open.length === 0) return out;
      const pick = open[Math.floor(rnd() * open.length)]!;
      out.push(pick.q[pick.i++]!);
    }
  }

  /** Topic by topic in the worst order: results before their decisions, control last. */
  function byTopic(parts: Map<string, SwitchyardEvent[]>): SwitchyardEvent[] {
    const order = ['results', 'decisions', 'heartbeats', 'control'];
    return [...parts.entries()].sort(([a], [b]) => order.indexOf(a.split('-')[0]!) - order.indexOf(b.split('-')[0]!)).flatMap(([, q]) => q);
  }

  function summary(s: RouterState) {
    return {
      lanes: [...s.laneHolders.entries()].sort((a, b) => a[0] - b[0]),
      candidates: s.candidates.map((w) => w.workerId),
      workers: [...s.workers.values()]
        .sort((a, b) => (a.workerId < b.workerId ? -1 : 1))
        .map((w) => ({
          id: w.workerId,
          claim: w.claim,
          evicted: w.evicted,
          draining: w.draining,
          heartbeat: w.heartbeat,
          inFlight: w.inFlight,
          results: w.results && { last: w.results.lastResultAt, stats: windowStats(w.results, 10_000, 0.9) },
        })),
      ledger: [...s.ledger.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1)),
      logTime: s.logTime,
    };
  }

  const probes = Array.from({ length: 60 }, (_, i) =>
    request(`probe-${i}`, {
      sessionId: i % 3 === 0 ? null : `sess-${i % 17}`,
      zone: i % 4 === 0 ? 'zone-b' : null,
      priority: (['NORMAL', 'LOW', 'BACKGROUND', 'HIGH'] as const)[i % 4],
    }),
  );

  function decisions(s: RouterState) {
    return probes.map((req, i) => decide({ ...command(req, { now: T0 + 3100 }), eventId: `dec-${i}` }, s));
  }

  it.each([1, 2, 3])('given one log (seed %d), when folded in many partition interleavings, then the same state and the same decisions', (seed) => {
    const parts = log(seed);
    const reference = given(byTopic(parts));
    const expected = decisions(reference);
    // The log is rich enough to matter: ejection, load differences, exclusions.
    const excluded = new Set(expected.flatMap((d) => d.candidates.map((c) => c.excluded)));
    expect([...excluded]).toEqual(expect.arrayContaining([null, 'EJECTED', 'DRAINING', 'EVICTED']));
    expect(new Set(expected.map((d) => d.type === 'RequestRouted' && d.workerId))).not.toContain('w5');
    const rnd = mulberry32(seed * 7919);
    for (let k = 0; k < 8; k++) {
      const s = given(interleave(parts, rnd));
      expect(summary(s)).toEqual(summary(reference));
      expect(decisions(s)).toEqual(expected);
    }
  });

  it('given the same clock (a prefix of every partition), then the same decisions whatever the interleaving', () => {
    const parts = log(42);
    const rnd = mulberry32(4242);
    for (let cut = 0; cut < 4; cut++) {
      // A clock: an offset per partition. Control is cut too, but keeps the fleet joined.
      const prefix = new Map([...parts.entries()].map(([p, q]) => [p, p === 'control' ? q : q.slice(0, Math.floor(rnd() * (q.length + 1)))]));
      const reference = decisions(given(byTopic(prefix)));
      for (let k = 0; k < 4; k++) expect(decisions(given(interleave(prefix, rnd)))).toEqual(reference);
    }
  });
});
