/** Words of PromQL that are not metric names where they stand alone. */
const KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'and', 'or', 'unless', 'offset', 'inf', 'nan', 'atan2', 'start', 'end']);

/**
 * The metric names a PromQL expression selects: every identifier that is not a function or
 * aggregation (followed by `(`), a keyword, a label name inside `{…}`, `by (…)` or `on (…)`,
 * a string, a duration or a number. Grafana's `$variables` are left in strings and ranges,
 * where they are dropped with them. Enough for the expressions of our dashboard and rules;
 * `promtool` checks their syntax.
 */
export function metricNamesOf(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, ' ')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/\boffset\s+\S+/g, ' ');
  const names = new Set<string>();
  for (const m of stripped.matchAll(/(?<![\w:.$])([a-zA-Z_:][a-zA-Z0-9_:]*)(?=(\s*\()?)/g)) {
    const [, name, call] = m;
    if (call !== undefined || KEYWORDS.has(name!.toLowerCase())) continue;
    names.add(name!);
  }
  return [...names];
}

/** The metric of a Grafana `label_values(metric, label)` variable query (undefined for `label_values(label)`). */
export function labelValuesMetric(query: string): string | undefined {
  const m = /^\s*label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{[^}]*\})?\s*,/.exec(query);
  return m?.[1];
}

/** A family's sample names: a histogram's series are `<name>_bucket`, `_sum`, `_count`. */
export const familyOf = (sample: string, families: ReadonlySet<string> | ReadonlyMap<string, unknown>): string | undefined => {
  if (families.has(sample)) return sample;
  const base = sample.replace(/_(bucket|sum|count)$/, '');
  return families.has(base) ? base : undefined;
};
