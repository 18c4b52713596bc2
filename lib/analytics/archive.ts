/**
 * The log archive's rows (tables in `schemas/clickhouse/migrations/004_log_archive.ts`): what
 * the sink writes for every record it reads, and how replay turns a row back into the record.
 * Pure: no I/O, no clock. Bytes travel as base64 (JSONEachRow cannot carry arbitrary bytes).
 */
import type { LogRecord } from '../log/port.js';
import type { Row } from './port.js';
import { schemaIdOf } from '../../schemas/wire.js';

export const ARCHIVE_TABLES = { records: 'log_records', ids: 'log_ids', schemas: 'log_schemas', topics: 'log_topics' } as const;

/** The archive tables rows are inserted into (`log_ids` is filled by its views). */
export type ArchiveTable = (typeof ARCHIVE_TABLES)['records' | 'schemas' | 'topics'];

/**
 * The envelope fields an archived record is filtered on (from the decoded event). A record
 * that did not decode is archived too, with `UNDECODED` (type and event id empty).
 */
export interface ArchivedEnvelope {
  type: string;
  eventId: string;
  requestId: string | null;
  sessionId: string | null;
  occurredAt: number;
}

/** The envelope of a record that is not an event (it did not decode; its dead letter says why). */
export const UNDECODED: ArchivedEnvelope = Object.freeze({ type: '', eventId: '', requestId: null, sessionId: null, occurredAt: 0 });

/**
 * The last instant a `DateTime` holds (2106-02-07T06:28:15Z). `log_time` only partitions the
 * table: a record timestamp outside 1970…2106 (Kafka allows -1, "no timestamp") is clamped
 * there, and `log_timestamp_ms` keeps it exactly.
 */
const MAX_LOG_TIME_MS = 4_294_967_295_000;

/** A key as text when it is valid UTF-8 (what lookups by id compare), else null. */
function keyText(key: Buffer): string | null {
  const text = key.toString('utf8');
  return Buffer.byteLength(text, 'utf8') === key.length && !text.includes('\uFFFD') ? text : null;
}

/** The `log_records` row of one record. */
export function archiveRow(record: LogRecord, envelope: ArchivedEnvelope): Row {
  const headerKeys: string[] = [];
  const headerValues: string[] = [];
  for (const [k, v] of Object.entries(record.headers)) {
    headerKeys.push(k);
    headerValues.push(v.toString('base64'));
  }
  return {
    log_topic: record.topic,
    log_partition: record.partition,
    log_offset: record.offset,
    log_timestamp_ms: record.timestamp,
    log_time: new Date(Math.min(Math.max(record.timestamp, 0), MAX_LOG_TIME_MS)),
    type: envelope.type,
    event_id: envelope.eventId,
    request_id: envelope.requestId,
    session_id: envelope.sessionId,
    occurred_at_ms: envelope.occurredAt,
    schema_id: schemaIdOf(record.value),
    key_text: record.key === null ? null : keyText(record.key),
    key_base64: record.key === null ? null : record.key.toString('base64'),
    'headers.key': headerKeys,
    'headers.value_base64': headerValues,
    value_base64: record.value === null ? '' : record.value.toString('base64'),
  };
}

/** The `log_schemas` row of a schema id (subject: the record's full name). */
export function archiveSchemaRow(schemaId: number, subject: string, schema: string): Row {
  return { schema_id: schemaId, subject, schema };
}

/** The `log_topics` row of a topic. */
export function archiveTopicRow(topic: string, partitions: number): Row {
  return { log_topic: topic, partitions };
}

/** The columns replay reads back from `log_records`. */
export const ARCHIVED_RECORD_COLUMNS = 'log_topic, log_partition, log_offset, log_timestamp_ms, key_base64, `headers.key`, `headers.value_base64`, value_base64';

export interface ArchivedRecordRow {
  log_topic: string;
  log_partition: number;
  log_offset: number;
  log_timestamp_ms: number;
  key_base64: string | null;
  'headers.key': string[];
  'headers.value_base64': string[];
  value_base64: string;
}

/** A `log_records` row back as the record it archived. An empty value is a tombstone (null). */
export function recordFromArchive(row: ArchivedRecordRow): LogRecord {
  const headers: Record<string, Buffer> = {};
  const keys = row['headers.key'];
  const values = row['headers.value_base64'];
  for (let i = 0; i < keys.length; i++) headers[keys[i]!] = Buffer.from(values[i] ?? '', 'base64');
  return {
    topic: row.log_topic,
    partition: row.log_partition,
    offset: row.log_offset,
    timestamp: row.log_timestamp_ms,
    key: row.key_base64 === null ? null : Buffer.from(row.key_base64, 'base64'),
    value: row.value_base64 === '' ? null : Buffer.from(row.value_base64, 'base64'),
    headers,
  };
}
