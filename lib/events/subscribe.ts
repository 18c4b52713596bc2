import { v5 as uuidv5 } from 'uuid';
import { SwitchyardError, errorMessage, isRetriable } from '../errors.js';
import type { EventLog, LogRecord, SubscribeOptions, Subscription } from '../log/port.js';
import type { DeadLetteredInit, SwitchyardEvent, SwitchyardEventInit } from '../../schemas/generated/events.js';

/** What the event consumer needs of a codec (the `EventCodec` in production). */
export interface EventDecoder {
  decode(buf: Buffer): Promise<SwitchyardEvent>;
  encode(event: SwitchyardEventInit): Buffer;
  /** The writer schema of a schema id and its record's full name (what the sink archives). */
  writerSchema?(id: number): Promise<{ subject: string; schema: string }>;
}

/** A decoded event with the record it came from. */
export interface LoggedEvent<E extends SwitchyardEvent = SwitchyardEvent> {
  event: E;
  record: LogRecord;
}

export interface EventBatch {
  topic: string;
  partition: number;
  highWatermark: number;
  events: LoggedEvent[];
  /** The batch's records that did not decode, already on the dead-letter topic (with `deliverUndecodable`). */
  undecodable?: LogRecord[];
}

export interface EventSubscribeOptions extends Omit<SubscribeOptions, 'onBatch'> {
  codec: EventDecoder;
  /** Where undecodable records go, as DeadLettered events with their original bytes. */
  deadLetterTopic: string;
  /** Instance id of the consuming service, the `producer` of DeadLettered events. */
  producer: string;
  /** Clock for DeadLettered.occurredAt. */
  now: () => number;
  /** Called with the decoded events of each batch; the batch commits when it resolves. */
  onEvents: (batch: EventBatch) => Promise<void>;
  /** Told of every record sent to the dead-letter topic. */
  onDeadLetter?: (deadLettered: DeadLetteredInit) => void;
  /**
   * Also hand `onEvents` the records that did not decode (`batch.undecodable`, after their
   * dead letters are appended), calling it for a batch of nothing else too: for a consumer
   * that keeps every record, such as the sink's log archive. @default false
   */
  deliverUndecodable?: boolean;
}

// Namespace for dead-letter event ids (a random UUID fixed once for Switchyard).
const DEAD_LETTER_NAMESPACE = '0f3c7a52-8d2e-4b7e-9a61-2f4c1d9e5b30';

/**
 * A dead-letter event id derived from where the bad record sits and who consumed it, so a
 * batch redelivered after a failure dead-letters the same record under the same id and
 * downstream dedup (the sink's, by eventId) keeps one copy.
 */
export const deadLetterEventId = (group: string, r: Pick<LogRecord, 'topic' | 'partition' | 'offset'>): string =>
  uuidv5(`${group}/${r.topic}/${r.partition}/${r.offset}`, DEAD_LETTER_NAMESPACE);

/**
 * Subscribes to topics of Switchyard events: decodes each record and hands the events to
 * `onEvents`. A record that cannot be decoded (not in the wire format, unknown schema, bad
 * payload, empty value) is appended to the dead-letter topic with its original key, value,
 * headers and the error, and the batch goes on — nothing is dropped silently and one bad
 * record never blocks a partition. A retriable failure (the registry is unreachable) fails
 * the batch instead, so it is redelivered rather than dead-lettered.
 */
export function subscribeEvents(log: EventLog, options: EventSubscribeOptions): Promise<Subscription> {
  const { codec, deadLetterTopic, producer, now, onEvents, onDeadLetter, deliverUndecodable = false, ...subscribe } = options;
  return log.subscribe({
    ...subscribe,
    onBatch: async (batch) => {
      const events: LoggedEvent[] = [];
      const dead: DeadLetteredInit[] = [];
      const undecodable: LogRecord[] = [];
      for (const record of batch.records) {
        try {
          if (record.value === null || record.value.length === 0) {
            throw new SwitchyardError('SY_ERR_CODEC_DECODE', 'record has no value');
          }
          events.push({ event: await codec.decode(record.value), record });
        } catch (err) {
          if (isRetriable(err)) throw err;
          dead.push(deadLetterFor(record, err, subscribe.groupId, producer, now()));
          if (deliverUndecodable) undecodable.push(record);
        }
      }
      if (dead.length > 0) {
        await log.append(
          dead.map((d) => ({ topic: deadLetterTopic, key: d.originalKey ?? null, value: codec.encode(d), headers: { 'sy-error': d.errorCode } })),
        );
        for (const d of dead) onDeadLetter?.(d);
      }
      if (events.length > 0 || undecodable.length > 0) {
        const delivered: EventBatch = { topic: batch.topic, partition: batch.partition, highWatermark: batch.highWatermark, events };
        if (deliverUndecodable) delivered.undecodable = undecodable;
        await onEvents(delivered);
      }
    },
  });
}

export function deadLetterFor(record: LogRecord, err: unknown, group: string, producer: string, now: number): DeadLetteredInit {
  return {
    type: 'DeadLettered',
    eventId: deadLetterEventId(group, record),
    occurredAt: now,
    producer,
    originalTopic: record.topic,
    originalPartition: record.partition,
    originalOffset: record.offset,
    originalKey: record.key,
    originalValue: record.value,
    originalHeaders: record.headers,
    originalTimestamp: record.timestamp,
    errorCode: err instanceof SwitchyardError ? err.code : 'SY_ERR_CODEC_DECODE',
    errorMessage: errorMessage(err),
    consumerGroup: group,
    attempts: 1,
  };
}
