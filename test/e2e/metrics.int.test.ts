import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseScrape, samplesOf, sumOf, type Scrape } from '../../lib/metrics/index.js';
import { freePort, runSwitchyard, startSwitchyard, type ServiceProcess } from '../support/processes.js';
import { kafkaBrokers, requireKafka, uniqueName, waitFor } from '../support/services.js';

/**
 * `--metrics-port` on the service commands, each service in its own process on the real
 * broker: registry, worker, router, controller (its port from SWITCHYARD_METRICS_PORT) and a
 * gateway to send traffic through. Each process serves its own series and the process's on
 * GET /metrics, and traffic moves them.
 */
describe('switchyard <service> --metrics-port on real Kafka', () => {
  const prefix = `${uniqueName('metrics')}.`;
  const home = mkdtempSync(join(tmpdir(), 'sy-metrics-int-'));
  const env: Record<string, string> = {
    SWITCHYARD_BROKERS: kafkaBrokers().join(','),
    SWITCHYARD_TOPIC_PREFIX: prefix,
    SWITCHYARD_HOME: home,
    SWITCHYARD_LANES: '8',
    SWITCHYARD_LOG_LEVEL: 'warn',
  };
  const procs: ServiceProcess[] = [];
  const ports: Record<'registry' | 'worker' | 'router' | 'controller', number> = { registry: 0, worker: 0, router: 0, controller: 0 };
  let gatewayUrl = '';
  const start = (name: string, args: string[], extraEnv: Record<string, string> = {}) => {
    const p = startSwitchyard(name, args, { ...env, ...extraEnv }, home);
    procs.push(p);
    return p;
  };
  const diagnostics = () => procs.map((p) => `--- ${p.name} (exit ${p.child.exitCode ?? p.child.signalCode ?? 'running'})\n${p.tail(15)}`).join('\n');
  const scrape = async (service: keyof typeof ports): Promise<Scrape> => {
    const res = await fetch(`http://127.0.0.1:${ports[service]}/metrics`);
    expect(res.status, `${service} /metrics`).toBe(200);
    return parseScrape(await res.text());
  };
  const infer = async (body: Record<string, unknown>) => {
    const res = await fetch(`${gatewayUrl}/v1/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ deadlineMs: 30_000, ...body }) });
    await res.arrayBuffer();
    return res.status;
  };

  beforeAll(async () => {
    await requireKafka();
    await runSwitchyard(['topics'], env, home);
    for (const k of Object.keys(ports) as (keyof typeof ports)[]) ports[k] = await freePort();
    const registryPort = await freePort();
    start('registry', ['registry', '--port', String(registryPort), '--metrics-port', String(ports.registry)]);
    env.SWITCHYARD_SCHEMA_REGISTRY_URL = `http://127.0.0.1:${registryPort}`;
    await waitFor(async () => (await fetch(`${env.SWITCHYARD_SCHEMA_REGISTRY_URL}/subjects`).catch(() => undefined))?.ok === true, {
      timeoutMs: 60_000,
      what: `the registry process\n${diagnostics()}`,
    });
    await runSwitchyard(['models', 'install'], env, home);
    start('worker', ['worker', '--id', 'worker-m1', '--zone', 'zone-m', '--metrics-port', String(ports.worker)]);
    start('router', ['router', '--router-id', 'router-m1', '--stale-heartbeat-ms', '20000', '--no-ejection', '--metrics-port', String(ports.router)]);
    // The controller takes its port from the environment.
    start('controller', ['controller', '--controller-id', 'controller-m1'], { SWITCHYARD_METRICS_PORT: String(ports.controller) });
    const gatewayPort = await freePort();
    start('gateway', ['gateway', '--port', String(gatewayPort)]);
    gatewayUrl = `http://127.0.0.1:${gatewayPort}`;
    await waitFor(async () => (await fetch(`${gatewayUrl}/readyz`).catch(() => undefined))?.ok === true, { timeoutMs: 60_000, what: `the gateway\n${diagnostics()}` });
    await waitFor(async () => (await infer({ model: 'sentiment-small', input: { text: 'warm up' }, deadlineMs: 5_000 })) === 200, {
      timeoutMs: 90_000,
      intervalMs: 200,
      what: `a first request to be served\n${diagnostics()}`,
    });
  }, 240_000);

  afterAll(async () => {
    await Promise.all(procs.map((p) => p.kill('SIGTERM')));
  });

  it('each process serves its own series and the process metrics, and traffic moves them', async () => {
    const before = { worker: await scrape('worker'), router: await scrape('router'), controller: await scrape('controller'), registry: await scrape('registry') };
    const statuses = await Promise.all(Array.from({ length: 10 }, (_, i) => infer({ model: 'sentiment-small', input: { text: `metrics ${i % 3}` }, sessionId: 's' })));
    expect(statuses).toEqual(Array(10).fill(200));
    await (await fetch(`${env.SWITCHYARD_SCHEMA_REGISTRY_URL}/subjects`)).arrayBuffer();
    const worker = await scrape('worker');
    const router = await scrape('router');
    const registry = await scrape('registry');

    expect(sumOf(worker, 'switchyard_worker_requests_total', { worker: 'worker-m1', zone: 'zone-m', model: 'sentiment-small', outcome: 'completed' }) - sumOf(before.worker, 'switchyard_worker_requests_total', { model: 'sentiment-small' })).toBe(10);
    expect(sumOf(worker, 'switchyard_worker_request_duration_seconds_count', { zone: 'zone-m' })).toBeGreaterThan(sumOf(before.worker, 'switchyard_worker_request_duration_seconds_count', { zone: 'zone-m' }));
    expect(sumOf(worker, 'switchyard_worker_cache_hits_total')).toBeGreaterThan(sumOf(before.worker, 'switchyard_worker_cache_hits_total'));
    expect(samplesOf(worker, 'switchyard_worker_lane_lag_records', { worker: 'worker-m1' })).toHaveLength(1);
    expect(sumOf(worker, 'switchyard_worker_phase', { phase: 'running' })).toBe(1);

    expect(sumOf(router, 'switchyard_router_decisions_total', { router: 'router-m1', outcome: 'routed' }) - sumOf(before.router, 'switchyard_router_decisions_total', { outcome: 'routed' })).toBe(10);
    expect(sumOf(router, 'switchyard_router_lanes_held')).toBe(1);
    expect(samplesOf(router, 'switchyard_router_requests_lag_records', { group: `${prefix}router` })).toHaveLength(1);
    expect(samplesOf(router, 'switchyard_controller_leading')).toEqual([]);

    expect(sumOf(registry, 'switchyard_registry_http_requests_total', { route: '/subjects', method: 'GET' })).toBeGreaterThan(sumOf(before.registry, 'switchyard_registry_http_requests_total', { route: '/subjects', method: 'GET' }));
    expect(sumOf(registry, 'switchyard_registry_subjects')).toBeGreaterThan(0);

    for (const s of [worker, router, registry, before.controller]) {
      expect(sumOf(s, 'process_cpu_seconds_total')).toBeGreaterThan(0);
      expect(sumOf(s, 'process_resident_memory_bytes')).toBeGreaterThan(0);
    }
  });

  it('the controller (port from SWITCHYARD_METRICS_PORT) reports its leadership and its ticks move', async () => {
    await waitFor(async () => sumOf(await scrape('controller'), 'switchyard_controller_leading', { controller: 'controller-m1' }) === 1, { timeoutMs: 20_000, what: 'the controller to lead' });
    const a = await scrape('controller');
    await waitFor(async () => sumOf(await scrape('controller'), 'switchyard_controller_ticks_total') > sumOf(a, 'switchyard_controller_ticks_total'), { timeoutMs: 5_000, what: 'ticks to move' });
    expect(sumOf(a, 'switchyard_controller_epoch')).toBeGreaterThanOrEqual(1);
    expect(sumOf(a, 'switchyard_controller_elections_total')).toBe(1);
    const other = await fetch(`http://127.0.0.1:${ports.controller}/`);
    expect(other.status).toBe(404);
  });
});
