import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Admin, Producer } from '@platformatic/kafka';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, spawnScript } from '../../../test/support/processes.js';
import { uniqueName, waitFor } from '../../../test/support/services.js';
import type { EventLog, LogRecord, TopicPartitions } from '../port.js';
import { openPlatformaticLog } from './adapter.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const SERVICES = join(ROOT, 'scripts/services.sh');
const ADAPTER = fileURLToPath(new URL('./adapter.ts', import.meta.url));

/**
 * Recovery of the @platformatic/kafka adapter on a real broker — the kafkajs adapter's
 * recovery.int.test.ts, with the same bounds: the consumer and the producer come back within
 * seconds of a broker restart losing nothing, a slow batch keeps its partitions, and a member
 * takes over a SIGKILLed member's partitions within the session timeout plus a second.
 *
 * Against a plaintext broker of its own (its own directory and ports, started and restarted with
 * scripts/services.sh), so the broker every other test shares is never restarted.
 */
describe('kafka recovery through @platformatic/kafka', () => {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-plt-recovery-'));
  let env: NodeJS.ProcessEnv;
  let brokers: string[];
  let log: EventLog;
  let sessionTimeoutMs: number;

  const services = (command: 'up' | 'down' | 'status'): Promise<string> =>
    new Promise((ok, fail) => {
      execFile('bash', [SERVICES, command, 'kafka'], { env, timeout: 150_000 }, (err, stdout, stderr) => {
        if (err) fail(new Error(`services.sh ${command} kafka (private broker) failed: ${err.message}\n${stdout}\n${stderr}`));
        else ok(stdout);
      });
    });

  beforeAll(async () => {
    const [port, controllerPort] = [await freePort(), await freePort()];
    brokers = [`127.0.0.1:${port}`];
    env = {
      ...process.env,
      SWITCHYARD_SERVICES_DIR: dir,
      SWITCHYARD_KAFKA_PORT: String(port),
      SWITCHYARD_KAFKA_CONTROLLER_PORT: String(controllerPort),
      SWITCHYARD_KAFKA_LIB_DIR: process.env.SWITCHYARD_KAFKA_LIB_DIR ?? join(ROOT, '.switchyard/services/kafka/lib'),
      SWITCHYARD_KAFKA_HEAP: '512m',
      SWITCHYARD_SERVICES_TIMEOUT: '90',
    };
    await services('up');
    const admin = new Admin({ clientId: 'recovery-test', bootstrapBrokers: brokers });
    try {
      const { brokers: nodes } = await admin.metadata({ topics: [] });
      const [described] = await admin.describeConfigs({ resources: [{ resourceType: 4, resourceName: String([...nodes.keys()][0]), configurationKeys: ['group.min.session.timeout.ms'] }] });
      sessionTimeoutMs = Number(described!.configs[0]!.value);
    } finally {
      await admin.close();
    }
    log = await openPlatformaticLog({ brokers });
  }, 180_000);

  afterAll(async () => {
    await log?.close();
    if (env) await services('down').catch((err: unknown) => console.error(err));
    rmSync(dir, { recursive: true, force: true });
  }, 90_000);

  it('a subscribed consumer and the producer resume within seconds after the broker restarts, losing nothing', async () => {
    const log = await openPlatformaticLog({ brokers, appendRetryMs: 180_000 });
    const topic = uniqueName('broker-restart');
    const groupId = uniqueName('broker-restart-group');
    await log.ensureTopics([{ name: topic, partitions: 3 }]);
    const delivered = new Map<string, number>();
    const sub = await log.subscribe({
      groupId,
      topics: [topic],
      onBatch: async ({ records }) => {
        for (const r of records) if (!delivered.has(r.value!.toString())) delivered.set(r.value!.toString(), Date.now());
      },
    });
    const appended = new Map<string, number>();
    const failures: string[] = [];
    let sent = 0;
    let appending = true;
    const appender = (async () => {
      while (appending) {
        const value = String(sent++);
        log.append([{ topic, key: value, value: Buffer.from(value) }]).then(
          () => appended.set(value, Date.now()),
          (err: Error) => failures.push(`${value}: ${err.message}`),
        );
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    await waitFor(() => delivered.size >= 20, { what: 'traffic before the restart' });

    // Back for a producer when a client that never retries can write to the topic; back for the
    // group when its coordinator answers for it.
    let writableAt = 0;
    let coordinatorAt = 0;
    let probing = true;
    let probeError = '';
    const probeUntilBack = async () => {
      const giveUpAt = Date.now() + 150_000;
      while (probing && (writableAt === 0 || coordinatorAt === 0)) {
        if (Date.now() > giveUpAt) throw new Error(`the broker did not come back within 150 s (last probe error: ${probeError})`);
        const producer = new Producer({ clientId: 'probe', bootstrapBrokers: brokers, retries: 0, connectTimeout: 500 });
        const admin = new Admin({ clientId: 'probe', bootstrapBrokers: brokers, retries: 0, connectTimeout: 500 });
        try {
          if (writableAt === 0) {
            await producer.send({ messages: [{ topic, key: Buffer.from('probe'), value: Buffer.from('probe') }] });
            writableAt = Date.now();
          }
          await admin.describeGroups({ groups: [groupId] });
          coordinatorAt = Date.now();
        } catch (err) {
          probeError = (err as Error).message;
        } finally {
          await Promise.allSettled([producer.close(), admin.close()]);
        }
        if (coordinatorAt === 0) await new Promise((r) => setTimeout(r, 20));
      }
    };

    const restartStarted = Date.now();
    try {
      await services('down');
      const prober = probeUntilBack();
      await services('up');
      await prober;
    } finally {
      probing = false;
    }
    const firstAfter = (m: Map<string, number>, t: number) => Math.min(...[...m.values()].filter((x) => x >= t));
    await waitFor(() => [...delivered.values()].some((t) => t >= coordinatorAt) && [...appended.values()].some((t) => t >= writableAt), {
      timeoutMs: 30_000,
      what: 'delivery and appends after the restart',
    });
    const producerResumedMs = firstAfter(appended, writableAt) - writableAt;
    const consumerResumedMs = firstAfter(delivered, coordinatorAt) - coordinatorAt;
    appending = false;
    await appender;
    await waitFor(() => appended.size + failures.length === sent, { timeoutMs: 30_000, what: 'every append to settle' });
    await waitFor(() => [...appended.keys()].every((v) => delivered.has(v)), { timeoutMs: 30_000, what: 'every appended record to be delivered' });
    await sub.close();
    await log.close();
    process.stderr.write(
      `[platformatic recovery] broker stopped and started in ${((writableAt - restartStarted) / 1000).toFixed(1)} s; writable → group coordinator answering ${coordinatorAt - writableAt} ms; ` +
        `producer appending ${producerResumedMs} ms after writable, consumer delivering ${consumerResumedMs} ms after the coordinator; ${sent} appended, ${failures.length} failed, all delivered\n`,
    );
    expect(failures).toEqual([]);
    expect(producerResumedMs).toBeLessThan(5_000);
    expect(consumerResumedMs).toBeLessThan(5_000);
  }, 300_000);

  it('a batch handler slower than the session timeout keeps its partitions (heartbeats go on during the batch)', async () => {
    const topic = uniqueName('slow-handler');
    const groupId = uniqueName('slow-handler-group');
    await log.ensureTopics([{ name: topic, partitions: 1 }]);
    await log.append([{ topic, partition: 0, value: Buffer.from('slow') }]);
    const assignments: TopicPartitions[][] = [];
    const deliveries: number[] = [];
    const sub = await log.subscribe({
      groupId,
      topics: [topic],
      onAssigned: (a) => assignments.push(a),
      onBatch: async ({ records }) => {
        deliveries.push(...records.map((r) => r.offset));
        await new Promise((r) => setTimeout(r, sessionTimeoutMs + 1_500));
      },
    });
    await waitFor(async () => (await log.committedOffsets(groupId, topic))[0] === 1, { timeoutMs: sessionTimeoutMs * 4 + 10_000, what: 'the slow batch to commit' });
    await new Promise((r) => setTimeout(r, 500));
    await sub.close();
    expect({ assignments: assignments.length, deliveries }).toEqual({ assignments: 1, deliveries: [0] });
  }, 60_000);

  it("a new group member takes over a SIGKILLed member's partitions within the session timeout + 1 s", async () => {
    const topic = uniqueName('takeover');
    const groupId = uniqueName('takeover-group');
    await log.ensureTopics([{ name: topic, partitions: 4 }]);
    let assigned: TopicPartitions[] = [];
    const assignedAt: { at: number; partitions: number[] }[] = [];
    const seen: LogRecord[] = [];
    const survivor = await log.subscribe({
      groupId,
      topics: [topic],
      onAssigned: (a) => {
        assigned = a;
        assignedAt.push({ at: Date.now(), partitions: a.flatMap((tp) => tp.partitions) });
      },
      onBatch: async ({ records }) => void seen.push(...records),
    });
    const script = `
      const { openPlatformaticLog } = await import(${JSON.stringify(ADAPTER)});
      const log = await openPlatformaticLog({ brokers: ${JSON.stringify(brokers)} });
      await log.subscribe({ groupId: ${JSON.stringify(groupId)}, topics: [${JSON.stringify(topic)}], onAssigned: (a) => console.log('assigned ' + JSON.stringify(a)), onBatch: async () => {} });
    `;
    const { child, output, exited } = spawnScript(script);
    try {
      const mine = () => assigned.flatMap((tp) => tp.partitions);
      await waitFor(() => mine().length === 2 && /assigned \[\{.*"partitions":\[\d+,\d+\]/.test(output()), { timeoutMs: 60_000, what: `the two members to share the partitions\n${output()}` });
      const theirs = [0, 1, 2, 3].filter((p) => !mine().includes(p));
      child.kill('SIGKILL');
      const killedAt = Date.now();
      await exited;
      await waitFor(() => mine().length === 4, { timeoutMs: sessionTimeoutMs + 10_000, intervalMs: 5, what: 'the survivor to take every partition' });
      const tookOverMs = assignedAt.at(-1)!.at - killedAt;
      await log.append(theirs.map((p) => ({ topic, partition: p, value: Buffer.from(`after the kill ${p}`) })));
      await waitFor(() => theirs.every((p) => seen.some((r) => r.partition === p && r.value!.toString() === `after the kill ${p}`)), { what: "the dead member's partitions to deliver to the survivor" });
      const deliveringMs = Date.now() - killedAt;
      process.stderr.write(`[platformatic recovery] session timeout ${sessionTimeoutMs} ms: partitions taken over ${tookOverMs} ms after the SIGKILL, delivering after ${deliveringMs} ms\n`);
      expect(tookOverMs).toBeLessThan(sessionTimeoutMs + 1_000);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await survivor.close();
    }
  }, 120_000);
});
