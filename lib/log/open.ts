import { join } from 'node:path';
import type { SwitchyardConfig } from '../config.js';
import type { Logger } from '../logger.js';
import { openEmbeddedLog } from './embedded/index.js';
import { openKafkaLog } from './kafka/index.js';
import type { EventLog } from './port.js';

/** The deployment's log: Kafka when brokers are configured, else the embedded log under `home/log`. */
export async function openLog(config: Pick<SwitchyardConfig, 'brokers' | 'home' | 'fsync' | 'kafkaSessionTimeoutMs' | 'kafkaRetryMaxMs'>, logger?: Logger): Promise<EventLog> {
  if (config.brokers.length > 0) {
    const { kafkaSessionTimeoutMs: sessionTimeoutMs, kafkaRetryMaxMs: retryMaxMs } = config;
    return openKafkaLog({ brokers: config.brokers, ...(sessionTimeoutMs !== undefined ? { sessionTimeoutMs } : {}), ...(retryMaxMs !== undefined ? { retryMaxMs } : {}), ...(logger ? { logger } : {}) });
  }
  return openEmbeddedLog({ dir: join(config.home, 'log'), fsync: config.fsync });
}
