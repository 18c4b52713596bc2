import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openKafkaLog } from '../lib/log/kafka/index.js';
import type { EventLog } from '../lib/log/port.js';
import { LogBackedRegistry } from '../lib/registry/log-backed.js';
import { createServiceContext } from '../lib/runtime.js';
import { EventCodec } from '../schemas/codec.js';
import { kafkaBrokers, requireKafka, uniqueName } from '../test/support/services.js';
import { clusterAt } from './cluster.js';
import { findRequests, findSession } from './lookup.js';
import { buildSessionTrace } from './session.js';
import { logSourceFrom, type LogSource } from './source.js';
import { recordRouterScenario, SimClock, type ScenarioResult } from './testing.js';
import { buildTrace } from './trace.js';
import { verifyDecisions } from './verify.js';

/**
 * Replay on real Kafka: a small cluster log written by the router service shell (two replicas,
 * the replay test responder as workers), then `verify` (0 divergences), `request` and `session`
 * lookups by the topics' keys, `at`, and the CLI with --brokers. Never skipped.
 */
describe('replay on Kafka', () => {
  let log: EventLog;
  let source: LogSource;
  let prefix: string;
  let recorded: ScenarioResult;

  beforeAll(async () => {
    await requireKafka();
    log = await openKafkaLog({ brokers: kafkaBrokers() });
    prefix = `${uniqueName('replay')}.`;
    const registry = await LogBackedRegistry.open({ log, topic: `${prefix}_schemas` });
    const codec = await EventCodec.create({ registry });
    const clock = new SimClock(Date.now());
    const ctx = createServiceContext({ log, codec, topicPrefix: prefix, lanes: 8, now: clock.now });
    await log.ensureTopics(Object.values(ctx.topics));
    recorded = await recordRouterScenario(ctx, { clock, rounds: 40 });
    source = await logSourceFrom({ log, registry, codec, topicPrefix: prefix, description: `kafka ${kafkaBrokers().join(',')}` });
  });
  afterAll(async () => {
    await log?.close();
  });

  it('verify re-derives every decision of both routers (0 divergences)', async () => {
    const report = await verifyDecisions(source);
    expect(report.divergences).toEqual([]);
    expect(report).toMatchObject({ decisions: recorded.requests, verified: recorded.requests, diverged: 0, inconclusive: 0, ok: true });
    expect(Object.values(report.skipped).reduce((a, b) => a + b, 0)).toBe(0);
    expect(report.producers.length).toBe(2);
  });

  it('request lookups by key: the whole path of completed and rejected requests', async () => {
    const ids = Array.from({ length: 12 }, (_, i) => `req-${String(i * 9).padStart(5, '0')}`);
    const found = await findRequests(source, ids);
    expect(found.strategy).toBe('keyed');
    const outcomes = new Set<string>();
    for (const id of ids) {
      const trace = buildTrace(id, found.events.get(id)!);
      outcomes.add(trace.outcome);
      const kinds = trace.hops.map((h) => h.kind);
      expect(kinds[0], id).toBe('received');
      if (trace.outcome === 'completed') expect(kinds, id).toEqual(['received', 'routed', 'started', 'completed']);
      if (trace.outcome === 'rejected') expect(kinds, id).toEqual(['received', 'rejected']);
    }
    expect(outcomes.has('completed')).toBe(true);
  });

  it('session lookup and the cluster at the end', async () => {
    const session = buildSessionTrace(await findSession(source, 's-1'));
    expect(session.steps.length).toBeGreaterThan(3);
    expect(session.steps.every((s) => s.outcome !== 'not found')).toBe(true);
    const view = await clusterAt(source, Date.now() + 60_000);
    expect(view.workers.map((w) => w.workerId).sort()).toEqual(['w1', 'w2', 'w3', 'w4']);
    expect(view.workers.find((w) => w.workerId === 'w1')?.status).toBe('evicted');
  });

  it('the CLI with --brokers: replay verify exits 0', async () => {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'cli/main.ts', '--brokers', kafkaBrokers().join(','), '--prefix', prefix, 'replay', 'verify', '--strict'], {
      cwd: join(import.meta.dirname, '..'),
      env: { ...process.env, NO_COLOR: '1', SWITCHYARD_LOG_LEVEL: 'debug', SWITCHYARD_KAFKA_CLIENT: '' },
    });
    expect(stdout).toContain(`${recorded.requests} decisions: ${recorded.requests} verified, 0 diverged`);
    expect(stderr).not.toContain('"logger":"kafkajs"'); // the default client is @platformatic/kafka
  });

  it('the CLI reads through the configured Kafka client: the same verdict on kafkajs', async () => {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'cli/main.ts', '--brokers', kafkaBrokers().join(','), '--prefix', prefix, 'replay', 'verify', '--strict'], {
      cwd: join(import.meta.dirname, '..'),
      env: { ...process.env, NO_COLOR: '1', SWITCHYARD_LOG_LEVEL: 'debug', SWITCHYARD_KAFKA_CLIENT: 'kafkajs' },
    });
    expect(stdout).toContain(`${recorded.requests} decisions: ${recorded.requests} verified, 0 diverged`);
    expect(stderr).toContain('"logger":"kafkajs"');
  });
});
