import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AnalyticsStore } from '../../lib/analytics/port.js';
import type { LogRecord } from '../../lib/log/port.js';
import { ArchiveLog } from '../../replay/archive.js';
import { clusterAt } from '../../replay/cluster.js';
import { findRequests, findSession } from '../../replay/lookup.js';
import { scanEvents } from '../../replay/scan.js';
import { openArchiveSource, type LogSource } from '../../replay/source.js';
import { GOLDEN, archiveWithSink, copyToHome, openEmbeddedSource } from '../../replay/test-support.js';
import { verifyDecisions } from '../../replay/verify.js';
import type { InferenceRequested } from '../../schemas/generated/events.js';

export interface ArchiveTarget {
  /** A store over an empty database of the test's own. */
  store: AnalyticsStore;
  cleanup: () => Promise<void>;
}

/** Every record of a log's Switchyard topics, by position. */
async function recordsOf(source: LogSource): Promise<Map<string, LogRecord>> {
  const out = new Map<string, LogRecord>();
  for (const spec of Object.values(source.topics)) {
    if (spec.partitions === 0) continue;
    const ends = await source.log.endOffsets(spec.name);
    for (let p = 0; p < spec.partitions; p++) {
      let from = 0;
      while (from < (ends[p] ?? 0)) {
        const batch = await source.log.read({ topic: spec.name, partition: p, from, maxRecords: 2_000 });
        if (batch.length === 0) break;
        for (const r of batch) out.set(`${r.topic}/${r.partition}@${r.offset}`, r);
        from = batch[batch.length - 1]!.offset + 1;
      }
    }
  }
  return out;
}

/**
 * ClickHouse as a replay source: the golden router recording (replay/fixtures/router-log) is
 * archived by the real sink, then every replay command run over the archive must answer what it
 * answers over the log itself — the same records byte for byte, the same lookups, the same
 * cluster view, and `verify` re-deriving every decision with 0 divergences. Run on chDB
 * (`replay/archive.contract.test.ts`) and on the ClickHouse server (`replay/archive.int.test.ts`).
 */
export function testArchiveSource(name: string, factory: () => Promise<ArchiveTarget>): void {
  describe(`replay from the ClickHouse archive [${name}]`, () => {
    let target: ArchiveTarget;
    let golden: Awaited<ReturnType<typeof copyToHome>>;
    let logSource: LogSource;
    let archive: LogSource;

    beforeAll(async () => {
      target = await factory();
      golden = await copyToHome(GOLDEN);
      logSource = await openEmbeddedSource(golden.logDir);
      // The real sink, reading the recording from the beginning like a fresh deployment's sink.
      await archiveWithSink(logSource, target.store);
      archive = await openArchiveSource(target.store);
    }, 120_000);

    afterAll(async () => {
      await archive?.close();
      await logSource?.close();
      await golden?.remove();
      await target?.cleanup();
    });

    it('holds every record of the log byte for byte: position, timestamp, key, headers, value', async () => {
      const [fromLog, fromArchive] = await Promise.all([recordsOf(logSource), recordsOf(archive)]);
      expect(fromLog.size).toBeGreaterThan(1_000);
      expect([...fromArchive.keys()].sort()).toEqual([...fromLog.keys()].sort());
      for (const [pos, r] of fromLog) {
        const a = fromArchive.get(pos)!;
        expect({ pos, timestamp: a.timestamp, key: a.key?.toString('hex'), headers: a.headers, value: a.value?.toString('hex') }).toEqual({
          pos,
          timestamp: r.timestamp,
          key: r.key?.toString('hex'),
          headers: r.headers,
          value: r.value?.toString('hex'),
        });
      }
      for (const spec of Object.values(logSource.topics)) {
        expect({ topic: spec.name, partitions: archive.topics[Object.entries(logSource.topics).find(([, s]) => s === spec)![0] as keyof typeof archive.topics].partitions }).toEqual({ topic: spec.name, partitions: spec.partitions });
        expect(await archive.log.endOffsets(spec.name)).toEqual(await logSource.log.endOffsets(spec.name));
      }
    });

    it('reads any window [from, to) completely, however the read-ahead blocks fall', async () => {
      // Blocks of 7 records: every window crosses several, and starts inside one.
      const small = new ArchiveLog(target.store, { readAhead: 7 });
      const topic = logSource.topics.results.name;
      const ends = await logSource.log.endOffsets(topic);
      let compared = 0;
      for (let p = 0; p < ends.length; p++) {
        const end = ends[p]!;
        for (const [from, to, max] of [[1, 2, 5], [5, end, 4], [3, end - 2, 10_000], [11, 40, 13], [0, end, 10_000]] as const) {
          if (from >= end) continue;
          const want = await logSource.log.read({ topic, partition: p, from, to, maxRecords: max });
          const got = await small.read({ topic, partition: p, from, to, maxRecords: max });
          expect(got.map((r) => [r.offset, r.value?.toString('hex')])).toEqual(want.map((r) => [r.offset, r.value?.toString('hex')]));
          compared += want.length;
        }
      }
      expect(compared).toBeGreaterThan(200);
    });

    it('verify re-derives every decision from the archive, as from the log (0 divergences)', async () => {
      const [onLog, onArchive] = await Promise.all([verifyDecisions(logSource), verifyDecisions(archive)]);
      expect(onArchive.divergences).toEqual([]);
      expect(onArchive).toMatchObject({ diverged: 0, inconclusive: 0, ok: true, skipped: { 'policy-version': 0, 'request-not-found': 0, 'decision-unreadable': 0 } });
      expect(onArchive.decisions).toBe(onLog.decisions);
      expect(onArchive.verified).toBe(onArchive.decisions);
      expect(onArchive.foldedRecords).toBe(onLog.foldedRecords);
      expect(onArchive.producers.map((p) => p.producer).sort()).toEqual(['router-a', 'router-b']);
    });

    it('a verify window by time reads the same decisions from both', async () => {
      const window = { from: 1_735_689_600_000 + 900, to: 1_735_689_600_000 + 1_400 };
      const [onLog, onArchive] = await Promise.all([verifyDecisions(logSource, window), verifyDecisions(archive, window)]);
      expect(onArchive.decisions).toBeGreaterThan(0);
      expect(onArchive).toMatchObject({ decisions: onLog.decisions, verified: onLog.decisions, diverged: 0 });
    });

    it('looks requests and sessions up through log_ids and finds what the log index finds', async () => {
      const requests: InferenceRequested[] = [];
      for await (const { event } of scanEvents(logSource, ['requests'])) if (event.type === 'InferenceRequested') requests.push(event);
      const sample = requests.filter((_, i) => i % 17 === 0).slice(0, 12);
      expect(sample.length).toBeGreaterThan(5);
      const ids = sample.map((r) => r.requestId!);
      const [onLog, onArchive] = await Promise.all([findRequests(logSource, ids), findRequests(archive, ids)]);
      expect(onArchive.strategy).toBe('index');
      const shape = (events: Map<string, { event: { type: string; eventId: string }; position: unknown }[]>) =>
        Object.fromEntries([...events].map(([id, list]) => [id, list.map((f) => [f.event.type, f.event.eventId, f.position])]));
      expect(shape(onArchive.events)).toEqual(shape(onLog.events));
      for (const id of ids) expect(onArchive.events.get(id)!.length).toBeGreaterThanOrEqual(2);

      const sessionId = sample.find((r) => r.sessionId !== null)!.sessionId!;
      const [sLog, sArchive] = await Promise.all([findSession(logSource, sessionId), findSession(archive, sessionId)]);
      expect(sArchive.requests.length).toBeGreaterThan(0);
      expect(sArchive.requests.map((r) => r.event.eventId)).toEqual(sLog.requests.map((r) => r.event.eventId));
      expect(shape(sArchive.events)).toEqual(shape(sLog.events));
    });

    it('rebuilds the cluster at a moment exactly as from the log', async () => {
      const at = 1_735_689_600_000 + 1_200;
      const [onLog, onArchive] = await Promise.all([clusterAt(logSource, at), clusterAt(archive, at)]);
      expect(onArchive.workers.length).toBeGreaterThan(0);
      expect(onArchive).toEqual(onLog);
    });

    it('is read-only, with a reason', async () => {
      await expect(archive.log.append([{ topic: 'switchyard.requests', value: Buffer.from('x') }])).rejects.toMatchObject({ code: 'SY_ERR_REPLAY_SOURCE', message: expect.stringContaining('read-only') });
    });
  });
}
