import { SwitchyardError, errorMessage } from '../errors.js';
import { readCompacted } from '../log/compacted.js';
import type { AppendRecord, EventLog, LogRecord } from '../log/port.js';
import { StateBackedRegistry, type RegistryRecord } from './core.js';
import { isCompatibilityLevel } from './port.js';

export interface LogBackedRegistryOptions {
  log: EventLog;
  /** The compacted, single-partition topic holding the registry. @default '_schemas' */
  topic?: string;
}

/**
 * The registry core persisted to a compacted `_schemas` topic through the `EventLog` port, so
 * it works on any adapter. Records use Confluent's key and value JSON:
 *
 *   key   {"keytype":"SCHEMA","subject":"s","version":1,"magic":1}
 *   value {"subject":"s","version":1,"id":7,"schema":"…","deleted":false}
 *   key   {"keytype":"CONFIG","subject":null,"magic":0}        (null = global)
 *   value {"compatibilityLevel":"BACKWARD"}                    (tombstone = subject level removed)
 *
 * Keys of other types (Confluent's NOOP, DELETE_SUBJECT, MODE, …) are skipped.
 *
 * One writer at a time, as with Confluent's leader: changes are serialized within an
 * instance, and each is planned against the log read to its end. A second instance writing
 * the same topic at the same moment is detected after the append (the record did not take
 * effect, or another record overwrote it) and reported as a retriable
 * `SY_ERR_REGISTRY_UNAVAILABLE`; schema ids, once bound, are never rebound (see
 * `RegistryState.apply`). Reads first catch up with the log, so every instance answers from
 * the whole log.
 */
export class LogBackedRegistry extends StateBackedRegistry {
  readonly topic: string;
  private readonly log: EventLog;
  /** Next offset of the topic to fold in. */
  private position = 0;
  private syncing: Promise<void> | undefined;

  private constructor(log: EventLog, topic: string) {
    super();
    this.log = log;
    this.topic = topic;
  }

  /** Create the topic when missing, then fold in its compacted contents. */
  static async open({ log, topic = '_schemas' }: LogBackedRegistryOptions): Promise<LogBackedRegistry> {
    if (typeof topic !== 'string' || topic === '') throw new SwitchyardError('SY_ERR_CONFIG', 'registry topic must be a non-empty string');
    await log.ensureTopics([{ name: topic, partitions: 1, compacted: true }]);
    const partitions = await log.partitionCount(topic);
    if (partitions !== 1) {
      throw new SwitchyardError('SY_ERR_CONFIG', `registry topic ${topic} must have exactly 1 partition (total order), has ${partitions}`, {
        detail: { topic, partitions },
      });
    }
    const registry = new LogBackedRegistry(log, topic);
    await registry.bootstrap();
    return registry;
  }

  /** Records refused because they rebound a schema id (evidence of concurrent writers). */
  get conflicts(): number {
    return this.state.conflicts;
  }

  private async bootstrap(): Promise<void> {
    const latest = await readCompacted(this.log, this.topic);
    // readCompacted keeps the latest record per key; folding them in log order keeps the first
    // binding of each schema id first.
    const records = [...latest.values()].sort((a, b) => a.offset - b.offset);
    for (const record of records) this.fold(record);
    const starts = await this.log.startOffsets(this.topic);
    this.position = records.length > 0 ? records[records.length - 1]!.offset + 1 : (starts[0] ?? 0);
    // Whatever was appended after readCompacted's snapshot.
    await this.sync();
  }

  protected sync(): Promise<void> {
    this.syncing ??= this.catchUp().finally(() => {
      this.syncing = undefined;
    });
    return this.syncing;
  }

  private async catchUp(): Promise<void> {
    const [end = 0] = await this.log.endOffsets(this.topic);
    const [start = 0] = await this.log.startOffsets(this.topic);
    if (this.position < start) this.position = start;
    while (this.position < end) {
      const records = await this.log.read({ topic: this.topic, partition: 0, from: this.position, to: end });
      if (records.length === 0) {
        this.position = end;
        break;
      }
      for (const record of records) this.fold(record);
      this.position = records[records.length - 1]!.offset + 1;
    }
  }

  private fold(record: LogRecord): void {
    if (record.key === null) return;
    const decoded = decodeRecord(record.key, record.value, record.offset);
    if (decoded === undefined) return;
    if (decoded.kind === 'forget') this.state.forget(decoded.subject, decoded.version);
    else this.state.apply(decoded.record);
  }

  protected async persist(records: RegistryRecord[]): Promise<void> {
    const positions = await this.log.append(records.map((r) => encodeRecord(this.topic, r)));
    const last = Math.max(...positions.map((p) => p.offset));
    while (this.position <= last) await this.sync();
    const lost = records.filter((r) => !this.state.holds(r));
    if (lost.length > 0) {
      throw new SwitchyardError(
        'SY_ERR_REGISTRY_UNAVAILABLE',
        `another writer changed ${this.topic} concurrently; ${lost.length} of ${records.length} record(s) did not take effect, retry`,
        { retriable: true, detail: { topic: this.topic, lost } },
      );
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Record encoding (Confluent's `_schemas` JSON)

/** The key and value for a registry record. Key fields are in a fixed order: compaction compares bytes. */
export function encodeRecord(topic: string, record: RegistryRecord): AppendRecord {
  if (record.keytype === 'SCHEMA') {
    const key = `{"keytype":"SCHEMA","subject":${JSON.stringify(record.subject)},"version":${record.version},"magic":1}`;
    const value = { subject: record.subject, version: record.version, id: record.id, schema: record.schema, deleted: record.deleted };
    return { topic, partition: 0, key, value: Buffer.from(JSON.stringify(value)) };
  }
  const key = `{"keytype":"CONFIG","subject":${JSON.stringify(record.subject)},"magic":0}`;
  const value = record.compatibilityLevel === null ? null : Buffer.from(JSON.stringify({ compatibilityLevel: record.compatibilityLevel }));
  return { topic, partition: 0, key, value };
}

type Decoded = { kind: 'apply'; record: RegistryRecord } | { kind: 'forget'; subject: string; version: number };

const corrupt = (offset: number, why: string, cause?: unknown): SwitchyardError =>
  new SwitchyardError('SY_ERR_LOG_CORRUPT', `registry record at offset ${offset}: ${why}`, { cause, detail: { offset } });

/** A registry record from a `_schemas` key and value; undefined for key types it ignores. */
export function decodeRecord(keyBytes: Buffer, valueBytes: Buffer | null, offset = -1): Decoded | undefined {
  let key: Record<string, unknown>;
  let value: Record<string, unknown> | null;
  try {
    key = JSON.parse(keyBytes.toString('utf8')) as Record<string, unknown>;
    value = valueBytes === null ? null : (JSON.parse(valueBytes.toString('utf8')) as Record<string, unknown>);
  } catch (err) {
    throw corrupt(offset, `not JSON: ${errorMessage(err)}`, err);
  }
  if (key['keytype'] === 'SCHEMA') {
    const subject = key['subject'];
    const version = key['version'];
    if (typeof subject !== 'string' || !Number.isInteger(version)) throw corrupt(offset, 'SCHEMA key without subject and version');
    if (value === null) return { kind: 'forget', subject, version: version as number };
    const { id, schema, deleted = false } = value;
    if (!Number.isInteger(id) || typeof schema !== 'string' || typeof deleted !== 'boolean') throw corrupt(offset, 'SCHEMA value without id and schema');
    return { kind: 'apply', record: { keytype: 'SCHEMA', subject, version: version as number, id: id as number, schema, deleted } };
  }
  if (key['keytype'] === 'CONFIG') {
    const subject = key['subject'] ?? null;
    if (subject !== null && typeof subject !== 'string') throw corrupt(offset, 'CONFIG key with a bad subject');
    const level = value === null ? null : value['compatibilityLevel'];
    if (level !== null && !isCompatibilityLevel(level)) throw corrupt(offset, `unknown compatibility level ${JSON.stringify(level)}`);
    return { kind: 'apply', record: { keytype: 'CONFIG', subject, compatibilityLevel: level } };
  }
  return undefined;
}
