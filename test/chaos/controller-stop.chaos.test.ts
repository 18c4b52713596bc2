import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ControllerElected, SwitchyardEvent } from '../../schemas/generated/events.js';
import { evolve, initialRouterState } from '../../services/router/state.js';
import { ChaosCluster, figuresOf, printFigures, startHttpLoad, type JudgeReport } from '../support/chaos.js';
import { waitFor } from '../support/services.js';
import { expectEveryRequestEndedOnce, verifyCluster } from './verify.js';

const elections = (report: JudgeReport) => report.events.filter((e) => e.topic === 'control' && e.event.type === 'ControllerElected').map((e) => e.event as ControllerElected);

/**
 * The leader frozen (SIGSTOP) until a standby has taken over, then resumed (SIGCONT), while a
 * worker dies in the meantime: whatever the old leader writes late under its old epoch is ignored
 * by every fold — the routers', the workers' lane tables and the controllers' run the same code
 * over the same single-partition `control` — and it stops acting once it reads the new epoch.
 */
describe('chaos: SIGSTOP the leading controller, then SIGCONT', () => {
  let cluster: ChaosCluster;

  beforeAll(async () => {
    cluster = await ChaosCluster.start({
      scenario: 'controller-stop',
      workers: 3,
      controllers: 2,
      workerArgs: () => ['--backend', 'synthetic', '--synthetic-base-ms', '100', '--capacity', '4', '--max-batch', '1', '--cache-entries', '0'],
    });
    await waitFor(async () => elections(await cluster.judge()).length >= 1, { timeoutMs: 20_000, what: 'a first leader' });
  }, 90_000);
  afterAll(async () => {
    await cluster?.close();
  });

  it("the old leader's late events are ignored by every consumer, and it stands down", async () => {
    const http = startHttpLoad({ url: cluster.gatewayUrl(), ratePerSec: 20, count: 400, deadlineMs: 30_000 });
    await new Promise((r) => setTimeout(r, 2_000));
    const old = elections(await cluster.judge())[0]!;
    const stop = await cluster.signal(old.controllerId, 'SIGSTOP');
    await waitFor(async () => elections(await cluster.judge()).some((e) => e.epoch === old.epoch + 1), { timeoutMs: 15_000, intervalMs: 100, what: 'a new leader while the old one is frozen' });
    const taken = elections(await cluster.judge()).find((e) => e.epoch === old.epoch + 1)!;
    // A worker dies while the old leader is frozen: on resume it sees the silence too.
    await cluster.signal('worker-3', 'SIGKILL');
    await new Promise((r) => setTimeout(r, 1_500));
    const resumed = await cluster.signal(old.controllerId, 'SIGCONT');
    const outcomes = await http.done;
    await new Promise((r) => setTimeout(r, 2_000));
    const report = await cluster.settle({ timeoutMs: 30_000 });

    // Fold control as every consumer does; count what the old epoch wrote after the new election and whether any of it applied.
    const control = report.events.filter((e) => e.topic === 'control').sort((a, b) => a.record.offset - b.record.offset);
    const fold = initialRouterState({ lanes: cluster.layout.decisions.partitions });
    let lateFromOld = 0;
    let lateApplied = 0;
    let afterNewElection = false;
    for (const { event } of control) {
      const epochOf = (e: SwitchyardEvent) => ('epoch' in e && typeof e.epoch === 'number' ? e.epoch : null);
      if (event.type === 'ControllerElected' && event.epoch === old.epoch + 1) afterNewElection = true;
      const late = afterNewElection && event.producer === old.controllerId && epochOf(event) === old.epoch;
      const before = fold.staleControlIgnored;
      evolve(fold, event);
      if (late) {
        lateFromOld++;
        if (fold.staleControlIgnored === before) lateApplied++;
      }
    }
    // After its resume the old leader decides nothing: no decision or outcome of its own on the log.
    const actedAfterResume = report.events.filter((e) => e.event.producer === old.controllerId && e.event.type !== 'ControllerTick' && e.event.occurredAt > resumed.at);
    const evictedByNew = control.filter((e) => e.event.type === 'WorkerEvicted' && e.event.workerId === 'worker-3' && e.event.epoch === old.epoch + 1);
    const verify = await verifyCluster(cluster);
    printFigures(
      figuresOf('SIGSTOP the leader, then SIGCONT', '20 req/s HTTP for 20 s; 2 controllers, 3 workers; the leader frozen until a new one leads, worker-3 SIGKILLed meanwhile', outcomes.length, report, {
        recoveryMs: taken.occurredAt - stop.at,
        extra: {
          'new leader': `${taken.controllerId} (epoch ${taken.epoch})`,
          'frozen for': `${((resumed.at - stop.at) / 1000).toFixed(1)} s`,
          'late control events of the old epoch / applied': `${lateFromOld} / ${lateApplied}`,
          'old leader acted after resume': actedAfterResume.length,
          'replay: controller verified / diverged': `${verify.controller.verified} / ${verify.controller.diverged}`,
        },
      }),
      report,
    );

    expect(taken.controllerId).not.toBe(old.controllerId);
    expect(lateApplied).toBe(0);
    expect(fold.epoch).toBe(old.epoch + 1);
    expect(actedAfterResume.map((e) => e.event.type)).toEqual([]);
    expect(evictedByNew, cluster.diagnostics()).toHaveLength(1);
    expectEveryRequestEndedOnce(cluster, report, outcomes, verify);
  }, 90_000);
});
