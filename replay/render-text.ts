import { renderTable } from '../lib/table.js';
import type { RoutingCandidate } from '../schemas/generated/events.js';
import type { ClusterView } from './cluster.js';
import type { FieldDiff } from './diff.js';
import type { RerunResult } from './rerun.js';
import type { SessionTrace } from './session.js';
import type { Undecodable } from './source.js';
import { formatDuration, iso } from './time.js';
import type { Hop, RequestTrace } from './trace.js';
import type { VerifyReport } from './verify.js';

/** Terminal renderings of the replay models (plain text, no colour codes: pipes and logs stay clean). */

const LABEL: Record<Hop['kind'], string> = {
  received: 'RECEIVED',
  duplicate: 'DUPLICATE',
  routed: 'ROUTED',
  rerouted: 'RE-ROUTED',
  rejected: 'REJECTED',
  started: 'STARTED',
  completed: 'COMPLETED',
  failed: 'FAILED',
  deadlettered: 'DEAD-LETTER',
  session: 'SESSION',
};

const num = (x: number): string => (Number.isInteger(x) ? String(x) : x.toFixed(3));
const show = (v: unknown): string => {
  if (Buffer.isBuffer(v)) return `<${v.length} bytes>`;
  if (v === undefined) return '(absent)';
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 120 ? `${s.slice(0, 117)}…` : s;
};

export function candidatesTable(candidates: readonly RoutingCandidate[], chosen?: string): string {
  return renderTable(
    ['', 'worker', 'lane', 'zone', 'version', 'score', 'load', 'in flight', 'excluded'],
    candidates.map((c) => [c.workerId === chosen ? '→' : '', c.workerId, c.lane, c.zone ?? '—', c.modelVersion ?? '—', num(c.score), num(c.load), c.inFlight, c.excluded ?? '—']),
  );
}

const indent = (text: string, by: string): string =>
  text
    .split('\n')
    .map((l) => by + l)
    .join('\n');

function undecodableText(u: readonly Undecodable[]): string {
  if (u.length === 0) return '';
  return `\n${u.length} record(s) matched but do not decode (reported, skipped):\n${u.map((x) => `  ${x.topic}/${x.partition}@${x.offset} key=${x.key ?? '—'}: ${x.code} ${x.error}`).join('\n')}\n`;
}

export function traceText(t: RequestTrace, { details = true }: { details?: boolean } = {}): string {
  const lines: string[] = [];
  const head = [`request ${t.requestId}`, t.outcome, t.totalMs === null ? null : `${formatDuration(t.totalMs)} end to end`, t.cache === null ? null : `cache ${t.cache}`, `${t.attempts} routing${t.attempts === 1 ? '' : 's'}`].filter(Boolean);
  lines.push(head.join(' · '));
  if (t.request) {
    const r = t.request;
    lines.push(`model ${r.model}${r.modelVersion ? `@${r.modelVersion}` : ''} · session ${r.sessionId ?? '—'} · priority ${r.priority} · from ${r.producer} (${r.source}) · trace ${r.traceId ?? '—'}`);
  } else if (t.hops.length > 0) {
    lines.push('(the InferenceRequested is not in the log: removed by retention, or outside the window)');
  }
  lines.push('');
  for (const h of t.hops) {
    const rel = h.sinceReceivedMs === null ? '' : `+${formatDuration(h.sinceReceivedMs)}`;
    const step = h.sincePreviousMs === null ? '' : ` (${formatDuration(h.sincePreviousMs)} after the previous hop)`;
    lines.push(`${rel.padStart(10)}  ${iso(h.at)}  ${LABEL[h.kind].padEnd(11)} ${h.summary}${step}`);
    if (!details) continue;
    const pad = ' '.repeat(12);
    lines.push(`${pad}at ${h.position.topic}/${h.position.partition}@${h.position.offset} · log time ${iso(h.logTime)}${h.attempt !== null ? ` · attempt ${h.attempt}` : ''}`);
    for (const [k, v] of h.details) lines.push(`${pad}${k}: ${v}`);
    if (h.candidates !== undefined && h.candidates.length > 0) lines.push(indent(candidatesTable(h.candidates, h.chosen), pad));
    else if (h.candidates !== undefined) lines.push(`${pad}candidates: none`);
  }
  if (t.stages.length > 0) {
    lines.push('', 'time spent:');
    for (const s of t.stages) lines.push(`  ${formatDuration(s.ms).padStart(10)}  ${s.name}`);
  }
  return lines.join('\n') + undecodableText(t.undecodable);
}

export function sessionText(s: SessionTrace): string {
  const lines = [`session ${s.sessionId} · ${s.steps.length} request(s) · served by ${s.workers.join(', ') || '—'} · ${s.moves} move(s)`];
  if (s.state) lines.push(`latest SessionState: ${s.state.workerId} (lane ${s.state.lane}) ${s.state.model}@${s.state.modelVersion}, ${s.state.requestCount} requests, updated ${iso(s.state.updatedAt)}`);
  lines.push(
    renderTable(
      ['at', 'request', 'outcome', 'worker', 'lane', 'zone', 'reason', 'version', 'took'],
      s.steps.map((x) => [iso(x.at), x.requestId, x.outcome, `${x.move?.changed.includes('worker') ? '⇢ ' : ''}${x.workerId ?? '—'}`, x.lane ?? '—', x.zone ?? '—', x.reason ?? '—', x.modelVersion ?? '—', x.totalMs === null ? '—' : formatDuration(x.totalMs)]),
    ),
  );
  const moves = s.steps.filter((x) => x.move !== null);
  if (moves.length > 0) {
    lines.push('', 'moves:');
    for (const x of moves) lines.push(`  ${iso(x.at)} ${x.requestId}: ${x.move!.from ?? '—'} → ${x.move!.to ?? '—'} (${x.move!.changed.join(', ')}): ${x.move!.why}`);
  }
  if (s.migrations.length > 0) {
    lines.push('', 'migrations (controller):');
    for (const m of s.migrations) lines.push(`  ${iso(m.at)} ${m.from ?? '—'} → ${m.to} by ${m.by} · context ${m.contextBytes} B · ${m.requestCount} request(s) so far`);
  }
  return lines.join('\n');
}

export function clusterText(c: ClusterView): string {
  const lines = [
    `cluster at ${iso(c.at)} · ${c.foldedRecords} records folded from ${c.clock.length} partitions · policy ${c.policyVersion}`,
    `lanes: ${c.lanes.held} of ${c.lanes.total} held${c.lanes.free.length > 0 && c.lanes.free.length <= 16 ? ` (free: ${c.lanes.free.join(', ')})` : ''} · routed-unfinished in the ledger: ${c.ledgerEntries} · claims refused: ${c.claimsRefused} · log time ${c.logTime > 0 ? iso(c.logTime) : '—'}`,
  ];
  if (c.truncated.length > 0) lines.push(`note: retention removed the start of ${c.truncated.join(', ')}; the fold starts at the log's first record there`);
  if (c.undecodableRecords > 0) lines.push(`note: ${c.undecodableRecords} record(s) do not decode and were skipped (as the router skips them)`);
  lines.push(
    '',
    'workers:',
    renderTable(
      ['worker', 'lane', 'zone', 'status', 'health', 'heartbeat age', 'load', 'queue', 'in flight (hb)', 'routed unfinished', 'capacity', 'results/errors (window)', 'p-latency', 'ejection'],
      c.workers.map((w) => [
        w.workerId,
        w.lane ?? '—',
        w.zone ?? '—',
        w.status,
        w.health,
        w.heartbeatAgeMs === null ? '—' : formatDuration(w.heartbeatAgeMs),
        w.load === null ? '—' : num(w.load),
        w.queueDepth ?? '—',
        w.inFlightReported ?? '—',
        w.routedUnfinished,
        w.capacity ?? '—',
        w.window === null ? '—' : `${w.window.results}/${w.window.errors}`,
        w.window?.latencyMs == null ? '—' : `${num(w.window.latencyMs)} ms`,
        w.ejection === null ? '—' : `${w.ejection.state} (${w.ejection.cause}, ×${w.ejection.severity.toFixed(2)}) until ${iso(w.ejection.untilLogTime)}`,
      ]),
    ),
    '',
    'zones:',
    renderTable(['zone', 'workers', 'live & healthy', 'capacity', 'routed unfinished'], c.zones.map((z) => [z.zone, z.workers, z.live, z.capacity, z.routedUnfinished])),
    '',
    'models:',
    renderTable(
      ['model', 'versions (digest)', 'latest', 'rollout', 'fallback'],
      c.models.map((m) => [
        m.model,
        m.versions.map((v) => `${v.version} (${v.digest.slice(0, 12)}…)`).join('\n'),
        m.latest ?? '—',
        m.rollout === null ? 'latest version' : `${m.rollout.weights.map((w) => `${w.version}:${w.weight}`).join(' ')} · stable ${m.rollout.stableVersion}${m.rollout.canaryVersion ? ` · canary ${m.rollout.canaryVersion}` : ''}`,
        m.fallbackModel ?? '—',
      ]),
    ),
  );
  return lines.join('\n');
}

export function diffText(diffs: readonly FieldDiff[], pad = '    '): string {
  return diffs.map((d) => `${pad}${d.path}: recorded ${show(d.recorded)} · re-derived ${show(d.rederived)}`).join('\n');
}

export function verifyText(r: VerifyReport): string {
  const skipped = Object.entries(r.skipped).filter(([, n]) => n > 0);
  const lines = [
    `verify ${r.source}${r.window.from !== undefined || r.window.to !== undefined ? ` · window ${r.window.from === undefined ? '…' : iso(r.window.from)} → ${r.window.to === undefined ? '…' : iso(r.window.to)}` : ''}`,
    `${r.decisions} decisions: ${r.verified} verified, ${r.diverged} diverged, ${r.inconclusive} inconclusive${skipped.length > 0 ? `, skipped ${skipped.map(([k, n]) => `${n} ${k}`).join(', ')}` : ''}`,
    `speed: ${Math.round(r.decisionsPerSec).toLocaleString('en-US')} decisions/s (${formatDuration(r.ms)}: listing ${formatDuration(r.listMs)}, verifying ${formatDuration(r.verifyMs)}${r.threads > 1 ? ` on ${r.threads} threads` : ''}; ${r.foldedRecords.toLocaleString('en-US')} records folded)`,
    `routers: ${r.producers.map((p) => `${p.producer} ${p.decisions}${p.rebuilds > 0 ? ` (${p.rebuilds} fold rebuilds)` : ''}`).join(', ') || '—'}`,
  ];
  if (r.undecodableRecords > 0) lines.push(`note: ${r.undecodableRecords} record(s) in the prefixes do not decode and were skipped, as the router skips them`);
  for (const [reason, ex] of Object.entries(r.skippedExamples)) if (ex.length > 0) lines.push(`skipped ${reason}: ${ex.join('; ')}`);
  if (r.divergences.length > 0) {
    lines.push('', `DIVERGENCES (${r.diverged}${r.diverged > r.divergences.length ? `, first ${r.divergences.length} shown` : ''}):`);
    for (const d of r.divergences) {
      lines.push(`  ${d.type} ${d.requestId ?? '—'} by ${d.producer} at ${d.position.topic}/${d.position.partition}@${d.position.offset} (${iso(d.occurredAt)}), event ${d.eventId}:`);
      lines.push(diffText(d.diffs));
    }
  }
  if (r.inconclusiveExamples.length > 0) {
    lines.push('', `inconclusive (retention removed part of the prefix; ${r.inconclusive}):`);
    for (const d of r.inconclusiveExamples.slice(0, 5)) lines.push(`  ${d.type} ${d.requestId ?? '—'} at ${d.position.topic}/${d.position.partition}@${d.position.offset}: ${d.diffs.map((x) => x.path).join(', ')}`);
  }
  lines.push('', r.ok ? 'OK: every decision re-derived identically' : `FAILED: ${r.diverged} decision(s) diverged`);
  return lines.join('\n');
}

export function rerunText(r: RerunResult): string {
  const out = (o: RerunResult['rerun'] | null): string =>
    o === null ? '—' : `${o.outcome} on ${o.workerId ?? '—'} ${o.modelVersion ?? ''} digest ${o.modelDigest?.slice(0, 12) ?? '—'}…${o.output ? ` · ${o.output.length} B sha256 ${o.outputSha256?.slice(0, 12)}…${o.cacheHit ? ' (cache hit)' : ''}` : ''}${o.error ? ` · ${o.error}` : ''}`;
  const lines = [
    `rerun of ${r.originalRequestId} as ${r.rerunRequestId} · pinned to ${r.model}@${r.modelVersion} (digest ${r.modelDigest}) · sent to ${r.sent.topic}/${r.sent.partition}@${r.sent.offset} · answered in ${formatDuration(r.waitedMs)}`,
    `  recorded: ${out(r.original)}`,
    `  rerun:    ${out(r.rerun)}`,
    r.digestMatches ? '  weights: same digest' : `  weights: DIFFERENT digest (${r.rerun.modelDigest ?? 'unknown'})`,
  ];
  lines.push(r.identical ? 'outputs: identical' : `outputs: ${r.diffs.length} difference(s)\n${diffText(r.diffs)}`);
  return lines.join('\n');
}
