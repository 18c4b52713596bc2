import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type Cluster } from '../../cli/cluster.js';
import { openRuntime, type Runtime } from '../../lib/bootstrap.js';
import { tempDir } from '../../test/support/log-dir.js';
import { kafkaBrokers, requireKafka, uniqueName } from '../../test/support/services.js';
import type { LiveStatus } from './service.js';

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, '..', '..');

/**
 * `switchyard status --brokers …` on the real broker: a cluster runs in this process on Kafka
 * (topics under a prefix of its own) and the command, another process, folds the same topics
 * while it runs — Kafka, unlike the embedded log, is read by many processes at once.
 */
describe('switchyard status on Kafka', () => {
  const prefix = `${uniqueName('status')}.`;
  const SENT = 6;
  let home: { dir: string; remove: () => Promise<void> };
  let rt: Runtime;
  let cluster: Cluster;

  beforeAll(async () => {
    await requireKafka();
    home = await tempDir('sy-status-kafka-');
    rt = await openRuntime({ brokers: kafkaBrokers(), home: home.dir, topicPrefix: prefix, lanes: 4, schemaRegistryUrl: undefined, clickhouseUrl: undefined, fsync: 'never', logLevel: 'warn' });
    cluster = await startCluster(rt, { workers: [{ workerId: 'kw-1', zone: 'zone-a' }, { workerId: 'kw-2', zone: 'zone-b' }], gateway: { port: 0 } });
    for (let i = 0; i < SENT; i++) {
      const res = await fetch(`${cluster.gateway!.url}/v1/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'sentiment-small', input: { text: `k ${i}` } }) });
      expect(res.status).toBe(200);
    }
  });

  afterAll(async () => {
    await cluster?.close();
    await rt?.close();
    await home?.remove();
    // The shared broker keeps every topic it ever had: delete this test's.
    const admin = new Kafka({ brokers: kafkaBrokers(), logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    try {
      const mine = (await admin.listTopics()).filter((t) => t.startsWith(prefix));
      if (mine.length > 0) await admin.deleteTopics({ topics: mine, timeout: 30_000 });
    } finally {
      await admin.disconnect();
    }
  });

  it('prints the document folded from the topics while the cluster runs', async () => {
    const { stdout } = await run(process.execPath, ['--import', 'tsx', 'cli/main.ts', '--brokers', kafkaBrokers().join(','), '--prefix', prefix, '--json', 'status'], {
      cwd: ROOT,
      env: { ...process.env, NO_COLOR: '1', SWITCHYARD_ADMIN_TOKEN: '' },
      maxBuffer: 32 * 1024 * 1024,
    });
    const doc = JSON.parse(stdout) as LiveStatus;
    expect(doc.source).toMatchObject({ kind: 'kafka', error: null });
    expect(doc.members.map((m) => [m.workerId, m.status, m.health]).sort()).toEqual([
      ['kw-1', 'live', 'ok'],
      ['kw-2', 'live', 'ok'],
    ]);
    expect(doc.lanes).toMatchObject({ total: 4, held: 2 });
    expect(doc.controller).toMatchObject({ epoch: 1, leader: 'controller-1' });
    expect(doc.recent.completed).toBe(SENT);
  });
});
