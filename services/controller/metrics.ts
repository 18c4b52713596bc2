import type { Registry } from 'prom-client';
import { instancesOf, sampledCounter, sampledGauge, type Instances } from '../../lib/metrics/index.js';
import type { ControllerStats, RunningController } from './service.js';

/**
 * The controllers' series, read from each controller's `stats()` at scrape time (label
 * `controller`, the instance id). The action counters count what this instance did while it
 * led; summed over the controllers they are the cluster's.
 * - `switchyard_controller_leading{controller}`: 1 while this instance leads, else 0
 * - `switchyard_controller_epoch{controller}`: the epoch in force in its fold
 * - `switchyard_controller_elections_total{controller}`: elections it won
 * - `switchyard_controller_evictions_total`, `…_redispatches_total` (work of an evicted worker
 *   routed again), `…_retries_total` (after a retriable failure), `…_unplaced_total` (a
 *   re-dispatch with no capacity, tried again), `…_failed_total` (requests it ended: deadline,
 *   attempts used up), `…_superseded_total` (second outcomes recorded), `…_migrations_total` (sessions moved)
 * - `switchyard_controller_ticks_total` (run, leading or not), `…_deciding_ticks_total`, `…_stale_ticks_total`
 *   (ticks whose actions gave up waiting for the fold to reach the log end)
 * - `switchyard_controller_tracked_requests{controller}`: requests without an outcome it follows
 */
export function registerControllerMetrics(registry: Registry, controllers: Instances<RunningController>): void {
  const current = instancesOf(controllers);
  const registers = [registry];
  const labelNames = ['controller'] as const;
  const each = (read: (s: ControllerStats) => number) => () =>
    current().map((c) => {
      const s = c.stats();
      return { labels: { controller: s.id }, value: read(s) };
    });
  const counter = (name: string, help: string, read: (s: ControllerStats) => number) => sampledCounter({ name, help, labelNames, registers, samples: each(read) });
  const gauge = (name: string, help: string, read: (s: ControllerStats) => number) => sampledGauge({ name, help, labelNames, registers, samples: each(read) });

  gauge('switchyard_controller_leading', '1 while this controller leads, else 0', (s) => (s.leading ? 1 : 0));
  gauge('switchyard_controller_epoch', 'The controller epoch in force in this controller fold', (s) => s.epoch);
  counter('switchyard_controller_elections_total', 'Elections this controller won', (s) => s.elections);
  counter('switchyard_controller_evictions_total', 'Workers evicted by the failure detector', (s) => s.evictions);
  counter('switchyard_controller_redispatches_total', 'Requests of an evicted worker routed again', (s) => s.redispatches);
  counter('switchyard_controller_retries_total', 'Requests routed again after a retriable failure', (s) => s.retries);
  counter('switchyard_controller_unplaced_total', 'Re-dispatches and retries that found no capacity (tried again next tick)', (s) => s.unplaced);
  counter('switchyard_controller_failed_total', 'Requests the controller ended with a terminal failure (deadline passed, attempts used up)', (s) => s.failed);
  counter('switchyard_controller_superseded_total', 'Second terminal outcomes recorded as superseded', (s) => s.superseded);
  counter('switchyard_controller_migrations_total', 'Sessions moved off evicted or draining workers', (s) => s.migrations);
  counter('switchyard_controller_ticks_total', 'Ticks run (leading or standing by)', (s) => s.ticks);
  counter('switchyard_controller_deciding_ticks_total', 'Ticks that yielded actions', (s) => s.decidingTicks);
  counter('switchyard_controller_stale_ticks_total', 'Ticks whose actions gave up waiting for the fold to reach the log end', (s) => s.staleTicks);
  gauge('switchyard_controller_tracked_requests', 'Requests without an outcome the controller follows', (s) => s.trackedRequests);
}
