import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { runtimeOn } from '../lib/bootstrap.js';
import type { SwitchyardConfig } from '../lib/config.js';
import { openLog } from '../lib/log/open.js';
import { ThreadLog } from '../lib/log/thread/index.js';
import { packError } from '../lib/log/thread/wire.js';
import { createLogger } from '../lib/logger.js';
import { startCluster } from './cluster.js';
import type { FromServiceThread, ServiceThreadPlan, ToServiceThread } from './threads.js';

/**
 * The entry of a service thread of `switchyard up` (`cli/threads.ts` starts it): the services of
 * its plan on a runtime over the main thread's log, served through `logPort` (or, on Kafka, over
 * clients of its own).
 */
const { config, plan, logPort } = workerData as { config: SwitchyardConfig; plan: ServiceThreadPlan; logPort: MessagePort | undefined };
const port = parentPort!;
const send = (m: FromServiceThread) => port.postMessage(m);
const logger = createLogger('switchyard', config.logLevel);

const metricsWaiting = new Map<number, (text: string) => void>();
let nextMetricsId = 0;
/** The main thread's metrics, for the gateway's /metrics. */
const mainMetrics = () =>
  new Promise<string>((resolve) => {
    const id = ++nextMetricsId;
    metricsWaiting.set(id, resolve);
    send({ type: 'metrics', id });
  });

try {
  // No port: on Kafka, where the thread has clients of its own (see startServiceThread).
  const log = logPort === undefined ? await openLog(config, logger) : await ThreadLog.connect(logPort, { logger });
  const rt = await runtimeOn(config, log, { logger });
  const cluster = await startCluster(rt, {
    routers: 0,
    controllers: 0,
    installModels: false,
    workers: plan.workers,
    gateway: plan.gateway === false ? false : { ...plan.gateway, moreMetrics: mainMetrics },
    metrics: { processMetrics: false },
  });
  port.on('message', (m: ToServiceThread) => {
    if (m.type === 'metrics') {
      metricsWaiting.get(m.id)?.(m.text);
      metricsWaiting.delete(m.id);
    } else if (m.type === 'close') {
      void (async () => {
        await cluster.close();
        await rt.close();
        send({ type: 'closed' });
      })();
    }
  });
  send({ type: 'up', gateway: cluster.gateway?.url, workers: cluster.workers.map((w) => ({ id: w.id, lane: w.lane })) });
} catch (err) {
  send({ type: 'failed', error: packError(err) });
}
