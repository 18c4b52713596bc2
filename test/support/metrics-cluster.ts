import { openRuntime, type Runtime } from '../../lib/bootstrap.js';
import { parseScrape, sumOf, type Scrape } from '../../lib/metrics/index.js';
import { startCluster, type Cluster } from '../../cli/cluster.js';
import { SyntheticBackend } from '../../services/worker/backends/synthetic.js';
import { tempDir } from './log-dir.js';
import { waitFor } from './services.js';

/**
 * An embedded cluster in this process with every long-running service: two routers, two
 * controllers, three workers in two zones, the gateway (port 0), the schema registry (port 0)
 * and the sink into the embedded analytics engine — the shape `switchyard up --analytics
 * --registry-port …` runs — for tests that read the metrics of every service.
 *
 * `embed-small` is served by one slow worker only (`worker-b1`: 150 ms per request, one at a
 * time), so a burst queues there and the routers shed BACKGROUND requests once its queue has
 * waited 50 ms (`overload`). The sentiment models are served by the two zone-a workers.
 */
export interface MetricsCluster {
  rt: Runtime;
  cluster: Cluster;
  /** The gateway's base URL. */
  url: string;
  /** `GET /metrics` of the gateway, parsed. */
  scrape(): Promise<Scrape>;
  close(): Promise<void>;
}

/** Service time of the slow worker, ms. */
const SLOW_MS = 150;

export async function startMetricsCluster(): Promise<MetricsCluster> {
  const tmp = await tempDir('sy-metrics-');
  const rt = await openRuntime({ brokers: [], home: tmp.dir, topicPrefix: 'switchyard.', lanes: 8, schemaRegistryUrl: undefined, clickhouseUrl: undefined, fsync: 'never', logLevel: 'warn' });
  let cluster: Cluster;
  try {
    cluster = await startCluster(rt, {
      routers: 2,
      controllers: 2,
      workers: [
        { workerId: 'worker-a1', zone: 'zone-a', models: ['sentiment-small', 'sentiment-tiny'] },
        { workerId: 'worker-a2', zone: 'zone-a', models: ['sentiment-small', 'sentiment-tiny'] },
        { workerId: 'worker-b1', zone: 'zone-b', models: ['embed-small'], capacity: 1, maxBatchSize: 1, backends: [new SyntheticBackend({ profile: { baseMs: SLOW_MS }, anyKind: true })] },
      ],
      // The slow worker is slow on purpose: not an outlier to eject.
      routerPolicy: { shedAtQueueDelayMs: { BACKGROUND: 50 }, ejection: { enabled: false } },
      gateway: { port: 0 },
      registry: { port: 0 },
      analytics: {},
    });
  } catch (err) {
    await rt.close();
    await tmp.remove();
    throw err;
  }
  const url = cluster.gateway!.url;
  const scrape = async () => {
    const res = await fetch(`${url}/metrics`);
    if (res.status !== 200) throw new Error(`GET /metrics answered ${res.status}: ${await res.text()}`);
    return parseScrape(await res.text());
  };
  await waitFor(() => cluster.controllers.some((c) => c.isLeader()), { timeoutMs: 20_000, what: 'a controller to lead' });
  return {
    rt,
    cluster,
    url,
    scrape,
    close: async () => {
      await cluster.close();
      await rt.close();
      await tmp.remove();
    },
  };
}

/** POST /v1/infer; resolves with the status code. */
export async function infer(url: string, body: Record<string, unknown>): Promise<number> {
  const res = await fetch(`${url}/v1/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ deadlineMs: 20_000, ...body }) });
  await res.arrayBuffer();
  return res.status;
}

/**
 * Traffic that moves every per-request series: both models (sessions, so repeated inputs hit
 * one worker's result cache), a request the model refuses (INVALID_INPUT, 422), one for a
 * model nobody serves (rejected by the router), and a look at the registry's subjects.
 * Resolves once the sink has written what the requests caused.
 */
export async function sendLoad(m: MetricsCluster, { requests = 24 } = {}): Promise<{ statuses: number[] }> {
  const before = sumOf(await m.scrape(), 'switchyard_sink_events_total', { table: 'results' });
  const statuses = await Promise.all(
    Array.from({ length: requests }, (_, i) =>
      infer(m.url, i % 6 === 5 ? { model: 'embed-small', input: { text: `vector ${i}` } } : { model: 'sentiment-small', input: { text: `same words ${i % 2}` }, sessionId: `session-${i % 2}` }),
    ),
  );
  statuses.push(await infer(m.url, { model: 'sentiment-small', input: { image: 'png' } }));
  statuses.push(await infer(m.url, { model: 'no-such-model', input: { text: 'x' } }));
  await (await fetch(`${m.cluster.registry!.url}/subjects`)).arrayBuffer();
  await waitFor(async () => sumOf(await m.scrape(), 'switchyard_sink_events_total', { table: 'results' }) > before, { timeoutMs: 30_000, intervalMs: 100, what: 'the sink to write results of the load' });
  return { statuses };
}

/**
 * Overloads the slow worker: a burst of BACKGROUND `embed-small` requests queues there (seen
 * in its queue depth), and once its heartbeats report the queue waiting, more BACKGROUND
 * requests are shed (429). Resolves with the largest queue depth seen and the statuses of
 * the later requests and of the burst (a burst request a busy gateway hands over late can be
 * routed after the heartbeats reported the queue, and is shed too).
 */
export async function overload(m: MetricsCluster): Promise<{ maxQueueDepth: number; late: number[]; burst: number[] }> {
  const burst = Array.from({ length: 6 }, (_, i) => infer(m.url, { model: 'embed-small', input: { text: `burst ${i}` }, priority: 'BACKGROUND' }));
  let maxQueueDepth = 0;
  await waitFor(
    async () => {
      maxQueueDepth = Math.max(maxQueueDepth, sumOf(await m.scrape(), 'switchyard_worker_queue_depth', { worker: 'worker-b1' }));
      return maxQueueDepth >= 2;
    },
    { timeoutMs: 10_000, intervalMs: 10, what: 'requests to queue at the slow worker' },
  );
  // The routers shed once the heartbeats they folded report the queue waiting 50 ms.
  await waitFor(() => m.cluster.routers.every((r) => (r.state().workers.get('worker-b1')?.heartbeat?.queueDelayMs ?? 0) >= 50), {
    timeoutMs: 10_000,
    what: "the routers to see the slow worker's queue waiting",
  });
  const late = await Promise.all(Array.from({ length: 3 }, (_, i) => infer(m.url, { model: 'embed-small', input: { text: `late ${i}` }, priority: 'BACKGROUND' })));
  return { maxQueueDepth, late, burst: await Promise.all(burst) };
}
