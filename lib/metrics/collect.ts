import { Counter, Gauge, type Registry } from 'prom-client';

/** One series of a metric read at scrape time: its labels and its value. */
export interface Sample<L extends string = string> {
  labels?: Partial<Record<L, string | number>>;
  value: number;
}

/** Where the samples of a metric come from, read at every scrape. */
export type SampleSource<L extends string> = () => Iterable<Sample<L>> | Promise<Iterable<Sample<L>>>;

/** Options of a metric whose values are read from a service's stats at scrape time. */
export interface SampledMetricOptions<L extends string> {
  /** Prometheus name: `switchyard_<service>_<name>`, counters ending in `_total`, base units (`_seconds`, `_bytes`). */
  name: string;
  help: string;
  /** @default none */
  labelNames?: readonly L[];
  /** The registries the metric is exposed on. */
  registers: Registry[];
  /** The current values, read at each scrape; a series missing from one scrape is gone from it. */
  samples: SampleSource<L>;
}

/**
 * A counter whose values are the totals a service already keeps (its `stats()`), read when
 * Prometheus scrapes: the service's hot path stays untouched. The totals must only grow while
 * the series exists; a service that restarts its totals (a new worker incarnation under the
 * same id) looks like a counter reset, which `rate()` handles.
 */
export function sampledCounter<L extends string>({ name, help, labelNames = [], registers, samples }: SampledMetricOptions<L>): Counter<L> {
  return new Counter<L>({
    name,
    help,
    labelNames,
    registers,
    async collect() {
      const current = await samples();
      // Reset and refill in one synchronous step, after the await: concurrent scrapes cannot interleave.
      this.reset();
      for (const s of current) if (Number.isFinite(s.value) && s.value >= 0) this.inc(labelsOf(s), s.value);
    },
  });
}

/** A gauge whose values are read from a service's stats or state at scrape time. */
export function sampledGauge<L extends string>({ name, help, labelNames = [], registers, samples }: SampledMetricOptions<L>): Gauge<L> {
  return new Gauge<L>({
    name,
    help,
    labelNames,
    registers,
    async collect() {
      const current = await samples();
      this.reset();
      for (const s of current) if (Number.isFinite(s.value)) this.set(labelsOf(s), s.value);
    },
  });
}

const labelsOf = <L extends string>(s: Sample<L>): Partial<Record<L, string | number>> => s.labels ?? {};

/** Service instances a metrics module reads: one, a list, or a function returning the current ones. */
export type Instances<T> = T | readonly T[] | (() => readonly T[]);

/** The current instances of an `Instances` value. */
export function instancesOf<T>(instances: Instances<T>): () => readonly T[] {
  if (typeof instances === 'function') return instances as () => readonly T[];
  const list: readonly T[] = Array.isArray(instances) ? (instances as readonly T[]) : [instances as T];
  return () => list;
}

/** Resolves with `promise`'s value, or with `fallback` when it takes longer than `ms` or fails: a scrape never hangs on a slow dependency. */
export async function within<T>(promise: Promise<T>, ms: number, fallback: T): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<T>((resolve) => (timer = setTimeout(() => resolve(fallback), ms)))]);
  } catch {
    return fallback;
  } finally {
    clearTimeout(timer);
  }
}
