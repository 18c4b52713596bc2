import { PartitionLog, type PartitionConfig } from './partition.js';

const TWO_32 = 0x1_0000_0000;

/** The record key of (group, topic, partition) in the offsets log. */
const keyOf = (groupId: string, topic: string, partition: number): string => JSON.stringify([groupId, topic, partition]);

/**
 * `keyOf`, built once per (group, topic, partition): every consumer commits after every batch,
 * and the JSON encoding showed in the serving path's profile (~1% of the main thread).
 */
class KeyCache {
  private readonly byGroup = new Map<string, Map<string, string[]>>();

  of(groupId: string, topic: string, partition: number): string {
    let byTopic = this.byGroup.get(groupId);
    if (byTopic === undefined) this.byGroup.set(groupId, (byTopic = new Map()));
    let keys = byTopic.get(topic);
    if (keys === undefined) byTopic.set(topic, (keys = []));
    return (keys[partition] ??= keyOf(groupId, topic, partition));
  }
}

/**
 * Committed offsets of consumer groups, kept the way Kafka keeps them: as records of an
 * internal compacted log (key = [group, topic, partition], value = offset), so commits get
 * the same framing, CRC, crash recovery and fsync batching as appends. The whole map is
 * rebuilt from that log on open and served from memory.
 */
/** Longest a commit waits to be written with the others of its window, ms. */
const COMMIT_BATCH_MS = 10;

export class OffsetStore {
  private readonly committed = new Map<string, number>();
  private readonly keys = new KeyCache();
  /** Commits not written yet, latest per key. */
  private dirty = new Map<string, { offset: number; timestamp: number }>();
  private nextWrite: Promise<void> | undefined;
  private writeNow: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;

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
    return this.committed.get(this.keys.of(groupId, topic, partition)) ?? -1;
  }

  /**
   * Records the commit at once (later `get`s see it); resolves when it is written. Commits are
   * written in batches, at most every `COMMIT_BATCH_MS`: every consumer commits after every
   * batch, and writing the offsets log once per commit showed on the serving path. The offsets
   * log is relaxed (see `TopicSpec.durability`): fsynced within `RELAXED_SYNC_MS` of a write. A key committed twice in one window is written once, with its
   * latest offset. A crash loses at most the commits of one window: their batches are
   * delivered again (at-least-once).
   */
  commit(groupId: string, topic: string, partition: number, offset: number, timestamp: number): Promise<void> {
    const key = this.keys.of(groupId, topic, partition);
    if (this.committed.get(key) === offset && !this.dirty.has(key)) return this.log.durable();
    this.committed.set(key, offset);
    this.dirty.set(key, { offset, timestamp });
    return this.scheduleWrite();
  }

  /**
   * Lowers every committed offset past its partition's end (`endOf`; undefined: the topic is
   * gone, left alone) to that end, durably. Called once on open, after recovery.
   */
  async clampToEnds(endOf: (topic: string, partition: number) => number | undefined, timestamp: number): Promise<void> {
    const lowered: Promise<void>[] = [];
    for (const [key, offset] of this.committed) {
      const [groupId, topic, partition] = JSON.parse(key) as [string, string, number];
      const end = endOf(topic, partition);
      if (end !== undefined && offset > end) lowered.push(this.commit(groupId, topic, partition, end, timestamp));
    }
    await Promise.all(lowered);
    // Durable before appends resume: a lowered commit lost in a crash would come back past records appended since.
    if (lowered.length > 0) await this.log.syncWritten();
  }

  private scheduleWrite(): Promise<void> {
    this.nextWrite ??= new Promise<void>((resolve, reject) => {
      this.writeNow = () => {
        this.writeNow = undefined;
        if (this.timer !== undefined) clearTimeout(this.timer);
        this.timer = undefined;
        this.nextWrite = undefined;
        const batch = this.dirty;
        this.dirty = new Map();
        for (const [key, { offset, timestamp }] of batch) {
          const value = Buffer.allocUnsafe(8);
          value.writeUInt32BE(Math.floor(offset / TWO_32), 0);
          value.writeUInt32BE(offset >>> 0, 4);
          this.log.append({ key: Buffer.from(key, 'utf8'), value, headers: undefined, timestamp });
        }
        this.log.durable().then(resolve, reject);
      };
      this.timer = setTimeout(this.writeNow, COMMIT_BATCH_MS);
    });
    return this.nextWrite;
  }

  async close(): Promise<void> {
    const pending = this.nextWrite;
    this.writeNow?.();
    await pending;
    return this.log.close();
  }
}
