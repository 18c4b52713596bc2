import { startBlobServer, type BlobStore, type RunningBlobServer } from '../lib/blob/index.js';
import { blobStoreFrom } from './commands/models.js';
import type { Runtime } from '../lib/bootstrap.js';
import { startRegistryService, type RunningRegistry } from '../services/registry/service.js';
import { startGateway, type RunningGateway } from '../services/gateway/service.js';
import type { GatewayOptions } from '../services/gateway/service.js';
import type { AdminAuthOptions } from '../lib/auth/admin.js';
import { startRouter, type RunningRouter } from '../services/router/service.js';
import { startController, type ControllerOptions, type RunningController } from '../services/controller/service.js';
import type { RouterPolicyInput } from '../services/router/policies/options.js';
import { startWorker, type RunningWorker, type WorkerOptions } from '../services/worker/service.js';
import type { VersionWeight } from '../schemas/generated/events.js';
import { openAnalytics } from '../lib/analytics/open.js';
import type { AnalyticsStore } from '../lib/analytics/port.js';
import { startSink, type RunningSink } from '../services/sink/service.js';
import type { Registry } from 'prom-client';
import { adoptMetrics, createMetricsRegistry } from '../lib/metrics/index.js';
import { registerControllerMetrics } from '../services/controller/metrics.js';
import { registerRegistryMetrics } from '../services/registry/metrics.js';
import { registerRouterMetrics } from '../services/router/metrics.js';
import { registerSinkMetrics } from '../services/sink/metrics.js';
import { WorkerRequestMetrics, registerWorkerMetrics } from '../services/worker/metrics.js';

/** One worker of a cluster plan. */
export type WorkerPlan = Omit<WorkerOptions, 'blobStore'>;

/** What `switchyard up` (and the demo) runs in one process. */
export interface ClusterPlan {
  /** Router replicas (one consumer group). @default 1 */
  routers?: number;
  /** Controllers (one leads; the others stand by). 0 runs none: then nothing re-dispatches or ends stranded requests. @default 1 */
  controllers?: number;
  controllerOptions?: Omit<ControllerOptions, 'controllerId'>;
  routerPolicy?: RouterPolicyInput;
  /** @default two workers in zone-a and two in zone-b */
  workers?: WorkerPlan[];
  /** Gateway listen address and auth; port 0 picks a free port. @default 127.0.0.1:8080, no keys */
  gateway?: ({ host?: string; port?: number } & Partial<Pick<GatewayOptions, 'apiKeys' | 'admin' | 'moreMetrics'>> & { insecure?: boolean }) | false;
  /** Also serve the schema registry REST API over the log's schemas (for Kafka clients). */
  registry?: { host?: string; port?: number; admin?: AdminAuthOptions } | false;
  /** Serve the blob store over HTTP (workers in other processes fetch weights from it). */
  blobServer?: { host?: string; port?: number; admin?: AdminAuthOptions } | false;
  /** Register the shipped models (models/) when missing. @default true */
  installModels?: boolean;
  /**
   * Run the sink into analytics: the embedded chDB engine under `<home>/analytics`, or the
   * ClickHouse server at `clickhouseUrl`. @default false
   */
  analytics?: { clickhouseUrl?: string | undefined } | false;
  /**
   * Prometheus metrics of every service of the cluster go on one registry, which the gateway's
   * `/metrics` also serves: `registry`, or a new one — with the process's own metrics (CPU,
   * memory, event loop, GC) unless `processMetrics` is false. @default a new registry with process metrics
   */
  metrics?: { registry?: Registry; processMetrics?: boolean };
}

export interface Cluster {
  gateway: RunningGateway | undefined;
  routers: RunningRouter[];
  controllers: RunningController[];
  workers: RunningWorker[];
  registry: RunningRegistry | undefined;
  blobServer: RunningBlobServer | undefined;
  blobStore: BlobStore;
  sink: RunningSink | undefined;
  analytics: AnalyticsStore | undefined;
  /** The metrics of every service of the cluster (also served on the gateway's `/metrics`). */
  metrics: Registry;
  /** Drain the workers, then stop everything in reverse order of start. */
  close(): Promise<void>;
}

export const DEFAULT_WORKERS: WorkerPlan[] = [
  { workerId: 'worker-a1', zone: 'zone-a' },
  { workerId: 'worker-a2', zone: 'zone-a' },
  { workerId: 'worker-b1', zone: 'zone-b' },
  { workerId: 'worker-b2', zone: 'zone-b' },
];

/** Append a rollout (traffic split by version weights) for a model. */
export async function setRollout(rt: Runtime, model: string, weights: VersionWeight[], stableVersion: string, canaryVersion: string | null): Promise<void> {
  const { ctx } = rt;
  await ctx.log.append([
    {
      topic: ctx.topics.control.name,
      partition: 0,
      value: ctx.codec.encode({
        type: 'RolloutChanged',
        eventId: ctx.newEventId(),
        occurredAt: ctx.now(),
        producer: 'switchyard-cli',
        model,
        weights,
        stableVersion,
        canaryVersion,
        canary: canaryVersion !== null,
        budget: null,
        reason: 'MANUAL',
        detail: null,
      }),
    },
  ]);
}

/**
 * Starts a whole cluster in this process on one runtime (embedded log or Kafka): routers,
 * workers, gateway, and optionally the registry and blob HTTP endpoints. The services are
 * the same code `switchyard gateway|router|worker` runs one per process.
 */
export async function startCluster(rt: Runtime, plan: ClusterPlan = {}): Promise<Cluster> {
  const { ctx, config } = rt;
  const blobStore = blobStoreFrom(undefined, config.home);
  const stack: (() => Promise<void>)[] = [];
  const metrics = plan.metrics?.registry ?? createMetricsRegistry({ processMetrics: plan.metrics?.processMetrics ?? true });
  const workerPlans = plan.workers ?? DEFAULT_WORKERS;
  const requestMetrics = workerPlans.length > 0 ? new WorkerRequestMetrics(metrics) : undefined;
  const cluster: Cluster = {
    gateway: undefined,
    routers: [],
    controllers: [],
    workers: [],
    registry: undefined,
    blobServer: undefined,
    blobStore,
    sink: undefined,
    analytics: undefined,
    metrics,
    close: async () => {
      await Promise.all(cluster.workers.map((w) => w.drain('cluster shutdown').catch(() => w.stop())));
      for (const stop of stack.reverse()) await stop().catch((err: unknown) => ctx.logger.warn({ err }, 'stopping a service failed'));
    },
  };
  try {
    if (plan.installModels ?? true) {
      const { installShippedModels } = await import('../services/worker/publish.js');
      await installShippedModels(ctx, blobStore);
    }
    if (plan.registry) {
      const registry = await startRegistryService({ log: ctx.log, topic: `${config.topicPrefix}_schemas`, ...plan.registry, logger: ctx.logger });
      cluster.registry = registry;
      stack.push(() => registry.close());
    }
    if (plan.blobServer) {
      const blobServer = await startBlobServer({ store: blobStore, ...plan.blobServer });
      cluster.blobServer = blobServer;
      stack.push(() => blobServer.close());
    }
    for (let i = 0; i < (plan.routers ?? 1); i++) {
      const router = await startRouter(ctx, { routerId: `router-${i + 1}`, ...(plan.routerPolicy ? { policy: plan.routerPolicy } : {}) });
      cluster.routers.push(router);
      stack.push(() => router.close());
    }
    for (let i = 0; i < (plan.controllers ?? 1); i++) {
      const controller = await startController(ctx, { controllerId: `controller-${i + 1}`, ...(plan.routerPolicy ? { routerPolicy: plan.routerPolicy } : {}), ...plan.controllerOptions });
      cluster.controllers.push(controller);
      stack.push(() => controller.close());
    }
    for (const w of workerPlans) {
      const worker = await startWorker(requestMetrics!.context(ctx, w.zone ?? 'default'), { ...w, blobStore });
      cluster.workers.push(worker);
      stack.push(() => worker.stop());
    }
    if (plan.analytics) {
      const store = await openAnalytics({ clickhouseUrl: plan.analytics.clickhouseUrl, clickhouseUser: config.clickhouseUser, clickhousePassword: config.clickhousePassword, home: config.home });
      cluster.analytics = store;
      stack.push(() => store.close());
      const sink = await startSink({ log: ctx.log, store, codec: ctx.codec, topicPrefix: config.topicPrefix, lanes: config.lanes, logger: ctx.logger });
      cluster.sink = sink;
      stack.push(() => sink.close());
    }
    // A service thread of `switchyard up` runs some services only: the series of the others are
    // the main thread's, and one family exported by both would be a duplicate on /metrics.
    if (cluster.routers.length > 0) registerRouterMetrics(metrics, cluster.routers, { ctx });
    if (cluster.controllers.length > 0) registerControllerMetrics(metrics, cluster.controllers);
    if (cluster.workers.length > 0) registerWorkerMetrics(metrics, cluster.workers, { ctx });
    if (cluster.registry) registerRegistryMetrics(metrics, cluster.registry);
    if (cluster.sink) registerSinkMetrics(metrics, cluster.sink);
    if (plan.gateway !== false) {
      const gateway = await startGateway(ctx, { host: '127.0.0.1', port: 8080, ...plan.gateway });
      cluster.gateway = gateway;
      stack.push(() => gateway.close());
      adoptMetrics(gateway.app.gateway.metrics.registry, metrics);
    }
    return cluster;
  } catch (err) {
    await cluster.close();
    throw err;
  }
}
