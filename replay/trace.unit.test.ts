import { describe, expect, it } from 'vitest';
import type { InferenceStarted, RequestRejected, SwitchyardEvent } from '../schemas/generated/events.js';
import { completed, failed, request, routed, T0 } from '../services/router/fixtures.js';
import type { FoundEvent } from './lookup.js';
import { sessionHtml, traceHtml } from './render-html.js';
import { sessionText, traceText } from './render-text.js';
import { buildSessionTrace } from './session.js';
import { buildTrace, jsonSafe } from './trace.js';

/** The request and session models and their renderings, from hand-made events (given → then). */

let offset = 0;
const at = (topic: FoundEvent['topic'], event: SwitchyardEvent): FoundEvent => ({ event, topic, position: { topic: `switchyard.${topic}`, partition: 0, offset: offset++ }, timestamp: event.occurredAt });
const started = (requestId: string, workerId: string, lane: number, o: { at: number; attempt?: number }): InferenceStarted => ({
  ...completed(requestId, workerId, lane, { at: o.at }),
  type: 'InferenceStarted',
  batchSize: 1,
  batchId: null,
  queueMs: 3,
  attempt: o.attempt ?? 1,
}) as unknown as InferenceStarted;
const rejected = (requestId: string, o: { at: number }): RequestRejected => ({
  type: 'RequestRejected',
  eventId: `rej-${requestId}`,
  occurredAt: o.at,
  requestId,
  traceId: null,
  producer: 'router-1',
  causationId: null,
  clock: [],
  reason: 'SHED',
  model: 'm',
  priority: 'BACKGROUND',
  detail: 'utilization 1.2 ≥ 0.75 for BACKGROUND',
  retryAfterMs: 1000,
  sessionId: null,
  candidates: [],
  pendingDecisions: [],
  policyVersion: 'router/2',
  attempt: 1,
});

describe('buildTrace', () => {
  it('a completed request: hops in order, time between them, stages, cache', () => {
    const r = routed('r1', 'w1', 3, { at: T0 + 5 });
    r.candidates = [
      { workerId: 'w1', lane: 3, zone: 'zone-a', modelVersion: 'v1', score: 0.25, load: 0.2, inFlight: 2, excluded: null },
      { workerId: 'w2', lane: 4, zone: 'zone-a', modelVersion: 'v1', score: 0.5, load: 0.1, inFlight: 0, excluded: 'EJECTED' },
    ];
    const done = completed('r1', 'w1', 3, { at: T0 + 20 });
    const trace = buildTrace('r1', [at('requests', request('r1', { at: T0 })), at('decisions', r), at('results', started('r1', 'w1', 3, { at: T0 + 8 })), at('results', done)]);
    expect(trace).toMatchObject({ requestId: 'r1', outcome: 'completed', totalMs: 20, attempts: 1, cache: 'miss' });
    expect(trace.hops.map((h) => [h.kind, h.sincePreviousMs, h.sinceReceivedMs])).toEqual([
      ['received', null, 0],
      ['routed', 5, 5],
      ['started', 3, 8],
      ['completed', 12, 20],
    ]);
    expect(trace.stages).toEqual([
      { name: 'waiting to be routed (received → decided)', ms: 5 },
      { name: 'dispatch to the worker (routed → started)', ms: 3 },
      { name: 'in the worker (started → finished)', ms: 12 },
      { name: 'end to end (received → answered)', ms: 20 },
    ]);
    expect(trace.hops[1]).toMatchObject({ chosen: 'w1', candidates: r.candidates });

    const text = traceText(trace);
    expect(text).toContain('request r1 · completed · 20 ms end to end · cache miss · 1 routing');
    expect(text).toMatch(/ROUTED\s+routed by router-x to w1 \(lane 3, —\) · LEAST_LOADED/);
    expect(text).toMatch(/│ → │ w1 .*│ —\s+│/);
    expect(text).toMatch(/│\s+│ w2 .*│ EJECTED\s+│/);
    expect(traceText(trace, { details: false }).split('\n').filter((l) => /^\s+\+/.test(l))).toHaveLength(4);
  });

  it('a re-dispatched request: attempts, re-routed hop, the re-dispatch stage', () => {
    const second = routed('r2', 'w2', 4, { at: T0 + 300, attempt: 2 });
    second.previousWorkerId = 'w1';
    const trace = buildTrace('r2', [
      at('requests', request('r2', { at: T0 })),
      at('decisions', routed('r2', 'w1', 3, { at: T0 + 5 })),
      at('results', failed('r2', 'w1', 3, { at: T0 + 50 })),
      at('decisions', second),
      at('results', completed('r2', 'w2', 4, { at: T0 + 320, attempt: 2 })),
    ]);
    expect(trace).toMatchObject({ outcome: 'completed', attempts: 2, totalMs: 320 });
    expect(trace.hops.map((h) => h.kind)).toEqual(['received', 'routed', 'failed', 'rerouted', 'completed']);
    expect(trace.hops[3]!.summary).toContain('re-routed (attempt 2, previous worker w1)');
    expect(trace.stages).toContainEqual({ name: 're-dispatch (attempt 1 → 2)', ms: 295 });
  });

  it('rejected, failed, in flight, duplicates, not found', () => {
    expect(buildTrace('r3', [at('requests', request('r3', { at: T0 })), at('results', rejected('r3', { at: T0 + 2 }))])).toMatchObject({ outcome: 'rejected', totalMs: 2, attempts: 0, cache: null });
    expect(buildTrace('r4', [at('requests', request('r4', { at: T0 })), at('decisions', routed('r4', 'w1', 0, { at: T0 + 1 })), at('results', failed('r4', 'w1', 0, { at: T0 + 9 }))])).toMatchObject({ outcome: 'failed', totalMs: 9 });
    const inFlight = buildTrace('r5', [at('requests', request('r5', { at: T0 })), at('requests', request('r5', { at: T0 + 1 })), at('decisions', routed('r5', 'w1', 0, { at: T0 + 3 }))]);
    expect(inFlight).toMatchObject({ outcome: 'in flight', totalMs: null });
    expect(inFlight.hops.map((h) => h.kind)).toEqual(['received', 'duplicate', 'routed']);
    expect(buildTrace('r6', [])).toMatchObject({ outcome: 'not found', hops: [] });
  });

  it('JSON: buffers as text when printable, else base64; no Infinity', () => {
    expect(jsonSafe({ a: Buffer.from('{"x":1}'), b: Buffer.from([0, 255, 1]), c: Infinity })).toEqual({ a: '{"x":1}', b: 'base64:AP8B', c: 'Infinity' });
  });

  it('HTML: one self-contained page, every value escaped', () => {
    const req = request('r7', { at: T0 });
    req.attributes = { note: '<script>alert(1)</script>' };
    const r = routed('r7', 'w<1>', 0, { at: T0 + 1 });
    r.producer = 'router-"x"';
    const html = traceHtml(buildTrace('r7', [at('requests', req), at('decisions', r)]));
    expect(html.startsWith('<!doctype html>')).toBe(true);
    expect(html).not.toContain('<script');
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(html).toContain('w&lt;1&gt;');
    expect(html).not.toMatch(/\b(src|href)=/);
  });
});

describe('buildSessionTrace', () => {
  it('lists each request with its worker, and explains moves from the decision that moved the session', () => {
    const events = new Map<string, FoundEvent[]>();
    const requests: FoundEvent[] = [];
    const step = (id: string, t: number, worker: string, lane: number, o: { prevExcluded?: string | null; version?: string; reason?: string } = {}) => {
      const req = at('requests', request(id, { at: t, sessionId: 's-1' }));
      const d = routed(id, worker, lane, { at: t + 1, ...(o.version ? { version: o.version } : {}) });
      d.sessionId = 's-1';
      d.reason = o.reason ?? 'AFFINITY';
      d.candidates = [
        { workerId: 'w1', lane: 0, zone: 'zone-a', modelVersion: 'v1', score: 0.1, load: 0, inFlight: 0, excluded: o.prevExcluded ?? null },
        { workerId: 'w2', lane: 1, zone: 'zone-a', modelVersion: 'v1', score: 0.2, load: 0, inFlight: 0, excluded: null },
      ];
      requests.push(req);
      events.set(id, [req, at('decisions', d), at('results', completed(id, worker, lane, { at: t + 10 }))]);
    };
    step('a', T0, 'w1', 0);
    step('b', T0 + 100, 'w1', 0);
    step('c', T0 + 200, 'w2', 1, { prevExcluded: 'DRAINING' });
    step('d', T0 + 300, 'w2', 1, { version: 'v2' });
    const trace = buildSessionTrace({ strategy: 'index', sessionId: 's-1', requests, states: [], events, undecodable: [], recordsRead: 0 });
    expect(trace).toMatchObject({ sessionId: 's-1', workers: ['w1', 'w2'], moves: 1 });
    expect(trace.steps.map((s) => [s.requestId, s.workerId, s.outcome, s.move?.changed ?? null])).toEqual([
      ['a', 'w1', 'completed', null],
      ['b', 'w1', 'completed', null],
      ['c', 'w2', 'completed', ['worker']],
      ['d', 'w2', 'completed', ['version']],
    ]);
    expect(trace.steps[2]!.move!.why).toBe('w1 was excluded: DRAINING');
    expect(trace.steps[3]!.move!.why).toBe('model version v1 → v2');
    expect(sessionText(trace)).toContain('c: w1 → w2 (worker): w1 was excluded: DRAINING');
    expect(sessionHtml(trace)).toContain('w1 → w2: w1 was excluded: DRAINING');
  });

  it('a session that comes back to its first worker once that worker is within bounds again', () => {
    const events = new Map<string, FoundEvent[]>();
    const requests: FoundEvent[] = [];
    const step = (id: string, t: number, worker: string, w1Excluded: string | null) => {
      const req = at('requests', request(id, { at: t, sessionId: 's-2' }));
      const d = routed(id, worker, worker === 'w1' ? 0 : 1, { at: t + 1 });
      d.sessionId = 's-2';
      d.reason = 'AFFINITY';
      d.candidates = [
        { workerId: 'w1', lane: 0, zone: null, modelVersion: 'v1', score: 0.9, load: 0, inFlight: 3, excluded: w1Excluded },
        { workerId: 'w2', lane: 1, zone: null, modelVersion: 'v1', score: 0.1, load: 0, inFlight: 0, excluded: null },
      ];
      requests.push(req);
      events.set(id, [req, at('decisions', d)]);
    };
    step('a', T0, 'w1', null);
    step('b', T0 + 100, 'w2', 'OVERLOADED');
    step('c', T0 + 200, 'w1', null);
    const trace = buildSessionTrace({ strategy: 'index', sessionId: 's-2', requests, states: [], events, undecodable: [], recordsRead: 0 });
    expect(trace.steps.map((s) => s.move?.why ?? null)).toEqual([
      null,
      'w1 was excluded: OVERLOADED (score 0.900 above the bounded-load limit)',
      'w1 ranks above w2 for this session and was OVERLOADED at the previous request; it is eligible again',
    ]);
    expect(trace.moves).toBe(2);
  });
});
