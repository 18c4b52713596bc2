import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openEmbeddedLog } from '../lib/log/embedded/index.js';
import type { EventLog } from '../lib/log/port.js';
import { InMemoryRegistry } from '../lib/registry/core.js';
import { createServiceContext, type ServiceContext } from '../lib/runtime.js';
import { EventCodec } from '../schemas/codec.js';
import type { InferenceRequested, InferenceRequestedInit, SwitchyardEventInit } from '../schemas/generated/events.js';
import { startRouter, type RunningRouter } from '../services/router/service.js';
import { tempDir } from '../test/support/log-dir.js';
import { findRequests } from './lookup.js';
import { rerunRequest } from './rerun.js';
import { logSourceFrom, type LogSource } from './source.js';
import { digestOf, responderOutput, startTestResponder, type TestResponder } from './testing.js';
import { buildTrace } from './trace.js';
import { verifyDecisions } from './verify.js';

/**
 * `replay rerun` against a live embedded cluster: the real router shell, and the replay TEST
 * RESPONDER standing in for workers (deterministic outputs, so a rerun can be diffed). Then
 * `verify` over the same live log, garbage records included.
 */
describe('replay rerun (embedded, router + test responder)', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let log: EventLog;
  let ctx: ServiceContext;
  let source: LogSource;
  let router: RunningRouter;
  let responder: TestResponder | undefined;
  let variant = 0;

  const env = (requestId: string | null = null) => ({ eventId: ctx.newEventId(), occurredAt: ctx.now(), requestId, producer: 'test' });
  const send = async (e: InferenceRequestedInit) => log.append([{ topic: ctx.topics.requests.name, key: e.sessionId ?? e.requestId ?? null, value: ctx.codec.encode(e) }]);
  const until = async (check: () => Promise<boolean>, what: string) => {
    const deadline = Date.now() + 20_000;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  };
  const outcome = async (id: string) => buildTrace(id, (await findRequests(source, [id], { index: false })).events.get(id) ?? []).outcome;

  beforeEach(async () => {
    variant = 0;
    dir = await tempDir('sy-rerun-');
    log = await openEmbeddedLog({ dir: join(dir.dir, 'log'), fsync: 'never', maintenanceIntervalMs: 0 });
    const registry = new InMemoryRegistry();
    const codec = await EventCodec.create({ registry });
    ctx = createServiceContext({ log, codec, lanes: 4 });
    await log.ensureTopics(Object.values(ctx.topics));
    const control: SwitchyardEventInit[] = [
      { type: 'ModelVersionRegistered', ...env(), model: 'm', version: 'v1', digest: digestOf('m', 'v1'), sizeBytes: 1, kind: 'linear' },
      { type: 'ModelVersionRegistered', ...env(), model: 'm', version: 'v2', digest: digestOf('m', 'v2'), sizeBytes: 1, kind: 'linear' },
      { type: 'WorkerJoined', ...env(), workerId: 'w1', lane: 0, zone: 'zone-a', capacity: 4 },
      { type: 'WorkerJoined', ...env(), workerId: 'w2', lane: 1, zone: 'zone-a', capacity: 4 },
    ];
    await log.append(control.map((e) => ({ topic: ctx.topics.control.name, partition: 0, value: codec.encode(e) })));
    await log.append(['w1', 'w2'].map((w, lane) => ({ topic: ctx.topics.heartbeats.name, key: w, value: codec.encode({ type: 'WorkerHeartbeat', ...env(), workerId: w, lane, zone: 'zone-a', seq: 0, load: 0, queueDepth: 0, inFlight: 0 }) })));
    // A record the router's view cannot decode: skipped by the router, and by verify's fold.
    await log.append([{ topic: ctx.topics.heartbeats.name, key: 'w1', value: Buffer.from('garbage') }]);
    source = await logSourceFrom({ log, registry, codec, indexDir: join(dir.dir, 'replay-index') });
    router = await startRouter(ctx, { routerId: 'router-r', policy: { staleHeartbeatMs: 600_000 } });
    responder = await startTestResponder(ctx, { groupId: 'rerun-responder', output: (d) => (variant === 0 ? responderOutput(d.input, d.modelDigest) : Buffer.from(JSON.stringify({ label: 'changed', digest: d.modelDigest.slice(0, 12) }))) });
  });
  afterEach(async () => {
    await responder?.close();
    await router.close();
    await log.close();
    await dir.remove();
  });

  it('sends the input again pinned to the recorded version, links the original, and finds the outputs identical', async () => {
    await send({ type: 'InferenceRequested', ...env('orig-1'), model: 'm', modelVersion: 'v2', input: Buffer.from('{"text":"hello"}'), attributes: { team: 'search' } });
    await until(async () => (await outcome('orig-1')) === 'completed', 'the original result');

    const result = await rerunRequest(source, 'orig-1', { timeoutMs: 20_000 });
    expect(result).toMatchObject({ originalRequestId: 'orig-1', model: 'm', modelVersion: 'v2', modelDigest: digestOf('m', 'v2'), identical: true, digestMatches: true, diffs: [] });
    expect(result.rerunRequestId).toMatch(/^rerun-/);
    expect(result.rerun).toMatchObject({ outcome: 'completed', cacheHit: false, modelDigest: digestOf('m', 'v2') });

    const sent = (await findRequests(source, [result.rerunRequestId])).events.get(result.rerunRequestId)!;
    const req = sent.find((f) => f.event.type === 'InferenceRequested')!.event as InferenceRequested;
    expect(req).toMatchObject({ modelVersion: 'v2', source: 'REPLAY', cacheable: false, sessionId: null, allowFallback: false, producer: 'replay-rerun' });
    expect(req.attributes).toMatchObject({ team: 'search', 'replay.rerunOf': 'orig-1', 'replay.modelDigest': digestOf('m', 'v2') });
    expect(req.input.toString()).toBe('{"text":"hello"}');
  });

  it('different outputs: the JSON fields that differ', async () => {
    await send({ type: 'InferenceRequested', ...env('orig-2'), model: 'm', input: Buffer.from('{"text":"x"}') });
    await until(async () => (await outcome('orig-2')) === 'completed', 'the original result');
    variant = 1;
    const result = await rerunRequest(source, 'orig-2', { timeoutMs: 20_000 });
    expect(result.identical).toBe(false);
    expect(result.digestMatches).toBe(true);
    expect(result.diffs).toEqual([{ path: 'output.label', recorded: expect.any(String), rederived: 'changed' }]);
  });

  it('no answer: a retriable timeout; never routed or unknown: not found', async () => {
    await send({ type: 'InferenceRequested', ...env('orig-3'), model: 'm', input: Buffer.from('{}') });
    await send({ type: 'InferenceRequested', ...env('orig-4'), model: 'unknown-model', input: Buffer.from('{}') });
    await until(async () => (await outcome('orig-3')) === 'completed' && (await outcome('orig-4')) === 'rejected', 'the originals');
    await responder!.close();
    responder = undefined;
    await expect(rerunRequest(source, 'orig-3', { timeoutMs: 300 })).rejects.toMatchObject({ code: 'SY_ERR_REPLAY_TIMEOUT', retriable: true });
    await expect(rerunRequest(source, 'orig-4', { timeoutMs: 300 })).rejects.toMatchObject({ code: 'SY_ERR_REPLAY_NOT_FOUND' });
    await expect(rerunRequest(source, 'never-sent', { timeoutMs: 300 })).rejects.toMatchObject({ code: 'SY_ERR_REPLAY_NOT_FOUND' });
  });

  it('verify over the live log, reruns and a garbage record included: 0 divergences', async () => {
    for (let i = 0; i < 20; i++) await send({ type: 'InferenceRequested', ...env(`v-${i}`), model: 'm', sessionId: i % 3 === 0 ? `s-${i % 2}` : null, input: Buffer.from(`{"i":${i}}`) });
    await until(async () => router.stats().decided >= 20, '20 decisions');
    await until(async () => (await outcome('v-0')) === 'completed', 'the first result');
    await rerunRequest(source, 'v-0', { timeoutMs: 20_000 });
    const report = await verifyDecisions(source);
    expect(report).toMatchObject({ decisions: 21, verified: 21, diverged: 0, ok: true });
    expect(report.undecodableRecords).toBe(1);
  });
});
