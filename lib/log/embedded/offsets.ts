import { PartitionLog, type PartitionConfig } from './partition.js';

const TWO_32 = 0x1_0000_0000;

const keyOf = (groupId: string, topic: string, partition: number): string => JSON.stringify([groupId, topic, partition]);

/**
 * Committed offsets of consumer groups, kept the way Kafka keeps them: as records of an
 * internal compacted log (key = [group, topic, partition], value = offset), so commits get
 * the same framing, CRC, crash recovery and fsync batching as appends. The whole map is
 * rebuilt from that log on open and served from memory.
 */
export class OffsetStore {
  private readonly committed = new Map<string, number>();

  private constructor(readonly log: PartitionLog) {}

  static async open(cfg: PartitionConfig): Promise<OffsetStore> {
    const log = await PartitionLog.open(cfg);
    const store = new OffsetStore(log);
    let from = log.startOffset;
    const end = log.endOffset;
    while (from < end) {
      const records = await log.read(from, end, 10_000);
      if (records.length === 0) break;
      for (const r of records) {
        if (r.key === null) continue;
        const key = r.key.toString('utf8');
        if (r.value === null || r.value.length !== 8) store.committed.delete(key);
        else store.committed.set(key, r.value.readUInt32BE(0) * TWO_32 + r.value.readUInt32BE(4));
      }
      from = records[records.length - 1]!.offset + 1;
    }
    return store;
  }

  /** The committed offset (next offset to consume), or -1. */
  get(groupId: string, topic: string, partition: number): number {
    return this.committed.get(keyOf(groupId, topic, partition)) ?? -1;
  }

  /** Records the commit at once (later `get`s see it); resolves when it is durable. */
  commit(groupId: string, topic: string, partition: number, offset: number, timestamp: number): Promise<void> {
    const key = keyOf(groupId, topic, partition);
    if (this.committed.get(key) === offset) return this.log.durable();
    this.committed.set(key, offset);
    const value = Buffer.allocUnsafe(8);
    value.writeUInt32BE(Math.floor(offset / TWO_32), 0);
    value.writeUInt32BE(offset >>> 0, 4);
    this.log.append({ key: Buffer.from(key, 'utf8'), value, headers: undefined, timestamp });
    return this.log.durable();
  }

  close(): Promise<void> {
    return this.log.close();
  }
}
