import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import type { Scrape } from '../../lib/metrics/index.js';
import { overload, sendLoad, startMetricsCluster, type MetricsCluster } from '../support/metrics-cluster.js';
import { familyOf, labelValuesMetric, metricNamesOf } from '../support/promql.js';

interface Target {
  refId: string;
  expr: string;
  datasource?: { type: string; uid: string };
}
interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { x: number; y: number; w: number; h: number };
  datasource?: { type: string; uid: string };
  targets?: Target[];
}
interface Dashboard {
  uid: string;
  title: string;
  schemaVersion: number;
  panels: Panel[];
  templating: { list: { name: string; type: string; query: unknown; definition?: string }[] };
}

const read = (path: string) => readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8');
const dashboard = JSON.parse(read('deploy/grafana/switchyard.json')) as Dashboard;
const rules = parse(read('deploy/prometheus/rules.yml')) as { groups: { name: string; rules: { alert?: string; expr: string }[] }[] };

/** Every PromQL expression of the dashboard, with where it is. */
const panelQueries = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ where: `panel ${p.id} "${p.title}" ${t.refId}`, expr: t.expr })));
const variableMetrics = dashboard.templating.list.flatMap((v) => {
  if (v.type !== 'query') return [];
  const q = typeof v.query === 'string' ? v.query : (v.query as { query: string }).query;
  return [{ where: `variable ${v.name}: ${q}`, metric: labelValuesMetric(q) }];
});

/** Metrics Prometheus adds itself rather than scraping them. */
const PROMETHEUS_OWN = new Set(['up']);

function missingFrom(scrape: Scrape, queries: { where: string; expr: string }[]): string[] {
  return queries.flatMap(({ where, expr }) => metricNamesOf(expr).filter((n) => !PROMETHEUS_OWN.has(n) && familyOf(n, scrape.types) === undefined).map((n) => `${where}: ${n}`));
}

describe('deploy/grafana/switchyard.json', () => {
  it('is a Grafana dashboard: uid, panels with unique ids that do not overlap, every query on the datasource variable', () => {
    expect(dashboard).toMatchObject({ uid: 'switchyard', title: 'Switchyard' });
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(36);
    expect(new Set(dashboard.panels.map((p) => p.id)).size).toBe(dashboard.panels.length);
    expect(dashboard.templating.list.map((v) => v.name)).toEqual(['datasource', 'model']);
    for (const p of dashboard.panels) {
      const g = p.gridPos;
      expect(g.x + g.w, p.title).toBeLessThanOrEqual(24);
      if (p.type === 'row') continue;
      expect(p.targets?.length, p.title).toBeGreaterThan(0);
      expect(p.datasource, p.title).toEqual({ type: 'prometheus', uid: '${datasource}' });
      for (const t of p.targets!) expect(t.expr.trim(), `${p.title} ${t.refId}`).not.toBe('');
    }
    const cells = new Map<string, string>();
    for (const p of dashboard.panels) {
      for (let x = p.gridPos.x; x < p.gridPos.x + p.gridPos.w; x++) {
        for (let y = p.gridPos.y; y < p.gridPos.y + p.gridPos.h; y++) {
          const at = `${x},${y}`;
          expect(cells.get(at), `"${p.title}" overlaps "${cells.get(at)}" at ${at}`).toBeUndefined();
          cells.set(at, p.title);
        }
      }
    }
  });

  it('has a panel for each thing an operator watches', () => {
    const referenced = new Set(panelQueries.flatMap((q) => metricNamesOf(q.expr)));
    const wanted = {
      throughput: 'switchyard_worker_requests_total',
      'error rate': 'switchyard_worker_request_errors_total',
      'latency percentiles by model and version': 'switchyard_worker_request_duration_seconds_bucket',
      'queue depth': 'switchyard_worker_queue_depth',
      lanes: 'switchyard_router_lanes_held',
      'cache hit ratio': 'switchyard_worker_cache_hits_total',
      'decisions by reason': 'switchyard_router_decisions_total',
      sheds: 'switchyard_router_shed_total',
      evictions: 'switchyard_controller_evictions_total',
      're-dispatches': 'switchyard_controller_redispatches_total',
      'consumer lag': 'switchyard_router_requests_lag_records',
      'sink lag': 'switchyard_sink_lag_total',
      'sink rows/s': 'switchyard_sink_events_per_second',
      leadership: 'switchyard_controller_leading',
    };
    expect(Object.entries(wanted).filter(([, metric]) => !referenced.has(metric))).toEqual([]);
    const latency = panelQueries.filter((q) => q.expr.includes('switchyard_worker_request_duration_seconds_bucket'));
    expect(latency.some((q) => /by \(le, model, version\)/.test(q.expr))).toBe(true);
  });
});

/**
 * Every metric every panel, variable and alerting rule names is in a live scrape of a running
 * cluster under load (gateway `/metrics`, as `switchyard up` serves it): a renamed series
 * breaks this test, not the dashboard in production.
 */
describe('the dashboard and the alerting rules against a live scrape', () => {
  let m: MetricsCluster;
  let scrape: Scrape;

  beforeAll(async () => {
    m = await startMetricsCluster();
    await sendLoad(m);
    await overload(m);
    scrape = await m.scrape();
  }, 90_000);
  afterAll(async () => {
    await m?.close();
  });

  it('finds every metric of every panel query and variable', () => {
    expect(panelQueries.length).toBeGreaterThan(30);
    expect(missingFrom(scrape, panelQueries)).toEqual([]);
    expect(variableMetrics.length).toBeGreaterThan(0);
    expect(variableMetrics.filter((v) => v.metric === undefined || familyOf(v.metric, scrape.types) === undefined)).toEqual([]);
  });

  it('finds every metric of every alerting rule', () => {
    const queries = rules.groups.flatMap((g) => g.rules.map((r) => ({ where: `rule ${r.alert}`, expr: r.expr })));
    expect(queries.length).toBeGreaterThanOrEqual(5);
    expect(missingFrom(scrape, queries)).toEqual([]);
  });

  it('the check is real: a misspelt metric is reported', () => {
    expect(missingFrom(scrape, [{ where: 'probe', expr: 'sum(rate(switchyard_worker_request_total[5m]))' }])).toEqual(['probe: switchyard_worker_request_total']);
  });
});
