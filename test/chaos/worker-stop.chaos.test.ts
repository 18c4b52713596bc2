import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WorkerEvicted, WorkerJoined } from '../../schemas/generated/events.js';
import { ChaosCluster, figuresOf, printFigures, startHttpLoad, startKafkaLoad } from '../support/chaos.js';
import { expectEveryRequestEndedOnce, stillUnfinishedAt, unfinishedOn, verifyCluster } from './verify.js';

/**
 * A worker frozen (SIGSTOP) for 15 s with work in hand, then resumed (SIGCONT): it is evicted
 * within a second, its work re-dispatched and answered elsewhere; on resume it is fenced (it
 * writes nothing for work it no longer owns, or a late result is superseded, never a second
 * outcome) and rejoins as a new incarnation.
 */
describe('chaos: SIGSTOP a worker for 15 s, then SIGCONT', () => {
  let cluster: ChaosCluster;

  beforeAll(async () => {
    cluster = await ChaosCluster.start({
      scenario: 'worker-stop',
      workers: 2,
      controllers: 1,
      // 1 s per request, 40 at once: the survivor alone has room for the whole load.
      workerArgs: () => ['--backend', 'synthetic', '--synthetic-base-ms', '1000', '--capacity', '40', '--max-batch', '1', '--cache-entries', '0'],
    });
  }, 90_000);
  afterAll(async () => {
    await cluster?.close();
  });

  it('re-dispatches its work; its late results are superseded or fenced, never duplicated; it rejoins', async () => {
    const http = startHttpLoad({ url: cluster.gatewayUrl(), ratePerSec: 15, count: 375, deadlineMs: 30_000 });
    const kafka = startKafkaLoad({ topic: cluster.layout.requests.name, codec: cluster.codec, ratePerSec: 5, count: 125 });
    await new Promise((r) => setTimeout(r, 3_000));
    const before = await unfinishedOn(cluster, 'worker-1', 3);
    const stop = await cluster.signal('worker-1', 'SIGSTOP');
    await new Promise((r) => setTimeout(r, 15_000));
    const cont = await cluster.signal('worker-1', 'SIGCONT');
    const [httpOutcomes, kafkaOutcomes] = await Promise.all([http.done, kafka.done]);
    await new Promise((r) => setTimeout(r, 2_000));
    const report = await cluster.settle({ timeoutMs: 30_000 });
    const unfinished = stillUnfinishedAt(report, before, 'worker-1', stop.at);

    const control = report.events.filter((e) => e.topic === 'control');
    const evicted = control.filter((e) => e.event.type === 'WorkerEvicted' && e.event.workerId === 'worker-1').map((e) => e.event as WorkerEvicted);
    const rejoined = control.filter((e) => e.event.type === 'WorkerJoined' && e.event.workerId === 'worker-1' && e.record.timestamp > cont.at).map((e) => e.event as WorkerJoined);
    const lateFromStopped = report.events.filter((e) => e.topic === 'results' && e.event.producer === 'worker-1' && e.record.timestamp > cont.at && e.event.type !== 'InferenceStarted');
    const verify = await verifyCluster(cluster);
    printFigures(
      figuresOf('SIGSTOP a worker 15 s, then SIGCONT', '15 req/s HTTP + 5 req/s Kafka for 25 s; 1 s per request; worker-1 frozen at 3 s for 15 s', httpOutcomes.length + kafkaOutcomes.length, report, {
        recoveryMs: Math.max(...unfinished.map((id) => report.requests.get(id)?.visible?.at ?? Number.NaN)) - stop.at,
        extra: {
          'unfinished at the freeze': unfinished.length,
          'detection (SIGSTOP → WorkerEvicted)': evicted.length > 0 ? `${evicted[0]!.occurredAt - stop.at} ms` : 'none',
          're-dispatched': report.redispatched,
          'outcomes written by worker-1 after SIGCONT': lateFromStopped.length,
          superseded: report.superseded,
          'rejoined as a new incarnation': rejoined.length > 0 ? `lane ${rejoined[0]!.lane}` : 'no',
          'replay: controller verified / diverged': `${verify.controller.verified} / ${verify.controller.diverged}`,
        },
      }),
      report,
    );

    expect(evicted, cluster.diagnostics()).toHaveLength(1);
    expect(evicted[0]!.occurredAt - stop.at).toBeLessThan(1_000);
    for (const id of unfinished) {
      const v = report.requests.get(id)!;
      expect(v.routed.some((r) => r.attempt >= 2 && r.workerId === 'worker-2'), id).toBe(true);
      expect(v.visible?.type, id).toBe('InferenceCompleted');
      // Answered while worker-1 was still frozen: not waiting out the 15 s.
      expect(v.visible!.at, id).toBeLessThan(cont.at);
    }
    // Whatever worker-1 wrote after it resumed for work re-dispatched meanwhile lost: superseded, not a second outcome.
    for (const late of lateFromStopped) {
      const v = late.event.requestId === null ? undefined : report.requests.get(late.event.requestId);
      if (v?.visible !== undefined && v.visible.eventId !== late.event.eventId) expect(v.terminals.find((t) => t.eventId === late.event.eventId)?.superseded, late.event.requestId!).toBe(true);
    }
    expect(rejoined.length).toBeGreaterThanOrEqual(1);
    expectEveryRequestEndedOnce(cluster, report, httpOutcomes, verify);
    expect(verify.controller.byKind.evict).toBe(1);
  }, 90_000);
});
