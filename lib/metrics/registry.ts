import { Registry, collectDefaultMetrics } from 'prom-client';
import { SwitchyardError } from '../errors.js';

/** Options of a process's metrics registry. */
export interface MetricsRegistryOptions {
  /**
   * Also export prom-client's Node.js and process metrics (`process_cpu_seconds_total`,
   * `process_resident_memory_bytes`, `nodejs_eventloop_lag_seconds`, `nodejs_gc_duration_seconds`…).
   * Once per process is enough: a process serving several registries turns it on for one. @default true
   */
  processMetrics?: boolean;
  /** Labels added to every series of this registry (e.g. `{ service: 'router' }`). @default none */
  labels?: Record<string, string>;
}

/**
 * A registry of this process's metrics. Services register their series on it
 * (`services/<service>/metrics.ts`); `serveMetrics` exposes it.
 */
export function createMetricsRegistry({ processMetrics = true, labels }: MetricsRegistryOptions = {}): Registry {
  const registry = new Registry();
  if (labels !== undefined) registry.setDefaultLabels(labels);
  if (processMetrics) collectDefaultMetrics({ register: registry });
  return registry;
}

/**
 * Registers every metric of `source` on `target` too (the metric objects are shared, so both
 * registries expose the same values): how a registry a service keeps of its own (the sink's,
 * the gateway's) and the process's registry are served together. A name `target` already has
 * is refused (`SY_ERR_CONFIG`): two services exporting one series would overwrite each other.
 */
export function adoptMetrics(target: Registry, source: Registry): void {
  for (const { name } of source.getMetricsAsArray()) {
    if (target.getSingleMetric(name) !== undefined) {
      throw new SwitchyardError('SY_ERR_CONFIG', `metrics: ${name} is already registered on the target registry`, { detail: { name } });
    }
  }
  for (const { name } of source.getMetricsAsArray()) target.registerMetric(source.getSingleMetric(name)!);
}
