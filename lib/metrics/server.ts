import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Registry } from 'prom-client';
import { SwitchyardError, errorMessage } from '../errors.js';
import type { Logger } from '../logger.js';
import { silentLogger } from '../logger.js';

/** Options of `serveMetrics`. */
export interface MetricsServerOptions {
  /** What `/metrics` exposes. */
  registry: Registry;
  /** 0 picks a free port. */
  port: number;
  /**
   * Listen address. Metrics name models, workers and zones: anything but loopback exposes them
   * to whoever reaches the port (put Prometheus on the same network instead). @default '127.0.0.1'
   */
  host?: string;
  /** Where scrape failures are logged. @default silent */
  logger?: Logger;
  /**
   * Whether the listening server keeps the process alive. A process serving metrics beside its
   * service passes false: when the service fails to start, or stops, the process still ends. @default true
   */
  keepAlive?: boolean;
}

export interface RunningMetricsServer {
  /** `http://host:port/metrics` */
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

/**
 * A tiny HTTP server for Prometheus: `GET /metrics` answers the registry in the text format;
 * anything else is 404. For services that have no HTTP server of their own (router, worker,
 * controller, sink) or whose server should not carry it (registry).
 */
export async function serveMetrics({ registry, port, host = '127.0.0.1', logger = silentLogger, keepAlive = true }: MetricsServerOptions): Promise<RunningMetricsServer> {
  if (!Number.isInteger(port) || port < 0 || port > 65_535) throw new SwitchyardError('SY_ERR_CONFIG', `metrics: port must be an integer in 0..65535, got ${port}`);
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' || path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found: metrics are at GET /metrics\n');
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (err: unknown) => {
        logger.warn({ err: errorMessage(err) }, 'metrics: collecting failed');
        res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end(`collecting metrics failed: ${errorMessage(err)}\n`);
      },
    );
  });
  // A scrape is one short request; idle keep-alive connections must not hold close() up.
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) =>
      reject(new SwitchyardError('SY_ERR_CONFIG', `metrics: cannot listen on ${host}:${port}: ${err.code ?? err.message}`, { cause: err, detail: { host, port } }));
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  if (!keepAlive) server.unref();
  const address = server.address();
  const bound = typeof address === 'object' && address !== null ? address.port : port;
  const shown = host.includes(':') ? `[${host}]` : host;
  return {
    url: `http://${shown}:${bound}/metrics`,
    port: bound,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeIdleConnections();
      }),
  };
}
