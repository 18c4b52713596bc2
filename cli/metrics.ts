import { InvalidArgumentError, Option } from 'commander';
import type { Registry } from 'prom-client';
import { createMetricsRegistry, serveMetrics } from '../lib/metrics/index.js';
import type { Logger } from '../lib/logger.js';

/** The metrics flags of a service command (`metricsPortOption`, `metricsHostOption`). */
export interface MetricsFlags {
  /** `--metrics-port` / `SWITCHYARD_METRICS_PORT`; none = no metrics server. */
  metricsPort?: number;
  /** `--metrics-host` / `SWITCHYARD_METRICS_HOST`. */
  metricsHost: string;
}

const port = (v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65_535) throw new InvalidArgumentError('--metrics-port must be an integer in 0..65535');
  return n;
};

/** `--metrics-port <port>` (`SWITCHYARD_METRICS_PORT`): serve Prometheus metrics on that port. */
export const metricsPortOption = (): Option =>
  new Option('--metrics-port <port>', 'serve Prometheus metrics (process, Node.js and this service) on GET /metrics at this port').env('SWITCHYARD_METRICS_PORT').argParser(port);

/** `--metrics-host <address>` (`SWITCHYARD_METRICS_HOST`), loopback by default. */
export const metricsHostOption = (): Option =>
  new Option('--metrics-host <address>', 'listen address of the metrics server (metrics name models, workers and zones: keep it loopback or on a private network)')
    .env('SWITCHYARD_METRICS_HOST')
    .default('127.0.0.1');

/** The process's metrics: a registry (process and Node.js metrics included) served on `/metrics`. */
export interface ProcessMetrics {
  registry: Registry;
  url: string;
  close(): Promise<void>;
}

/**
 * With `--metrics-port`, a registry with the process's own metrics and a server exposing it
 * (started now, so a taken port fails the command before the service starts; it never keeps
 * the process alive by itself); the command registers its service's series on `registry`.
 * Without it, undefined.
 */
export async function serveProcessMetrics(flags: MetricsFlags, logger: Logger): Promise<ProcessMetrics | undefined> {
  if (flags.metricsPort === undefined) return undefined;
  const registry = createMetricsRegistry();
  const server = await serveMetrics({ registry, port: flags.metricsPort, host: flags.metricsHost, logger, keepAlive: false });
  logger.info({ url: server.url }, `metrics: serving Prometheus metrics on ${server.url}`);
  return { registry, url: server.url, close: () => server.close() };
}
