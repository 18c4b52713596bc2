import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RequestRejected, WorkerHeartbeat } from '../../schemas/generated/events.js';
import { ChaosCluster, figuresOf, printFigures, readTopic, startHttpLoad, startKafkaLoad } from '../support/chaos.js';
import { expectReplayed, verifyCluster } from './verify.js';

/** Rejections that say "no worker can take it": wrong while a worker was heartbeating. */
const CAPACITY_REASONS = new Set(['NO_CAPACITY', 'SHED', 'SHED_OVERLOAD']);
/** A worker that heartbeated within this long before a decision was alive at it (the router's default staleness). */
const ALIVE_WITHIN_MS = 2_000;
/**
 * An outcome counts as on the log before a deadline when its record's timestamp is at least
 * this much earlier: the timestamp is taken when the worker starts its append, before the
 * record is readable (the append's own latency), and the gateway then has to fetch it. The
 * 504s closer than this are counted and printed too.
 */
const VISIBLE_MARGIN_MS = 500;

/**
 * The Kafka broker restarted (SIGTERM, data kept) under load. Every service reconnects by
 * itself; afterwards no request was refused for lack of capacity while a worker was
 * heartbeating (a router deciding on a view it knew was stale), and no client got a 504 for a
 * request whose outcome was on the log before its deadline.
 *
 * This restarts the broker every integration test shares, and waits until it is healthy. The
 * scenario's 90 s do not count the broker's own stop and start, which the scenario does not
 * control (see the test's timeout).
 */
describe('chaos: Kafka broker restart', () => {
  let cluster: ChaosCluster;

  beforeAll(async () => {
    cluster = await ChaosCluster.start({ scenario: 'broker-restart', workers: 2, controllers: 1 });
  }, 90_000);
  afterAll(async () => {
    await cluster?.close();
  });

  it('refuses nothing on a stale view and answers every outcome that was on the log in time', async () => {
    // Load goes on through the restart and for 10 s after the broker is back; deadlines long
    // enough that requests queued around the outage are still worth serving when it ends.
    const http = startHttpLoad({ url: cluster.gatewayUrl(), ratePerSec: 20, count: 100_000, deadlineMs: 30_000 });
    const kafka = startKafkaLoad({ topic: cluster.layout.requests.name, codec: cluster.codec, ratePerSec: 5, count: 100_000, deadlineMs: 30_000 });
    const started = Date.now();
    const loadStarted = started;
    await new Promise((r) => setTimeout(r, 5_000));
    const broker = await cluster.restartBroker();
    await new Promise((r) => setTimeout(r, Math.max(0, broker.writableAt + 10_000 - Date.now())));
    http.stop();
    kafka.stop();
    const loadMs = Date.now() - loadStarted;
    const [httpOutcomes, kafkaOutcomes] = await Promise.all([http.done, kafka.done]);
    const report = await cluster.settle({ timeoutMs: 20_000 });
    const heartbeats = (await Promise.all((await readTopic(cluster.log, cluster.layout.heartbeats.name)).map((r) => cluster.codec.decode(r.value!).catch(() => undefined)))).filter(
      (e): e is WorkerHeartbeat => e?.type === 'WorkerHeartbeat',
    );

    // Refused on a stale view: a capacity rejection while some worker had heartbeated within
    // the staleness window before the decision, that the router's view did not see — a candidate
    // excluded for a stale or missing heartbeat, or none at all. A SHED decided on fresh
    // heartbeats that reported real queueing (the backlog after the outage) is admission doing
    // its job, counted apart.
    const rejections = report.events
      .map((e) => e.event)
      .filter((e): e is RequestRejected => e.type === 'RequestRejected' && CAPACITY_REASONS.has(e.reason))
      .filter((e) => e.candidates.length === 0 || e.candidates.some((c) => c.excluded === 'STALE_HEARTBEAT' || c.excluded === 'UNHEALTHY'));
    const shedOnRealQueueing = report.events.filter((e) => e.event.type === 'RequestRejected' && e.event.reason === 'SHED').length - rejections.filter((r) => r.reason === 'SHED').length;
    const refusedOnStaleView = rejections
      .map((r) => ({
        requestId: r.requestId,
        reason: r.reason,
        at: r.occurredAt,
        alive: [...new Set(heartbeats.filter((h) => h.occurredAt <= r.occurredAt && h.occurredAt >= r.occurredAt - ALIVE_WITHIN_MS).map((h) => h.workerId))],
        // What the router saw: each candidate and why it was excluded.
        candidates: r.candidates.map((c) => `${c.workerId}:${c.excluded ?? 'eligible'}`).join(' '),
      }))
      .filter((r) => r.alive.length > 0);
    // 504 although the outcome was on the log before the deadline.
    const timedOut = httpOutcomes
      .filter((o) => o.status === 504 && o.code === 'SY_ERR_GATEWAY_TIMEOUT')
      .map((o) => ({ requestId: o.requestId, deadlineAt: o.deadlineAt, outcomeAt: report.requests.get(o.requestId)?.visible?.at }));
    const lateAnswers = timedOut.filter((o) => o.outcomeAt !== undefined && o.outcomeAt <= o.deadlineAt - VISIBLE_MARGIN_MS);
    const racedDeadline = timedOut.filter((o) => o.outcomeAt !== undefined && o.outcomeAt <= o.deadlineAt && o.outcomeAt > o.deadlineAt - VISIBLE_MARGIN_MS);
    // Recovery: the first request sent after the broker accepted writes again that was answered 200, until its answer.
    const after = httpOutcomes.filter((o) => o.sentAt >= broker.writableAt && o.status === 200).sort((a, b) => a.sentAt + a.latencyMs - (b.sentAt + b.latencyMs));
    const recoveryMs = after.length > 0 ? after[0]!.sentAt + after[0]!.latencyMs - broker.writableAt : undefined;
    // …and from the group coordinator's return (before it, no consumer group can join).
    const answeredAfterGroups = httpOutcomes.filter((o) => o.status === 200 && o.sentAt + o.latencyMs >= broker.coordinatorAt).map((o) => o.sentAt + o.latencyMs);
    const servingAfterGroupsMs = answeredAfterGroups.length > 0 ? Math.min(...answeredAfterGroups) - broker.coordinatorAt : undefined;
    const statuses: Record<string, number> = {};
    for (const o of httpOutcomes) {
      const k = o.code ? `${o.status} ${o.code}` : String(o.status);
      statuses[k] = (statuses[k] ?? 0) + 1;
    }

    printFigures(
      figuresOf('Kafka broker restart', `20 req/s HTTP + 5 req/s Kafka for ${Math.round(loadMs / 1000)} s; broker restarted (SIGTERM, data kept) at 5 s`, httpOutcomes.length + kafkaOutcomes.length, report, {
        recoveryMs,
        extra: {
          'broker stopping → down → writable → groups': `${((broker.downAt - broker.stoppingAt) / 1000).toFixed(1)} s + ${((broker.writableAt - broker.downAt) / 1000).toFixed(1)} s + ${((broker.coordinatorAt - broker.writableAt) / 1000).toFixed(1)} s`,
          'refused on a stale view': refusedOnStaleView.length,
          'shed on real queueing (the backlog after the outage)': shedOnRealQueueing,
          'serving after the group coordinator is back': servingAfterGroupsMs === undefined ? 'never' : `${(servingAfterGroupsMs / 1000).toFixed(2)} s`,
          [`504 with the outcome on the log ≥ ${VISIBLE_MARGIN_MS} ms before the deadline`]: lateAnswers.length,
          [`504 with the outcome on the log < ${VISIBLE_MARGIN_MS} ms before the deadline`]: racedDeadline.length,
          'Kafka client sends failed': kafkaOutcomes.filter((o) => !o.acked).length,
          'HTTP statuses': Object.entries(statuses).map(([k, n]) => `${k}: ${n}`).join('; '),
        },
      }),
      report,
    );
    const diagnostics = cluster.diagnostics();
    // Within 90 s, less the broker's own stop and start (tens of seconds on a broker that kept
    // thousands of partitions from earlier runs; a few on a fresh one).
    const brokerMs = broker.writableAt - broker.stoppingAt;
    expect(Date.now() - started - brokerMs, `the scenario took ${Date.now() - started} ms, ${brokerMs} of them the broker's restart`).toBeLessThan(90_000);
    expect(refusedOnStaleView.slice(0, 10), `${refusedOnStaleView.length} capacity rejections while a worker heartbeated\n${diagnostics}`).toEqual([]);
    expect(lateAnswers.slice(0, 10), `${lateAnswers.length} 504s for outcomes on the log ≥ ${VISIBLE_MARGIN_MS} ms before the deadline`).toEqual([]);
    expect(report.withoutTerminal, diagnostics).toEqual([]);
    expect(report.duplicated).toEqual([]);
    // Replay re-derives every decision of the run, the controller's included.
    const verify = await verifyCluster(cluster);
    expectReplayed(verify);
  }, 240_000);
});
