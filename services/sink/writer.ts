/**
 * Writing one flush of the sink's buffer into ClickHouse: an insert per table (the event
 * tables and the log archive's), retried with backoff while ClickHouse is unavailable, and —
 * when ClickHouse refuses the data itself — split in halves until the refused rows are alone,
 * so they can be dead-lettered and every other row still goes in. A refused row made from no
 * one record (a `log_schemas` or `log_topics` row) cannot be dead-lettered: it fails the write.
 */
import type { ArchiveTable } from '../../lib/analytics/archive.js';
import { isRejectedData } from '../../lib/analytics/errors.js';
import type { AnalyticsStore } from '../../lib/analytics/port.js';
import { backoffDelayMs, backoffSchedule } from '../../lib/backoff.js';
import { isRetriable } from '../../lib/errors.js';
import type { LogRecord } from '../../lib/log/port.js';
import type { SwitchyardEvent } from '../../schemas/generated/events.js';
import type { Row, SinkTable } from './rows.js';

/** The tables the sink writes: one per event family, and the log archive's. */
export type SinkTableName = SinkTable | ArchiveTable;

/** One row on its way into ClickHouse. */
export interface SinkEntry {
  table: SinkTableName;
  row: Row;
  /** The record the row was made from (dead-lettered with its bytes if ClickHouse refuses the row); absent for rows of no one record. */
  record?: LogRecord;
  /** The record's event; absent for a record that did not decode. */
  event?: SwitchyardEvent;
}

/** A row ClickHouse refused, with the record it came from. */
export interface Rejected {
  entry: SinkEntry & { record: LogRecord };
  error: unknown;
}

export interface WriterOptions {
  store: AnalyticsStore;
  /** Keep retrying an unavailable ClickHouse this long per flush, then fail the flush. */
  retryBudgetMs: number;
  /** Ceiling of the first retry delay; doubles per attempt up to `retryBackoffMaxMs` (full jitter below the ceiling). */
  retryBackoffMs: number;
  retryBackoffMaxMs: number;
  /** Insert into the tables of a flush concurrently rather than one after another. */
  parallel: boolean;
  /** True once the sink is stopping: a retriable failure then fails the flush at once. */
  closing: () => boolean;
  /** Dead-letters rows ClickHouse refused; resolves once they are on the dead-letter topic. */
  deadLetter: (rejected: Rejected[]) => Promise<void>;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
  /** Jitter source for the retry delays. @default Math.random */
  random?: () => number;
  onInserted?: (table: SinkTableName, rows: number, seconds: number) => void;
  onRetry?: (table: SinkTableName, error: unknown, attempt: number, delayMs: number) => void;
}

/** A function writing one flush; resolves once every row is in ClickHouse or dead-lettered. */
export function createWriter(opts: WriterOptions): (entries: SinkEntry[]) => Promise<void> {
  const now = opts.now ?? Date.now;
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const random = opts.random ?? Math.random;
  const schedule = backoffSchedule({ baseMs: opts.retryBackoffMs, factor: 2, capMs: Math.max(opts.retryBackoffMs, opts.retryBackoffMaxMs) });

  const insert = async (table: SinkTableName, entries: SinkEntry[], deadline: number): Promise<Rejected[]> => {
    for (let attempt = 1; ; attempt++) {
      const started = now();
      try {
        await opts.store.insert(table, entries.map((e) => e.row));
        opts.onInserted?.(table, entries.length, (now() - started) / 1000);
        return [];
      } catch (err) {
        if (isRetriable(err)) {
          // The project's one schedule (lib/backoff.ts): exponential, capped, full jitter; the budget is the deadline.
          const delay = backoffDelayMs(schedule, attempt, random());
          if (opts.closing() || now() + delay > deadline) throw err;
          opts.onRetry?.(table, err, attempt, delay);
          await sleep(delay);
          continue;
        }
        if (!isRejectedData(err)) throw err;
        if (entries.length === 1) {
          const entry = entries[0]!;
          if (entry.record === undefined) throw err;
          return [{ entry: { ...entry, record: entry.record }, error: err }];
        }
        const mid = entries.length >>> 1;
        return [...(await insert(table, entries.slice(0, mid), deadline)), ...(await insert(table, entries.slice(mid), deadline))];
      }
    }
  };

  return async (entries) => {
    const deadline = now() + opts.retryBudgetMs;
    const byTable = new Map<SinkTableName, SinkEntry[]>();
    for (const e of entries) {
      const list = byTable.get(e.table);
      if (list) list.push(e);
      else byTable.set(e.table, [e]);
    }
    const outcomes: PromiseSettledResult<Rejected[]>[] = [];
    if (opts.parallel) {
      outcomes.push(...(await Promise.allSettled([...byTable].map(([table, list]) => insert(table, list, deadline)))));
    } else {
      for (const [table, list] of byTable) {
        outcomes.push(...(await Promise.allSettled([insert(table, list, deadline)])));
      }
    }
    const rejected = outcomes.flatMap((o) => (o.status === 'fulfilled' ? o.value : []));
    if (rejected.length > 0) await opts.deadLetter(rejected);
    const failure = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected');
    if (failure) throw failure.reason;
  };
}
