import { join } from 'node:path';
import type { KafkaClient, SwitchyardConfig } from '../config.js';
import type { Logger } from '../logger.js';
import { openEmbeddedLog } from './embedded/index.js';
import { openKafkaLog, type KafkaLogOptions } from './kafka/index.js';
import { openPlatformaticLog, type PlatformaticLogOptions } from './platformatic/index.js';
import type { EventLog } from './port.js';

/**
 * The deployment's log: Kafka when brokers are configured, else the embedded log under
 * `home/log`. Either applies the retention budget (`retentionBytes`, `retentionMs`; see
 * `SwitchyardConfig`) to the topics that expire records. Kafka is reached with the configured
 * TLS and SASL settings (`kafkaTls`, `kafkaSasl`), if any, through the configured client library
 * (`kafkaClient`: @platformatic/kafka unless it says `kafkajs`).
 */
export async function openLog(
  config: Pick<SwitchyardConfig, 'brokers' | 'home' | 'fsync' | 'kafkaSessionTimeoutMs' | 'kafkaRetryMaxMs' | 'kafkaClient' | 'kafkaTls' | 'kafkaSasl' | 'retentionBytes' | 'retentionMs'>,
  logger?: Logger,
): Promise<EventLog> {
  const retention = { retentionBytes: config.retentionBytes ?? -1, maxRetentionMs: config.retentionMs ?? -1 };
  if (config.brokers.length > 0) {
    const { kafkaSessionTimeoutMs: sessionTimeoutMs, kafkaRetryMaxMs: retryMaxMs } = config;
    const { kafkaTls: tls, kafkaSasl: sasl } = config;
    const options = { brokers: config.brokers, ...retention, ...(tls ? { tls } : {}), ...(sasl ? { sasl } : {}), ...(sessionTimeoutMs !== undefined ? { sessionTimeoutMs } : {}), ...(retryMaxMs !== undefined ? { retryMaxMs } : {}), ...(logger ? { logger } : {}) };
    return openKafkaClientLog(config.kafkaClient, options);
  }
  return openEmbeddedLog({ dir: join(config.home, 'log'), fsync: config.fsync, ...retention });
}

/** The Kafka log through the client library `client` names: @platformatic/kafka unless it says `kafkajs`. */
export function openKafkaClientLog(client: KafkaClient | undefined, options: KafkaLogOptions & PlatformaticLogOptions): Promise<EventLog> {
  return client === 'kafkajs' ? openKafkaLog(options) : openPlatformaticLog(options);
}
