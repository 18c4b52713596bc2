import { ConfigResourceTypes, Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kafkaBrokers, requireKafka, uniqueName } from '../../../test/support/services.js';
import type { EventLog } from '../port.js';
import { topicLayout } from '../topics.js';
import { openKafkaLog } from './adapter.js';

// The retention budget (lib/log/retention.ts) as topic configs on a real broker.
describe('kafka adapter retention budget', () => {
  const admin = new Kafka({ brokers: kafkaBrokers(), logLevel: logLevel.NOTHING }).admin();
  const logs: EventLog[] = [];
  beforeAll(async () => {
    await requireKafka();
    await admin.connect();
  });
  afterAll(async () => {
    for (const l of logs) await l.close();
    await admin.disconnect();
  });

  const configsOf = async (names: string[]) => {
    const described = await admin.describeConfigs({
      includeSynonyms: false,
      resources: names.map((name) => ({ type: ConfigResourceTypes.TOPIC, name, configNames: ['retention.ms', 'retention.bytes'] })),
    });
    return (name: string, key: string) => described.resources.find((r) => r.resourceName === name)?.configEntries.find((e) => e.configName === key)?.configValue;
  };

  it('sets retention.bytes and a capped retention.ms on the topics that expire records, and neither on control or sessions', async () => {
    const log = await openKafkaLog({ brokers: kafkaBrokers(), retentionBytes: 512 * 1024 * 1024, maxRetentionMs: 2 * 86_400_000 });
    logs.push(log);
    const layout = topicLayout({ prefix: `${uniqueName('retention')}.`, lanes: 2 });
    await log.ensureTopics(Object.values(layout));
    const config = await configsOf(Object.values(layout).map((t) => t.name));
    // 7 days lowered to the 2-day budget; 6 h heartbeats stay 6 h.
    expect(config(layout.requests.name, 'retention.ms')).toBe(String(2 * 86_400_000));
    expect(config(layout.results.name, 'retention.ms')).toBe(String(2 * 86_400_000));
    expect(config(layout.heartbeats.name, 'retention.ms')).toBe(String(6 * 3_600_000));
    for (const t of [layout.requests, layout.decisions, layout.results, layout.heartbeats, layout.deadletter]) expect(config(t.name, 'retention.bytes')).toBe(String(512 * 1024 * 1024));
    // Kept forever, and compacted: the broker's defaults (-1 bytes), control's retention.ms -1.
    expect(config(layout.control.name, 'retention.ms')).toBe('-1');
    expect(config(layout.control.name, 'retention.bytes')).toBe('-1');
    expect(config(layout.sessions.name, 'retention.bytes')).toBe('-1');
  });

  it('without a budget, each topic keeps its own retention.ms and no size limit', async () => {
    const log = await openKafkaLog({ brokers: kafkaBrokers() });
    logs.push(log);
    const layout = topicLayout({ prefix: `${uniqueName('retention')}.`, lanes: 2 });
    await log.ensureTopics([layout.requests, layout.heartbeats]);
    const config = await configsOf([layout.requests.name, layout.heartbeats.name]);
    expect(config(layout.requests.name, 'retention.ms')).toBe(String(7 * 86_400_000));
    expect(config(layout.requests.name, 'retention.bytes')).toBe('-1');
    expect(config(layout.heartbeats.name, 'retention.ms')).toBe(String(6 * 3_600_000));
  });
});
