import { LogBackedRegistry } from '../../lib/registry/log-backed.js';
import { logSourceFrom } from '../../replay/source.js';
import { verifyDecisions, type VerifyReport } from '../../replay/verify.js';
import { verifyController, type ControllerVerifyReport } from '../../replay/verify-controller.js';
import { expect } from 'vitest';
import type { ChaosCluster, HttpOutcome, JudgeReport } from '../support/chaos.js';
import { waitFor } from '../support/services.js';

/** `replay verify` over a chaos cluster's log on Kafka: the routers' decisions and the controller's. */
export async function verifyCluster(cluster: ChaosCluster): Promise<{ routing: VerifyReport; controller: ControllerVerifyReport; skipped: number }> {
  const registry = await LogBackedRegistry.open({ log: cluster.log, topic: `${cluster.prefix}_schemas` });
  const source = await logSourceFrom({ log: cluster.log, registry, codec: cluster.codec, topicPrefix: cluster.prefix, description: `kafka ${cluster.prefix}` });
  const routing = await verifyDecisions(source, { index: false });
  const controller = await verifyController(source);
  return { routing, controller, skipped: Object.values(routing.skipped).reduce((a, b) => a + b, 0) + controller.skipped };
}

/** Median and max of a list (ms). */
export function medianMax(xs: number[]): { p50: number; max: number } {
  const s = [...xs].sort((a, b) => a - b);
  return { p50: s.length === 0 ? Number.NaN : s[Math.floor((s.length - 1) / 2)]!, max: s.length === 0 ? Number.NaN : s[s.length - 1]! };
}

/**
 * Waits until the log shows at least `min` requests whose latest attempt went to `worker` and that
 * have no outcome yet, and returns their ids (read just before a fault is injected).
 */
export async function unfinishedOn(cluster: ChaosCluster, worker: string, min: number): Promise<string[]> {
  let unfinished: string[] = [];
  await waitFor(
    async () => {
      const report = await cluster.judge();
      unfinished = [...report.requests.values()].filter((v) => v.terminals.length === 0 && v.routed.at(-1)?.workerId === worker).map((v) => v.requestId);
      return unfinished.length >= min;
    },
    { timeoutMs: 20_000, intervalMs: 50, what: `${min} unfinished requests on ${worker}` },
  );
  return unfinished;
}

/** Of the requests read as unfinished on `worker` just before a fault at `at`, those it did not answer in that instant. */
export const stillUnfinishedAt = (report: JudgeReport, ids: string[], worker: string, at: number): string[] =>
  ids.filter((id) => !report.requests.get(id)!.terminals.some((t) => t.workerId === worker && t.at <= at));

/** What every scenario asserts: nothing lost or doubled, every HTTP client answered 200, replay re-derives every decision. */
export function expectEveryRequestEndedOnce(cluster: ChaosCluster, report: JudgeReport, http: HttpOutcome[], verify: Awaited<ReturnType<typeof verifyCluster>>): void {
  expect(report.withoutTerminal, cluster.diagnostics()).toEqual([]);
  expect(report.duplicated).toEqual([]);
  expect(http.filter((o) => o.status !== 200).map((o) => `${o.requestId} ${o.status}`), cluster.diagnostics(40)).toEqual([]);
  expectReplayed(verify);
}

/** Replay re-derived every decision of the run (0 divergences, 0 skipped), the controller's included; the first divergences in the message. */
export function expectReplayed(verify: Awaited<ReturnType<typeof verifyCluster>>): void {
  const why = JSON.stringify({
    routing: verify.routing.divergences.slice(0, 3).map((d) => ({ requestId: d.requestId, producer: d.producer, at: d.position, diffs: d.diffs.slice(0, 3) })),
    controller: verify.controller.divergences.slice(0, 3),
    skipped: verify.routing.skippedExamples,
  });
  expect({ diverged: verify.routing.diverged + verify.controller.diverged, skipped: verify.skipped }, why).toEqual({ diverged: 0, skipped: 0 });
  expect(verify.controller.verified).toBeGreaterThan(0);
}
