import { describe, expect, it } from 'vitest';
import { familyOf, labelValuesMetric, metricNamesOf } from './promql.js';

describe('metricNamesOf', () => {
  it('finds the selected metrics, not functions, aggregations, labels, strings, ranges or numbers', () => {
    expect(metricNamesOf('sum by (model) (rate(switchyard_worker_requests_total{model=~"$model",outcome="failed"}[$__rate_interval]))')).toEqual(['switchyard_worker_requests_total']);
    expect(metricNamesOf('histogram_quantile(0.99, sum by (le, zone) (rate(a_seconds_bucket{x="y{z}"}[5m])))')).toEqual(['a_seconds_bucket']);
    expect(metricNamesOf('sum(rate(a_total[5m])) / (sum(rate(a_total[5m])) + sum(rate(b_total[5m]))) > 1e-9')).toEqual(['a_total', 'b_total']);
    expect(metricNamesOf('sum(x) < 1 or absent(x)')).toEqual(['x']);
    expect(metricNamesOf('up{job=~"a|b"} == 0 and on (instance) y offset 5m unless ignoring(job) z')).toEqual(['up', 'y', 'z']);
    expect(metricNamesOf('max without (a) (b) * on(c) group_left(d) e')).toEqual(['b', 'e']);
  });

  it('takes the metric of a label_values variable query', () => {
    expect(labelValuesMetric('label_values(switchyard_worker_requests_total, model)')).toBe('switchyard_worker_requests_total');
    expect(labelValuesMetric('label_values(a{b="c"}, d)')).toBe('a');
    expect(labelValuesMetric('label_values(model)')).toBeUndefined();
  });

  it('maps a histogram sample to its family', () => {
    const families = new Set(['h_seconds', 'c_total']);
    expect(familyOf('h_seconds_bucket', families)).toBe('h_seconds');
    expect(familyOf('c_total', families)).toBe('c_total');
    expect(familyOf('missing_count', families)).toBeUndefined();
  });
});
