import { renderTable } from '../../lib/table.js';
import { formatDuration, iso } from '../../replay/time.js';
import type { StatusAction } from './model.js';
import type { LiveStatus } from './service.js';

/**
 * `switchyard status` in a terminal: the status document as a heading and tables (members, lanes,
 * models and rollouts, controllers, recent actions). Pure: the document carries its own time.
 */

const dash = (v: unknown): string => (v === null || v === undefined || v === '' ? '—' : String(v));
const ago = (ms: number | null): string => (ms === null ? '—' : `${formatDuration(Math.max(0, Math.round(ms)))} ago`);
const ms = (v: number | null): string => (v === null ? '—' : `${v} ms`);

function actionsTable(doc: LiveStatus, list: StatusAction[], withRequest: boolean): string {
  const head = withRequest ? ['when', 'action', 'subject', 'request', 'detail'] : ['when', 'action', 'subject', 'detail'];
  return renderTable(
    head,
    list.map((a) => (withRequest ? [ago(doc.at - a.at), a.kind, a.subject, dash(a.requestId), a.detail] : [ago(doc.at - a.at), a.kind, a.subject, a.detail])),
  );
}

export interface StatusTextOptions {
  /** Most actions of each list printed. @default 15 */
  actions?: number;
}

export function statusText(doc: LiveStatus, { actions = 15 }: StatusTextOptions = {}): string {
  const out: string[] = [];
  const c = doc.controller;
  const r = doc.rates;
  out.push(`Switchyard status · ${doc.source.description} · at ${iso(doc.at)}${doc.newestEventAt > 0 ? ` · newest event ${ago(doc.at - doc.newestEventAt)}` : ' · no event in the look-back'}`);
  if (doc.source.error !== null) out.push(`WARNING: the log could not be read (${doc.source.error.code}): ${doc.source.error.message}`);
  out.push(
    `Controller: ${c.leader === null ? 'no leader elected' : `leader ${c.leader}, epoch ${c.epoch}${c.electedAt === null ? '' : `, elected ${ago(doc.at - c.electedAt)}`}${c.leaderTickAgeMs === null ? '' : `, last tick ${ago(c.leaderTickAgeMs)}`}`}`,
  );
  out.push(
    `Throughput (last ${r.seconds} s): ${r.completedPerSec} completed/s, ${r.failedPerSec} failed/s, ${r.rejectedPerSec} rejected/s · latency (last ${r.latencySeconds} s) p50 ${ms(r.p50Ms)}, p95 ${ms(r.p95Ms)}, p99 ${ms(r.p99Ms)}${r.cacheHitRatio === null ? '' : ` · cache hits ${Math.round(r.cacheHitRatio * 100)} %`}`,
  );
  const rec = doc.recent;
  out.push(`Last ${Math.round(rec.seconds / 60)} min: ${rec.completed} completed, ${rec.failed} failed, ${rec.rejected} rejected (${rec.sheds} shed), ${rec.redispatches} re-dispatched, ${rec.evictions} evicted, ${rec.superseded} superseded`);

  const s = doc.summary;
  out.push('', `Members: ${s.members} (${s.healthy} healthy, ${s.draining} draining, ${s.evicted} evicted, ${s.left} left) · capacity ${s.capacity} · in flight ${s.inFlight} · queued ${s.queueDepth}`);
  if (doc.members.length > 0) {
    out.push(
      renderTable(
        ['worker', 'lane', 'zone', 'status', 'health', 'heartbeat', 'load', 'queue', 'in flight', 'capacity', 'results · errors · latency', 'note'],
        doc.members.map((m) => [
          m.workerId,
          dash(m.lane),
          dash(m.zone),
          m.status,
          m.health,
          ago(m.heartbeatAgeMs),
          m.load === null ? '—' : `${Math.round(m.load * 100)} %`,
          m.queueDepth === null ? '—' : `${m.queueDepth}${m.queueDelayMs ? ` (${formatDuration(m.queueDelayMs)})` : ''}`,
          dash(m.inFlight),
          dash(m.capacity),
          m.window === null ? '—' : `${m.window.results} · ${m.window.errors} · ${ms(m.window.latencyMs === null ? null : Math.round(m.window.latencyMs))}`,
          m.ejection !== null ? `${m.ejection.state} (${m.ejection.cause})` : m.evicted !== null ? `${m.status === 'left' ? 'left' : 'evicted'} ${ago(doc.at - m.evicted.at)}: ${m.evicted.reason}` : '',
        ]),
      ),
    );
  }

  const l = doc.lanes;
  out.push('', `Lanes: ${l.held} of ${l.total} held, ${l.free} free${l.claimsRefused > 0 ? ` · ${l.claimsRefused} claims refused` : ''}${l.holders.length > 0 ? ` · ${l.holders.map((h) => `${h.lane}=${h.workerId}`).join(', ')}` : ''}`);

  out.push('', `Models: ${doc.models.length}`);
  if (doc.models.length > 0) {
    out.push(
      renderTable(
        ['model', 'versions (loaded by)', 'latest', 'traffic split', 'stable', 'canary', 'fallback'],
        doc.models.map((m) => [
          m.model,
          m.versions.map((v) => `${v.version} (${v.loadedBy})`).join(', '),
          dash(m.latest),
          m.rollout === null ? '— (latest)' : m.rollout.weights.map((w) => `${w.version} ${w.percent} %`).join(' / '),
          dash(m.rollout?.stableVersion),
          dash(m.rollout?.canaryVersion),
          dash(m.fallbackModel),
        ]),
      ),
    );
  }

  if (c.controllers.length > 0) {
    out.push('', `Controllers: ${c.controllers.length}`);
    out.push(renderTable(['controller', 'role', 'epoch', 'last tick', 'seq'], c.controllers.map((x) => [x.controllerId, x.role, dash(x.epoch), ago(x.lastTickAgeMs), x.seq])));
  }
  out.push('', `Control actions (newest ${Math.min(actions, doc.actions.length)} of ${doc.actions.length} kept):`);
  out.push(doc.actions.length === 0 ? '  none' : actionsTable(doc, doc.actions.slice(0, actions), false));
  out.push('', `Re-dispatches, sheds, superseded outcomes (newest ${Math.min(actions, doc.requestActions.length)} of ${doc.requestActions.length} kept):`);
  out.push(doc.requestActions.length === 0 ? '  none' : actionsTable(doc, doc.requestActions.slice(0, actions), true));
  return out.join('\n');
}
