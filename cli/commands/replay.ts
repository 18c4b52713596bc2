import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import cliProgress from 'cli-progress';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { errorMessage } from '../../lib/errors.js';
import { createLogger } from '../../lib/logger.js';
import type { RequestRejected, RequestRouted } from '../../schemas/generated/events.js';
import { clusterAt, clusterAtClock } from '../../replay/cluster.js';
import { ReplayError } from '../../replay/errors.js';
import { findRequests, findSession } from '../../replay/lookup.js';
import { sessionHtml, traceHtml } from '../../replay/render-html.js';
import { clusterText, rerunText, sessionText, traceText, verifyText } from '../../replay/render-text.js';
import { RequestIndex } from '../../replay/request-index.js';
import { rerunRequest } from '../../replay/rerun.js';
import type { OffsetBound, ProgressFn } from '../../replay/scan.js';
import { buildSessionTrace } from '../../replay/session.js';
import { createChdbAnalyticsStore } from '../../lib/analytics/chdb.js';
import { createServerAnalyticsStore } from '../../lib/analytics/server.js';
import { openArchiveSource, openLogSource, type LogSource } from '../../replay/source.js';
import { parseDuration, parseTime } from '../../replay/time.js';
import { buildTrace, jsonSafe } from '../../replay/trace.js';
import { verifyDecisionsParallel } from '../../replay/parallel.js';
import { verifyDecisions } from '../../replay/verify.js';
import { controllerVerifyText, verifyController } from '../../replay/verify-controller.js';
import { configFrom, type GlobalFlags } from '../flags.js';

const SOURCES = `Sources: the embedded log under --home (default .switchyard; its request index is kept in
<home>/replay-index), a Kafka cluster with --brokers host:port,… (lookups use the topics' keys), or
ClickHouse with --archive: the log archive the sink keeps there, for records Kafka's retention has
dropped (the server of --clickhouse <url> or $SWITCHYARD_CLICKHOUSE_URL, else the embedded chDB
engine under <home>/analytics; --clickhouse <url> alone implies --archive; lookups use the
archive's log_ids index). The embedded log and chDB are
single-process: stop the cluster using them, or replay a copy of the directory.`;

interface WindowFlags {
  from?: string;
  to?: string;
  index?: boolean;
}

const time = (v: string): string => {
  try {
    parseTime(v);
  } catch (err) {
    throw new InvalidArgumentError(errorMessage(err));
  }
  return v;
};

/** `topic[:partition]=from..to` (either end may be left out). */
function offsetBound(v: string, prev: OffsetBound[] = []): OffsetBound[] {
  const m = /^([\w.-]+)(?::(\d+))?=(\d*)\.\.(\d*)$/.exec(v.trim());
  if (!m) throw new InvalidArgumentError(`"${v}" is not topic[:partition]=from..to (e.g. decisions:3=100..200, results=..5000)`);
  return [...prev, { topic: m[1]!, partition: m[2] === undefined ? undefined : Number(m[2]), from: m[3] ? Number(m[3]) : undefined, to: m[4] ? Number(m[4]) : undefined }];
}

const collect = (v: string, prev: string[] = []): string[] => [...prev, v];

/** A progress bar on stderr for long scans (only on a terminal, never with --json). */
function progressBar(enabled: boolean): { onProgress: ProgressFn | undefined; stop: () => void } {
  if (!enabled || !process.stderr.isTTY) return { onProgress: undefined, stop: () => {} };
  const bar = new cliProgress.SingleBar(
    { format: ' {phase} [{bar}] {percentage}% | {value}/{total} | {duration_formatted}', stream: process.stderr, hideCursor: true, clearOnComplete: true, fps: 8 },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  let phase = '';
  return {
    onProgress: ({ phase: p, done, total }) => {
      if (total < 5_000) return; // not worth a bar
      if (!started) {
        bar.start(total, done, { phase: p });
        started = true;
      } else if (p !== phase) bar.setTotal(total);
      phase = p;
      bar.update(done, { phase: p });
    },
    stop: () => {
      if (started) bar.stop();
    },
  };
}

/** Open the source, run, close; ReplayErrors print with their code and set the exit code. */
interface SourceFlags extends GlobalFlags {
  /** Read the ClickHouse archive. */
  archive?: boolean;
  /** The ClickHouse server (implies `archive`). */
  clickhouse?: string;
  database?: string;
}

/** The source flags every replay command takes. */
function sourceOptions(cmd: Command): Command {
  return cmd
    .option('--archive', 'read the log archive in ClickHouse instead of the log (chDB under <home>/analytics, or the server of --clickhouse / $SWITCHYARD_CLICKHOUSE_URL)')
    .option('--clickhouse <url>', 'the ClickHouse server holding the archive (implies --archive)')
    .addOption(new Option('--database <name>', 'with --archive: the database on the ClickHouse server').env('SWITCHYARD_CLICKHOUSE_DATABASE').default('switchyard'));
}

/** The archive in ClickHouse as the source (`--clickhouse`). */
async function openClickHouseSource(flags: SourceFlags, config: ReturnType<typeof configFrom>): Promise<LogSource> {
  const url = flags.clickhouse ?? config.clickhouseUrl;
  let store;
  try {
    // Replay reads: it creates neither the server's database nor an empty chDB directory.
    if (url) store = await createServerAnalyticsStore({ url, ...(config.clickhouseUser ? { user: config.clickhouseUser } : {}), ...(config.clickhousePassword !== undefined ? { password: config.clickhousePassword } : {}), ...(flags.database ? { database: flags.database } : {}), createDatabase: false });
    else {
      const path = join(config.home, 'analytics');
      if (!existsSync(path)) throw new ReplayError('SY_ERR_REPLAY_SOURCE', `no analytics under ${config.home} (${path} does not exist): run the sink there first, or give --clickhouse <url>`);
      store = await createChdbAnalyticsStore({ path });
    }
  } catch (err) {
    if (err instanceof ReplayError) throw err;
    throw new ReplayError('SY_ERR_REPLAY_SOURCE', `cannot open ClickHouse ${url ?? `(chDB under ${config.home}/analytics)`}: ${errorMessage(err)}`, { cause: err });
  }
  return openArchiveSource(store, { topicPrefix: config.topicPrefix, ownsStore: true, description: url ? `ClickHouse archive at ${url}` : `ClickHouse archive (chDB ${config.home}/analytics)` });
}

async function withSource(cmd: Command, run: (source: LogSource, flags: GlobalFlags) => Promise<number | void>): Promise<void> {
  const flags = cmd.optsWithGlobals<SourceFlags>();
  const config = configFrom(flags);
  let source: LogSource | undefined;
  try {
    const archive = flags.archive === true || flags.clickhouse !== undefined;
    // Replay reads: it never creates an embedded log where there was none.
    const logDir = join(config.home, 'log');
    if (!archive && config.brokers.length === 0 && !existsSync(logDir)) {
      throw new ReplayError('SY_ERR_REPLAY_SOURCE', `no embedded log under ${config.home} (${logDir} does not exist): give the --home a cluster ran with, or --brokers for Kafka, or --archive`);
    }
    source = archive ? await openClickHouseSource(flags, config) : await openLogSource(config, { logger: createLogger('replay', config.logLevel === 'info' ? 'warn' : config.logLevel) });
    const code = await run(source, flags);
    if (typeof code === 'number' && code !== 0) process.exitCode = code;
  } catch (err) {
    if (!(err instanceof ReplayError)) throw err;
    process.stderr.write(`switchyard replay: ${err.message} [${err.code}]\n`);
    process.exitCode = err.code === 'SY_ERR_REPLAY_NOT_FOUND' ? 3 : err.code === 'SY_ERR_REPLAY_BAD_ARGUMENT' ? 2 : 1;
  } finally {
    await source?.close();
  }
}

const windowOf = (o: WindowFlags, now = Date.now()) => ({ from: o.from === undefined ? undefined : parseTime(o.from, now), to: o.to === undefined ? undefined : parseTime(o.to, now) });

async function emit(flags: GlobalFlags, html: string | undefined, json: unknown, text: () => string, page: (() => string) | undefined): Promise<void> {
  if (html !== undefined && page !== undefined) {
    await writeFile(html, page());
    process.stderr.write(`wrote ${html}\n`);
  }
  if (flags.json) console.log(JSON.stringify(jsonSafe(json), null, 2));
  else console.log(text());
}

/** `switchyard replay …`: reconstruct and re-verify from the log (DESIGN.md "Replay"). */
export function registerReplayCommands(program: Command): void {
  const replay = program
    .command('replay')
    .description('reconstruct any request, session or moment from the log; re-derive every routing decision; rerun a request')
    .addHelpText('after', `\n${SOURCES}\n\nTimes: ms since the epoch, ISO 8601 (2025-01-01T00:00:05Z), "now", or relative (-5m, -90s, -2h).`);

  sourceOptions(replay.command('request <requestId>')
    .description('the full path of one request across every topic: received, routed (candidates, scores, reason, model digest, clock), re-routed, started, cache hit/miss, completed/failed/rejected, with the time spent in each hop')
    .option('--html <file>', 'also write a self-contained HTML page of the timeline')
    .option('--brief', 'one line per hop (no candidates or details)')
    .option('--from <time>', 'only events at or after this time', time)
    .option('--to <time>', 'only events at or before this time', time)
    .option('--no-index', 'embedded log: look up by the topics\' keys instead of the request index')
    .addHelpText('after', `\n${SOURCES}`))
    .action(async (requestId: string, o: WindowFlags & { html?: string; brief?: boolean }, cmd: Command) =>
      withSource(cmd, async (source, flags) => {
        const bar = progressBar(!flags.json);
        let found;
        try {
          found = await findRequests(source, [requestId], { ...windowOf(o), index: o.index === false ? false : undefined, onProgress: bar.onProgress });
        } finally {
          bar.stop();
        }
        const trace = buildTrace(requestId, found.events.get(requestId) ?? [], found.undecodable);
        if (trace.hops.length === 0) throw new ReplayError('SY_ERR_REPLAY_NOT_FOUND', `no record of request ${requestId} in ${source.description}${o.from || o.to ? ' within the window' : ''}`);
        await emit(flags, o.html, { ...trace, lookup: { strategy: found.strategy, recordsRead: found.recordsRead, indexUpdate: found.indexUpdate } }, () => traceText(trace, { details: !o.brief }), () => traceHtml(trace));
      }),
    );

  sourceOptions(replay.command('session <sessionId>')
    .description('every request of a session, the worker that served each, and where and why the session moved')
    .option('--html <file>', 'also write a self-contained HTML page')
    .option('--from <time>', 'only requests at or after this time', time)
    .option('--to <time>', 'only requests at or before this time', time)
    .option('--no-index', 'embedded log: look up by the topics\' keys instead of the request index'))
    .action(async (sessionId: string, o: WindowFlags & { html?: string }, cmd: Command) =>
      withSource(cmd, async (source, flags) => {
        const bar = progressBar(!flags.json);
        let lookup;
        try {
          lookup = await findSession(source, sessionId, { ...windowOf(o), index: o.index === false ? false : undefined, onProgress: bar.onProgress });
        } finally {
          bar.stop();
        }
        if (lookup.requests.length === 0) throw new ReplayError('SY_ERR_REPLAY_NOT_FOUND', `no request of session ${sessionId} in ${source.description}`);
        const trace = buildSessionTrace(lookup);
        await emit(flags, o.html, trace, () => sessionText(trace), () => sessionHtml(trace));
      }),
    );

  sourceOptions(replay.command('at [time]')
    .description('the cluster as a router saw it at a moment: workers, lanes, zones, health (heartbeat age), load, in flight, ejections, models and rollouts')
    .option('--decision-of <requestId>', 'instead of a time: exactly the state the router decided this request in (the fold of its clock)')
    .option('--attempt <n>', 'with --decision-of: which routing of the request', (v) => Number(v))
    .option('--policy <version>', 'judge health and ejections with this policy version (default: the decision\'s, else the default policy)'))
    .action(async (at: string | undefined, o: { decisionOf?: string; attempt?: number; policy?: string }, cmd: Command) =>
      withSource(cmd, async (source, flags) => {
        const bar = progressBar(!flags.json);
        try {
          let view;
          if (o.decisionOf !== undefined) {
            const found = (await findRequests(source, [o.decisionOf], { onProgress: bar.onProgress })).events.get(o.decisionOf) ?? [];
            const decisions = found.map((f) => f.event).filter((e): e is RequestRouted | RequestRejected => e.type === 'RequestRouted' || e.type === 'RequestRejected');
            const d = o.attempt === undefined ? decisions[0] : decisions.find((x) => x.attempt === o.attempt);
            if (d === undefined) throw new ReplayError('SY_ERR_REPLAY_NOT_FOUND', `no decision for request ${o.decisionOf}${o.attempt ? ` attempt ${o.attempt}` : ''} in ${source.description}`);
            view = await clusterAtClock(source, d.clock, d.occurredAt, { policyVersion: o.policy ?? (d.policyVersion || undefined), onProgress: bar.onProgress });
          } else {
            if (at === undefined) throw new ReplayError('SY_ERR_REPLAY_BAD_ARGUMENT', 'give a time (or --decision-of <requestId>)');
            view = await clusterAt(source, parseTime(at), { policyVersion: o.policy, onProgress: bar.onProgress });
          }
          bar.stop();
          await emit(flags, undefined, view, () => clusterText(view), undefined);
        } finally {
          bar.stop();
        }
      }),
    );

  sourceOptions(replay.command('verify')
    .description('re-derive every routing decision in a window from the log prefix its clock names, and compare with the recorded one; exits 1 on any divergence, 3 when there is no decision to verify')
    .option('--from <time>', 'decisions at or after this time', time)
    .option('--to <time>', 'decisions at or before this time', time)
    .option('--offsets <spec>', 'bound the decisions by offsets: topic[:partition]=from..to (repeatable), e.g. decisions:3=100..200', offsetBound)
    .option('--router <id>', 'only decisions of this router instance (repeatable)', collect)
    .option('--max-divergences <n>', 'divergences shown in full (all are counted)', (v) => Number(v), 50)
    .option('--strict', 'also fail when decisions were skipped or inconclusive')
    .option('--threads <n>', 'verify on this many worker threads (whole routers, or runs of one router\'s decisions, per thread); worth it with free cores', (v) => Number(v), 1)
    .option('--no-index', 'embedded log: find rejected requests by keys, not the request index'))
    .action(async (o: WindowFlags & { offsets?: OffsetBound[]; router?: string[]; maxDivergences: number; strict?: boolean; threads: number }, cmd: Command) =>
      withSource(cmd, async (source, flags) => {
        const bar = progressBar(!flags.json);
        let report;
        try {
          const options = { ...windowOf(o), offsets: o.offsets, producers: o.router, maxDivergences: o.maxDivergences, index: o.index === false ? false : undefined, onProgress: bar.onProgress };
          report = o.threads > 1 ? await verifyDecisionsParallel(source, { ...options, threads: o.threads }) : await verifyDecisions(source, options);
        } finally {
          bar.stop();
        }
        // Verifying nothing proves nothing: an empty log or window is not an OK.
        if (report.decisions === 0) {
          const bounded = o.from !== undefined || o.to !== undefined || o.offsets !== undefined || o.router !== undefined;
          throw new ReplayError('SY_ERR_REPLAY_NOT_FOUND', `no routing decisions in ${source.description}${bounded ? ' within the given bounds' : ''}: nothing was verified`);
        }
        // The controller's decisions (evictions, re-dispatches, retries, ends, superseded outcomes): over the whole log.
        const controller = await verifyController(source, { maxDivergences: o.maxDivergences });
        await emit(flags, undefined, { ...report, controller }, () => `${verifyText(report)}\n${controllerVerifyText(controller)}`, undefined);
        const skipped = Object.values(report.skipped).reduce((a, b) => a + b, 0) + controller.skipped;
        return report.diverged > 0 || controller.diverged > 0 || (o.strict && (skipped > 0 || report.inconclusive > 0)) ? 1 : 0;
      }),
    );

  replay
    .command('rerun <requestId>')
    .description('send the recorded input again pinned to the recorded model version (new request id, attributes linking the original), wait for the result, and diff the outputs; needs a running cluster on this log')
    .option('--timeout <duration>', 'how long to wait for the result (e.g. 30s)', '60s')
    .option('--allow-cache', 'let the worker answer from its result cache')
    .option('--no-index', 'embedded log: find the request by keys, not the request index')
    .action(async (requestId: string, o: { timeout: string; allowCache?: boolean; index?: boolean }, cmd: Command) =>
      withSource(cmd, async (source, flags) => {
        const result = await rerunRequest(source, requestId, { timeoutMs: parseDuration(o.timeout), allowCache: o.allowCache ?? false, index: o.index === false ? false : undefined });
        await emit(flags, undefined, result, () => rerunText(result), undefined);
        return result.identical && result.digestMatches ? 0 : 1;
      }),
    );

  replay
    .command('index')
    .description('embedded log: build or bring up to date the request index (lookups do this on their own)')
    .option('--rebuild', 'discard the index and build it again')
    .action(async (o: { rebuild?: boolean }, cmd: Command) =>
      withSource(cmd, async (source, flags) => {
        if (source.kind === 'clickhouse') throw new ReplayError('SY_ERR_REPLAY_BAD_ARGUMENT', 'the ClickHouse archive keeps its own index (log_ids, filled as the sink inserts): nothing to build');
        if (source.indexDir === undefined) throw new ReplayError('SY_ERR_REPLAY_BAD_ARGUMENT', 'the request index is for the embedded log; Kafka lookups use the topics\' keys');
        if (o.rebuild) {
          const { rm } = await import('node:fs/promises');
          await rm(source.indexDir, { recursive: true, force: true });
        }
        const index = await RequestIndex.open(source);
        const bar = progressBar(!flags.json);
        try {
          const update = await index.update({ onProgress: bar.onProgress });
          bar.stop();
          const stats = index.stats();
          await emit(flags, undefined, { ...update, ...stats }, () => `request index ${stats.dir}: ${stats.entries} entries in ${stats.runs} run(s); this update read ${update.scanned} records and added ${update.added} entries in ${Math.round(update.ms)} ms${update.rebuilt ? ' (rebuilt)' : ''}`, undefined);
        } finally {
          bar.stop();
          await index.close();
        }
      }),
    );
}
