import { describe, expect, it } from 'vitest';
import { analyticsError, unavailableError } from '../../lib/analytics/errors.js';
import type { AnalyticsStore, Row } from '../../lib/analytics/port.js';
import type { SwitchyardError } from '../../lib/errors.js';
import { SAMPLE_EVENTS } from '../../schemas/samples.js';
import { createWriter, type Rejected, type SinkEntry, type SinkTableName } from './writer.js';

const record = (offset: number) => ({ topic: 't', partition: 0, offset, key: null, value: Buffer.from([offset]), headers: {}, timestamp: 0 });
const entry = (table: SinkTableName, id: number): SinkEntry => ({ table, row: { id }, event: SAMPLE_EVENTS.WorkerHeartbeat, record: record(id) });

/** A store whose insert is scripted per call. */
function fakeStore(behave: (table: string, rows: readonly Row[]) => void | Promise<void>) {
  const inserted: { table: string; ids: unknown[] }[] = [];
  const store = {
    kind: 'server',
    insert: async (table: string, rows: readonly Row[]) => {
      await behave(table, rows);
      inserted.push({ table, ids: rows.map((r) => r.id) });
    },
  } as unknown as AnalyticsStore;
  return { store, inserted };
}

const refused = () =>
  analyticsError('insert into t: Cannot parse input', { clickhouseCode: 27, clickhouseMessage: 'Cannot parse input: expected " (while read the value of key event_id): (at row 1)' });

function writer(store: AnalyticsStore, overrides: Partial<Parameters<typeof createWriter>[0]> = {}) {
  let t = 0;
  const sleeps: number[] = [];
  const dead: Rejected[] = [];
  const write = createWriter({
    store,
    retryBudgetMs: 1_000,
    retryBackoffMs: 100,
    retryBackoffMaxMs: 400,
    // Full jitter at its top: the delays are the schedule's ceilings, less a hair.
    random: () => 0.99999,
    parallel: false,
    closing: () => false,
    now: () => t,
    sleep: async (ms) => {
      sleeps.push(ms);
      t += ms;
    },
    deadLetter: async (r) => void dead.push(...r),
    ...overrides,
  });
  return { write, sleeps, dead };
}

describe('sink writer', () => {
  it('groups a flush by table: one insert per table', async () => {
    const { store, inserted } = fakeStore(() => {});
    const { write } = writer(store);
    await write([entry('results', 1), entry('requests', 2), entry('results', 3)]);
    expect(inserted).toEqual([
      { table: 'results', ids: [1, 3] },
      { table: 'requests', ids: [2] },
    ]);
  });

  it('retries an unavailable ClickHouse on the backoff schedule (doubling ceilings, full jitter), then writes', async () => {
    let calls = 0;
    const { store, inserted } = fakeStore(() => {
      if (++calls <= 3) throw unavailableError('ClickHouse is unreachable (ECONNREFUSED)');
    });
    const { write, sleeps } = writer(store);
    await write([entry('results', 1)]);
    expect(sleeps).toEqual([99, 199, 399]);
    expect(inserted).toEqual([{ table: 'results', ids: [1] }]);
  });

  it('gives up after the retry budget with the retriable error (the log redelivers), and at once when closing', async () => {
    const { store } = fakeStore(() => {
      throw unavailableError('down');
    });
    const { write, sleeps } = writer(store);
    const err = await write([entry('results', 1)]).catch((e: unknown) => e as SwitchyardError);
    expect(err).toMatchObject({ code: 'SY_ERR_ANALYTICS_UNAVAILABLE', retriable: true });
    expect(sleeps.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(1_000);
    const closing = writer(store, { closing: () => true });
    await expect(closing.write([entry('results', 1)])).rejects.toMatchObject({ retriable: true });
    expect(closing.sleeps).toEqual([]);
  });

  it('refused data: splits the batch until the bad rows are alone, dead-letters them, writes the rest', async () => {
    const bad = new Set([3, 6]);
    const { store, inserted } = fakeStore((_t, rows) => {
      if (rows.some((r) => bad.has(r.id as number))) throw refused();
    });
    const { write, dead } = writer(store);
    await write([1, 2, 3, 4, 5, 6, 7, 8].map((i) => entry('results', i)));
    expect(inserted.flatMap((i) => i.ids).sort()).toEqual([1, 2, 4, 5, 7, 8]);
    expect(dead.map((d) => d.entry.record.offset)).toEqual([3, 6]);
    expect(dead[0]!.error).toMatchObject({ code: 'SY_ERR_ANALYTICS' });
  });

  it('an error that is not about the data (unknown table) fails the flush and dead-letters nothing', async () => {
    const { store } = fakeStore(() => {
      throw analyticsError('insert into results: Table x.results does not exist', { clickhouseCode: 60, clickhouseMessage: "Table x.results doesn't exist" });
    });
    const { write, dead } = writer(store);
    await expect(write([entry('results', 1), entry('results', 2)])).rejects.toMatchObject({ code: 'SY_ERR_ANALYTICS' });
    expect(dead).toEqual([]);
  });

  it('dead-letters refused rows of one table even when another table failed, then fails the flush', async () => {
    const { store, inserted } = fakeStore((table, rows) => {
      if (table === 'requests') throw unavailableError('down');
      if (rows.some((r) => r.id === 2)) throw refused();
    });
    const { write, dead } = writer(store, { parallel: true });
    await expect(write([entry('results', 1), entry('results', 2), entry('requests', 3)])).rejects.toMatchObject({ retriable: true });
    expect(dead.map((d) => d.entry.record.offset)).toEqual([2]);
    expect(inserted).toEqual([{ table: 'results', ids: [1] }]);
  });

  it('archive rows go to log_records beside the event tables; a refused one is dead-lettered with its record', async () => {
    const { store, inserted } = fakeStore((table, rows) => {
      if (table === 'log_records' && rows.some((r) => r.id === 2)) throw refused();
    });
    const { write, dead } = writer(store);
    await write([entry('results', 1), entry('log_records', 1), entry('log_records', 2), entry('results', 2)]);
    expect(inserted).toEqual([
      { table: 'results', ids: [1, 2] },
      { table: 'log_records', ids: [1] },
    ]);
    expect(dead.map((d) => [d.entry.table, d.entry.record.offset])).toEqual([['log_records', 2]]);
  });

  it('a refused row of no one record (a schema row) fails the write instead of being dead-lettered', async () => {
    const { store } = fakeStore(() => {
      throw refused();
    });
    const { write, dead } = writer(store);
    await expect(write([{ table: 'log_schemas', row: { id: 1 } }])).rejects.toMatchObject({ code: 'SY_ERR_ANALYTICS' });
    expect(dead).toEqual([]);
  });
});
