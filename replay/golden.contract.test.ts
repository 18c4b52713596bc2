import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { openEmbeddedLog } from '../lib/log/embedded/index.js';
import { LogBackedRegistry } from '../lib/registry/log-backed.js';
import { EventCodec } from '../schemas/codec.js';
import { logSourceFrom } from './source.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClockEntry, RequestRouted, SwitchyardEvent } from '../schemas/generated/events.js';
import { evolve, initialRouterState } from '../services/router/state.js';
import { ClockFold } from './fold.js';
import { scanEvents } from './scan.js';
import type { LogSource } from './source.js';
import { copyToHome, GOLDEN, openEmbeddedSource, tamperedCopy } from './test-support.js';
import { verifyDecisions } from './verify.js';
import { findRequests } from './lookup.js';
import { buildTrace } from './trace.js';

/**
 * Determinism as a test, the way Temporal replays recorded histories: the committed recording
 * `fixtures/router-log` (written by the real router shell, replay/fixtures/generate.ts) must
 * re-derive decision for decision, and a tampered copy must be caught.
 */
describe('golden recording: replay verify', () => {
  let golden: Awaited<ReturnType<typeof copyToHome>>;
  let source: LogSource;
  beforeAll(async () => {
    golden = await copyToHome(GOLDEN);
    source = await openEmbeddedSource(golden.logDir);
  });
  afterAll(async () => {
    await source?.close();
    await golden?.remove();
  });

  it('re-derives every recorded decision identically (0 divergences, nothing skipped)', async () => {
    const report = await verifyDecisions(source);
    expect(report.divergences).toEqual([]);
    expect(report).toMatchObject({ diverged: 0, inconclusive: 0, ok: true, skipped: { 'policy-version': 0, 'request-not-found': 0, 'decision-unreadable': 0 } });
    expect(report.decisions).toBeGreaterThan(250);
    expect(report.verified).toBe(report.decisions);
    // Both routers' decisions, rejections (found through the request index) among them.
    expect(report.producers.map((p) => p.producer).sort()).toEqual(['router-a', 'router-b']);
    expect(report.producers.every((p) => p.rebuilds === 0)).toBe(true);
  });

  it('a time window verifies only the decisions in it, the same way', async () => {
    const all = await verifyDecisions(source);
    const half = await verifyDecisions(source, { from: 1_735_689_600_000 + 900, to: 1_735_689_600_000 + 1_400 });
    expect(half.decisions).toBeGreaterThan(0);
    expect(half.decisions).toBeLessThan(all.decisions);
    expect(half).toMatchObject({ diverged: 0, ok: true });
    expect(half.verified).toBe(half.decisions);
  });

  it('the fold decoder leaves out only what the router state never reads (same state as full decoding)', async () => {
    const full = initialRouterState({ lanes: source.topics.decisions.partitions });
    const clock: ClockEntry[] = [];
    for (const t of ['control', 'heartbeats', 'decisions', 'results'] as const) {
      const ends = await source.log.endOffsets(source.topics[t].name);
      ends.forEach((end, partition) => end > 0 && clock.push({ topic: source.topics[t].name, partition, offset: end }));
      for await (const { event } of scanEvents(source, [t])) evolve(full, event);
    }
    const projected = new ClockFold(source, source.foldDecoder());
    await projected.advanceTo(clock);
    expect(projected.undecodable).toBe(0);
    expect(projected.state).toEqual(full);
  });

  it('two routers relabelled as one instance: one fold follows both sets of clocks, still identical', async () => {
    const dir = join(golden.home, 'one-id', 'log');
    const changed = await tamperedCopy(source, dir, (e) => ((e.type === 'RequestRouted' || e.type === 'RequestRejected') && e.producer === 'router-b' ? { ...e, producer: 'router-a' } : undefined));
    expect(changed).toBeGreaterThan(100);
    const copy = await openEmbeddedSource(dir);
    try {
      const report = await verifyDecisions(copy);
      expect(report.divergences).toEqual([]);
      expect(report).toMatchObject({ diverged: 0, ok: true });
      expect(report.verified).toBe(report.decisions);
      expect(report.producers).toHaveLength(1);
    } finally {
      await copy.close();
    }
  });

  it('a fold only moves forward: it can reach a clock that dominates what it folded, and no other', async () => {
    const fold = new ClockFold(source, source.foldDecoder());
    const hb = source.topics.heartbeats.name;
    const control = source.topics.control.name;
    const c1 = [
      { topic: control, partition: 0, offset: 5 },
      { topic: hb, partition: 0, offset: 2 },
    ];
    expect(fold.canReach(c1)).toBe(true);
    await fold.advanceTo(c1);
    expect(fold.position(control, 0)).toBe(5);
    expect(fold.canReach([...c1, { topic: hb, partition: 1, offset: 3 }])).toBe(true); // more, and a new partition
    expect(fold.canReach([{ topic: control, partition: 0, offset: 4 }, c1[1]!])).toBe(false); // behind in one partition
    expect(fold.canReach([c1[0]!])).toBe(false); // a folded partition missing: an implicit 0
    await fold.advanceTo([{ topic: control, partition: 0, offset: 3 }, ...c1]); // behind: ignored
    expect(fold.position(control, 0)).toBe(5);
  });

  describe('a tampered copy is caught', () => {
    const tamper = async (name: string, fn: (e: SwitchyardEvent, n: number) => SwitchyardEvent | undefined) => {
      const dir = join(golden.home, name, 'log');
      let n = 0;
      const changed = await tamperedCopy(source, dir, (e) => fn(e, n++));
      expect(changed).toBe(1);
      const copy = await openEmbeddedSource(dir);
      try {
        return await verifyDecisions(copy);
      } finally {
        await copy.close();
      }
    };
    let target: RequestRouted | undefined;
    const pick = (e: SwitchyardEvent): e is RequestRouted =>
      e.type === 'RequestRouted' && target === undefined && e.candidates.filter((c) => c.excluded === null).length >= 2 && e.requestId !== null && e.requestId > 'req-00100';

    it("one candidate's score changed: exactly that decision diverges, at that field", async () => {
      target = undefined;
      const report = await tamper('score', (e) => {
        if (!pick(e)) return undefined;
        target = e;
        return { ...e, candidates: e.candidates.map((c, i) => (i === 0 ? { ...c, score: c.score + 0.5 } : c)) };
      });
      expect(report.ok).toBe(false);
      expect(report.diverged).toBe(1);
      expect(report.divergences[0]).toMatchObject({ requestId: target!.requestId, eventId: target!.eventId });
      expect(report.divergences[0]!.diffs).toEqual([{ path: 'candidates[0].score', recorded: target!.candidates[0]!.score + 0.5, rederived: target!.candidates[0]!.score }]);
    });

    it("one decision's worker changed: that decision diverges at workerId (later ones may follow: the fold counts it on the wrong worker)", async () => {
      target = undefined;
      const report = await tamper('worker', (e) => {
        if (!pick(e)) return undefined;
        target = e;
        const other = e.candidates.find((c) => c.workerId !== e.workerId && c.excluded === null)!;
        return { ...e, workerId: other.workerId };
      });
      expect(report.ok).toBe(false);
      const first = report.divergences.find((d) => d.eventId === target!.eventId);
      expect(first?.diffs.map((d) => d.path)).toEqual(['workerId']);
    });

    it("a request's input changed after the fact: the decision that carried it diverges at input", async () => {
      let requestId: string | null = null;
      const report = await tamper('input', (e) => {
        if (e.type !== 'InferenceRequested' || requestId !== null || e.requestId !== 'req-00150') return undefined;
        requestId = e.requestId;
        return { ...e, input: Buffer.from('{"text":"tampered"}') };
      });
      expect(report.diverged).toBe(1);
      expect(report.divergences[0]!.requestId).toBe('req-00150');
      expect(report.divergences[0]!.diffs.map((d) => d.path)).toEqual(['input']);
    });
  });
});

/**
 * A recording made by older routing code (policy `router/2`, before the affinity floor) is
 * not re-derived with today's rules, where it would show as divergences, nor passed: every
 * decision is reported as skipped for its policy version.
 */
describe('recording from older routing code', () => {
  it('reports every decision as made by another policy version, none verified or diverged', async () => {
    const old = await copyToHome(join(import.meta.dirname, 'fixtures', 'router-log-policy-router2'));
    const source = await openEmbeddedSource(old.logDir);
    try {
      const report = await verifyDecisions(source);
      expect(report.decisions).toBeGreaterThan(250);
      expect(report).toMatchObject({ verified: 0, diverged: 0 });
      expect(report.skipped['policy-version']).toBe(report.decisions);
    } finally {
      await source.close();
      await old.remove();
    }
  });
});

/**
 * A recording of `npm run demo` (300 requests through the gateway, 2 routers, 4 workers in 2
 * zones, a canary): every decision re-derives, and any request's path is complete.
 */
describe('recording of the demo', () => {
  it('re-derives all 300 decisions of both routers, and a request reads received → routed → started → completed', async () => {
    const demo = await copyToHome(join(import.meta.dirname, 'fixtures', 'demo-log'));
    const source = await openEmbeddedSource(demo.logDir);
    try {
      const report = await verifyDecisions(source);
      expect(report.divergences).toEqual([]);
      expect(report).toMatchObject({ decisions: 300, verified: 300, diverged: 0, inconclusive: 0, ok: true });
      expect(report.producers.map((p) => p.producer).sort()).toEqual(['router-1', 'router-2']);
      const [first] = await listRequestIds(source, 1);
      const found = await findRequests(source, [first!]);
      const trace = buildTrace(first!, found.events.get(first!) ?? []);
      expect(trace.hops.map((h) => h.kind)).toEqual(expect.arrayContaining(['received', 'routed', 'completed']));
      expect(trace.outcome).toBe('completed');
    } finally {
      await source.close();
      await demo.remove();
    }
  });
});

/** The first `n` request ids in `requests`. */
async function listRequestIds(source: LogSource, n: number): Promise<string[]> {
  const ids: string[] = [];
  for await (const { event } of scanEvents(source, ['requests'])) {
    if (event.requestId !== null) ids.push(event.requestId);
    if (ids.length >= n) break;
  }
  return ids;
}

/**
 * A recording of the multi-process serving test on real Kafka (test/e2e/serving.int.test.ts:
 * registry, gateway, three workers, router-1 SIGKILLed mid-traffic and router-2 taking over),
 * copied offset for offset by replay/fixtures/record-kafka.ts: both routers' decisions
 * re-derive from the clocks they recorded on Kafka.
 */
describe('recording of the multi-process Kafka test', () => {
  it('re-derives every decision of both routers, across the crash and restart', async () => {
    const dir = join(import.meta.dirname, 'fixtures', 'kafka-log');
    const { prefix } = JSON.parse(readFileSync(join(dir, 'recording.json'), 'utf8')) as { prefix: string };
    const copy = await copyToHome(dir);
    const log = await openEmbeddedLog({ dir: copy.logDir, fsync: 'never', maintenanceIntervalMs: 0 });
    const registry = await LogBackedRegistry.open({ log, topic: `${prefix}_schemas` });
    // The copy's registry takes the schema versions added since the recording (registering into the copy changes nothing committed).
    const source = await logSourceFrom({ log, registry, codec: await EventCodec.create({ registry }), topicPrefix: prefix, description: 'kafka recording', ownsLog: true });
    try {
      const report = await verifyDecisions(source);
      expect(report.divergences).toEqual([]);
      expect(report).toMatchObject({ diverged: 0, inconclusive: 0, ok: true });
      expect(report.decisions).toBeGreaterThanOrEqual(30);
      expect(report.verified).toBe(report.decisions);
      expect(report.producers.map((p) => p.producer).sort()).toEqual(['router-1', 'router-2']);
    } finally {
      await source.close();
      await copy.remove();
    }
  });
});

