import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { ARCHIVE_TABLES } from '../../lib/analytics/archive.js';
import { adoptMetrics } from '../../lib/metrics/registry.js';

const ARCHIVE_TABLE_NAMES: ReadonlySet<string> = new Set(Object.values(ARCHIVE_TABLES));

/** Why an event went to the dead-letter topic instead of its table. */
export type DeadLetterReason = 'undecodable' | 'unmappable' | 'rejected';

/**
 * The sink's Prometheus metrics, on a registry of their own (`registry`): expose it from
 * whatever HTTP server the process has, or merge it into another with
 * `Registry.merge([...])`.
 *
 * - `switchyard_sink_events_total{table}`: rows written (acknowledged by ClickHouse) per
 *   table: events into their tables, records into the log archive (`log_records`), and the
 *   archive's `log_schemas` and `log_topics` rows
 * - `switchyard_sink_events_per_second`: events into their tables over the last 10 s
 * - `switchyard_sink_batches_total`: flushes acknowledged; `…_batch_rows`: their sizes
 * - `switchyard_sink_insert_seconds{table}`: insert latency
 * - `switchyard_sink_insert_retries_total{table}`: retries while ClickHouse was unavailable
 * - `switchyard_sink_flush_failures_total`: flushes handed back to the log for redelivery
 * - `switchyard_sink_dead_lettered_total{reason}`: undecodable, unmappable, rejected by ClickHouse
 * - `switchyard_sink_duplicates_skipped_total`: events already written by this process
 * - `switchyard_sink_lag{topic,partition}`: records behind the end of the partition, as of
 *   the last batch the sink finished; `switchyard_sink_lag_total`: their sum
 * - `switchyard_sink_buffered_rows`: rows waiting for the next flush
 */
export class SinkMetrics {
  readonly registry: Registry;
  readonly events: Counter<'table'>;
  readonly batches: Counter;
  readonly batchRows: Histogram;
  readonly insertSeconds: Histogram<'table'>;
  readonly insertRetries: Counter<'table'>;
  readonly flushFailures: Counter;
  readonly deadLettered: Counter<'reason'>;
  readonly duplicates: Counter;
  readonly lag: Gauge<'topic' | 'partition'>;

  private readonly lagByPartition = new Map<string, number>();
  private readonly recent: { at: number; n: number }[] = [];
  private totals = { events: 0, archived: 0, batches: 0, deadLettered: 0, duplicates: 0, flushFailures: 0 };

  constructor(
    private readonly now: () => number = Date.now,
    registry: Registry = new Registry(),
  ) {
    this.registry = registry;
    const registers = [registry];
    this.events = new Counter({ name: 'switchyard_sink_events_total', help: 'Rows written to ClickHouse (acknowledged), by table (log_records: records archived)', labelNames: ['table'], registers });
    this.batches = new Counter({ name: 'switchyard_sink_batches_total', help: 'Flushes acknowledged by ClickHouse', registers });
    this.batchRows = new Histogram({
      name: 'switchyard_sink_batch_rows',
      help: 'Rows per flush',
      buckets: [1, 10, 100, 500, 1_000, 5_000, 10_000, 50_000],
      registers,
    });
    this.insertSeconds = new Histogram({ name: 'switchyard_sink_insert_seconds', help: 'ClickHouse insert latency', labelNames: ['table'], registers });
    this.insertRetries = new Counter({ name: 'switchyard_sink_insert_retries_total', help: 'Insert retries while ClickHouse was unavailable', labelNames: ['table'], registers });
    this.flushFailures = new Counter({ name: 'switchyard_sink_flush_failures_total', help: 'Flushes that failed and were left to the log to redeliver', registers });
    this.deadLettered = new Counter({ name: 'switchyard_sink_dead_lettered_total', help: 'Records sent to the dead-letter topic', labelNames: ['reason'], registers });
    // Every reason from the start at 0, so a rate or an alert over them has a series before the first dead letter.
    for (const reason of ['undecodable', 'unmappable', 'rejected'] as const satisfies readonly DeadLetterReason[]) this.deadLettered.inc({ reason }, 0);
    this.duplicates = new Counter({ name: 'switchyard_sink_duplicates_skipped_total', help: 'Events skipped as already written by this process', registers });
    this.lag = new Gauge({ name: 'switchyard_sink_lag', help: 'Records behind the partition end after the last finished batch', labelNames: ['topic', 'partition'], registers });
    const totalLag = () => this.totalLag();
    const eventsPerSecond = () => this.eventsPerSecond();
    new Gauge({
      name: 'switchyard_sink_lag_total',
      help: 'Sum of switchyard_sink_lag',
      registers,
      collect() {
        this.set(totalLag());
      },
    });
    new Gauge({
      name: 'switchyard_sink_events_per_second',
      help: 'Events written per second over the last 10 s',
      registers,
      collect() {
        this.set(eventsPerSecond());
      },
    });
  }

  bufferedRows(read: () => number): void {
    new Gauge({
      name: 'switchyard_sink_buffered_rows',
      help: 'Rows waiting for the next flush',
      registers: [this.registry],
      collect() {
        this.set(read());
      },
    });
  }

  written(table: string, rows: number, seconds: number): void {
    this.events.inc({ table }, rows);
    this.insertSeconds.observe({ table }, seconds);
    if (table === ARCHIVE_TABLES.records) this.totals.archived += rows;
    if (ARCHIVE_TABLE_NAMES.has(table)) return;
    this.totals.events += rows;
    const at = this.now();
    this.recent.push({ at, n: rows });
    while (this.recent.length > 0 && this.recent[0]!.at < at - 60_000) this.recent.shift();
  }

  flushed(rows: number): void {
    this.batches.inc();
    this.batchRows.observe(rows);
    this.totals.batches++;
  }

  flushFailed(): void {
    this.flushFailures.inc();
    this.totals.flushFailures++;
  }

  deadLetter(reason: DeadLetterReason, n = 1): void {
    this.deadLettered.inc({ reason }, n);
    this.totals.deadLettered += n;
  }

  duplicate(n: number): void {
    if (n === 0) return;
    this.duplicates.inc(n);
    this.totals.duplicates += n;
  }

  setLag(topic: string, partition: number, behind: number): void {
    this.lag.set({ topic, partition: String(partition) }, behind);
    this.lagByPartition.set(`${topic}\u0000${partition}`, behind);
  }

  totalLag(): number {
    let sum = 0;
    for (const v of this.lagByPartition.values()) sum += v;
    return sum;
  }

  eventsPerSecond(windowMs = 10_000): number {
    const since = this.now() - windowMs;
    while (this.recent.length > 0 && this.recent[0]!.at < since) this.recent.shift();
    return this.recent.reduce((a, r) => a + r.n, 0) / (windowMs / 1000);
  }

  /** Plain numbers for logs, tests and benchmarks. */
  snapshot(): SinkStats {
    return { ...this.totals, lag: this.totalLag(), eventsPerSecond: this.eventsPerSecond() };
  }
}

export interface SinkStats {
  /** Events written to their tables. */
  events: number;
  /** Records written to the log archive (`log_records`), duplicates by event id included. */
  archived: number;
  /** Flushes acknowledged. */
  batches: number;
  /** Records dead-lettered by the sink (any reason). */
  deadLettered: number;
  /** Events skipped as already written. */
  duplicates: number;
  /** Flushes handed back to the log. */
  flushFailures: number;
  /** Records behind the partition ends, summed. */
  lag: number;
  /** Over the last 10 s. */
  eventsPerSecond: number;
}

/**
 * Exposes a running sink's metrics (its registry of its own, `SinkMetrics.registry`) on the
 * process's registry too, for `switchyard sink --metrics-port` and `switchyard up`.
 */
export function registerSinkMetrics(registry: Registry, sink: { readonly metrics: SinkMetrics }): void {
  adoptMetrics(registry, sink.metrics.registry);
}
