import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { Counter, Histogram, type Registry } from 'prom-client';

/** Latency buckets of HTTP requests, seconds. */
export const HTTP_SECONDS_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** Options of `observeHttpServer`. */
export interface HttpServerMetricsOptions {
  registry: Registry;
  /** Name prefix: `<prefix>_http_requests_total`, `<prefix>_http_request_duration_seconds`. */
  prefix: string;
  /**
   * The route template of a request path (`/subjects/:subject/versions`): paths carry ids and
   * names, and a label per path would grow without bound. @default `routeTemplate` with no literals
   */
  route?: (path: string) => string;
}

/**
 * Counts the requests of a running Node HTTP server by route, method and status code, and
 * their latency, from the server's own `request` events — so a server built elsewhere (a
 * fastify app already listening) is observed without changing it.
 */
export function observeHttpServer(server: Server, { registry, prefix, route = (p) => routeTemplate(p, []) }: HttpServerMetricsOptions): void {
  const requests = new Counter({
    name: `${prefix}_http_requests_total`,
    help: 'HTTP requests by route, method and status code',
    labelNames: ['route', 'method', 'status'] as const,
    registers: [registry],
  });
  const duration = new Histogram({
    name: `${prefix}_http_request_duration_seconds`,
    help: 'HTTP request latency by route and method',
    labelNames: ['route', 'method'] as const,
    buckets: HTTP_SECONDS_BUCKETS,
    registers: [registry],
  });
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const started = process.hrtime.bigint();
    res.once('finish', () => {
      const r = route((req.url ?? '/').split('?')[0]!);
      const method = req.method ?? 'UNKNOWN';
      requests.inc({ route: r, method, status: res.statusCode });
      duration.observe({ route: r, method }, Number(process.hrtime.bigint() - started) / 1e9);
    });
  });
}

/**
 * A path as a route template: every segment that is not one of `literals` becomes `:param`,
 * and paths longer than `maxSegments` collapse to `unmatched` (bounded label values whatever
 * clients send).
 */
export function routeTemplate(path: string, literals: readonly string[], maxSegments = 6): string {
  const segments = path.split('/').filter((s) => s !== '');
  if (segments.length > maxSegments) return 'unmatched';
  return `/${segments.map((s) => (literals.includes(s) ? s : ':param')).join('/')}`;
}
