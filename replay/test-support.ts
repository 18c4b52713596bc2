import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openEmbeddedLog } from '../lib/log/embedded/index.js';
import type { EventLog, LogRecord } from '../lib/log/port.js';
import { topicLayout } from '../lib/log/topics.js';
import { LogBackedRegistry } from '../lib/registry/log-backed.js';
import { EventCodec } from '../schemas/codec.js';
import type { SwitchyardEvent } from '../schemas/generated/events.js';
import type { AnalyticsStore } from '../lib/analytics/port.js';
import { startSink } from '../services/sink/service.js';
import { logSourceFrom, type LogSource } from './source.js';

/**
 * Helpers for replay's tests over recorded logs (not a test file itself): copy a committed
 * recording to a temporary home, open it as a LogSource, and make a tampered copy of a log (every
 * record appended again in order, offsets and timestamps kept, with a transform on the way).
 */

export const GOLDEN = join(import.meta.dirname, 'fixtures', 'router-log');

/** A temporary home whose `log` is a copy of `logDir`; `remove` deletes it. */
export async function copyToHome(logDir: string): Promise<{ home: string; logDir: string; remove: () => Promise<void> }> {
  const home = await mkdtemp(join(tmpdir(), 'sy-replay-'));
  await cp(logDir, join(home, 'log'), { recursive: true });
  return { home, logDir: join(home, 'log'), remove: () => rm(home, { recursive: true, force: true }) };
}

/** Open an embedded log directory as a replay source (request index under `<dir>/../replay-index`). */
export async function openEmbeddedSource(logDir: string): Promise<LogSource> {
  const log = await openEmbeddedLog({ dir: logDir, fsync: 'never', maintenanceIntervalMs: 0 });
  const registry = await LogBackedRegistry.open({ log, topic: 'switchyard._schemas' });
  const codec = await EventCodec.create({ registry });
  return logSourceFrom({ log, registry, codec, indexDir: join(logDir, '..', 'replay-index'), description: `embedded log ${logDir}`, ownsLog: true });
}

/** Every topic of a Switchyard log (with the registry's), as the source log has them. */
async function topicsOf(log: EventLog, prefix = 'switchyard.'): Promise<{ name: string; partitions: number; compacted?: boolean }[]> {
  const specs = [...Object.values(topicLayout({ prefix })), { name: `${prefix}_schemas`, partitions: 1, compacted: true }];
  const out = [];
  for (const s of specs) {
    const partitions = await log.partitionCount(s.name);
    if (partitions !== undefined) out.push({ ...s, partitions });
  }
  return out;
}

export type Tamper = (event: SwitchyardEvent, record: LogRecord) => SwitchyardEvent | undefined;

/**
 * Copy `source`'s log into a new embedded log at `dstDir`, record by record (same partitions,
 * offsets, keys, timestamps), re-encoding an event when `tamper` returns a changed one.
 * Returns how many records were changed.
 */
export async function tamperedCopy(source: LogSource, dstDir: string, tamper: Tamper): Promise<number> {
  const dst = await openEmbeddedLog({ dir: dstDir, fsync: 'never', maintenanceIntervalMs: 0 });
  let changed = 0;
  try {
    const topics = await topicsOf(source.log);
    await dst.ensureTopics(topics);
    for (const t of topics) {
      const ends = await source.log.endOffsets(t.name);
      for (let p = 0; p < t.partitions; p++) {
        let from = 0;
        while (from < ends[p]!) {
          const batch = await source.log.read({ topic: t.name, partition: p, from, to: ends[p]! });
          if (batch.length === 0) break;
          const out = [];
          for (const r of batch) {
            let value = r.value;
            if (value !== null && !t.name.endsWith('_schemas')) {
              const event = await source.codec.decode(value).catch(() => undefined);
              const next = event === undefined ? undefined : tamper(event, r);
              if (next !== undefined) {
                value = source.codec.encode(next);
                changed++;
              }
            }
            out.push({ topic: t.name, partition: p, key: r.key, value, headers: r.headers, timestamp: r.timestamp });
          }
          await dst.append(out);
          from = batch[batch.length - 1]!.offset + 1;
        }
      }
    }
  } finally {
    await dst.close();
  }
  return changed;
}

/** Archive a log into ClickHouse with the real sink, returning once every record is committed. */
export async function archiveWithSink(source: LogSource, store: AnalyticsStore, { timeoutMs = 60_000, groupId = `${source.topicPrefix}sink` } = {}): Promise<void> {
  const codec = await EventCodec.create({ registry: source.registry });
  const lanes = source.topics.decisions.partitions;
  const sink = await startSink({ log: source.log, store, codec, topicPrefix: source.topicPrefix, lanes, groupId, batchDelayMs: 20 });
  const topics = Object.values(topicLayout({ prefix: source.topicPrefix, lanes })).map((t) => t.name);
  const deadline = Date.now() + timeoutMs;
  try {
    for (;;) {
      let done = true;
      for (const t of topics) {
        const [ends, committed] = await Promise.all([source.log.endOffsets(t), source.log.committedOffsets(groupId, t)]);
        if (ends.some((end, p) => end > 0 && committed[p] !== end)) done = false;
      }
      if (done) return;
      if (Date.now() > deadline) throw new Error(`the sink did not archive ${source.description} within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    await sink.close();
  }
}
