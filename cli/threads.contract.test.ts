import { createServer } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { openRuntime, type Runtime } from '../lib/bootstrap.js';
import { parseScrape } from '../lib/metrics/index.js';
import { judgeLog } from '../test/support/chaos.js';
import { tempDir } from '../test/support/log-dir.js';
import { startCluster, type Cluster } from './cluster.js';
import { startServiceThread, type ServiceThread } from './threads.js';

/**
 * `switchyard up --threads 2`: services in a real worker thread over the main thread's embedded
 * log (`lib/log/thread`), judged by what is on the log afterwards.
 */
describe('a service thread of switchyard up', () => {
  let rt: Runtime | undefined;
  let cluster: Cluster | undefined;
  let thread: ServiceThread | undefined;
  let remove: (() => Promise<void>) | undefined;
  const exits: number[] = [];

  afterEach(async () => {
    await thread?.close();
    await cluster?.close();
    await rt?.close();
    await remove?.();
    thread = cluster = rt = remove = undefined;
  });

  const start = async (split: { mainWorkers: number; threadWorkers: number; gatewayPort?: number }) => {
    const tmp = await tempDir('sy-threads-');
    remove = tmp.remove;
    rt = await openRuntime({ brokers: [], home: tmp.dir, topicPrefix: 'switchyard.', lanes: 16, schemaRegistryUrl: undefined, clickhouseUrl: undefined, fsync: 'always', logLevel: 'warn' });
    const workers = (n: number, prefix: string) => Array.from({ length: n }, (_, i) => ({ workerId: `${prefix}-${i + 1}`, zone: i % 2 === 0 ? 'zone-a' : 'zone-b' }));
    cluster = await startCluster(rt, { workers: workers(split.mainWorkers, 'main'), gateway: false });
    thread = await startServiceThread(rt, { gateway: { port: split.gatewayPort ?? 0 }, workers: workers(split.threadWorkers, 'thread') }, { metrics: cluster.metrics, logger: rt.ctx.logger, onExit: (code) => exits.push(code) });
    return thread;
  };

  const infer = async (url: string, i: number) => {
    const res = await fetch(`${url}/v1/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'noop', input: { i }, deadlineMs: 20_000 }) });
    return { status: res.status, body: (await res.json()) as { requestId: string; status: string; workerId: string } };
  };

  it('serves HTTP from the thread with the main thread’s workers: every request answered once, and on the log once', async () => {
    const { gateway } = await start({ mainWorkers: 2, threadWorkers: 0 });
    const answers = await Promise.all(Array.from({ length: 60 }, (_, i) => infer(gateway!, i)));
    expect(answers.map((a) => a.status)).toEqual(answers.map(() => 200));
    expect(new Set(answers.map((a) => a.body.workerId))).toEqual(new Set(['main-1', 'main-2']));

    const report = await judgeLog(rt!.log, rt!.ctx.codec, rt!.ctx.topics as never);
    expect(report.accepted).toBe(60);
    expect(report.terminal.completed).toBe(60);
    expect(report.withoutTerminal).toEqual([]);
    expect(report.duplicated).toEqual([]);
    for (const a of answers) expect(report.requests.get(a.body.requestId)?.visible?.type).toBe('InferenceCompleted');
  });

  it('runs workers in the thread too: decisions reach them across the port and their outcomes are appended through it', async () => {
    const { gateway, workers } = await start({ mainWorkers: 0, threadWorkers: 2 });
    expect(workers.map((w) => w.id).sort()).toEqual(['thread-1', 'thread-2']);
    const answers = await Promise.all(Array.from({ length: 40 }, (_, i) => infer(gateway!, i)));
    expect(answers.every((a) => a.status === 200 && a.body.workerId.startsWith('thread-'))).toBe(true);
    const report = await judgeLog(rt!.log, rt!.ctx.codec, rt!.ctx.topics as never);
    expect(report.terminal.completed).toBe(40);
    expect(report.duplicated).toEqual([]);
  });

  it('the thread’s /metrics serves both threads’ series, no family twice', async () => {
    const { gateway } = await start({ mainWorkers: 1, threadWorkers: 0 });
    expect((await infer(gateway!, 1)).status).toBe(200);
    const text = await (await fetch(`${gateway}/metrics`)).text();
    const families = [...text.matchAll(/^# TYPE (\S+)/gm)].map((m) => m[1]!);
    expect(families.length).toBe(new Set(families).size);
    const scrape = parseScrape(text);
    // The gateway's own (this thread), the router's and the workers' and the process's (the main thread's).
    for (const name of ['switchyard_gateway_http_requests_total', 'switchyard_router_decisions_total', 'switchyard_worker_requests_total', 'process_cpu_seconds_total']) {
      expect(scrape.types.has(name), name).toBe(true);
    }
  });

  it('a thread that cannot start fails its start with SY_ERR_SERVICES, and the main thread’s log goes on', async () => {
    const busy = createServer();
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
    const port = (busy.address() as { port: number }).port;
    try {
      await expect(start({ mainWorkers: 1, threadWorkers: 0, gatewayPort: port })).rejects.toMatchObject({ code: 'SY_ERR_SERVICES' });
      thread = undefined;
      expect(await rt!.log.endOffsets(rt!.ctx.topics.requests.name)).toHaveLength(rt!.ctx.topics.requests.partitions);
      expect(exits).toEqual([]);
    } finally {
      busy.close();
    }
  });
});
