import type { Command } from 'commander';
import { openLog } from '../../lib/log/open.js';
import { topicLayout } from '../../lib/log/topics.js';
import { renderTable } from '../../lib/table.js';
import { configFrom, type GlobalFlags } from '../flags.js';

/** `switchyard topics` and `switchyard log read`: provision and inspect the log. */
export function registerLogCommands(program: Command): void {
  program
    .command('topics')
    .description('create the Switchyard topics if missing and list them with their offsets')
    .option('--lanes <n>', 'worker lanes (partitions of decisions)', (v) => Number(v))
    .action(async (opts: { lanes?: number }, cmd: Command) => {
      const flags = cmd.optsWithGlobals<GlobalFlags>();
      const config = configFrom(flags);
      const log = await openLog(config);
      try {
        const layout = topicLayout({ prefix: config.topicPrefix, lanes: opts.lanes ?? config.lanes });
        await log.ensureTopics(Object.values(layout));
        const rows = [];
        for (const spec of Object.values(layout)) {
          const ends = await log.endOffsets(spec.name);
          rows.push({ topic: spec.name, partitions: spec.partitions, compacted: Boolean(spec.compacted), records: ends.reduce((a, b) => a + b, 0) });
        }
        if (flags.json) console.log(JSON.stringify({ log: log.kind, topics: rows }, null, 2));
        else console.log(renderTable(['topic', 'partitions', 'compacted', 'end offsets (sum)'], rows.map((r) => [r.topic, r.partitions, r.compacted, r.records])));
      } finally {
        await log.close();
      }
    });

  program
    .command('read <topic>')
    .description('print records of one partition of a topic (raw; values as base64 unless UTF-8)')
    .option('-p, --partition <n>', 'partition', (v) => Number(v), 0)
    .option('--from <offset>', 'first offset', (v) => Number(v), 0)
    .option('-n, --limit <n>', 'most records', (v) => Number(v), 20)
    .action(async (topic: string, opts: { partition: number; from: number; limit: number }, cmd: Command) => {
      const flags = cmd.optsWithGlobals<GlobalFlags>();
      const log = await openLog(configFrom(flags));
      try {
        const records = await log.read({ topic, partition: opts.partition, from: opts.from, maxRecords: opts.limit });
        const show = (b: Buffer | null) => (b === null ? null : /^[\x20-\x7e\s]*$/.test(b.toString('latin1')) ? b.toString('utf8') : `base64:${b.toString('base64')}`);
        const rows = records.map((r) => ({ offset: r.offset, timestamp: new Date(r.timestamp).toISOString(), key: show(r.key), value: show(r.value), bytes: r.value?.length ?? 0 }));
        if (flags.json) console.log(JSON.stringify(rows, null, 2));
        else console.log(renderTable(['offset', 'timestamp', 'key', 'bytes', 'value'], rows.map((r) => [r.offset, r.timestamp, r.key, r.bytes, (r.value ?? '').slice(0, 60)])));
      } finally {
        await log.close();
      }
    });
}
