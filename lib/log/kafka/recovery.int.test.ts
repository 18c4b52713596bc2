import { fileURLToPath } from 'node:url';
import { Kafka, logLevel, type ConfigResourceTypes } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { servicesScript, spawnScript } from '../../../test/support/processes.js';
import { kafkaBrokers, requireKafka, uniqueName, waitFor } from '../../../test/support/services.js';
import type { EventLog, LogRecord, TopicPartitions } from '../port.js';
import { openKafkaLog } from './adapter.js';

const ADAPTER = fileURLToPath(new URL('./adapter.ts', import.meta.url));
const BROKER_RESOURCE = 4 as ConfigResourceTypes;

/** The broker's `group.min.session.timeout.ms`: the adapter's default session timeout. */
async function brokerMinSessionTimeout(): Promise<number> {
  const admin = new Kafka({ brokers: kafkaBrokers(), logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  try {
    const { brokers } = await admin.describeCluster();
    const { resources } = await admin.describeConfigs({
      includeSynonyms: false,
      resources: [{ type: BROKER_RESOURCE, name: String(brokers[0]!.nodeId), configNames: ['group.min.session.timeout.ms'] }],
    });
    return Number(resources[0]!.configEntries[0]!.configValue);
  } finally {
    await admin.disconnect();
  }
}

/**
 * Recovery on a real broker: the consumer and producer come back within seconds of a broker
 * restart (kafkajs' own backoffs took 7–11 s), and a group member takes over a killed member's
 * partitions within the session timeout (the broker's minimum by default) plus a second.
 *
 * This restarts the broker every integration test shares (through scripts/services.sh, data
 * kept) and waits until it is healthy again before it ends, whatever happens.
 */
describe('kafka recovery on a real broker', () => {
  let log: EventLog;
  /** Deleted at the end: the broker's restart time grows with every partition it keeps. */
  const created: string[] = [];
  const topicFor = (prefix: string) => {
    const name = uniqueName(prefix);
    created.push(name);
    return name;
  };

  beforeAll(async () => {
    await requireKafka();
    // Fails (never skips) when the broker is not the one scripts/services.sh manages.
    await servicesScript('status', 'kafka');
    log = await openKafkaLog({ brokers: kafkaBrokers() });
  });
  afterAll(async () => {
    await log?.close();
    const admin = new Kafka({ brokers: kafkaBrokers(), logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    await admin.deleteTopics({ topics: created, timeout: 30_000 }).catch(() => {});
    await admin.disconnect();
  });

  it('a subscribed consumer and the producer resume within seconds after the broker restarts, losing nothing', async () => {
    // The broker every test shares may take tens of seconds to stop and start (it keeps every
    // topic it ever had): appends wait it out here, so the test measures the return, not the outage.
    const log = await openKafkaLog({ brokers: kafkaBrokers(), appendRetryMs: 180_000 });
    const topic = topicFor('broker-restart');
    const groupId = uniqueName('broker-restart-group');
    await log.ensureTopics([{ name: topic, partitions: 3 }]);
    const delivered = new Map<string, number>(); // value → when delivered
    const sub = await log.subscribe({
      groupId,
      topics: [topic],
      onBatch: async ({ records }) => {
        for (const r of records) if (!delivered.has(r.value!.toString())) delivered.set(r.value!.toString(), Date.now());
      },
    });
    const appended = new Map<string, number>(); // value → when the append resolved
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

    // The broker is back for a producer when a client that never retries can write to the
    // topic, and for a consumer group when its coordinator answers for the group (it loads
    // the groups' offsets first, which takes a while on a broker that kept many of them).
    const probe = new Kafka({ brokers: kafkaBrokers(), logLevel: logLevel.NOTHING, retry: { retries: 0 }, connectionTimeout: 500 });
    const producer = probe.producer();
    let admin = probe.admin();
    let writableAt = 0;
    let coordinatorAt = 0;
    let probing = true;
    let probeError = '';
    const probeUntilBack = async () => {
      const giveUpAt = Date.now() + 150_000;
      while (probing && (writableAt === 0 || coordinatorAt === 0)) {
        if (Date.now() > giveUpAt) throw new Error(`the broker did not come back within 150 s (writable: ${writableAt > 0}; last probe error: ${probeError})`);
        try {
          if (writableAt === 0) {
            await producer.connect();
            await producer.send({ topic, messages: [{ key: 'probe', value: Buffer.from('probe') }] });
            writableAt = Date.now();
          }
          await admin.connect();
          await admin.describeCluster(); // loads the broker pool describeGroups needs
          // Throws while the coordinator is loading or moving.
          await admin.describeGroups([groupId]);
          coordinatorAt = Date.now();
        } catch (err) {
          probeError = `${(err as Error).name}: ${(err as Error).message}`;
          await Promise.all([producer.disconnect().catch(() => {}), admin.disconnect().catch(() => {})]);
          admin = probe.admin();
        }
        if (coordinatorAt === 0) await new Promise((r) => setTimeout(r, 20));
      }
    };

    const restartStarted = Date.now();
    let healthyAt = 0;
    try {
      await servicesScript('down', 'kafka');
      const prober = probeUntilBack();
      const restarted = servicesScript('up', 'kafka').then(() => (healthyAt = Date.now()));
      await prober;
      await restarted;
    } finally {
      probing = false;
      await Promise.all([producer.disconnect().catch(() => {}), admin.disconnect().catch(() => {})]);
      // Whatever failed above, the next tests get a healthy broker.
      if (healthyAt === 0) await servicesScript('up', 'kafka');
    }
    expect(writableAt).toBeGreaterThan(0);
    expect(coordinatorAt).toBeGreaterThan(0);
    const firstAfter = (m: Map<string, number>, t: number) => Math.min(...[...m.values()].filter((x) => x >= t));
    await waitFor(() => [...delivered.values()].some((t) => t >= writableAt) && [...appended.values()].some((t) => t >= writableAt), {
      timeoutMs: 30_000,
      what: 'delivery and appends after the restart',
    });
    const producerResumedMs = firstAfter(appended, writableAt) - writableAt;
    const consumerResumedMs = firstAfter(delivered, coordinatorAt) - coordinatorAt;
    appending = false;
    await appender;
    // Every append that resolved is delivered (at least once), none failed.
    await waitFor(() => appended.size + failures.length === sent, { timeoutMs: 30_000, what: 'every append to settle' });
    await waitFor(() => [...appended.keys()].every((v) => delivered.has(v)), { timeoutMs: 30_000, what: 'every appended record to be delivered' });
    await sub.close();
    await log.close();
    process.stderr.write(
      `[kafka recovery] broker stopped and started in ${((writableAt - restartStarted) / 1000).toFixed(1)} s; writable → group coordinator loaded ${coordinatorAt - writableAt} ms ` +
        `(services.sh said healthy at ${healthyAt - writableAt} ms); producer appending ${producerResumedMs} ms after writable, consumer delivering ${consumerResumedMs} ms after the coordinator; ` +
        `${sent} appended, ${failures.length} failed, all delivered\n`,
    );
    expect(failures).toEqual([]);
    expect(producerResumedMs).toBeLessThan(5_000);
    expect(consumerResumedMs).toBeLessThan(5_000);
  }, 300_000);

  it('a batch handler slower than the session timeout keeps its partitions (heartbeats go on during the batch)', async () => {
    const sessionTimeoutMs = await brokerMinSessionTimeout();
    const topic = topicFor('slow-handler');
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
    // A member the coordinator had expired would rejoin (a second assignment) and get the
    // uncommitted batch again.
    await new Promise((r) => setTimeout(r, 500));
    await sub.close();
    expect({ assignments: assignments.length, deliveries }).toEqual({ assignments: 1, deliveries: [0] });
  }, 60_000);

  it("a new group member takes over a SIGKILLed member's partitions within the session timeout + 1 s", async () => {
    const sessionTimeoutMs = await brokerMinSessionTimeout();
    const topic = topicFor('takeover');
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

    // The other member: a process of its own, with the adapter's defaults, killed for real.
    const script = `
      const { openKafkaLog } = await import(${JSON.stringify(ADAPTER)});
      const log = await openKafkaLog({ brokers: ${JSON.stringify(kafkaBrokers())} });
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
      // Records on the dead member's partitions now reach the survivor.
      await log.append(theirs.map((p) => ({ topic, partition: p, value: Buffer.from(`after the kill ${p}`) })));
      await waitFor(() => theirs.every((p) => seen.some((r) => r.partition === p && r.value!.toString() === `after the kill ${p}`)), { what: "the dead member's partitions to deliver to the survivor" });
      const deliveringMs = Date.now() - killedAt;
      process.stderr.write(`[kafka recovery] session timeout ${sessionTimeoutMs} ms (the broker's minimum): partitions taken over ${tookOverMs} ms after the SIGKILL, delivering after ${deliveringMs} ms\n`);
      expect(tookOverMs).toBeLessThan(sessionTimeoutMs + 1_000);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await survivor.close();
    }
  }, 120_000);
});
