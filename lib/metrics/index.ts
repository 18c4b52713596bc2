/**
 * Prometheus metrics for every long-running service (prom-client): a registry per process,
 * a tiny `/metrics` server, and helpers that expose a service's own counters (`stats()`) and
 * state at scrape time, so no service's hot path changes for metrics. The series each service
 * exports are registered in `services/<service>/metrics.ts`; docs/ARCHITECTURE.md, "Metrics",
 * lists them.
 */
export { createMetricsRegistry, adoptMetrics, type MetricsRegistryOptions } from './registry.js';
export { serveMetrics, type MetricsServerOptions, type RunningMetricsServer } from './server.js';
export { sampledCounter, sampledGauge, instancesOf, within, type Instances, type Sample, type SampleSource, type SampledMetricOptions } from './collect.js';
export { observeHttpServer, routeTemplate, HTTP_SECONDS_BUCKETS, type HttpServerMetricsOptions } from './http.js';
export { recordsBehind } from './lag.js';
export { observeWrites } from './tap.js';
export { parseScrape, samplesOf, sumOf, type Scrape, type ScrapedSample } from './text.js';
