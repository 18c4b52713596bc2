import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openEmbeddedLog } from '../lib/log/embedded/index.js';
import type { EventLog } from '../lib/log/port.js';
import { InMemoryRegistry } from '../lib/registry/core.js';
import { createServiceContext, type ServiceContext } from '../lib/runtime.js';
import { EventCodec } from '../schemas/codec.js';
import { tempDir } from '../test/support/log-dir.js';
import { logSourceFrom, type LogSource } from './source.js';
import { writeSyntheticLog } from './synthetic.js';
import { verifyDecisionsParallel } from './parallel.js';
import { copyToHome, GOLDEN, openEmbeddedSource, tamperedCopy } from './test-support.js';
import { verifyDecisions, type VerifyReport } from './verify.js';

/** A report without its timings and the fast path's count: what must not depend on how decisions were compared. */
const verdicts = ({ listMs: _l, verifyMs: _v, ms: _m, decisionsPerSec: _d, verifiedInPlace: _i, ...rest }: VerifyReport) => rest;

/** verify beyond the golden recording: a synthetic log at scale (the benchmark's generator). */
describe('replay verify (embedded)', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let log: EventLog;
  let ctx: ServiceContext;
  let source: LogSource;

  const open = async (lanes: number) => {
    log = await openEmbeddedLog({ dir: join(dir.dir, 'log'), fsync: 'never', maintenanceIntervalMs: 0 });
    const registry = new InMemoryRegistry();
    const codec = await EventCodec.create({ registry });
    ctx = createServiceContext({ log, codec, lanes });
    await log.ensureTopics(Object.values(ctx.topics));
    source = await logSourceFrom({ log, registry, codec, indexDir: join(dir.dir, 'replay-index') });
  };
  beforeEach(async () => {
    dir = await tempDir('sy-verify-');
  });
  afterEach(async () => {
    await log.close();
    await dir.remove();
  });

  it('a synthetic log written by simulated routers running the real core re-derives identically, and its windows do too', async () => {
    await open(16);
    const written = await writeSyntheticLog(ctx, { events: 20_000, routers: 2, seed: 7 });
    expect(written.decisions).toBe(written.requests);
    const report = await verifyDecisions(source);
    expect(report.divergences).toEqual([]);
    expect(report).toMatchObject({ decisions: written.decisions, verified: written.decisions, ok: true });
    // Every decision was checked against its bytes, and decoding them all in full says the same.
    expect(report.verifiedInPlace).toBe(written.decisions);
    expect(verdicts(await verifyDecisions(source, { inPlace: false }))).toEqual(verdicts(report));
    expect(report.producers.map((p) => p.rebuilds)).toEqual([0, 0]);
    const window = await verifyDecisions(source, { offsets: [{ topic: 'decisions', partition: 0, from: 50, to: 150 }, { topic: 'results', partition: 0, from: 0, to: 0 }] });
    expect(window.decisions).toBe(100);
    expect(window.verified).toBe(100);
    // A source whose reads stop short (at most 7 records, whatever was asked) reads the same.
    const short = new Proxy(log, {
      get: (target, prop) =>
        prop === 'read'
          ? async (range: Parameters<EventLog['read']>[0]) => (await target.read(range)).slice(0, 7)
          : (Reflect.get(target, prop, target) as unknown as (...args: unknown[]) => unknown).bind?.(target) ?? Reflect.get(target, prop, target),
    });
    const shortSource = await logSourceFrom({ log: short, registry: source.registry, codec: source.codec, indexDir: join(dir.dir, 'replay-index') });
    expect(verdicts(await verifyDecisions(shortSource))).toEqual(verdicts(report));
  });
});

describe('replay verify on worker threads (embedded)', () => {
  it('whole routers per thread, or runs of one router per thread: the same report as one thread', async () => {
    const dir = await tempDir('sy-verify-par-');
    const log = await openEmbeddedLog({ dir: join(dir.dir, 'log'), fsync: 'never', maintenanceIntervalMs: 0 });
    try {
      const registry = new InMemoryRegistry();
      const codec = await EventCodec.create({ registry });
      const ctx = createServiceContext({ log, codec, lanes: 8 });
      await log.ensureTopics(Object.values(ctx.topics));
      const written = await writeSyntheticLog(ctx, { events: 12_000, routers: 2, seed: 11 });
      const source = await logSourceFrom({ log, registry, codec });
      const one = await verifyDecisions(source);
      for (const threads of [2, 3]) {
        const par = await verifyDecisionsParallel(source, { threads, minDecisions: 0 });
        expect(par.threads).toBe(threads);
        expect(par).toMatchObject({ decisions: written.decisions, verified: written.decisions, diverged: 0, ok: true });
        expect(par.producers.map((p) => [p.producer, p.decisions]).sort()).toEqual(one.producers.map((p) => [p.producer, p.decisions]).sort());
      }
    } finally {
      await log.close();
      await dir.remove();
    }
  }, 120_000);
});

/**
 * The fast path (decisions checked against their recorded bytes, match.ts) reaches the same
 * report as decoding and comparing every decision in full, on the golden recording and on copies
 * tampered in ways that must diverge: the same verdicts, the same field-by-field diffs.
 */
describe('replay verify in place vs in full', () => {
  it('the same report on the golden recording and on tampered copies', async () => {
    const golden = await copyToHome(GOLDEN);
    const source = await openEmbeddedSource(golden.logDir);
    try {
      const report = await verifyDecisions(source);
      expect(report.verifiedInPlace).toBe(report.decisions);
      expect(verdicts(await verifyDecisions(source, { inPlace: false }))).toEqual(verdicts(report));
      let n = 0;
      const copies: [string, Parameters<typeof tamperedCopy>[2]][] = [
        // A candidate's score, a routed worker and a rejection's detail changed (one each).
        ['score', (e) => (e.type === 'RequestRouted' && n++ === 40 ? { ...e, candidates: e.candidates.map((c, i) => (i === 1 ? { ...c, score: c.score + 0.25 } : c)) } : undefined)],
        ['worker', (e) => (e.type === 'RequestRouted' && n++ === 90 ? { ...e, workerId: `${e.workerId}-not` } : undefined)],
        ['reject', (e) => (e.type === 'RequestRejected' && n++ === 0 ? { ...e, detail: `${e.detail ?? ''}!` } : undefined)],
        // A request changed after the fact: its decision no longer re-derives.
        ['request', (e) => (e.type === 'InferenceRequested' && e.requestId === 'req-00150' ? { ...e, priority: e.priority === 'LOW' ? 'HIGH' : 'LOW' } : undefined)],
      ];
      for (const [name, tamper] of copies) {
        n = 0;
        const dir = join(golden.home, name, 'log');
        expect(await tamperedCopy(source, dir, tamper)).toBe(1);
        const copy = await openEmbeddedSource(dir);
        try {
          const fast = await verifyDecisions(copy);
          expect(fast.ok, name).toBe(false);
          expect(verdicts(await verifyDecisions(copy, { inPlace: false })), name).toEqual(verdicts(fast));
        } finally {
          await copy.close();
        }
      }
    } finally {
      await source.close();
      await golden.remove();
    }
  }, 60_000);
});
