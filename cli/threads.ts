import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { MessageChannel, Worker, type WorkerOptions } from 'node:worker_threads';
import type { Registry } from 'prom-client';
import type { Runtime } from '../lib/bootstrap.js';
import { SwitchyardError } from '../lib/errors.js';
import { serveLog } from '../lib/log/thread/index.js';
import type { WireError } from '../lib/log/thread/wire.js';
import type { Logger } from '../lib/logger.js';
import type { ClusterPlan, WorkerPlan } from './cluster.js';

/** What a service thread runs (plain data: it is cloned into the thread). */
export interface ServiceThreadPlan {
  gateway: Omit<Exclude<ClusterPlan['gateway'], undefined | false>, 'moreMetrics'> | false;
  workers: WorkerPlan[];
}

export type ToServiceThread = { type: 'metrics'; id: number; text: string } | { type: 'close' };

export type FromServiceThread =
  | { type: 'up'; gateway: string | undefined; workers: { id: string; lane: number }[] }
  | { type: 'failed'; error: WireError }
  | { type: 'metrics'; id: number }
  | { type: 'closed' };

export interface ServiceThread {
  /** The gateway's `http://host:port`, when the thread runs one. */
  gateway: string | undefined;
  workers: { id: string; lane: number }[];
  /** Stop the thread's services (its workers drain), then end the thread. */
  close(): Promise<void>;
}

export interface ServiceThreadOptions {
  /** The main thread's metrics: the thread's gateway serves them on its /metrics beside its own. */
  metrics: Registry;
  logger: Logger;
  /** Called when the thread ends without being asked to (it crashed): the process should not go on half-served. */
  onExit(code: number, error: Error | undefined): void;
}

/** tsx's ESM loader API, as its package exports it (`require.resolve` would give its CommonJS build). */
function tsxEsmApi(): string {
  const require = createRequire(import.meta.url);
  const manifest = require.resolve('tsx/package.json');
  const { exports } = require(manifest) as { exports: Record<string, { import: { default: string } }> };
  return join(dirname(manifest), exports['./esm/api']!.import.default);
}

/**
 * The thread's entry: the compiled module beside this one, or, when this module runs from source
 * (a checkout not built, the tests), the TypeScript source behind tsx's loader — registered in the
 * thread itself, as `bin/switchyard.js` does in the main thread (Node 20 does not carry loader
 * hooks, nor an `--import` of them, into worker threads).
 */
function startWorker(options: WorkerOptions): Worker {
  if (!import.meta.url.endsWith('.ts')) return new Worker(new URL('./service-thread.js', import.meta.url), options);
  const tsx = pathToFileURL(tsxEsmApi()).href;
  const source = new URL('./service-thread.ts', import.meta.url).href;
  return new Worker(`import(${JSON.stringify(tsx)}).then(({ register }) => { register(); return import(${JSON.stringify(source)}); });`, { ...options, eval: true });
}

/**
 * Starts services of a `switchyard up` in a worker thread of their own — the gateway, by default,
 * so HTTP parsing and responses run on the second core while the log, the router, the controller
 * and the workers keep the main thread. The main thread owns the embedded log (its files, its
 * group commits are one thread's) and serves it to the thread over a `MessagePort`
 * (`lib/log/thread`); on Kafka the thread has clients of its own (a producer, its consumers), so
 * its appends and fetches cost the main thread nothing. Resolves once the thread's services are up.
 */
export async function startServiceThread(rt: Runtime, plan: ServiceThreadPlan, { metrics, logger, onExit }: ServiceThreadOptions): Promise<ServiceThread> {
  // On Kafka the thread opens clients of its own: then there is no log to serve it.
  const channel = rt.config.brokers.length > 0 ? undefined : new MessageChannel();
  const served = channel === undefined ? undefined : serveLog(rt.log, channel.port1, { logger });
  const logPort = channel?.port2;
  const worker = startWorker({ workerData: { config: rt.config, plan, logPort }, transferList: logPort === undefined ? [] : [logPort] });
  let closing = false;
  let lastError: Error | undefined;
  const exited = new Promise<number>((resolve) => worker.once('exit', resolve));
  worker.on('error', (err) => {
    lastError = err;
    logger.error({ err }, 'service thread failed');
  });
  worker.on('message', (m: FromServiceThread) => {
    if (m.type !== 'metrics') return;
    metrics.metrics().then(
      (text) => worker.postMessage({ type: 'metrics', id: m.id, text } satisfies ToServiceThread),
      (err: unknown) => {
        logger.warn({ err }, 'service thread: collecting the main thread’s metrics failed');
        worker.postMessage({ type: 'metrics', id: m.id, text: '' } satisfies ToServiceThread);
      },
    );
  });
  const up = await new Promise<Extract<FromServiceThread, { type: 'up' }>>((resolve, reject) => {
    const onMessage = (m: FromServiceThread) => {
      if (m.type === 'up') resolve(m);
      else if (m.type === 'failed') reject(new SwitchyardError('SY_ERR_SERVICES', `service thread: ${m.error.message}`, { detail: { code: m.error.code } }));
    };
    worker.on('message', onMessage);
    void exited.then((code) => reject(new SwitchyardError('SY_ERR_SERVICES', `service thread exited (code ${code}) before its services were up`, { cause: lastError })));
  }).catch(async (err: unknown) => {
    await worker.terminate();
    await served?.close();
    throw err;
  });
  void exited.then(async (code) => {
    if (closing) return;
    await served?.close();
    onExit(code, lastError);
  });
  return {
    gateway: up.gateway,
    workers: up.workers,
    close: async () => {
      if (closing) return;
      closing = true;
      const closed = new Promise<void>((resolve) => worker.on('message', (m: FromServiceThread) => m.type === 'closed' && resolve()));
      worker.postMessage({ type: 'close' } satisfies ToServiceThread);
      await Promise.race([closed, exited]);
      await worker.terminate();
      await served?.close();
    },
  };
}
