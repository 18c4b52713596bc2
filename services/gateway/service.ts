import { isLoopbackAddress } from '../../lib/auth/admin.js';
import { SwitchyardError } from '../../lib/errors.js';
import { instanceId as newInstanceId, type ServiceContext } from '../../lib/runtime.js';
import { buildGatewayApp, type GatewayApp, type GatewayAppOptions } from './app.js';
import { ResultsTracker, type ResultsTrackerOptions } from './results.js';
import { statusRoutes, statusRoutesFor } from '../status/routes.js';

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
    // It reads outcomes, never a rejection's candidates: the shared decoder (each result decoded
    // once for this process's consumers: the router's view and the controller read them too).
    codec: ctx.codec.shared,
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
    app.register(statusRoutes, statusRoutesFor(ctx, app.gateway.requireAdmin));
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

/** Where a gateway listens. */
export interface GatewayListenOptions {
  /** Listen address. Anything but loopback needs API keys, or `insecure`. @default '127.0.0.1' */
  host?: string;
  /** 0 picks a free port. @default 8080 */
  port?: number;
  /**
   * Listen on a non-loopback address with no API keys configured: anyone who reaches the port
   * can run inference. Without it such a start is refused (`SY_ERR_CONFIG`). @default false
   */
  insecure?: boolean;
}

/**
 * Refuses a gateway that would serve the network with authentication off: a non-loopback
 * `host` needs API keys, or `insecure`.
 */
export function checkGatewayBinding({ host = '127.0.0.1', insecure = false, apiKeys = [] }: Pick<GatewayListenOptions, 'host' | 'insecure'> & Pick<GatewayOptions, 'apiKeys'>): void {
  if (apiKeys.length > 0 || insecure || isLoopbackAddress(host)) return;
  throw new SwitchyardError(
    'SY_ERR_CONFIG',
    `gateway: refusing to listen on ${host} with authentication off: no API keys are configured, so anyone who reaches the port could run inference. ` +
      'Configure keys (SWITCHYARD_API_KEYS_FILE; see docs/SECURITY.md), listen on 127.0.0.1, or pass --insecure to accept the risk',
  );
}

/**
 * The gateway service: `createGateway` and `listen`. Resolves once listening and caught up
 * with the results lookback (`/readyz` says the same). Says at start whether authentication
 * is on, and refuses a non-loopback address without API keys unless `insecure`.
 */
export async function startGateway(ctx: ServiceContext, { host = '127.0.0.1', port = 8080, insecure = false, ...options }: GatewayOptions & GatewayListenOptions = {}): Promise<RunningGateway> {
  checkGatewayBinding({ host, insecure, apiKeys: options.apiKeys });
  const gateway = await createGateway(ctx, options);
  try {
    const url = await gateway.app.listen({ host, port });
    await gateway.tracker.whenCaughtUp();
    const keys = gateway.app.gateway.options.apiKeys.length;
    const auth = keys > 0 ? `API keys required (${keys} configured)` : 'authentication is OFF (no API keys configured)';
    if (keys > 0) ctx.logger.info({ url, host, auth: 'api-keys', keys }, `gateway: ${auth}; listening on ${host} (${url})`);
    else if (isLoopbackAddress(host)) ctx.logger.warn({ url, auth: 'off' }, `gateway: ${auth}; bound to ${host} only, so only this machine can reach it`);
    else ctx.logger.warn({ url, auth: 'off', insecure: true }, `gateway: ${auth} and listening on ${host} (--insecure): anyone who reaches ${url} can run inference`);
    ctx.logger.info({ url, instanceId: gateway.instanceId, log: ctx.log.kind }, 'gateway listening');
    return { ...gateway, url };
  } catch (err) {
    await gateway.close();
    throw err;
  }
}
