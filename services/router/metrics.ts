import type { Registry } from 'prom-client';
import { instancesOf, recordsBehind, sampledCounter, sampledGauge, within, type Instances, type Sample } from '../../lib/metrics/index.js';
import type { ServiceContext } from '../../lib/runtime.js';
import { REJECTED } from './decide.js';
import type { RunningRouter } from './service.js';

/** Options of `registerRouterMetrics`. */
export interface RouterMetricsOptions {
  /**
   * The routers' context: with it, the `requests` consumer group's lag is read from the log at
   * each scrape (`switchyard_router_requests_lag_records`). @default none (no lag series)
   */
  ctx?: ServiceContext;
  /** The routers' consumer group on `requests`. @default '<prefix>router', as `startRouter` */
  groupId?: string;
  /** Longest a scrape waits for the log's offsets, ms; then the lag series is left out. @default 2_000 */
  lagTimeoutMs?: number;
}

const REJECTION_REASONS: ReadonlySet<string> = new Set(Object.values(REJECTED));

/**
 * The routers' series, read from each router's `stats()` and `state()` at scrape time (label
 * `router`, the instance id):
 * - `switchyard_router_decisions_total{router,outcome,reason}`: decisions appended, `outcome`
 *   routed or rejected, `reason` as recorded (AFFINITY, LEAST_LOADED, … SHED, NO_CAPACITY, …)
 * - `switchyard_router_shed_total{router}`: requests shed (reason SHED)
 * - `switchyard_router_duplicates_skipped_total{router}`, `switchyard_router_view_undecodable_total{router}`
 * - `switchyard_router_view_lag_seconds{router}`: age of the newest heartbeat when it was folded
 *   (how far the router's view trails the workers); `…_view_lag_max_seconds` the largest seen
 * - `switchyard_router_view_waits_total{router}`, `switchyard_router_view_wait_seconds_total{router}`
 * - `switchyard_router_lanes{router}`, `switchyard_router_lanes_held{router}`: lanes, and lanes
 *   held by a live worker, in the router's view
 * - `switchyard_router_workers{router,status}`: workers in its view (live, draining, evicted)
 * - `switchyard_router_in_flight{router,worker,zone}`: requests routed to a worker whose result it has not read
 * - `switchyard_router_controller_epoch{router}`: the controller epoch in force
 * - with `ctx`: `switchyard_router_requests_lag_records{group}`: records of `requests` the group
 *   has not committed
 */
export function registerRouterMetrics(registry: Registry, routers: Instances<RunningRouter>, options: RouterMetricsOptions = {}): void {
  const current = instancesOf(routers);
  const registers = [registry];
  const perRouter = (read: (r: RunningRouter) => number) => () => current().map((r): Sample<'router'> => ({ labels: { router: r.id }, value: read(r) }));

  sampledCounter({
    name: 'switchyard_router_decisions_total',
    help: 'Decisions appended by outcome (routed, rejected) and reason',
    labelNames: ['router', 'outcome', 'reason'] as const,
    registers,
    samples: () =>
      current().flatMap((r) =>
        Object.entries(r.stats().reasons).map(([reason, n]) => ({ labels: { router: r.id, outcome: REJECTION_REASONS.has(reason) ? 'rejected' : 'routed', reason }, value: n })),
      ),
  });
  sampledCounter({ name: 'switchyard_router_shed_total', help: 'Requests shed under overload (rejected with reason SHED)', labelNames: ['router'] as const, registers, samples: perRouter((r) => r.stats().reasons[REJECTED.SHED] ?? 0) });
  sampledCounter({
    name: 'switchyard_router_duplicates_skipped_total',
    help: 'Requests skipped as already decided (redelivery, producer retry, repeated Idempotency-Key)',
    labelNames: ['router'] as const,
    registers,
    samples: perRouter((r) => r.stats().duplicatesSkipped),
  });
  sampledCounter({ name: 'switchyard_router_view_undecodable_total', help: 'Records of the view topics that did not decode (skipped)', labelNames: ['router'] as const, registers, samples: perRouter((r) => r.stats().undecodableViewRecords) });
  sampledGauge({ name: 'switchyard_router_view_lag_seconds', help: 'Age of the newest heartbeat when the router folded it: how far its view trails the workers', labelNames: ['router'] as const, registers, samples: perRouter((r) => r.stats().viewLagMs / 1000) });
  sampledGauge({ name: 'switchyard_router_view_lag_max_seconds', help: 'Largest view lag seen since start', labelNames: ['router'] as const, registers, samples: perRouter((r) => r.stats().maxViewLagMs / 1000) });
  sampledCounter({ name: 'switchyard_router_view_waits_total', help: 'Batches that waited for the view to reach the log end before deciding', labelNames: ['router'] as const, registers, samples: perRouter((r) => r.stats().viewWaits) });
  sampledCounter({ name: 'switchyard_router_view_wait_seconds_total', help: 'Time batches spent waiting for the view', labelNames: ['router'] as const, registers, samples: perRouter((r) => r.stats().viewWaitMs / 1000) });
  sampledGauge({ name: 'switchyard_router_lanes', help: 'Lanes (partitions of decisions)', labelNames: ['router'] as const, registers, samples: perRouter((r) => r.state().lanes) });
  sampledGauge({ name: 'switchyard_router_lanes_held', help: 'Lanes held by a live worker, in the router view', labelNames: ['router'] as const, registers, samples: perRouter((r) => r.state().laneHolders.size) });
  sampledGauge({
    name: 'switchyard_router_workers',
    help: 'Workers in the router view by status (live, draining, evicted)',
    labelNames: ['router', 'status'] as const,
    registers,
    samples: () =>
      current().flatMap((r) => {
        const counts = { live: 0, draining: 0, evicted: 0 };
        for (const w of r.state().workers.values()) {
          if (w.evicted) counts.evicted++;
          else if (w.claim === null) continue;
          else if (w.draining) counts.draining++;
          else counts.live++;
        }
        return Object.entries(counts).map(([status, value]) => ({ labels: { router: r.id, status }, value }));
      }),
  });
  sampledGauge({
    name: 'switchyard_router_in_flight',
    help: 'Requests routed to a worker whose result the router has not read yet',
    labelNames: ['router', 'worker', 'zone'] as const,
    registers,
    samples: () =>
      current().flatMap((r) =>
        [...r.state().workers.values()].filter((w) => w.claim !== null && !w.evicted).map((w) => ({ labels: { router: r.id, worker: w.workerId, zone: w.claim!.zone }, value: w.inFlight })),
      ),
  });
  sampledGauge({ name: 'switchyard_router_controller_epoch', help: 'The controller epoch in force in the router view (0 before the first election)', labelNames: ['router'] as const, registers, samples: perRouter((r) => r.state().epoch) });

  const { ctx } = options;
  if (ctx !== undefined) {
    const group = options.groupId ?? `${ctx.topics.requests.name.replace(/requests$/, '')}router`;
    const timeoutMs = options.lagTimeoutMs ?? 2_000;
    sampledGauge({
      name: 'switchyard_router_requests_lag_records',
      help: 'Records of requests the router group has not committed (consumer lag)',
      labelNames: ['group'] as const,
      registers,
      samples: async () => {
        const behind = await within(recordsBehind(ctx.log, group, ctx.topics.requests.name), timeoutMs, undefined);
        return behind === undefined ? [] : [{ labels: { group }, value: behind }];
      },
    });
  }
}
