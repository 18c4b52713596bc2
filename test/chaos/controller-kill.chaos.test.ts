import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ControllerElected, WorkerEvicted } from '../../schemas/generated/events.js';
import { ChaosCluster, figuresOf, printFigures, startHttpLoad, startKafkaLoad, type JudgeReport } from '../support/chaos.js';
import { waitFor } from '../support/services.js';
import { expectEveryRequestEndedOnce, verifyCluster } from './verify.js';

const elections = (report: JudgeReport) =>
  report.events.filter((e) => e.topic === 'control' && e.event.type === 'ControllerElected').map((e) => ({ event: e.event as ControllerElected, offset: e.record.offset, at: e.record.timestamp }));

/** Which controller leads now: the latest accepted claim (epoch = previous + 1, first in control order). */
function leaderOf(report: JudgeReport): { id: string; epoch: number } {
  let epoch = 0;
  let id = '';
  for (const { event } of elections(report)) {
    if (event.epoch === epoch + 1) {
      epoch = event.epoch;
      id = event.controllerId;
    }
  }
  return { id, epoch };
}

/**
 * The leading controller SIGKILLed, then a worker SIGKILLed while no controller leads: a standby
 * claims the next epoch within seconds (lease 2 s), then evicts the dead worker once and
 * re-dispatches each of its unfinished requests once — no control action lost or doubled.
 */
describe('chaos: SIGKILL the leading controller', () => {
  let cluster: ChaosCluster;

  beforeAll(async () => {
    cluster = await ChaosCluster.start({
      scenario: 'controller-kill',
      workers: 2,
      controllers: 2,
      // 1 s per request, 40 at once: the survivor alone has room for the whole load.
      workerArgs: () => ['--backend', 'synthetic', '--synthetic-base-ms', '1000', '--capacity', '40', '--max-batch', '1', '--cache-entries', '0'],
    });
    await waitFor(async () => leaderOf(await cluster.judge()).epoch === 1, { timeoutMs: 20_000, what: 'a first leader' });
  }, 90_000);
  afterAll(async () => {
    await cluster?.close();
  });

  it('a standby takes over within seconds and performs each control action exactly once', async () => {
    const http = startHttpLoad({ url: cluster.gatewayUrl(), ratePerSec: 20, count: 300, deadlineMs: 30_000 });
    const kafka = startKafkaLoad({ topic: cluster.layout.requests.name, codec: cluster.codec, ratePerSec: 10, count: 150 });
    await new Promise((r) => setTimeout(r, 3_000));
    const first = leaderOf(await cluster.judge());
    const standby = first.id === 'controller-1' ? 'controller-2' : 'controller-1';
    const killLeader = await cluster.signal(first.id, 'SIGKILL');
    // While nobody leads, a worker dies with work on it: the new leader must catch up on it.
    await new Promise((r) => setTimeout(r, 300));
    const killWorker = await cluster.signal('worker-1', 'SIGKILL');
    const [httpOutcomes, kafkaOutcomes] = await Promise.all([http.done, kafka.done]);
    const report = await cluster.settle({ timeoutMs: 30_000 });

    const next = elections(report).find((e) => e.event.epoch === first.epoch + 1);
    const handoverMs = next === undefined ? Number.NaN : next.event.occurredAt - killLeader.at;
    const evictions = report.events.filter((e) => e.topic === 'control' && e.event.type === 'WorkerEvicted' && e.event.workerId === 'worker-1').map((e) => e.event as WorkerEvicted);
    // Each request's attempts: never two decisions for the same attempt number.
    const doubled = [...report.requests.values()].filter((v) => new Set(v.routed.map((r) => r.attempt)).size !== v.routed.length).map((v) => v.requestId);
    const verify = await verifyCluster(cluster);
    printFigures(
      figuresOf('SIGKILL the leading controller', '20 req/s HTTP + 10 req/s Kafka for 15 s; 2 controllers; the leader SIGKILLed at 3 s, worker-1 300 ms later', httpOutcomes.length + kafkaOutcomes.length, report, {
        recoveryMs: handoverMs,
        extra: {
          'new leader (epoch)': next === undefined ? 'none' : `${next.event.controllerId} (${next.event.epoch})`,
          'worker evicted after the kill': evictions.length === 0 ? 'no' : `${evictions[0]!.occurredAt - killWorker.at} ms (by epoch ${evictions[0]!.epoch})`,
          're-dispatched': report.redispatched,
          'doubled attempts': doubled.length,
          'replay: controller verified / diverged': `${verify.controller.verified} / ${verify.controller.diverged}`,
        },
      }),
      report,
    );

    expect(next?.event.controllerId, cluster.diagnostics()).toBe(standby);
    expect(next?.event.reason).toBe('LEADER_SILENT');
    expect(handoverMs).toBeLessThan(5_000);
    expect(evictions).toHaveLength(1);
    expect(evictions[0]!.epoch).toBe(first.epoch + 1);
    expect(doubled).toEqual([]);
    expect(report.redispatched).toBeGreaterThan(0);
    expectEveryRequestEndedOnce(cluster, report, httpOutcomes, verify);
    expect(verify.controller.byKind.evict).toBe(1);
    expect(verify.controller.byKind.elect).toBeGreaterThanOrEqual(2);
  }, 90_000);
});
