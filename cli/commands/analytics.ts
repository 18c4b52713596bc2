import { Command, Option } from 'commander';
import { features, migrate } from '../../lib/analytics/migrations.js';
import { openAnalytics } from '../../lib/analytics/open.js';
import { loadQueryPack, resolveParams, runPackQuery, type PackQuery } from '../../lib/analytics/pack.js';
import type { AnalyticsStore, Row } from '../../lib/analytics/port.js';
import { SwitchyardError } from '../../lib/errors.js';
import { renderTable } from '../../lib/table.js';
import { configFrom, type GlobalFlags } from '../flags.js';

interface AnalyticsFlags extends GlobalFlags {
  clickhouse?: string;
  database?: string;
}

const FORMATS = ['table', 'json', 'csv'] as const;
type Format = (typeof FORMATS)[number];

/** The analytics store named by the flags: the ClickHouse server with --clickhouse, else chDB under <home>/analytics. */
async function openStore(cmd: Command): Promise<AnalyticsStore> {
  const flags = cmd.optsWithGlobals<AnalyticsFlags>();
  const config = configFrom(flags);
  return openAnalytics({ clickhouseUrl: flags.clickhouse ?? config.clickhouseUrl, clickhouseUser: config.clickhouseUser, clickhousePassword: config.clickhousePassword, database: flags.database, home: config.home });
}

async function withStore<T>(cmd: Command, run: (store: AnalyticsStore) => Promise<T>): Promise<T> {
  const store = await openStore(cmd);
  try {
    return await run(store);
  } finally {
    await store.close();
  }
}

const cell = (v: unknown): string => (v === null || v === undefined ? '' : Array.isArray(v) ? v.map(cell).join(',') : typeof v === 'object' ? JSON.stringify(v) : String(v));

const csvField = (v: unknown): string => {
  const s = cell(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
};

/** Rows as a table, JSON or CSV, columns in the query's declared order. */
export function formatRows(rows: readonly Row[], columns: readonly string[], format: Format): string {
  if (format === 'json') return JSON.stringify(rows, null, 2);
  if (format === 'csv') return [columns.map(csvField).join(','), ...rows.map((r) => columns.map((c) => csvField(r[c])).join(','))].join('\n');
  if (rows.length === 0) return '(no rows)';
  return renderTable([...columns], rows.map((r) => columns.map((c) => cell(r[c]))));
}

const flagName = (param: string) => param.replace(/_/g, '-');
const camel = (param: string) => param.replace(/_([a-z])/g, (_m, c: string) => c.toUpperCase());

function queryCommand(q: PackQuery): Command {
  const cmd = new Command(q.name).description(q.summary).addHelpText('after', `\n${q.description}\n\nColumns:\n${q.columns.map((c) => `  ${c.name.padEnd(20)} ${c.description}`).join('\n')}`);
  for (const p of q.params) {
    const opt = new Option(`--${flagName(p.name)} <${p.type === 'DateTime' ? 'time' : 'value'}>`, p.description + (p.type === 'DateTime' ? ' (now, -24h, -7d, 2026-01-01, ISO 8601)' : ''));
    if (p.default !== undefined) opt.default(p.default === '' ? "''" : p.default);
    else opt.makeOptionMandatory();
    cmd.addOption(opt);
  }
  cmd.addOption(new Option('--format <format>', 'output format').choices(FORMATS).default('table'));
  cmd.action(async (opts: Record<string, string>, self: Command) => {
    const given: Record<string, string | undefined> = {};
    for (const p of q.params) {
      const v = opts[camel(p.name)];
      given[p.name] = v === "''" ? '' : v;
    }
    const params = resolveParams(q, given, Date.now());
    const format: Format = self.optsWithGlobals<GlobalFlags>().json ? 'json' : (opts.format as Format);
    const rows = await withStore(self, (store) => runPackQuery(store, q, params));
    console.log(formatRows(rows, q.columns.map((c) => c.name), format));
  });
  return cmd;
}

/** `switchyard analytics …`: migrations and the query pack, on chDB or a ClickHouse server. */
export function registerAnalyticsCommands(program: Command): void {
  const analytics = program
    .command('analytics')
    .description('ClickHouse analytics: apply the schema, run the shipped queries')
    .addOption(new Option('--clickhouse <url>', 'ClickHouse server URL; default: the embedded chDB engine under <home>/analytics').env('SWITCHYARD_CLICKHOUSE_URL'))
    .addOption(new Option('--database <name>', 'database on the ClickHouse server').env('SWITCHYARD_CLICKHOUSE_DATABASE').default('switchyard'));

  analytics
    .command('migrate')
    .description('apply pending schema migrations (schemas/clickhouse/migrations)')
    .action(async (_opts: unknown, cmd: Command) => {
      const flags = cmd.optsWithGlobals<GlobalFlags>();
      const out = await withStore(cmd, async (store) => {
        const version = await store.serverVersion();
        const result = await migrate(store);
        const gates = Object.entries(features(version))
          .filter(([, on]) => on)
          .map(([name]) => name);
        return { engine: store.kind, version: version.raw, ...result, features: gates };
      });
      if (flags.json) console.log(JSON.stringify(out, null, 2));
      else {
        console.log(`${out.engine} ${out.version}: ${out.applied.length > 0 ? `applied ${out.applied.join(', ')}` : 'nothing to apply'}; schema at version ${out.current}`);
        console.log(`features: ${out.features.length > 0 ? out.features.join(', ') : 'none (core DDL only)'}`);
      }
    });

  analytics
    .command('list')
    .description('list the shipped queries with their parameters')
    .action((_opts: unknown, cmd: Command) => {
      const pack = loadQueryPack();
      if (cmd.optsWithGlobals<GlobalFlags>().json) {
        console.log(JSON.stringify(pack.map(({ sql: _sql, ...q }) => q), null, 2));
        return;
      }
      console.log(
        renderTable(
          ['query', 'answers', 'parameters'],
          pack.map((q) => [q.name, q.summary, q.params.map((p) => `--${flagName(p.name)}${p.default === undefined ? ' (required)' : ''}`).join(' ')]),
        ),
      );
    });

  let pack: PackQuery[];
  try {
    pack = loadQueryPack();
  } catch (err) {
    if (err instanceof SwitchyardError) {
      analytics.addHelpText('after', `\n(query pack unavailable: ${err.message})`);
      return;
    }
    throw err;
  }
  for (const q of pack) analytics.addCommand(queryCommand(q));
}
