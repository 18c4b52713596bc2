import { rm } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RequestRouted } from '../schemas/generated/events.js';
import { clusterAt, clusterAtClock } from './cluster.js';
import { findRequests, findSession, type FoundEvent } from './lookup.js';
import { RequestIndex } from './request-index.js';
import { buildSessionTrace } from './session.js';
import type { LogSource } from './source.js';
import { copyToHome, GOLDEN, openEmbeddedSource } from './test-support.js';
import { buildTrace } from './trace.js';

/**
 * Lookups over the golden recording on the embedded log: the request index and the keyed
 * strategy (what Kafka uses) find the same records; the index is incremental and rebuilt for
 * another log; sessions and the cluster view agree with what the decisions recorded.
 */
describe('replay lookups (embedded)', () => {
  let home: Awaited<ReturnType<typeof copyToHome>>;
  let source: LogSource;
  beforeAll(async () => {
    home = await copyToHome(GOLDEN);
    source = await openEmbeddedSource(home.logDir);
  });
  afterAll(async () => {
    await source?.close();
    await home?.remove();
  });

  const where = (found: readonly FoundEvent[]) => found.map((f) => `${f.event.type}@${f.position.topic}/${f.position.partition}/${f.position.offset}`);

  it('index and keyed lookups find the same records for completed, rejected and session requests', async () => {
    const ids = ['req-00010', 'req-00011', 'req-00012', 'req-00013', 'req-00120', 'req-00250'];
    const indexed = await findRequests(source, ids);
    const keyed = await findRequests(source, ids, { index: false });
    expect(indexed.strategy).toBe('index');
    expect(keyed.strategy).toBe('keyed');
    for (const id of ids) {
      expect(where(indexed.events.get(id)!), id).toEqual(where(keyed.events.get(id)!));
      expect(indexed.events.get(id)!.length, id).toBeGreaterThanOrEqual(2);
    }
    // The index reads the hits only; the keyed lookup scans partitions.
    expect(indexed.recordsRead).toBeLessThan(keyed.recordsRead);
    const kinds = new Set(ids.flatMap((id) => buildTrace(id, indexed.events.get(id)!).hops.map((h) => h.kind)));
    expect([...kinds].sort()).toEqual(expect.arrayContaining(['completed', 'received', 'rejected', 'routed', 'started']));
  });

  it('a request the log does not have: nothing found', async () => {
    expect((await findRequests(source, ['nope'])).events.get('nope')).toEqual([]);
    expect((await findRequests(source, ['nope'], { index: false })).events.get('nope')).toEqual([]);
  });

  it('the index is incremental: a later update reads only what was appended, and lookups see it', async () => {
    const index = await RequestIndex.open(source);
    try {
      await index.update();
      expect((await index.update()).scanned).toBe(0);
      const routed = (await findRequests(source, ['req-00020'], { index })).events.get('req-00020')!.find((f) => f.event.type === 'RequestRouted')!.event as RequestRouted;
      const copy: RequestRouted = { ...routed, eventId: 'late-decision', requestId: 'late-1', attempt: 1 };
      await source.log.append([{ topic: source.topics.decisions.name, partition: copy.lane, key: 'late-1', value: source.codec.encode(copy) }]);
      await source.log.append([{ topic: source.topics.results.name, key: 'late-1', value: Buffer.from('not an event') }]);
      const update = await index.update();
      expect(update).toMatchObject({ scanned: 2, rebuilt: false });
      const found = await findRequests(source, ['late-1'], { index });
      expect(found.events.get('late-1')!.map((f) => f.event.eventId)).toEqual(['late-decision']);
      // The garbage record keyed by the request id is reported, not fatal.
      expect(found.undecodable).toMatchObject([{ topic: source.topics.results.name, key: 'late-1', code: 'SY_ERR_CODEC_MAGIC' }]);
    } finally {
      await index.close();
    }
  });

  it('an index made for another log is discarded and rebuilt', async () => {
    const other = await copyToHome(GOLDEN);
    try {
      // Build in `other`, then point that index at a different log (this test's, which grew above).
      const a = await openEmbeddedSource(other.logDir);
      const idx = await RequestIndex.open(a);
      await idx.update();
      await idx.close();
      await a.close();
      await rm(other.logDir, { recursive: true, force: true });
      const fresh = await openEmbeddedSource(other.logDir);
      await fresh.log.ensureTopics(Object.values(source.topics).map((t) => ({ ...t, partitions: Math.max(1, t.partitions) })));
      await fresh.log.append([{ topic: source.topics.requests.name, key: 'x', value: Buffer.from('x') }]);
      const reopened = await RequestIndex.open(fresh);
      const update = await reopened.update();
      expect(update.rebuilt).toBe(true);
      expect(reopened.stats().entries).toBeLessThanOrEqual(2);
      await reopened.close();
      await fresh.close();
    } finally {
      await other.remove();
    }
  });

  it('sessions: index and keyed agree; sessions moved off the drained and the ejected worker, and say why', async () => {
    const whys: string[] = [];
    for (let s = 0; s < 6; s++) {
      const id = `s-${s}`;
      const indexed = await findSession(source, id);
      const keyed = await findSession(source, id, { index: false });
      expect(where(indexed.requests)).toEqual(where(keyed.requests));
      expect(indexed.requests.length).toBeGreaterThan(5);
      const trace = buildSessionTrace(indexed);
      expect(trace.steps.every((st) => st.outcome !== 'not found')).toBe(true);
      for (const step of trace.steps) {
        if (!step.move?.changed.includes('worker')) continue;
        expect(step.move.why).toMatch(new RegExp(`^(${step.move.from} was excluded: |${step.move.to} (ranks|was not a candidate))`));
        whys.push(step.move.why);
      }
    }
    expect(whys).toContain('w1 was excluded: DRAINING'); // the drain at mid-recording
    expect(whys).toContain('w2 was excluded: EJECTED'); // the slow worker, a latency outlier
  });

  it('the cluster at a decision\'s clock is the view the decision recorded (exclusions, health)', async () => {
    const found = await findRequests(source, ['req-00200', 'req-00201', 'req-00202']);
    let checked = 0;
    for (const list of found.events.values()) {
      for (const f of list) {
        if (f.event.type !== 'RequestRouted') continue;
        const d = f.event;
        const view = await clusterAtClock(source, d.clock, d.occurredAt, { policyVersion: d.policyVersion });
        for (const c of d.candidates) {
          const w = view.workers.find((x) => x.workerId === c.workerId)!;
          if (c.excluded === 'EVICTED') expect(w.status).toBe('evicted');
          if (c.excluded === 'DRAINING') expect(w.status).toBe('draining');
          if (c.excluded === 'EJECTED') expect(w.ejection).not.toBeNull();
          if (c.excluded === null) expect([w.status, w.health, w.ejection?.state ?? null]).toEqual(['live', 'ok', w.ejection === null ? null : 'half-open']);
          checked++;
        }
      }
    }
    expect(checked).toBeGreaterThan(4);
  });

  it('the cluster at a time: before the drain every worker is live; at the end w1 is evicted and its lane free', async () => {
    const t0 = 1_735_689_600_000;
    const early = await clusterAt(source, t0 + 300);
    expect(early.workers.map((w) => [w.workerId, w.status])).toEqual([
      ['w1', 'live'],
      ['w2', 'live'],
      ['w3', 'live'],
      ['w4', 'live'],
    ]);
    expect(early.models.find((m) => m.model === 'm')?.rollout).toMatchObject({ stableVersion: 'v1', canaryVersion: 'v2' });
    const late = await clusterAt(source, t0 + 60_000);
    expect(late.workers.find((w) => w.workerId === 'w1')).toMatchObject({ status: 'evicted', lane: 0 });
    expect(late.lanes.held).toBe(3);
    expect(late.foldedRecords).toBeGreaterThan(early.foldedRecords);
  });
});
