import { createHash } from 'node:crypto';
import { v5 as uuidv5 } from 'uuid';
import { SwitchyardError, errorMessage, isRetriable } from '../errors.js';
import type { EventLog, LogRecord, SubscribeOptions, Subscription } from '../log/port.js';
import type { TopicName } from '../log/topics.js';
import type { DeadLetteredInit, SwitchyardEvent, SwitchyardEventInit } from '../../schemas/generated/events.js';

/** What the event consumer needs of a codec (the `EventCodec` in production). */
export interface EventDecoder {
  decode(buf: Buffer): Promise<SwitchyardEvent>;
  /**
   * `decode` without a promise when it needs no registry round trip (the schema id is known):
   * undefined otherwise, and the caller awaits `decode`. Throws what `decode` rejects with.
   */
  decodeKnown?(buf: Buffer): SwitchyardEvent | undefined;
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

/**
 * What a consumer does with a record of a topic that does not decode: `'write'` its dead letter
 * (the topic's one owner), or `'skip'` it — count it and go on — because another consumer of the
 * topic writes it. One writer per topic gives a bad record one dead letter, not one per group.
 */
export type DeadLetterDuty = 'write' | 'skip';

/** The consumers that own dead letters, one per topic (`DEAD_LETTER_OWNERS`). */
export type DeadLetterOwner = 'router' | 'worker' | 'sink';

/**
 * Who writes the dead letter of a bad record, by topic: requests → the router group (it
 * consumes every request once), decisions → the lane's worker, every other topic → the sink
 * (the one consumer of every topic; it also archives the raw record). Any other consumer skips.
 */
export const DEAD_LETTER_OWNERS: Readonly<Record<TopicName, DeadLetterOwner>> = {
  requests: 'router',
  decisions: 'worker',
  results: 'sink',
  heartbeats: 'sink',
  control: 'sink',
  sessions: 'sink',
  deadletter: 'sink',
};

/**
 * Largest `requests` record decoded, in bytes. A routing decision carries its request (plus
 * candidates, clock and pending decisions, tens of KB at most), and must itself fit in a log
 * record: Kafka's default `message.max.bytes` is 1,048,588. A larger request could never be
 * dispatched, and a router that tried would fail its batch on every redelivery; it is a bad
 * record (`SY_ERR_CODEC_TOO_LARGE`) instead. Other topics have no limit here (the log's own).
 */
export const MAX_REQUEST_RECORD_BYTES = 900_000;

/**
 * Most bytes of an original value a dead letter carries: with its envelope it must fit in a
 * log record (Kafka's default 1,048,588). A longer value (a record between this and the
 * broker's limit) is cut, and the dead letter's message says so, with the full length and
 * sha256.
 */
export const MAX_DEAD_LETTER_VALUE_BYTES = 1_000_000;

/** The dead-letter rules of one consumer: its duty and size limit per topic. */
export interface DeadLetterPolicy {
  duty(topic: string): DeadLetterDuty;
  /** Records with a larger value are not decoded; they are bad records (`SY_ERR_CODEC_TOO_LARGE`). */
  maxRecordBytes(topic: string): number;
}

/**
 * The dead-letter policy of `consumer` over the topics of `layout`: it writes the dead letters
 * of the topics `DEAD_LETTER_OWNERS` gives it and skips the others'; `requests` records above
 * `maxRequestBytes` are bad for every consumer, so the sink skips (and archives) what the router
 * dead-letters.
 */
export function deadLetterPolicy(
  consumer: DeadLetterOwner | 'other',
  layout: Readonly<Record<TopicName, { name: string }>>,
  { maxRequestBytes = MAX_REQUEST_RECORD_BYTES }: { maxRequestBytes?: number } = {},
): DeadLetterPolicy {
  const owner = new Map<string, DeadLetterOwner>();
  for (const [name, spec] of Object.entries(layout) as [TopicName, { name: string }][]) owner.set(spec.name, DEAD_LETTER_OWNERS[name]);
  return {
    duty: (topic) => (owner.get(topic) === consumer ? 'write' : 'skip'),
    maxRecordBytes: (topic) => (topic === layout.requests.name ? maxRequestBytes : Number.POSITIVE_INFINITY),
  };
}

/** Records of a subscription that did not decode: dead-lettered here, or skipped (another consumer owns them). */
export interface UndecodableCounts {
  deadLettered: number;
  skipped: number;
}

export interface EventSubscription extends Subscription {
  undecodable(): UndecodableCounts;
}

export interface EventSubscribeOptions extends Omit<SubscribeOptions, 'onBatch'> {
  codec: EventDecoder;
  /** Where undecodable records go, as DeadLettered events with their original bytes. */
  deadLetterTopic: string;
  /**
   * Whether this consumer writes the dead letters of the topics it reads or skips them: the
   * topic's owner writes, every other consumer skips (`deadLetterPolicy`, `DEAD_LETTER_OWNERS`).
   * `'write'` / `'skip'` apply to every topic, with no size limit. Required: every consumer says.
   */
  deadLetter: DeadLetterDuty | DeadLetterPolicy;
  /** Instance id of the consuming service, the `producer` of DeadLettered events. */
  producer: string;
  /** Clock for DeadLettered.occurredAt. */
  now: () => number;
  /** Called with the decoded events of each batch; the batch commits when it resolves. */
  onEvents: (batch: EventBatch) => Promise<void>;
  /** Told of every record this consumer sent to the dead-letter topic. */
  onDeadLetter?: (deadLettered: DeadLetteredInit) => void;
  /** Told of every record that did not decode and that another consumer dead-letters. */
  onSkipped?: (record: LogRecord, errorCode: string) => void;
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
 * A dead-letter event id derived from where the bad record sits, and nothing else: a batch
 * redelivered after a failure, or a second writer (another group, a sink dead-lettering a row
 * ClickHouse refused), names the record with the same id, and downstream dedup (the sink's, by
 * eventId) keeps one copy.
 */
export const deadLetterEventId = (r: Pick<LogRecord, 'topic' | 'partition' | 'offset'>): string => uuidv5(`${r.topic}/${r.partition}/${r.offset}`, DEAD_LETTER_NAMESPACE);

/**
 * Subscribes to topics of Switchyard events: decodes each record and hands the events to
 * `onEvents`. A record that cannot be decoded (not in the wire format, unknown schema, bad
 * payload, empty value, larger than the topic allows) is appended to the dead-letter topic with
 * its original key, value, headers and the error by the topic's one owner (`deadLetter`), skipped
 * and counted by every other consumer; either way the batch goes on — nothing is dropped
 * silently and one bad record never blocks a partition. A retriable failure (the registry is
 * unreachable) fails the batch instead, so it is redelivered rather than dead-lettered.
 */
export async function subscribeEvents(log: EventLog, options: EventSubscribeOptions): Promise<EventSubscription> {
  const { codec, deadLetterTopic, deadLetter, producer, now, onEvents, onDeadLetter, onSkipped, deliverUndecodable = false, ...subscribe } = options;
  const policy: DeadLetterPolicy = typeof deadLetter === 'string' ? { duty: () => deadLetter, maxRecordBytes: () => Number.POSITIVE_INFINITY } : deadLetter;
  const counts: UndecodableCounts = { deadLettered: 0, skipped: 0 };
  const subscription = await log.subscribe({
    ...subscribe,
    onBatch: async (batch) => {
      const events: LoggedEvent[] = [];
      const dead: DeadLetteredInit[] = [];
      const skipped: { record: LogRecord; code: string }[] = [];
      const undecodable: LogRecord[] = [];
      const maxBytes = policy.maxRecordBytes(batch.topic);
      for (const record of batch.records) {
        try {
          if (record.value === null || record.value.length === 0) {
            throw new SwitchyardError('SY_ERR_CODEC_DECODE', 'record has no value');
          }
          if (record.value.length > maxBytes) {
            throw new SwitchyardError('SY_ERR_CODEC_TOO_LARGE', `record of ${record.value.length} bytes is larger than the ${maxBytes} bytes ${record.topic} allows`);
          }
          events.push({ event: codec.decodeKnown?.(record.value) ?? (await codec.decode(record.value)), record });
        } catch (err) {
          if (isRetriable(err)) throw err;
          if (policy.duty(record.topic) === 'write') dead.push(deadLetterFor(record, err, subscribe.groupId, producer, now()));
          else skipped.push({ record, code: err instanceof SwitchyardError ? err.code : 'SY_ERR_CODEC_DECODE' });
          if (deliverUndecodable) undecodable.push(record);
        }
      }
      if (dead.length > 0) {
        await log.append(
          dead.map((d) => ({ topic: deadLetterTopic, key: d.originalKey ?? null, value: codec.encode(d), headers: { 'sy-error': d.errorCode } })),
        );
        // Counted once written; a redelivered batch counts its dead letters again.
        counts.deadLettered += dead.length;
        for (const d of dead) onDeadLetter?.(d);
      }
      counts.skipped += skipped.length;
      for (const { record, code } of skipped) onSkipped?.(record, code);
      if (events.length > 0 || undecodable.length > 0) {
        const delivered: EventBatch = { topic: batch.topic, partition: batch.partition, highWatermark: batch.highWatermark, events };
        if (deliverUndecodable) delivered.undecodable = undecodable;
        await onEvents(delivered);
      }
    },
  });
  return { assigned: () => subscription.assigned(), close: () => subscription.close(), undecodable: () => ({ ...counts }) };
}

/**
 * The DeadLettered event of `record`, written by `group`. Its id is the record's position's
 * (`deadLetterEventId`); a value longer than `MAX_DEAD_LETTER_VALUE_BYTES` is cut to fit in a
 * log record, and the message says so.
 */
export function deadLetterFor(record: LogRecord, err: unknown, group: string, producer: string, now: number): DeadLetteredInit {
  let originalValue = record.value;
  let message = errorMessage(err);
  if (originalValue !== null && originalValue.length > MAX_DEAD_LETTER_VALUE_BYTES) {
    const sha256 = createHash('sha256').update(originalValue).digest('hex');
    message += ` (original value of ${originalValue.length} bytes, sha256 ${sha256}, cut to its first ${MAX_DEAD_LETTER_VALUE_BYTES} bytes)`;
    originalValue = originalValue.subarray(0, MAX_DEAD_LETTER_VALUE_BYTES);
  }
  return {
    type: 'DeadLettered',
    eventId: deadLetterEventId(record),
    occurredAt: now,
    producer,
    originalTopic: record.topic,
    originalPartition: record.partition,
    originalOffset: record.offset,
    originalKey: record.key,
    originalValue,
    originalHeaders: record.headers,
    originalTimestamp: record.timestamp,
    errorCode: err instanceof SwitchyardError ? err.code : 'SY_ERR_CODEC_DECODE',
    errorMessage: message,
    consumerGroup: group,
    attempts: 1,
  };
}
