import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SchemaRegistry as ConfluentClient } from '@kafkajs/confluent-schema-registry';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openKafkaLog } from '../../lib/log/kafka/index.js';
import { topicLayout } from '../../lib/log/topics.js';
import { ConfluentRegistryClient } from '../../lib/registry/confluent-client.js';
import { EventCodec } from '../../schemas/codec.js';
import type { RequestRouted } from '../../schemas/generated/events.js';
import { freePort, runSwitchyard, startSwitchyard, type ServiceProcess } from '../support/processes.js';
import { kafkaBrokers, requireKafka, uniqueName, waitFor } from '../support/services.js';

/**
 * The serving path on a real Kafka broker with every service in its own process:
 * registry, gateway, router and three workers. Sessions stay on their workers across a
 * router SIGKILL and restart mid-traffic (the new router rebuilds its state from the log),
 * nothing sent during the restart is lost, and a Kafka producer client writing Avro straight
 * to `requests` is served like a gateway request.
 */
describe('serving path across processes on real Kafka', () => {
  const prefix = `${uniqueName('e2e')}.`;
  const home = mkdtempSync(join(tmpdir(), 'sy-e2e-'));
  const env: Record<string, string> = {
    SWITCHYARD_BROKERS: kafkaBrokers().join(','),
    SWITCHYARD_TOPIC_PREFIX: prefix,
    SWITCHYARD_HOME: home,
    SWITCHYARD_LANES: '8',
    SWITCHYARD_LOG_LEVEL: 'warn',
  };
  const procs: ServiceProcess[] = [];
  // This test is about the router rebuilding its state, not about health detection: on a CI
  // machine running every test tier at once a worker process can stall past the default
  // 2 s heartbeat staleness, or look like a latency outlier, and the router would rightly
  // move its sessions. Both are specified in services/router/decide.unit.test.ts.
  const routerFlags = ['--stale-heartbeat-ms', '20000', '--no-ejection'];
  let gatewayUrl = '';
  const start = (name: string, args: string[]) => {
    const p = startSwitchyard(name, args, env, home);
    procs.push(p);
    return p;
  };
  const diagnostics = () => procs.map((p) => `--- ${p.name} (exit ${p.child.exitCode ?? p.child.signalCode ?? 'running'})\n${p.tail(15)}`).join('\n');

  const infer = async (body: Record<string, unknown>) => {
    const res = await fetch(`${gatewayUrl}/v1/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ deadlineMs: 60_000, ...body }) });
    return { status: res.status, body: (await res.json()) as { requestId: string; workerId: string | null; modelVersion: string | null; status: string; error?: unknown } };
  };

  beforeAll(async () => {
    await requireKafka();
    await runSwitchyard(['topics'], env, home);
    const registryPort = await freePort();
    start('registry', ['registry', '--port', String(registryPort)]);
    env.SWITCHYARD_SCHEMA_REGISTRY_URL = `http://127.0.0.1:${registryPort}`;
    await waitFor(async () => (await fetch(`${env.SWITCHYARD_SCHEMA_REGISTRY_URL}/subjects`).catch(() => undefined))?.ok === true, {
      timeoutMs: 60_000,
      what: `the registry process\n${diagnostics()}`,
    });
    await runSwitchyard(['models', 'install'], env, home);
    start('worker-a1', ['worker', '--id', 'worker-a1', '--zone', 'zone-a']);
    start('worker-a2', ['worker', '--id', 'worker-a2', '--zone', 'zone-a']);
    start('worker-b1', ['worker', '--id', 'worker-b1', '--zone', 'zone-b']);
    start('router-1', ['router', '--router-id', 'router-1', ...routerFlags]);
    const gatewayPort = await freePort();
    start('gateway', ['gateway', '--port', String(gatewayPort), '--instance-id', 'gateway-e2e']);
    gatewayUrl = `http://127.0.0.1:${gatewayPort}`;
    await waitFor(async () => (await fetch(`${gatewayUrl}/readyz`).catch(() => undefined))?.ok === true, { timeoutMs: 60_000, what: `the gateway\n${diagnostics()}` });
    // Warm up until requests (no session: spread by power of two choices) have been served by
    // all three workers, so the router's view holds every worker before sessions are placed.
    const servedBy = new Set<string>();
    await waitFor(
      async () => {
        const r = await infer({ model: 'sentiment-small', input: { text: `warm up ${servedBy.size}` }, deadlineMs: 5_000 });
        if (r.status === 200 && r.body.workerId) servedBy.add(r.body.workerId);
        return servedBy.size === 3;
      },
      { timeoutMs: 90_000, intervalMs: 100, what: `every worker to serve a request\n${diagnostics()}` },
    );
  }, 240_000);

  afterAll(async () => {
    await Promise.all(procs.map((p) => p.kill('SIGTERM')));
  });

  it('keeps sessions on their workers across a router crash and restart, losing nothing', async () => {
    const sessions = Array.from({ length: 9 }, (_, i) => `session-${i}`);
    const home1 = new Map<string, string>();
    for (const sessionId of [...sessions, ...sessions]) {
      const r = await infer({ model: 'sentiment-small', input: { text: `hello from ${sessionId}` }, sessionId });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      const prior = home1.get(sessionId);
      if (prior) expect(r.body.workerId).toBe(prior);
      home1.set(sessionId, r.body.workerId!);
    }
    expect(new Set(home1.values()).size).toBeGreaterThan(1);

    // Traffic keeps coming while the router is killed and a new one starts: requests sent in
    // the gap wait in `requests` and are routed by the new router.
    const router1 = procs.find((p) => p.name === 'router-1')!;
    const inGap = infer({ model: 'sentiment-small', input: { text: 'sent while no router runs' }, sessionId: sessions[0] });
    await router1.kill('SIGKILL');
    const gapAlso = infer({ model: 'sentiment-small', input: { text: 'also in the gap' }, sessionId: sessions[1] });
    start('router-2', ['router', '--router-id', 'router-2', ...routerFlags]);
    const gapResults = await Promise.all([inGap, gapAlso]);
    for (const r of gapResults) expect(r.status, JSON.stringify(r.body)).toBe(200);

    for (const sessionId of sessions) {
      const r = await infer({ model: 'sentiment-small', input: { text: `after restart ${sessionId}` }, sessionId });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      expect(r.body.workerId, `${sessionId} moved`).toBe(home1.get(sessionId));
    }

    // The log says who decided what: router-1 before the crash, router-2 after.
    const log = await openKafkaLog({ brokers: kafkaBrokers() });
    try {
      const codec = await EventCodec.create({ registry: new ConfluentRegistryClient({ host: env.SWITCHYARD_SCHEMA_REGISTRY_URL! }), register: false });
      const decisions = topicLayout({ prefix, lanes: 8 }).decisions.name;
      const routed: RequestRouted[] = [];
      const ends = await log.endOffsets(decisions);
      for (let p = 0; p < ends.length; p++) {
        for (const r of await log.read({ topic: decisions, partition: p, from: 0, to: ends[p]! })) routed.push((await codec.decode(r.value!)) as RequestRouted);
      }
      const producers = new Set(routed.map((d) => d.producer));
      expect(producers).toEqual(new Set(['router-1', 'router-2']));
      const afterRestart = routed.filter((d) => d.producer === 'router-2' && d.sessionId !== null);
      expect(afterRestart.length).toBeGreaterThanOrEqual(sessions.length);
      // Every session decision was made on a view that included all three workers' claims.
      for (const d of routed.filter((x) => x.sessionId !== null)) expect(d.candidates.map((c) => c.workerId).sort()).toEqual(['worker-a1', 'worker-a2', 'worker-b1']);
    } finally {
      await log.close();
    }
  }, 240_000);

  it('serves a request a Kafka producer client wrote straight to the requests topic, in the Confluent wire format', async () => {
    const client = new ConfluentClient({ host: env.SWITCHYARD_SCHEMA_REGISTRY_URL! });
    const id = await client.getLatestSchemaId('switchyard.events.InferenceRequested');
    const requestId = uniqueName('kafka-client');
    const value = await client.encode(id, {
      eventId: '01936f2e-0000-7000-8000-000000000001',
      occurredAt: Date.now(),
      requestId,
      traceId: null,
      producer: 'external-kafka-client',
      causationId: null,
      clock: [],
      model: 'sentiment-small',
      modelVersion: null,
      input: Buffer.from(JSON.stringify({ text: 'written by a plain Kafka producer' })),
      contentType: 'application/json',
      parameters: {},
      sessionId: null,
      priority: 'NORMAL',
      deadlineAt: Date.now() + 60_000,
      zone: null,
      idempotencyKey: null,
      tenant: null,
      source: 'KAFKA_CLIENT',
      replyTopic: null,
      allowFallback: true,
      cacheable: true,
      attributes: {},
    });
    const producer = new Kafka({ brokers: kafkaBrokers(), logLevel: logLevel.NOTHING }).producer();
    await producer.connect();
    try {
      await producer.send({ topic: `${prefix}requests`, messages: [{ key: requestId, value }] });
    } finally {
      await producer.disconnect();
    }
    let body: { status?: string; workerId?: string; result?: { output?: unknown } } = {};
    await waitFor(
      async () => {
        const res = await fetch(`${gatewayUrl}/v1/requests/${requestId}`);
        if (res.status !== 200) return false;
        body = (await res.json()) as typeof body;
        return body.status === 'completed';
      },
      { timeoutMs: 60_000, intervalMs: 200, what: `the Kafka client's request to complete\n${diagnostics()}` },
    );
    expect(body.workerId).toMatch(/^worker-/);
    expect(body.result?.output).toBeDefined();
  }, 120_000);
});
