import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMetricsRegistry, parseScrape, samplesOf, serveMetrics, sumOf, type Scrape } from '../lib/metrics/index.js';
import { registerControllerMetrics } from '../services/controller/metrics.js';
import { registerRouterMetrics } from '../services/router/metrics.js';
import { registerWorkerMetrics } from '../services/worker/metrics.js';
import { overload, sendLoad, startMetricsCluster, type MetricsCluster } from '../test/support/metrics-cluster.js';
import { waitFor } from '../test/support/services.js';

/** The metric names docs/ARCHITECTURE.md's "Metrics" section lists (in backticks). */
function documentedSeries(): string[] {
  const doc = readFileSync(new URL('../docs/ARCHITECTURE.md', import.meta.url), 'utf8');
  const start = doc.indexOf('\n## Metrics\n');
  expect(start, 'docs/ARCHITECTURE.md has a "## Metrics" section').toBeGreaterThan(0);
  const section = doc.slice(start + 1, doc.indexOf('\n## ', start + 1));
  const names = [...section.matchAll(/`((?:switchyard|process|nodejs)_[a-z0-9_]+)(?:\{[^`]*\})?`/g)].map((m) => m[1]!);
  return [...new Set(names)];
}

/** Each [name, labels] whose sum must grow between the two scrapes. */
function expectMoved(before: Scrape, after: Scrape, series: readonly (readonly [string, Record<string, string>?])[]): void {
  const stuck = series.filter(([name, labels]) => !(sumOf(after, name, labels) > sumOf(before, name, labels))).map(([name, labels]) => `${name}${JSON.stringify(labels ?? {})}: ${sumOf(before, name, labels)} → ${sumOf(after, name, labels)}`);
  expect(stuck, 'series that did not move').toEqual([]);
}

/**
 * Every long-running service's metrics, scraped from a cluster in this process (`startCluster`:
 * routers, controllers, workers, registry, sink, gateway) on the gateway's `/metrics`, as
 * `switchyard up` serves them: exactly the series the docs list exist, and load, overload and a
 * lost worker move the ones they should. Judged by scraping, as Prometheus would.
 */
describe('metrics of every service of a cluster', () => {
  let m: MetricsCluster;

  beforeAll(async () => {
    m = await startMetricsCluster();
  }, 60_000);
  afterAll(async () => {
    await m?.close();
  });

  it('exports on the gateway /metrics exactly the switchyard series docs/ARCHITECTURE.md lists, and the process metrics it names', async () => {
    await sendLoad(m, { requests: 6 });
    const scrape = await m.scrape();
    const documented = documentedSeries();
    const exported = [...scrape.types.keys()].filter((n) => n.startsWith('switchyard_')).sort();
    expect(exported.length).toBeGreaterThan(70);
    expect(documented.filter((n) => n.startsWith('switchyard_')).sort()).toEqual(exported);
    for (const name of documented.filter((n) => !n.startsWith('switchyard_'))) expect(scrape.types.has(name), name).toBe(true);
    // Every series of the scrape is one of those families (histograms: _bucket, _sum, _count).
    const family = (sample: string) => sample.replace(/_(bucket|sum|count)$/, '');
    const strays = scrape.samples.filter((s) => !scrape.types.has(s.name) && !scrape.types.has(family(s.name))).map((s) => s.name);
    expect(strays).toEqual([]);
  });

  it('traffic moves the serving series of every service: requests, errors and latency by model, version and zone; decisions by reason; cache; sink rows', async () => {
    const before = await m.scrape();
    const { statuses } = await sendLoad(m);
    expect(statuses.filter((s) => s === 200).length).toBe(24);
    expect(statuses.slice(-2)).toEqual([422, 404]);
    const after = await m.scrape();
    expectMoved(before, after, [
      ['switchyard_gateway_http_requests_total', { route: '/v1/infer', status: '200' }],
      ['switchyard_gateway_http_request_duration_seconds_count', { route: '/v1/infer' }],
      ['switchyard_gateway_outcomes_total', { outcome: 'completed' }],
      ['switchyard_gateway_results_folded_total'],
      ['switchyard_gateway_inference_requests_total', { requested_model: 'sentiment-small', model: 'sentiment-small', outcome: 'completed' }],
      ['switchyard_gateway_inference_requests_total', { requested_model: 'embed-small', model: 'embed-small', outcome: 'completed' }],
      ['switchyard_gateway_inference_duration_seconds_count', { model: 'embed-small' }],
      ['switchyard_worker_requests_total', { model: 'sentiment-small', zone: 'zone-a', outcome: 'completed' }],
      ['switchyard_worker_requests_total', { model: 'embed-small', zone: 'zone-b', worker: 'worker-b1', outcome: 'completed' }],
      ['switchyard_worker_requests_total', { model: 'sentiment-small', outcome: 'failed' }],
      ['switchyard_worker_request_errors_total', { model: 'sentiment-small', reason: 'INVALID_INPUT' }],
      ['switchyard_worker_request_duration_seconds_count', { model: 'embed-small', zone: 'zone-b' }],
      ['switchyard_worker_request_duration_seconds_sum', { model: 'embed-small', zone: 'zone-b' }],
      ['switchyard_worker_request_compute_seconds_count', { model: 'sentiment-small' }],
      ['switchyard_worker_decisions_received_total'],
      ['switchyard_worker_batches_total'],
      ['switchyard_worker_cache_hits_total'],
      ['switchyard_worker_cache_misses_total'],
      ['switchyard_worker_heartbeats_total', { worker: 'worker-b1' }],
      ['switchyard_router_decisions_total', { outcome: 'routed' }],
      ['switchyard_router_decisions_total', { outcome: 'rejected', reason: 'UNKNOWN_MODEL' }],
      ['switchyard_controller_ticks_total'],
      ['switchyard_sink_events_total', { table: 'results' }],
      ['switchyard_sink_events_total', { table: 'log_records' }],
      ['switchyard_sink_batches_total'],
      ['switchyard_registry_http_requests_total', { route: '/subjects', method: 'GET', status: '200' }],
      ['switchyard_registry_http_request_duration_seconds_count', { route: '/subjects' }],
      ['process_cpu_seconds_total'],
    ]);
    // The slow worker's requests take its 150 ms: the histogram says so.
    const slow = sumOf(after, 'switchyard_worker_request_duration_seconds_sum', { model: 'embed-small' }) / sumOf(after, 'switchyard_worker_request_duration_seconds_count', { model: 'embed-small' });
    expect(slow).toBeGreaterThanOrEqual(0.15);
    // Versions are the ones the workers ran (the shipped models' latest).
    expect(new Set(samplesOf(after, 'switchyard_worker_requests_total').map((s) => s.labels.version))).toEqual(new Set(['v2']));
    // What the state gauges say of this cluster.
    for (const r of ['router-1', 'router-2']) {
      expect(sumOf(after, 'switchyard_router_lanes_held', { router: r })).toBe(3);
      expect(sumOf(after, 'switchyard_router_lanes', { router: r })).toBe(8);
      expect(sumOf(after, 'switchyard_router_workers', { router: r, status: 'live' })).toBe(3);
      expect(sumOf(after, 'switchyard_router_controller_epoch', { router: r })).toBeGreaterThanOrEqual(1);
    }
    expect(sumOf(after, 'switchyard_controller_leading')).toBe(1);
    expect(sumOf(after, 'switchyard_controller_elections_total')).toBeGreaterThanOrEqual(1);
    expect(Math.max(...samplesOf(after, 'switchyard_worker_cache_hit_ratio').map((s) => s.value))).toBeGreaterThan(0);
    expect(sumOf(after, 'switchyard_worker_loaded_models')).toBeGreaterThanOrEqual(3);
    expect(sumOf(after, 'switchyard_worker_lane', { worker: 'worker-b1' })).toBe(m.cluster.workers[2]!.lane);
    expect(sumOf(after, 'switchyard_worker_phase', { phase: 'running' })).toBe(3);
    expect(sumOf(after, 'switchyard_sink_events_per_second')).toBeGreaterThan(0);
    expect(sumOf(after, 'switchyard_registry_subjects')).toBeGreaterThan(0);
    expect(sumOf(after, 'process_resident_memory_bytes')).toBeGreaterThan(0);
    // Consumer lag is read from the log: present for the router group and each worker's lane.
    expect(samplesOf(after, 'switchyard_router_requests_lag_records', { group: 'switchyard.router' })).toHaveLength(1);
    expect(samplesOf(after, 'switchyard_worker_lane_lag_records').map((s) => s.labels.worker).sort()).toEqual(['worker-a1', 'worker-a2', 'worker-b1']);
    expect(samplesOf(after, 'switchyard_router_view_lag_seconds')).toHaveLength(2);
  });

  it('overload shows as queue depth at the worker, then as sheds by the routers', async () => {
    const before = await m.scrape();
    const { maxQueueDepth, late, burst } = await overload(m);
    expect(maxQueueDepth).toBeGreaterThanOrEqual(2);
    expect(late).toContain(429);
    const after = await m.scrape();
    expectMoved(before, after, [
      ['switchyard_router_shed_total'],
      ['switchyard_router_decisions_total', { outcome: 'rejected', reason: 'SHED' }],
      ['switchyard_gateway_outcomes_total', { outcome: 'rejected' }],
      ['switchyard_worker_requests_total', { worker: 'worker-b1', model: 'embed-small', outcome: 'completed' }],
    ]);
    // Every shed is one 429: the late requests', and any burst request routed after the queue showed.
    expect(sumOf(after, 'switchyard_router_shed_total')).toBe([...late, ...burst].filter((s) => s === 429).length);
  });

  it('a worker that stops heartbeating is evicted: the controller counts it and the routers see it', async () => {
    const before = await m.scrape();
    const lost = m.cluster.workers[1]!;
    await lost.stop();
    await waitFor(async () => sumOf(await m.scrape(), 'switchyard_controller_evictions_total') > sumOf(before, 'switchyard_controller_evictions_total'), {
      timeoutMs: 20_000,
      intervalMs: 50,
      what: 'the controller to evict the stopped worker',
    });
    await waitFor(async () => sumOf(await m.scrape(), 'switchyard_router_workers', { status: 'evicted' }) === 2, { timeoutMs: 10_000, what: 'both routers to see the eviction' });
    const after = await m.scrape();
    expect(sumOf(after, 'switchyard_controller_evictions_total') - sumOf(before, 'switchyard_controller_evictions_total')).toBe(1);
    expect(sumOf(after, 'switchyard_worker_phase', { worker: lost.id, phase: 'stopped' })).toBe(1);
    for (const r of ['router-1', 'router-2']) expect(sumOf(after, 'switchyard_router_lanes_held', { router: r })).toBe(2);
    // Summed over the controllers, the series are the cluster's counts.
    const stats = m.cluster.controllers.map((c) => c.stats());
    expect(sumOf(after, 'switchyard_controller_redispatches_total')).toBe(stats.reduce((a, s) => a + s.redispatches, 0));
  });

  it('serves a service’s series on a metrics server of its own, as --metrics-port does', async () => {
    const registry = createMetricsRegistry();
    registerRouterMetrics(registry, m.cluster.routers[0]!, { ctx: m.rt.ctx });
    registerControllerMetrics(registry, m.cluster.controllers);
    registerWorkerMetrics(registry, () => [m.cluster.workers[0]!], { ctx: m.rt.ctx });
    const server = await serveMetrics({ registry, port: 0 });
    try {
      const res = await fetch(server.url);
      expect(res.status).toBe(200);
      const scrape = parseScrape(await res.text());
      expect(samplesOf(scrape, 'switchyard_router_decisions_total').every((s) => s.labels.router === 'router-1')).toBe(true);
      expect(sumOf(scrape, 'switchyard_router_decisions_total')).toBe(Object.values(m.cluster.routers[0]!.stats().reasons).reduce((a, n) => a + n, 0));
      expect(sumOf(scrape, 'switchyard_controller_leading')).toBe(1);
      expect(samplesOf(scrape, 'switchyard_worker_queue_depth').map((s) => s.labels.worker)).toEqual(['worker-a1']);
      expect(sumOf(scrape, 'process_cpu_seconds_total')).toBeGreaterThan(0);
      expect(scrape.types.has('switchyard_gateway_http_requests_total')).toBe(false);
      expect((await fetch(server.url.replace(/\/metrics$/, '/healthz'))).status).toBe(404);
    } finally {
      await server.close();
    }
  });
});
