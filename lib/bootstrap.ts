import type { SwitchyardConfig } from './config.js';
import { openLog } from './log/open.js';
import type { EventLog } from './log/port.js';
import type { Logger } from './logger.js';
import { silentLogger } from './logger.js';
import { ConfluentRegistryClient } from './registry/confluent-client.js';
import { LogBackedRegistry } from './registry/log-backed.js';
import type { SchemaRegistry } from './registry/port.js';
import { createServiceContext, type ServiceContext } from './runtime.js';
import { EventCodec } from '../schemas/codec.js';

export interface Runtime {
  config: SwitchyardConfig;
  log: EventLog;
  registry: SchemaRegistry;
  ctx: ServiceContext;
  close(): Promise<void>;
}

/**
 * Opens what every process needs: the log (embedded or Kafka), the schema registry (a
 * Confluent-compatible URL when configured, else schemas kept in the log's own compacted
 * `_schemas` topic, so schema ids live as long as the data that names them), the codec,
 * and the Switchyard topics (created when missing).
 */
export async function openRuntime(config: SwitchyardConfig, options: { logger?: Logger; now?: () => number } = {}): Promise<Runtime> {
  return runtimeOn(config, await openLog(config, options.logger), options);
}

/**
 * `openRuntime` over a log already open: another thread's log served to this one (a service
 * thread of `switchyard up`, `lib/log/thread`). Closing the runtime closes `log`.
 */
export async function runtimeOn(config: SwitchyardConfig, log: EventLog, { logger = silentLogger, now = Date.now }: { logger?: Logger; now?: () => number } = {}): Promise<Runtime> {
  try {
    const registry: SchemaRegistry = config.schemaRegistryUrl
      ? new ConfluentRegistryClient({ host: config.schemaRegistryUrl })
      : await LogBackedRegistry.open({ log, topic: `${config.topicPrefix}_schemas` });
    const codec = await EventCodec.create({ registry });
    const ctx = createServiceContext({ log, codec, topicPrefix: config.topicPrefix, lanes: config.lanes, now, logger });
    await log.ensureTopics(Object.values(ctx.topics));
    return { config, log, registry, ctx, close: () => log.close() };
  } catch (err) {
    await log.close();
    throw err;
  }
}
