import { describe, expect, it } from 'vitest';
import type { LogRecord } from '../log/port.js';
import { UNDECODED, archiveRow, recordFromArchive, type ArchivedRecordRow } from './archive.js';
import { schemaIdOf } from '../../schemas/wire.js';

const record = (over: Partial<LogRecord> = {}): LogRecord => ({
  topic: 'switchyard.requests',
  partition: 3,
  offset: 41,
  timestamp: 1_767_261_600_123,
  key: Buffer.from('session-1'),
  value: Buffer.from([0, 0, 0, 0, 7, 2, 4, 6]),
  headers: { 'sy-trace': Buffer.from([0xff, 0x00, 0x01]), plain: Buffer.from('x') },
  ...over,
});

/** What ClickHouse gives back for the columns replay reads. */
const back = (row: Record<string, unknown>): ArchivedRecordRow => ({
  log_topic: row.log_topic as string,
  log_partition: row.log_partition as number,
  log_offset: row.log_offset as number,
  log_timestamp_ms: row.log_timestamp_ms as number,
  key_base64: row.key_base64 as string | null,
  'headers.key': row['headers.key'] as string[],
  'headers.value_base64': row['headers.value_base64'] as string[],
  value_base64: row.value_base64 as string,
});

describe('log archive rows', () => {
  it('a record round-trips through its row: bytes, key, headers, timestamp, position', () => {
    for (const r of [record(), record({ key: null, headers: {} }), record({ key: Buffer.from([0xc3, 0x28]) }), record({ value: null })]) {
      expect(recordFromArchive(back(archiveRow(r, UNDECODED)))).toEqual(r);
    }
  });

  it('keeps the key as text only when it is UTF-8, and the schema id of framed values', () => {
    expect(archiveRow(record(), UNDECODED)).toMatchObject({ key_text: 'session-1', schema_id: 7, type: '', event_id: '' });
    expect(archiveRow(record({ key: Buffer.from([0xc3, 0x28]) }), UNDECODED).key_text).toBeNull();
    expect(schemaIdOf(Buffer.from('{"json":1}'))).toBe(-1);
    expect(schemaIdOf(null)).toBe(-1);
  });

  it('clamps log_time (a partition key) to what DateTime holds, keeping the exact timestamp beside it', () => {
    expect(archiveRow(record({ timestamp: -1 }), UNDECODED)).toMatchObject({ log_time: new Date(0), log_timestamp_ms: -1 });
    expect(archiveRow(record({ timestamp: 5_000_000_000_000 }), UNDECODED)).toMatchObject({ log_time: new Date(4_294_967_295_000), log_timestamp_ms: 5_000_000_000_000 });
    expect(recordFromArchive(back(archiveRow(record({ timestamp: -1 }), UNDECODED))).timestamp).toBe(-1);
  });
});
