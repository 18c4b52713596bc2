import { createHash } from 'node:crypto';
import type { RecordPosition } from '../lib/log/port.js';
import { partitionForKey } from '../lib/log/partitioner.js';
import { createEventIdFactory } from '../schemas/event-id.js';
import type { InferenceCompleted, InferenceFailed, InferenceRequested, InferenceRequestedInit, RequestRejected, RequestRouted } from '../schemas/generated/events.js';
import { diffValues, type FieldDiff } from './diff.js';
import { ReplayError } from './errors.js';
import { findRequests, type LookupOptions } from './lookup.js';
import { decodeRecord, type LogSource } from './source.js';

/**
 * `replay rerun <id>`: send a recorded request again, pinned to the model version that served it,
 * wait for the new result, and diff the outputs.
 *
 * Works against the log only, with whatever cluster is running on it: it appends a new
 * InferenceRequested to `requests` — a new request id (`rerun-<uuidv7>`), the original's input,
 * content type, parameters, priority, zone and tenant, `modelVersion` pinned to the recorded
 * version (versions are immutable, so the version names the digest; the rerun's digest is checked
 * against the recorded one), no fallback, no session (a rerun must not move the session's
 * affinity), not cacheable unless asked (a cache hit would only echo the old answer), source
 * REPLAY, and attributes linking the original (`replay.rerunOf`, `replay.originalEventId`,
 * `replay.modelDigest`) — then reads `results` from the partition of the new request id until its
 * InferenceCompleted, InferenceFailed or RequestRejected appears, or the timeout passes.
 */

export interface RerunOptions extends LookupOptions {
  /** How long to wait for the result. @default 60_000 */
  timeoutMs?: number;
  /** Let the worker answer from its result cache. @default false */
  allowCache?: boolean;
  /** The envelope's producer. @default 'replay-rerun' */
  producer?: string;
  /** Clock (deadline, event ids). @default Date.now */
  now?: () => number;
  /** Poll interval while waiting. @default 25 */
  pollMs?: number;
}

export interface RerunOutput {
  outcome: 'completed' | 'failed' | 'rejected';
  workerId: string | null;
  modelVersion: string | null;
  modelDigest: string | null;
  contentType: string | null;
  output: Buffer | null;
  outputSha256: string | null;
  cacheHit: boolean | null;
  error: string | null;
  at: number;
}

export interface RerunResult {
  originalRequestId: string;
  rerunRequestId: string;
  model: string;
  modelVersion: string;
  modelDigest: string;
  sent: RecordPosition;
  original: RerunOutput | null;
  rerun: RerunOutput;
  /** ms from sending to the result. */
  waitedMs: number;
  /** Both completed with identical output bytes. */
  identical: boolean;
  /** The rerun ran on the recorded weights. */
  digestMatches: boolean;
  /** JSON outputs: field differences; other outputs: one entry describing the bytes. */
  diffs: FieldDiff[];
}

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

function outputOf(e: InferenceCompleted | InferenceFailed | RequestRejected): RerunOutput {
  if (e.type === 'InferenceCompleted') {
    return { outcome: 'completed', workerId: e.workerId, modelVersion: e.modelVersion, modelDigest: e.modelDigest, contentType: e.contentType, output: e.output, outputSha256: e.outputSha256 ?? sha256(e.output), cacheHit: e.cacheHit, error: null, at: e.occurredAt };
  }
  if (e.type === 'InferenceFailed') {
    return { outcome: 'failed', workerId: e.workerId, modelVersion: e.modelVersion, modelDigest: e.modelDigest, contentType: null, output: null, outputSha256: null, cacheHit: null, error: `${e.errorCode}: ${e.errorMessage}`, at: e.occurredAt };
  }
  return { outcome: 'rejected', workerId: null, modelVersion: null, modelDigest: null, contentType: null, output: null, outputSha256: null, cacheHit: null, error: `${e.reason}${e.detail ? `: ${e.detail}` : ''}`, at: e.occurredAt };
}

const isJson = (contentType: string | null): boolean => contentType !== null && /^application\/([\w.+-]*\+)?json\b/i.test(contentType);

/** Field differences of two outputs (JSON), or a description of where the bytes differ. */
export function diffOutputs(a: RerunOutput | null, b: RerunOutput): FieldDiff[] {
  if (a === null) return [{ path: '(original)', recorded: 'no recorded result', rederived: b.outcome }];
  if (a.outcome !== b.outcome) return [{ path: 'outcome', recorded: a.outcome, rederived: b.outcome }];
  if (a.output === null || b.output === null) return a.error === b.error ? [] : [{ path: 'error', recorded: a.error, rederived: b.error }];
  if (a.output.equals(b.output)) return [];
  if (isJson(a.contentType) && isJson(b.contentType)) {
    try {
      const diffs = diffValues(JSON.parse(a.output.toString('utf8')), JSON.parse(b.output.toString('utf8')));
      if (diffs.length > 0) return diffs.map((d) => ({ ...d, path: `output${d.path.startsWith('[') ? '' : '.'}${d.path}` }));
      return [{ path: 'output (bytes)', recorded: `${a.output.length} B`, rederived: `${b.output.length} B, same JSON value, different bytes` }];
    } catch {
      // not JSON after all: compare bytes
    }
  }
  let i = 0;
  while (i < a.output.length && i < b.output.length && a.output[i] === b.output[i]) i++;
  return [{ path: 'output (bytes)', recorded: `${a.output.length} B sha256 ${sha256(a.output).slice(0, 12)}…`, rederived: `${b.output.length} B sha256 ${sha256(b.output).slice(0, 12)}…, first difference at byte ${i}` }];
}

/** Rerun a recorded request (see the module comment). */
export async function rerunRequest(source: LogSource, requestId: string, o: RerunOptions = {}): Promise<RerunResult> {
  const now = o.now ?? Date.now;
  const timeoutMs = o.timeoutMs ?? 60_000;
  const found = (await findRequests(source, [requestId], o)).events.get(requestId) ?? [];
  const original = found.find((f) => f.event.type === 'InferenceRequested')?.event as InferenceRequested | undefined;
  if (original === undefined) {
    throw new ReplayError('SY_ERR_REPLAY_NOT_FOUND', `request ${requestId}: its InferenceRequested is not in the log (never sent, or removed by retention), so there is no input to send again`, { detail: { requestId } });
  }
  const events = found.map((f) => f.event);
  const completed = events.filter((e): e is InferenceCompleted => e.type === 'InferenceCompleted').pop();
  const routed = events.filter((e): e is RequestRouted => e.type === 'RequestRouted').pop();
  const served = completed ?? routed;
  if (served === undefined) {
    throw new ReplayError('SY_ERR_REPLAY_NOT_FOUND', `request ${requestId} was never routed (${events.some((e) => e.type === 'RequestRejected') ? 'rejected' : 'no decision in the log'}): there is no model version to pin`, { detail: { requestId } });
  }
  const lastResult = events.filter((e): e is InferenceCompleted | InferenceFailed | RequestRejected => e.type === 'InferenceCompleted' || e.type === 'InferenceFailed' || e.type === 'RequestRejected').pop();

  const ids = createEventIdFactory({ now });
  const newId = `rerun-${ids()}`;
  const request: InferenceRequestedInit = {
    type: 'InferenceRequested',
    eventId: ids(),
    occurredAt: now(),
    requestId: newId,
    traceId: original.traceId,
    producer: o.producer ?? 'replay-rerun',
    causationId: original.eventId,
    model: served.model,
    modelVersion: served.modelVersion,
    input: original.input,
    contentType: original.contentType,
    parameters: original.parameters,
    sessionId: null,
    priority: original.priority,
    deadlineAt: now() + timeoutMs,
    zone: original.zone,
    tenant: original.tenant,
    source: 'REPLAY',
    allowFallback: false,
    cacheable: o.allowCache ?? false,
    attributes: { ...original.attributes, 'replay.rerunOf': requestId, 'replay.originalEventId': original.eventId, 'replay.modelDigest': served.modelDigest },
  };
  const results = source.topics.results;
  if (results.partitions === 0 || source.topics.requests.partitions === 0) throw new ReplayError('SY_ERR_REPLAY_SOURCE', `${source.description} has no requests/results topics to rerun on`);
  const partition = partitionForKey(Buffer.from(newId, 'utf8'), results.partitions);
  let from = (await source.log.endOffsets(results.name))[partition] ?? 0;
  const sentAt = now();
  const [sent] = await source.log.append([{ topic: source.topics.requests.name, key: newId, value: source.codec.encode(request) }]);
  const key = Buffer.from(newId, 'utf8');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const batch = await source.log.read({ topic: results.name, partition, from, maxRecords: 1_000 });
    for (const record of batch) {
      from = record.offset + 1;
      if (record.key === null || !record.key.equals(key)) continue;
      const d = await decodeRecord(source, record);
      if (!d.ok) continue;
      const e = d.event;
      if (e.type !== 'InferenceCompleted' && e.type !== 'InferenceFailed' && e.type !== 'RequestRejected') continue;
      const rerun = outputOf(e);
      const originalOut = lastResult === undefined ? null : outputOf(lastResult);
      const diffs = diffOutputs(originalOut, rerun);
      return {
        originalRequestId: requestId,
        rerunRequestId: newId,
        model: served.model,
        modelVersion: served.modelVersion,
        modelDigest: served.modelDigest,
        sent: sent!,
        original: originalOut,
        rerun,
        waitedMs: now() - sentAt,
        identical: rerun.outcome === 'completed' && originalOut?.outcome === 'completed' && diffs.length === 0,
        digestMatches: rerun.modelDigest === null ? false : rerun.modelDigest === served.modelDigest,
        diffs,
      };
    }
    if (batch.length === 0) {
      if (Date.now() > deadline) {
        throw new ReplayError('SY_ERR_REPLAY_TIMEOUT', `rerun ${newId} of ${requestId}: no result on ${results.name}/${partition} within ${timeoutMs} ms (is a router and a worker for ${served.model}@${served.modelVersion} running on this log?)`, {
          retriable: true,
          detail: { requestId, rerunRequestId: newId, sent },
        });
      }
      await new Promise((r) => setTimeout(r, o.pollMs ?? 25));
    }
  }
}
