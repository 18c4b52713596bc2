import type { EventLog } from './log/port.js';
import { topicLayout, type TopicName } from './log/topics.js';
import type { TopicSpec } from './log/port.js';
import type { Logger } from './logger.js';
import { silentLogger } from './logger.js';
import type { EventCodec } from '../schemas/codec.js';
import { createEventIdFactory, type EventIdFactory } from '../schemas/event-id.js';

/**
 * What every service shell is given: the log, the codec, the topic names, and the only
 * clock and id source it may use. Pure cores never see this; shells pass `now()` and ids
 * into commands.
 */
export interface ServiceContext {
  log: EventLog;
  codec: EventCodec;
  /** Physical topic specs by logical name (prefix applied). */
  topics: Record<TopicName, TopicSpec>;
  /** Wall clock in ms. @default Date.now */
  now: () => number;
  /** UUIDv7 event ids. */
  newEventId: EventIdFactory;
  logger: Logger;
}

export interface ServiceContextOptions {
  log: EventLog;
  codec: EventCodec;
  /** @default 'switchyard.' */
  topicPrefix?: string;
  /** @default 64 */
  lanes?: number;
  now?: () => number;
  logger?: Logger;
}

export function createServiceContext({ log, codec, topicPrefix = 'switchyard.', lanes = 64, now = Date.now, logger = silentLogger }: ServiceContextOptions): ServiceContext {
  return { log, codec, topics: topicLayout({ prefix: topicPrefix, lanes }), now, newEventId: createEventIdFactory({ now }), logger };
}

/** A short instance id for `producer` fields: `<service>-<6 hex>`. */
export const instanceId = (service: string, random: () => number = Math.random): string =>
  `${service}-${Math.floor(random() * 0xffffff).toString(16).padStart(6, '0')}`;
