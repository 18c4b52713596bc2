import type { Registry } from 'prom-client';
import { observeHttpServer, routeTemplate, sampledCounter, sampledGauge, within } from '../../lib/metrics/index.js';
import type { RunningRegistry } from './service.js';

/** Path segments of the registry's REST API that are not names or numbers. */
const ROUTE_LITERALS = ['subjects', 'versions', 'schema', 'schemas', 'ids', 'config', 'compatibility', 'mode', 'healthz', 'latest'];

/**
 * The schema registry's series:
 * - `switchyard_registry_http_requests_total{route,method,status}` and
 *   `switchyard_registry_http_request_duration_seconds{route,method}` (histogram), from the
 *   running server's requests (`route` is the path with names and numbers as `:param`)
 * - `switchyard_registry_subjects`: subjects registered (read at scrape time)
 * - `switchyard_registry_conflicts_total`: records refused because they rebound a schema id
 *   (evidence of two registries writing one topic)
 */
export function registerRegistryMetrics(registry: Registry, service: RunningRegistry): void {
  observeHttpServer(service.app.server, { registry, prefix: 'switchyard_registry', route: (path) => routeTemplate(path, ROUTE_LITERALS) });
  const registers = [registry];
  sampledGauge({
    name: 'switchyard_registry_subjects',
    help: 'Subjects registered',
    registers,
    samples: async () => {
      const subjects = await within(service.registry.listSubjects(), 2_000, undefined);
      return subjects === undefined ? [] : [{ value: subjects.length }];
    },
  });
  sampledCounter({ name: 'switchyard_registry_conflicts_total', help: 'Records refused because they rebound a schema id (two registries writing one topic)', registers, samples: () => [{ value: service.registry.conflicts }] });
}
