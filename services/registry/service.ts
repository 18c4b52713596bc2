import type { FastifyInstance } from 'fastify';
import type { EventLog } from '../../lib/log/port.js';
import { LogBackedRegistry } from '../../lib/registry/log-backed.js';
import type { Logger } from '../../lib/logger.js';
import { describeAdminAuth, type AdminAuthOptions } from '../../lib/auth/admin.js';
import { buildRegistryApp } from './app.js';

export interface RegistryServiceOptions {
  log: EventLog;
  /** Compacted single-partition topic holding the schemas. @default '_schemas' */
  topic?: string;
  /** @default '127.0.0.1' */
  host?: string;
  /** 0 picks a free port. @default 8081 */
  port?: number;
  logger?: Logger;
  /** The admin token guarding registration, compatibility changes and deletes. @default none: loopback clients only */
  admin?: AdminAuthOptions;
}

export interface RunningRegistry {
  url: string;
  app: FastifyInstance;
  registry: LogBackedRegistry;
  close(): Promise<void>;
}

/** The registry service: the REST API over schemas kept in the log's `_schemas` topic. */
export async function startRegistryService({ log, topic = '_schemas', host = '127.0.0.1', port = 8081, logger, admin = {} }: RegistryServiceOptions): Promise<RunningRegistry> {
  const registry = await LogBackedRegistry.open({ log, topic });
  const app = buildRegistryApp({ registry, admin, ...(logger ? { logger } : {}) });
  const address = await app.listen({ host, port });
  logger?.info({ url: address, host, adminToken: admin.tokenHash !== undefined }, `schema registry: ${describeAdminAuth(admin)} (registration, compatibility changes, deletes)`);
  return { url: address, app, registry, close: () => app.close() };
}
