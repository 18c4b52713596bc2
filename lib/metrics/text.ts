/** One sample of a scrape: `name{labels} value`. */
export interface ScrapedSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** A scrape in the Prometheus text format, parsed. */
export interface Scrape {
  /** Metric families by name, with their `# TYPE` (counter, gauge, histogram, summary, untyped). */
  types: Map<string, string>;
  samples: ScrapedSample[];
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+-?\d+)?$/;
const LABEL = /\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?/y;

/**
 * Parses the Prometheus text exposition format (version 0.0.4), as `/metrics` serves it.
 * Throws on a line that is neither a comment nor a sample, so a test reading a scrape also
 * checks that it is well-formed.
 */
export function parseScrape(text: string): Scrape {
  const types = new Map<string, string>();
  const samples: ScrapedSample[] = [];
  for (const [i, raw] of text.split('\n').entries()) {
    const line = raw.trim();
    if (line === '') continue;
    if (line.startsWith('#')) {
      const m = /^#\s+TYPE\s+(\S+)\s+(\S+)/.exec(line);
      if (m) types.set(m[1]!, m[2]!);
      continue;
    }
    const m = SAMPLE.exec(line);
    if (!m) throw new Error(`line ${i + 1} of the scrape is not a sample: ${line}`);
    samples.push({ name: m[1]!, labels: parseLabels(m[2] ?? '', i + 1), value: parseValue(m[3]!, i + 1) });
  }
  return { types, samples };
}

function parseLabels(text: string, line: number): Record<string, string> {
  const labels: Record<string, string> = {};
  LABEL.lastIndex = 0;
  while (LABEL.lastIndex < text.length) {
    const at = LABEL.lastIndex;
    const m = LABEL.exec(text);
    if (!m) throw new Error(`line ${line}: bad labels at "${text.slice(at)}"`);
    labels[m[1]!] = m[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
  }
  return labels;
}

function parseValue(text: string, line: number): number {
  // Case-insensitive, as Prometheus parses them (prom-client writes NaN as `Nan`).
  const special = text.toLowerCase();
  if (special === '+inf' || special === 'inf') return Infinity;
  if (special === '-inf') return -Infinity;
  if (special === 'nan') return NaN;
  const v = Number(text);
  if (Number.isNaN(v)) throw new Error(`line ${line}: bad value ${text}`);
  return v;
}

/** The samples of `name` whose labels include `labels`. */
export function samplesOf(scrape: Scrape, name: string, labels: Record<string, string> = {}): ScrapedSample[] {
  return scrape.samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
}

/** The sum of the samples of `name` whose labels include `labels` (0 when there are none). */
export function sumOf(scrape: Scrape, name: string, labels: Record<string, string> = {}): number {
  return samplesOf(scrape, name, labels).reduce((a, s) => a + s.value, 0);
}
