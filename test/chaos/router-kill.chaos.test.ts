import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChaosCluster, figuresOf, printFigures, startHttpLoad, startKafkaLoad } from '../support/chaos.js';
import { expectEveryRequestEndedOnce, verifyCluster } from './verify.js';

/** The consumer session timeout the services use on this broker (services.sh sets group.min.session.timeout.ms to it). */
const SESSION_TIMEOUT_MS = Number(process.env.SWITCHYARD_KAFKA_SESSION_TIMEOUT_MS ?? 3_000);

/**
 * One of two routers SIGKILLed under load: the survivor takes its `requests` partitions over
 * within the session timeout + 1 s and decides the backlog — routes it, does not shed it, while
 * the workers are idle enough to serve it.
 */
describe('chaos: SIGKILL a router', () => {
  let cluster: ChaosCluster;

  beforeAll(async () => {
    cluster = await ChaosCluster.start({ scenario: 'router-kill', workers: 2, routers: 2, controllers: 1 });
  }, 90_000);
  afterAll(async () => {
    await cluster?.close();
  });

  it('the survivor takes over within the session timeout + 1 s and serves the backlog, shedding nothing', async () => {
    const http = startHttpLoad({ url: cluster.gatewayUrl(), ratePerSec: 20, count: 300, deadlineMs: 30_000 });
    const kafka = startKafkaLoad({ topic: cluster.layout.requests.name, codec: cluster.codec, ratePerSec: 10, count: 150 });
    await new Promise((r) => setTimeout(r, 3_000));
    const kill = await cluster.signal('router-1', 'SIGKILL');
    const [httpOutcomes, kafkaOutcomes] = await Promise.all([http.done, kafka.done]);
    const report = await cluster.settle({ timeoutMs: 30_000 });

    // Takeover: every request accepted after the kill was decided; the slowest of them waited this long.
    const decidedAfterKill = report.events.filter((e) => (e.topic === 'decisions' && e.event.type === 'RequestRouted' && e.event.attempt === 1) || (e.topic === 'results' && e.event.type === 'RequestRejected'));
    const decidedAt = new Map<string, number>();
    for (const e of decidedAfterKill) if (e.event.requestId !== null && !decidedAt.has(e.event.requestId)) decidedAt.set(e.event.requestId, e.record.timestamp);
    const backlog = [...report.requests.values()].filter((v) => v.acceptedAt >= kill.at && v.acceptedAt <= kill.at + SESSION_TIMEOUT_MS);
    const waits = backlog.map((v) => (decidedAt.get(v.requestId) ?? Number.POSITIVE_INFINITY) - v.acceptedAt);
    const takeoverMs = Math.max(...backlog.map((v) => decidedAt.get(v.requestId) ?? Number.POSITIVE_INFINITY)) - kill.at;
    const shed = report.terminal.byReason['RequestRejected:SHED'] ?? 0;
    const verify = await verifyCluster(cluster);
    printFigures(
      figuresOf('SIGKILL a router', '20 req/s HTTP + 10 req/s Kafka for 15 s; 2 routers; router-1 SIGKILLed at 3 s', httpOutcomes.length + kafkaOutcomes.length, report, {
        recoveryMs: takeoverMs,
        extra: {
          'session timeout': `${SESSION_TIMEOUT_MS} ms`,
          'backlog (accepted within the session timeout after the kill)': backlog.length,
          'longest wait for a decision': `${Math.max(...waits)} ms`,
          shed,
          'replay: routing verified / diverged': `${verify.routing.verified} / ${verify.routing.diverged}`,
          'replay: controller verified / diverged': `${verify.controller.verified} / ${verify.controller.diverged}`,
        },
      }),
      report,
    );

    expect(backlog.length).toBeGreaterThan(0);
    expect(takeoverMs, cluster.diagnostics()).toBeLessThanOrEqual(SESSION_TIMEOUT_MS + 1_000);
    expect(shed).toBe(0);
    expect(report.terminal.rejected).toBe(0);
    expectEveryRequestEndedOnce(cluster, report, httpOutcomes, verify);
  }, 90_000);
});
