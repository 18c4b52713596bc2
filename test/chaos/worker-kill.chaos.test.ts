import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WorkerEvicted } from '../../schemas/generated/events.js';
import { ChaosCluster, figuresOf, printFigures, startHttpLoad, startKafkaLoad } from '../support/chaos.js';
import { expectEveryRequestEndedOnce, stillUnfinishedAt, unfinishedOn, verifyCluster } from './verify.js';

/**
 * A worker SIGKILLed with at least five unfinished requests on it (read from the log at the kill):
 * the controller evicts it within a second, with its evidence, and every one of those requests is
 * re-dispatched and answered; nothing stays accepted, no request has two client-visible outcomes,
 * and replay re-derives every decision, the controller's included.
 */
describe('chaos: SIGKILL a worker with work on it', () => {
  let cluster: ChaosCluster;

  beforeAll(async () => {
    cluster = await ChaosCluster.start({
      scenario: 'worker-kill',
      workers: 2,
      controllers: 1,
      // 1.5 s per request, 40 at once (~26 req/s each): at ~10 req/s per worker there are ~15 in hand,
      // and the survivor alone still has room for the whole load (nothing needs shedding).
      workerArgs: () => ['--backend', 'synthetic', '--synthetic-base-ms', '1500', '--capacity', '40', '--max-batch', '1', '--cache-entries', '0'],
    });
  }, 90_000);
  afterAll(async () => {
    await cluster?.close();
  });

  it('re-dispatches and answers every unfinished request of the killed worker; evicted within 1 s', async () => {
    const http = startHttpLoad({ url: cluster.gatewayUrl(), ratePerSec: 15, count: 180, deadlineMs: 30_000 });
    const kafka = startKafkaLoad({ topic: cluster.layout.requests.name, codec: cluster.codec, ratePerSec: 5, count: 60 });
    await new Promise((r) => setTimeout(r, 3_000));

    // Kill worker-1 once the log shows requests routed to it without an outcome (ten, so that at
    // least five are still unfinished at the kill itself).
    const before = await unfinishedOn(cluster, 'worker-1', 10);
    const kill = await cluster.signal('worker-1', 'SIGKILL');
    const [httpOutcomes, kafkaOutcomes] = await Promise.all([http.done, kafka.done]);
    const report = await cluster.settle({ timeoutMs: 30_000 });
    const unfinished = stillUnfinishedAt(report, before, 'worker-1', kill.at);

    const evictions = report.events
      .filter((e) => e.topic === 'control' && e.event.type === 'WorkerEvicted' && e.event.workerId === 'worker-1')
      .map((e) => e.event as WorkerEvicted);
    const detectionMs = evictions.length > 0 ? evictions[0]!.occurredAt - kill.at : Number.NaN;
    const answeredAt = unfinished.map((id) => report.requests.get(id)?.visible?.at ?? Number.NaN);
    const verify = await verifyCluster(cluster);
    printFigures(
      figuresOf('SIGKILL a worker with work on it', '15 req/s HTTP + 5 req/s Kafka for 12 s; 1.5 s per request; worker-1 SIGKILLed with ≥ 5 unfinished', httpOutcomes.length + kafkaOutcomes.length, report, {
        recoveryMs: Math.max(...answeredAt) - kill.at,
        extra: {
          'unfinished at the kill': unfinished.length,
          'detection (kill → WorkerEvicted)': `${detectionMs} ms`,
          're-dispatched': report.redispatched,
          'replay: routing verified / diverged': `${verify.routing.verified} / ${verify.routing.diverged}`,
          'replay: controller decisions verified / diverged': `${verify.controller.verified} / ${verify.controller.diverged}`,
        },
      }),
      report,
    );

    expect(unfinished.length).toBeGreaterThanOrEqual(5);
    expect(evictions, cluster.diagnostics()).toHaveLength(1);
    expect(evictions[0]).toMatchObject({ reason: 'SUSPECTED_DEAD', epoch: 1 });
    expect(evictions[0]!.phi!).toBeGreaterThanOrEqual(evictions[0]!.phiThreshold!);
    expect(detectionMs).toBeLessThan(1_000);
    for (const id of unfinished) {
      const v = report.requests.get(id)!;
      expect(v.routed.some((r) => r.attempt >= 2 && r.reason === 'REDISPATCH' && r.workerId === 'worker-2'), id).toBe(true);
      expect(v.visible?.type, id).toBe('InferenceCompleted');
    }
    expectEveryRequestEndedOnce(cluster, report, httpOutcomes, verify);
  }, 90_000);
});
