import { createServer } from 'node:http';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import type { EventLog } from '../log/port.js';
import { adoptMetrics, createMetricsRegistry, instancesOf, observeHttpServer, parseScrape, recordsBehind, routeTemplate, sampledCounter, sampledGauge, samplesOf, serveMetrics, sumOf, within } from './index.js';

const scrapeOf = async (registry: Registry) => parseScrape(await registry.metrics());

describe('sampled metrics: values read from stats at scrape time', () => {
  it('a counter exposes the totals as they are at each scrape, labelled, and drops a series that is gone', async () => {
    const registry = new Registry();
    const stats = new Map<string, number>([['a', 3]]);
    sampledCounter({
      name: 'test_things_total',
      help: 'things',
      labelNames: ['who'] as const,
      registers: [registry],
      samples: () => [...stats].map(([who, value]) => ({ labels: { who }, value })),
    });
    expect(sumOf(await scrapeOf(registry), 'test_things_total', { who: 'a' })).toBe(3);
    stats.set('a', 7).set('b', 1);
    let scrape = await scrapeOf(registry);
    expect(samplesOf(scrape, 'test_things_total').map((s) => [s.labels.who, s.value])).toEqual([
      ['a', 7],
      ['b', 1],
    ]);
    expect(scrape.types.get('test_things_total')).toBe('counter');
    stats.delete('a');
    scrape = await scrapeOf(registry);
    expect(samplesOf(scrape, 'test_things_total').map((s) => s.labels.who)).toEqual(['b']);
  });

  it('concurrent scrapes of an async source never add up each other’s values', async () => {
    const registry = new Registry();
    sampledGauge({
      name: 'test_slow',
      help: 'slow',
      registers: [registry],
      samples: async () => {
        await new Promise((r) => setTimeout(r, 5));
        return [{ value: 4 }];
      },
    });
    const scrapes = await Promise.all([scrapeOf(registry), scrapeOf(registry), scrapeOf(registry)]);
    for (const s of scrapes) expect(sumOf(s, 'test_slow')).toBe(4);
  });

  it('skips values a counter cannot hold (negative, NaN) instead of failing the scrape', async () => {
    const registry = new Registry();
    sampledCounter({ name: 'test_odd_total', help: 'odd', labelNames: ['k'] as const, registers: [registry], samples: () => [{ labels: { k: 'neg' }, value: -1 }, { labels: { k: 'nan' }, value: NaN }, { labels: { k: 'ok' }, value: 2 }] });
    expect(samplesOf(await scrapeOf(registry), 'test_odd_total').map((s) => s.labels.k)).toEqual(['ok']);
  });

  it('instancesOf reads one instance, a list (as it grows) or a function', () => {
    const list = [1];
    const of = instancesOf<number>(list);
    list.push(2);
    expect(of()).toEqual([1, 2]);
    expect(instancesOf(5)()).toEqual([5]);
    let n = 0;
    expect(instancesOf(() => [++n])()).toEqual([1]);
  });

  it('within answers the fallback when the promise is slow or fails', async () => {
    expect(await within(Promise.resolve(1), 100, 0)).toBe(1);
    expect(await within(new Promise<number>(() => {}), 10, -1)).toBe(-1);
    expect(await within(Promise.reject(new Error('x')), 100, -2)).toBe(-2);
  });
});

describe('registries', () => {
  it('createMetricsRegistry exports the process and Node.js metrics, with default labels', async () => {
    const scrape = await scrapeOf(createMetricsRegistry({ labels: { service: 'test' } }));
    for (const name of ['process_cpu_seconds_total', 'process_resident_memory_bytes', 'nodejs_eventloop_lag_seconds', 'nodejs_heap_size_used_bytes']) {
      expect(samplesOf(scrape, name).length, name).toBeGreaterThan(0);
    }
    expect(samplesOf(scrape, 'process_cpu_seconds_total')[0]!.labels.service).toBe('test');
    expect(samplesOf(await scrapeOf(createMetricsRegistry({ processMetrics: false })), 'process_cpu_seconds_total')).toEqual([]);
  });

  it('adoptMetrics exposes another registry’s metrics (the same objects) and refuses a name twice', async () => {
    const own = new Registry();
    const target = new Registry();
    let v = 1;
    sampledGauge({ name: 'test_shared', help: 'shared', registers: [own], samples: () => [{ value: v }] });
    adoptMetrics(target, own);
    v = 9;
    expect(sumOf(await scrapeOf(target), 'test_shared')).toBe(9);
    expect(() => adoptMetrics(target, own)).toThrow(/test_shared is already registered/);
  });
});

describe('serveMetrics', () => {
  it('answers GET /metrics with the registry in the text format, 404 for anything else, and listens on loopback by default', async () => {
    const registry = new Registry();
    sampledGauge({ name: 'test_up', help: 'up', registers: [registry], samples: () => [{ value: 1 }] });
    const server = await serveMetrics({ registry, port: 0 });
    try {
      expect(server.url).toBe(`http://127.0.0.1:${server.port}/metrics`);
      const ok = await fetch(server.url);
      expect(ok.status).toBe(200);
      expect(ok.headers.get('content-type')).toContain('text/plain');
      expect(sumOf(parseScrape(await ok.text()), 'test_up')).toBe(1);
      expect((await fetch(server.url.replace('/metrics', '/'))).status).toBe(404);
      expect((await fetch(server.url.replace('/metrics', '/metrics/x'))).status).toBe(404);
      expect((await fetch(server.url, { method: 'POST' })).status).toBe(404);
      expect((await fetch(`${server.url}?name[]=x`)).status).toBe(200);
    } finally {
      await server.close();
    }
  });

  it('answers 500 with the reason when collecting fails, and keeps serving', async () => {
    const registry = new Registry();
    let fail = true;
    sampledGauge({
      name: 'test_flaky',
      help: 'flaky',
      registers: [registry],
      samples: () => {
        if (fail) throw new Error('stats unavailable');
        return [{ value: 2 }];
      },
    });
    const server = await serveMetrics({ registry, port: 0 });
    try {
      const bad = await fetch(server.url);
      expect(bad.status).toBe(500);
      expect(await bad.text()).toContain('stats unavailable');
      fail = false;
      expect(sumOf(parseScrape(await (await fetch(server.url)).text()), 'test_flaky')).toBe(2);
    } finally {
      await server.close();
    }
  });

  it('refuses a taken port and a bad one with SY_ERR_CONFIG', async () => {
    const first = await serveMetrics({ registry: new Registry(), port: 0 });
    try {
      await expect(serveMetrics({ registry: new Registry(), port: first.port })).rejects.toMatchObject({ code: 'SY_ERR_CONFIG', message: expect.stringContaining('EADDRINUSE') });
      await expect(serveMetrics({ registry: new Registry(), port: 70_000 })).rejects.toMatchObject({ code: 'SY_ERR_CONFIG' });
    } finally {
      await first.close();
    }
  });
});

describe('observeHttpServer', () => {
  it('counts a running server’s requests by route template, method and status, with their latency', async () => {
    const server = createServer((req, res) => res.writeHead(req.url?.startsWith('/subjects') ? 200 : 404).end());
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const registry = new Registry();
    observeHttpServer(server, { registry, prefix: 'test', route: (p) => routeTemplate(p, ['subjects', 'versions']) });
    const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    try {
      for (const path of ['/subjects/a/versions', '/subjects/b/versions', '/nope']) await (await fetch(base + path)).arrayBuffer();
      const scrape = await scrapeOf(registry);
      expect(sumOf(scrape, 'test_http_requests_total', { route: '/subjects/:param/versions', method: 'GET', status: '200' })).toBe(2);
      expect(sumOf(scrape, 'test_http_requests_total', { route: '/:param', status: '404' })).toBe(1);
      expect(sumOf(scrape, 'test_http_request_duration_seconds_count')).toBe(3);
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });

  it('routeTemplate keeps literals, hides names and numbers, and bounds long paths', () => {
    expect(routeTemplate('/subjects/x.y/versions/3', ['subjects', 'versions'])).toBe('/subjects/:param/versions/:param');
    expect(routeTemplate('/', [])).toBe('/');
    expect(routeTemplate('/a/b/c/d/e/f/g', [])).toBe('unmatched');
  });
});

describe('parseScrape', () => {
  it('reads names, escaped label values, special values and types; refuses a malformed line', () => {
    const s = parseScrape(
      ['# HELP x_total help', '# TYPE x_total counter', 'x_total{a="q\\"uo\\\\te",b="n\\nl"} 3', 'y +Inf', 'z{le="0.5"} NaN', 'w 1.5e3 1700000000000'].join('\n'),
    );
    expect(s.types.get('x_total')).toBe('counter');
    expect(s.samples[0]).toEqual({ name: 'x_total', labels: { a: 'q"uo\\te', b: 'n\nl' }, value: 3 });
    expect(s.samples[1]!.value).toBe(Infinity);
    expect(Number.isNaN(s.samples[2]!.value)).toBe(true);
    expect(s.samples[3]!.value).toBe(1500);
    expect(() => parseScrape('not a sample line at all')).toThrow(/line 1/);
  });
});

describe('recordsBehind', () => {
  it('is the end offset less the committed offset (or the first retained one) per partition', async () => {
    // Only the three offset queries recordsBehind makes; the contract test reads real logs.
    const offsets = { ends: [10, 5, 0], starts: [2, 1, 0], committed: [7, -1, -1] };
    const log = { endOffsets: async () => offsets.ends, startOffsets: async () => offsets.starts, committedOffsets: async () => offsets.committed } as unknown as EventLog;
    expect(await recordsBehind(log, 'g', 't')).toBe(3 + 4);
    expect(await recordsBehind(log, 'g', 't', [1])).toBe(4);
    expect(await recordsBehind(log, 'g', 't', [2, 9])).toBe(0);
  });
});
