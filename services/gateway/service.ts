import { instanceId as newInstanceId, type ServiceContext } from '../../lib/runtime.js';
import { buildGatewayApp, type GatewayApp, type GatewayAppOptions } from './app.js';
import { ResultsTracker, type ResultsTrackerOptions } from './results.js';

/** Options of a gateway instance (the app's options, the tracker's, and where to listen). */
export interface GatewayOptions extends Omit<GatewayAppOptions, 'ctx' | 'tracker' | 'instanceId'> {
  /** This instance's id (`producer` of its events). @default `gateway-<6 hex>` */
  instanceId?: string;
  /** Results tracker sizes and windows (see `ResultsTrackerOptions`). */
  results?: Partial<Pick<ResultsTrackerOptions, 'maxEntries' | 'maxBytes' | 'ttlMs' | 'lookbackRecords' | 'lookbackMs' | 'settleMs' | 'sweepIntervalMs' | 'maxWaiters'>>;
  /** Create the requests, results and deadletter topics when missing. @default true */
  ensureTopics?: boolean;
}

export interface Gateway {
  instanceId: string;
  app: GatewayApp;
  tracker: ResultsTracker;
  /** Stop reading results (waiting sync requests are answered), then close the app. */
  close(): Promise<void>;
}

/**
 * A gateway instance, not listening: its results tracker subscribed (lookback in progress,
 * see `tracker.whenCaughtUp()`) and its app built. Tests use this with `app.inject`.
 */
export async function createGateway(ctx: ServiceContext, { instanceId = newInstanceId('gateway'), results = {}, ensureTopics = true, ...appOptions }: GatewayOptions = {}): Promise<Gateway> {
  const { topics, log } = ctx;
  if (ensureTopics) await log.ensureTopics([topics.requests, topics.results, topics.deadletter]);
  const tracker = new ResultsTracker({
    ...results,
    log,
    codec: ctx.codec,
    topic: topics.results.name,
    deadLetterTopic: topics.deadletter.name,
    // Unique per process start: every instance reads every partition, from the end.
    groupId: `${instanceId}.results.${ctx.newEventId()}`,
    producer: instanceId,
    now: ctx.now,
    logger: ctx.logger,
  });
  await tracker.start();
  let app: GatewayApp;
  try {
    app = buildGatewayApp({ ...appOptions, ctx, tracker, instanceId });
  } catch (err) {
    await tracker.close();
    throw err;
  }
  return {
    instanceId,
    app,
    tracker,
    close: async () => {
      const closing = app.close();
      await tracker.close();
      await closing;
    },
  };
}

export interface RunningGateway extends Gateway {
  /** `http://host:port` */
  url: string;
}

/**
 * The gateway service: `createGateway` and `listen`. Resolves once listening and caught up
 * with the results lookback (`/readyz` says the same).
 */
export async function startGateway(ctx: ServiceContext, { host = '127.0.0.1', port = 8080, ...options }: GatewayOptions & { host?: string; port?: number } = {}): Promise<RunningGateway> {
  const gateway = await createGateway(ctx, options);
  try {
    const url = await gateway.app.listen({ host, port });
    await gateway.tracker.whenCaughtUp();
    ctx.logger.info({ url, instanceId: gateway.instanceId, log: ctx.log.kind }, 'gateway listening');
    return { ...gateway, url };
  } catch (err) {
    await gateway.close();
    throw err;
  }
}
