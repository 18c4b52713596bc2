import { LogBackedRegistry } from '../../lib/registry/log-backed.js';
import { logSourceFrom } from '../../replay/source.js';
import { verifyDecisions, type VerifyReport } from '../../replay/verify.js';
import { verifyController, type ControllerVerifyReport } from '../../replay/verify-controller.js';
import type { ChaosCluster } from '../support/chaos.js';

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
