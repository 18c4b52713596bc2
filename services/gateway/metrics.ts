import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { ResultsTracker } from './results.js';

/** The gateway's Prometheus metrics, in a registry of its own (several gateways can share a process). */
export interface GatewayMetrics {
  registry: Registry;
  /** HTTP requests by route template, method and status code. */
  requests: Counter<'route' | 'method' | 'status'>;
  /** HTTP request latency by route template and method, seconds. */
  latency: Histogram<'route' | 'method'>;
  /** Outcomes of inference requests: completed, failed, rejected, timeout, replayed. */
  outcomes: Counter<'endpoint' | 'outcome'>;
  /** Sync inference requests by requested model, answering model and version, requested zone and outcome. */
  inference: Counter<'requested_model' | 'model' | 'version' | 'zone' | 'outcome'>;
  /** Sync inference latency (accepted → answered) by answering model, version and requested zone, seconds. */
  inferenceDuration: Histogram<'model' | 'version' | 'zone'>;
}

export function createGatewayMetrics(tracker: ResultsTracker, { defaultMetrics = false }: { defaultMetrics?: boolean } = {}): GatewayMetrics {
  const registry = new Registry();
  if (defaultMetrics) collectDefaultMetrics({ register: registry });
  const requests = new Counter({
    name: 'switchyard_gateway_http_requests_total',
    help: 'HTTP requests by route, method and status code',
    labelNames: ['route', 'method', 'status'] as const,
    registers: [registry],
  });
  const latency = new Histogram({
    name: 'switchyard_gateway_http_request_duration_seconds',
    help: 'HTTP request latency by route and method',
    labelNames: ['route', 'method'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [registry],
  });
  const outcomes = new Counter({
    name: 'switchyard_gateway_outcomes_total',
    help: 'Inference requests by endpoint (sync, async) and outcome',
    labelNames: ['endpoint', 'outcome'] as const,
    registers: [registry],
  });
  new Gauge({
    name: 'switchyard_gateway_waiting_requests',
    help: 'Sync requests waiting for their result',
    registers: [registry],
    collect() {
      this.set(tracker.waiting);
    },
  });
  new Gauge({
    name: 'switchyard_gateway_tracked_requests',
    help: 'Requests whose status the results tracker remembers',
    registers: [registry],
    collect() {
      this.set(tracker.stats().entries);
    },
  });
  new Gauge({
    name: 'switchyard_gateway_tracked_bytes',
    help: 'Approximate bytes of remembered statuses and outputs',
    registers: [registry],
    collect() {
      this.set(tracker.stats().bytes);
    },
  });
  new Counter({
    name: 'switchyard_gateway_results_folded_total',
    help: 'Result events folded in by the results tracker',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(tracker.stats().folded);
    },
  });
  new Counter({
    name: 'switchyard_gateway_results_undecodable_total',
    help: 'Records of the results topic that did not decode',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(tracker.stats().undecodable);
    },
  });
  new Counter({
    name: 'switchyard_gateway_results_range_read_total',
    help: 'Records of the results topic read with range reads to fill gaps (lookback, settle window, holes)',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(tracker.stats().rangeRead);
    },
  });
  const inference = new Counter({
    name: 'switchyard_gateway_inference_requests_total',
    help: 'Sync inference requests answered, by requested model, the model and version that answered (empty when none), the requested zone (empty when none) and outcome (completed, failed, rejected, timeout)',
    labelNames: ['requested_model', 'model', 'version', 'zone', 'outcome'] as const,
    registers: [registry],
  });
  const inferenceDuration = new Histogram({
    name: 'switchyard_gateway_inference_duration_seconds',
    help: 'Sync inference requests, from accepted to answered, by the model and version that answered and the requested zone',
    labelNames: ['model', 'version', 'zone'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [registry],
  });
  return { registry, requests, latency, outcomes, inference, inferenceDuration };
}
