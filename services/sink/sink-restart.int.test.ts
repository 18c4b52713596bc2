/**
 * THE sink durability test, on real Kafka and the real ClickHouse server: the sink runs as a
 * child process, is SIGKILLed mid-stream (after some but not all of its batches were
 * committed), restarted, and every event is then present exactly once in query results,
 * with the bad records in `deadletters` carrying their original bytes, and the log archive
 * holds exactly one row per position of the log, byte for byte.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packQuery, resolveParams, runPackQuery } from '../../lib/analytics/pack.js';
import type { AnalyticsStore, Row } from '../../lib/analytics/port.js';
import { createServerAnalyticsStore } from '../../lib/analytics/server.js';
import { openKafkaLog } from '../../lib/log/kafka/index.js';
import type { AppendRecord, EventLog } from '../../lib/log/port.js';
import { topicLayout } from '../../lib/log/topics.js';
import { LogBackedRegistry } from '../../lib/registry/log-backed.js';
import { EventCodec } from '../../schemas/codec.js';
import type { SwitchyardEventInit } from '../../schemas/generated/events.js';
import { archivedRecords, readTopics, recordText } from '../../test/contract/sink.contract.js';
import { recordFor } from '../../test/support/event-topics.js';
import { eventStream } from '../../test/support/event-stream.js';
import { clickhouseUrl, kafkaBrokers, requireClickHouse, requireKafka, uniqueDatabase, uniqueName, waitFor } from '../../test/support/services.js';
import { schemaIdOf } from '../../schemas/wire.js';

const ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '../..');
const url = clickhouseUrl();
const database = uniqueDatabase('switchyard_restart');
const prefix = `${uniqueName('sy-restart')}.`;
// The registry's topic, as lib/bootstrap.ts names it for the prefix.
const schemasTopic = `${prefix}_schemas`;
const LANES = 8;
const home = mkdtempSync(join(tmpdir(), 'sy-sink-restart-'));

interface Child {
  proc: ChildProcess;
  output: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** `node --import tsx services/sink/main.ts`, configured through the environment only. */
function startSinkProcess(): Child {
  const proc = spawn(process.execPath, ['--import', 'tsx', 'services/sink/main.ts'], {
    cwd: ROOT,
    env: {
      ...process.env,
      SWITCHYARD_BROKERS: kafkaBrokers().join(','),
      SWITCHYARD_TOPIC_PREFIX: prefix,
      SWITCHYARD_LANES: String(LANES),
      SWITCHYARD_CLICKHOUSE_URL: url,
      SWITCHYARD_CLICKHOUSE_DATABASE: database,
      SWITCHYARD_SINK_BATCH_ROWS: '500',
      SWITCHYARD_SINK_BATCH_DELAY_MS: '50',
      SWITCHYARD_HOME: home,
      SWITCHYARD_LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  const keep = (b: Buffer) => {
    output.push(b.toString());
    if (output.length > 200) output.shift();
  };
  proc.stdout!.on('data', keep);
  proc.stderr!.on('data', keep);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => proc.once('exit', (code, signal) => r({ code, signal })));
  return { proc, output, exited };
}

describe('sink killed mid-stream and restarted [child process, kafka → clickhouse server]', () => {
  let log: EventLog;
  let codec: EventCodec;
  let store: AnalyticsStore;
  const children: Child[] = [];

  beforeAll(async () => {
    await requireKafka();
    await requireClickHouse(url);
    log = await openKafkaLog({ brokers: kafkaBrokers() });
    codec = await EventCodec.create({ registry: await LogBackedRegistry.open({ log, topic: schemasTopic }) });
    store = await createServerAnalyticsStore({ url, database });
  });
  afterAll(async () => {
    for (const c of children) if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGKILL');
    await store?.exec(`DROP DATABASE IF EXISTS ${database}`);
    await store?.close();
    await log?.close();
    rmSync(home, { recursive: true, force: true });
  });

  it('loses nothing and counts nothing twice', async () => {
    const layout = topicLayout({ prefix, lanes: LANES });
    const topics = Object.values(layout).map((t) => t.name);
    await log.ensureTopics(Object.values(layout));
    const rec = (e: SwitchyardEventInit): AppendRecord => recordFor(layout, e, codec.encode(e));
    const count = async (sql: string): Promise<number> => {
      try {
        return (await store.query<{ n: number }>(sql))[0]!.n;
      } catch {
        return -1; // the sink has not created the tables yet
      }
    };
    const diagnostics = (c: Child) => `sink output:\n${c.output.join('').slice(-4000)}`;

    const first = eventStream({ requests: 5_000, start: Date.now() - 3_600_000, seed: 21 });
    const second = eventStream({ requests: 1_000, start: Date.now() - 1_800_000, seed: 22 });
    const garbage = Buffer.from('{"not":"avro"}');
    const unknownSchema = Buffer.from([0, 0x7f, 0x7f, 0x7f, 0x7f, 2, 4, 6]);
    const truncated = rec(first.events[1]!).value!.subarray(0, 12);
    const refusedEvent: SwitchyardEventInit = { type: 'InferenceRequested', eventId: 'legacy-42', occurredAt: Date.now() - 3_000_000, requestId: 'legacy-42', producer: 'legacy-client', model: 'sentiment', input: Buffer.from('{}') };
    const refused = rec(refusedEvent).value!;
    const lateGarbage = Buffer.from('late garbage');

    // Phase 1: the first stream, 300 of its events sent twice, and four bad records among them.
    const firstRecords = first.events.map(rec);
    await log.append([
      ...firstRecords.slice(0, 8_000),
      // On a topic whose dead letters the sink owns (a bad `requests` record is the router's).
      { topic: layout.results.name, partition: 0, key: 'bad-garbage', value: garbage },
      { topic: layout.results.name, partition: 1, value: truncated },
      { topic: layout.control.name, partition: 0, value: unknownSchema },
      { topic: layout.requests.name, partition: 5, key: 'legacy-42', value: refused },
      ...firstRecords.slice(8_000),
      ...firstRecords.slice(1_000, 1_300),
    ]);
    const totalFirst = first.events.length;

    const one = startSinkProcess();
    children.push(one);
    const rows = () => count('SELECT (SELECT count() FROM requests) + (SELECT count() FROM decisions) + (SELECT count() FROM results) + (SELECT count() FROM heartbeats) AS n');
    await waitFor(async () => (await rows()) >= 2_000 || one.proc.exitCode !== null, { timeoutMs: 90_000, intervalMs: 20, what: 'the sink to write its first batches' });
    expect(one.proc.exitCode, diagnostics(one)).toBeNull();
    one.proc.kill('SIGKILL');
    expect(await one.exited).toEqual({ code: null, signal: 'SIGKILL' });

    // Killed mid-stream: some batches were written and committed, not all.
    const writtenAtKill = await rows();
    const committedAtKill = (await Promise.all(topics.map(async (t) => (await log.committedOffsets(`${prefix}sink`, t)).reduce((a, b) => a + Math.max(0, b), 0)))).reduce((a, b) => a + b, 0);
    expect(writtenAtKill).toBeGreaterThanOrEqual(2_000);
    expect(writtenAtKill).toBeLessThan(totalFirst);
    expect(committedAtKill).toBeGreaterThan(0);
    expect(committedAtKill).toBeLessThan(totalFirst);

    // Phase 2, while no sink runs: the second stream, some events of both again, one more bad record.
    const secondRecords = second.events.map(rec);
    await log.append([...secondRecords, ...secondRecords.slice(0, 100), ...firstRecords.slice(4_000, 4_100), { topic: layout.heartbeats.name, partition: 2, value: lateGarbage }]);

    const two = startSinkProcess();
    children.push(two);
    const caughtUp = async () => {
      for (const t of topics) {
        const [ends, committed] = await Promise.all([log.endOffsets(t), log.committedOffsets(`${prefix}sink`, t)]);
        if (ends.some((end, p) => end > 0 && committed[p] !== end)) return false;
      }
      return true;
    };
    await waitFor(async () => two.proc.exitCode !== null || ((await count('SELECT count() AS n FROM deadletters FINAL')) === 5 && (await caughtUp())), {
      timeoutMs: 110_000,
      intervalMs: 250,
      what: 'the restarted sink to write everything and commit',
    });
    expect(two.proc.exitCode, diagnostics(two)).toBeNull();
    two.proc.kill('SIGTERM');
    expect(await two.exited, diagnostics(two)).toEqual({ code: 0, signal: null });

    // Every event exactly once.
    const expected: Record<string, number> = { requests: 6_000, decisions: 6_000, results: 12_000, heartbeats: (first.counts.WorkerHeartbeat ?? 0) + (second.counts.WorkerHeartbeat ?? 0) };
    for (const [table, n] of Object.entries(expected)) {
      expect({ table, final: await count(`SELECT count() AS n FROM ${table} FINAL`), distinct: await count(`SELECT uniqExact(event_id) AS n FROM ${table}`) }).toEqual({ table, final: n, distinct: n });
    }
    const ids = await store.query<{ id: string }>('SELECT toString(event_id) AS id FROM requests FINAL ORDER BY id');
    const want = [...first.events, ...second.events].filter((e) => e.type === 'InferenceRequested').map((e) => e.eventId).sort();
    expect(ids.map((r) => r.id)).toEqual(want);

    // …and in the query pack's answers.
    const window = { since: new Date(Date.now() - 2 * 3_600_000).toISOString(), until: new Date(Date.now() + 60_000).toISOString(), bucket_minutes: '1440' };
    const q = packQuery('throughput-and-errors');
    const tput = await runPackQuery<Row>(store, q, resolveParams(q, window, Date.now()));
    const sum = (k: string) => tput.reduce((a, r) => a + (r[k] as number), 0);
    expect({ requests: sum('requests'), completed: sum('completed'), failed: sum('failed'), rejected: sum('rejected') }).toEqual({ requests: 6_000, completed: 5_700, failed: 300, rejected: 0 });
    const lv = packQuery('latency-by-version');
    const byVersion = await runPackQuery<Row>(store, lv, resolveParams(lv, window, Date.now()));
    const completedOf = (v: string) => byVersion.filter((r) => r.model_version === v).reduce((a, r) => a + (r.completed as number), 0);
    // Every 10th request is v2; every 20th fails (none of them v2: 20k+19 is never a multiple of 10).
    expect({ v1: completedOf('v1'), v2: completedOf('v2') }).toEqual({ v1: 5_100, v2: 600 });

    const raw = await rows();
    const distinct = Object.values(expected).reduce((a, b) => a + b, 0);
    process.stderr.write(
      `[sink restart] SIGKILL after ${writtenAtKill} rows written and ${committedAtKill} records committed (of ${totalFirst}); ` +
        `afterwards ${raw} rows stored for ${distinct} distinct events (${raw - distinct} copies collapsed by dedup)\n`,
    );

    // The log archive: after the kill, the redelivery and dedup, one row per position, each
    // exactly the record the log holds (duplicates and bad records included).
    const fromLog = await readTopics(log, topics);
    const [positions] = await store.query<{ raw: number; positions: number }>('SELECT count() AS raw, uniqExact(log_topic, log_partition, log_offset) AS positions FROM log_records');
    const schemaIds = await store.query<{ schema_id: number }>('SELECT DISTINCT schema_id FROM log_schemas ORDER BY schema_id');
    const partitions = await store.query<{ log_topic: string; partitions: number }>('SELECT DISTINCT log_topic, partitions FROM log_topics ORDER BY log_topic');
    const archived = await archivedRecords(store);
    expect({ final: archived.length, positions: positions!.positions }).toEqual({ final: fromLog.length, positions: fromLog.length });
    expect(archived.map(recordText)).toEqual(fromLog.map(recordText));
    const decodable = new Set<number>();
    for (const r of fromLog) if (await codec.decode(r.value!).then(() => true, () => false)) decodable.add(schemaIdOf(r.value));
    expect(schemaIds.map((r) => r.schema_id)).toEqual([...decodable].sort((a, b) => a - b));
    expect(partitions).toEqual([...topics].sort().map((t) => ({ log_topic: t, partitions: Object.values(layout).find((l) => l.name === t)!.partitions })));
    process.stderr.write(`[sink restart] log archive: ${positions!.raw} rows stored for ${fromLog.length} positions (${positions!.raw - fromLog.length} copies collapsed)\n`);

    // The bad records, with their original bytes.
    const dead = await store.query<Row>(`SELECT original_topic, error_code, original_value_base64 FROM deadletters FINAL WHERE consumer_group = '${prefix}sink' ORDER BY original_topic, error_code`);
    const bytes = (v: unknown) => Buffer.from(String(v), 'base64');
    expect(dead.map((d) => [d.original_topic, d.error_code, bytes(d.original_value_base64)])).toEqual(
      [
        [layout.control.name, 'SY_ERR_CODEC_UNKNOWN_SCHEMA', unknownSchema],
        [layout.heartbeats.name, 'SY_ERR_CODEC_MAGIC', lateGarbage],
        [layout.requests.name, 'SY_ERR_ANALYTICS', refused],
        [layout.results.name, 'SY_ERR_CODEC_MAGIC', garbage],
        [layout.results.name, 'SY_ERR_CODEC_DECODE', truncated],
      ].sort((a, b) => String(a[0]).localeCompare(String(b[0])) || String(a[1]).localeCompare(String(b[1]))),
    );
  });
});
