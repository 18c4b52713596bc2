/**
 * Writing one flush of the sink's buffer into ClickHouse: an insert per table, retried with
 * backoff while ClickHouse is unavailable, and — when ClickHouse refuses the data itself —
 * split in halves until the refused rows are alone, so they can be dead-lettered and every
 * other row still goes in.
 */
import { isRejectedData } from '../../lib/analytics/errors.js';
import type { AnalyticsStore } from '../../lib/analytics/port.js';
import { isRetriable } from '../../lib/errors.js';
import type { LogRecord } from '../../lib/log/port.js';
import type { SwitchyardEvent } from '../../schemas/generated/events.js';
import type { Row, SinkTable } from './rows.js';

/** One event on its way into ClickHouse. */
export interface SinkEntry {
  table: SinkTable;
  row: Row;
  event: SwitchyardEvent;
  record: LogRecord;
}

export interface Rejected {
  entry: SinkEntry;
  error: unknown;
}

export interface WriterOptions {
  store: AnalyticsStore;
  /** Keep retrying an unavailable ClickHouse this long per flush, then fail the flush. */
  retryBudgetMs: number;
  /** First retry delay; doubles per attempt up to `retryBackoffMaxMs`. */
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
  onInserted?: (table: SinkTable, rows: number, seconds: number) => void;
  onRetry?: (table: SinkTable, error: unknown, attempt: number, delayMs: number) => void;
}

/** A function writing one flush; resolves once every row is in ClickHouse or dead-lettered. */
export function createWriter(opts: WriterOptions): (entries: SinkEntry[]) => Promise<void> {
  const now = opts.now ?? Date.now;
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));

  const insert = async (table: SinkTable, entries: SinkEntry[], deadline: number): Promise<Rejected[]> => {
    for (let attempt = 1; ; attempt++) {
      const started = now();
      try {
        await opts.store.insert(table, entries.map((e) => e.row));
        opts.onInserted?.(table, entries.length, (now() - started) / 1000);
        return [];
      } catch (err) {
        if (isRetriable(err)) {
          const delay = Math.min(opts.retryBackoffMs * 2 ** (attempt - 1), opts.retryBackoffMaxMs);
          if (opts.closing() || now() + delay > deadline) throw err;
          opts.onRetry?.(table, err, attempt, delay);
          await sleep(delay);
          continue;
        }
        if (!isRejectedData(err)) throw err;
        if (entries.length === 1) return [{ entry: entries[0]!, error: err }];
        const mid = entries.length >>> 1;
        return [...(await insert(table, entries.slice(0, mid), deadline)), ...(await insert(table, entries.slice(mid), deadline))];
      }
    }
  };

  return async (entries) => {
    const deadline = now() + opts.retryBudgetMs;
    const byTable = new Map<SinkTable, SinkEntry[]>();
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
