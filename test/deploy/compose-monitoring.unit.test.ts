import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

const root = new URL('../../', import.meta.url);
const read = (path: string) => readFileSync(new URL(path, root), 'utf8');

interface Service {
  image?: string;
  command?: string[];
  environment?: Record<string, string>;
  volumes?: string[];
  ports?: string[];
  depends_on?: Record<string, unknown>;
}
const compose = parse(read('docker-compose.yml'), { merge: true }) as { services: Record<string, Service> };
const prometheus = parse(read('deploy/prometheus/prometheus.yml')) as {
  rule_files: string[];
  scrape_configs: { job_name: string; static_configs?: { targets: string[] }[]; dns_sd_configs?: { names: string[]; port: number }[] }[];
};

/** Each scrape job's (host, port) targets. */
const targets = prometheus.scrape_configs.map((job) => ({
  job: job.job_name,
  targets: [
    ...(job.static_configs ?? []).flatMap((c) => c.targets.map((t) => ({ host: t.split(':')[0]!, port: Number(t.split(':')[1]) }))),
    ...(job.dns_sd_configs ?? []).flatMap((c) => c.names.map((host) => ({ host, port: c.port }))),
  ],
}));

/** Where a compose service serves its metrics: the gateway on its --port, the others on SWITCHYARD_METRICS_PORT. */
function metricsPortOf(name: string, service: Service): number | undefined {
  const command = service.command ?? [];
  if (command[0] === 'gateway') return Number(command[command.indexOf('--port') + 1]);
  if (['router', 'worker', 'controller', 'sink', 'registry'].includes(command[0] ?? '')) return Number(service.environment?.SWITCHYARD_METRICS_PORT);
  return name === 'prometheus' ? 9090 : undefined;
}

describe('monitoring in docker-compose.yml', () => {
  it('Prometheus scrapes every Switchyard service of the stack, where it serves its metrics', () => {
    const scraped = new Set(targets.flatMap((t) => t.targets.map((x) => x.host)));
    const services = Object.entries(compose.services).filter(([, s]) => ['gateway', 'router', 'worker', 'controller', 'sink'].includes(s.command?.[0] ?? ''));
    expect(services.map(([name]) => name).sort()).toEqual(['controller', 'gateway', 'router', 'sink', 'worker']);
    for (const [name] of services) expect(scraped.has(name), `${name} is scraped`).toBe(true);
    for (const { job, targets: ts } of targets) {
      for (const { host, port } of ts) {
        const service = host === 'localhost' ? compose.services.prometheus : compose.services[host];
        expect(service, `${job}: ${host} is a compose service`).toBeDefined();
        expect(port, `${job}: ${host}:${port}`).toBe(metricsPortOf(host === 'localhost' ? 'prometheus' : host, service!));
      }
    }
    // The services listen for scrapes from the compose network, not only on their own loopback.
    expect(compose.services.router?.environment?.SWITCHYARD_METRICS_HOST).toBe('0.0.0.0');
  });

  it('mounts the Prometheus config with its rules, and Grafana with its provisioning and the dashboard', () => {
    const mounts = (service: string) => (compose.services[service]?.volumes ?? []).map((v) => v.split(':'));
    const promMount = mounts('prometheus').find(([src]) => src === './deploy/prometheus');
    expect(promMount?.[1]).toBe('/etc/prometheus');
    expect(compose.services.prometheus?.command).toContain('--config.file=/etc/prometheus/prometheus.yml');
    for (const f of prometheus.rule_files) expect(existsSync(new URL(`deploy/prometheus/${f}`, root)), f).toBe(true);

    const grafana = mounts('grafana');
    expect(grafana.find(([src]) => src === './deploy/grafana/provisioning')?.[1]).toBe('/etc/grafana/provisioning');
    const dashboardAt = grafana.find(([src]) => src === './deploy/grafana/switchyard.json')?.[1];
    expect(dashboardAt).toBeDefined();
    const providers = parse(read('deploy/grafana/provisioning/dashboards/switchyard.yml')) as { providers: { options: { path: string } }[] };
    expect(dashboardAt!.startsWith(`${providers.providers[0]!.options.path}/`)).toBe(true);
    const datasources = parse(read('deploy/grafana/provisioning/datasources/prometheus.yml')) as { datasources: { type: string; url: string; isDefault: boolean }[] };
    expect(datasources.datasources).toEqual([expect.objectContaining({ type: 'prometheus', url: 'http://prometheus:9090', isDefault: true })]);
    expect(compose.services.grafana?.depends_on).toHaveProperty('prometheus');
  });
});
