/** A consumed position to commit: the next offset to read of one partition. */
export interface PartitionOffset {
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
}

const keyOf = (topic: string, partition: number): string => `${topic}\u0000${partition}`;

/**
 * Commits a consumer group's offsets without holding up the batch handler: a commit per batch,
 * awaited, puts a coordinator round trip on every hop of the serving path. Offsets recorded while
 * a commit is in flight are coalesced (each partition's latest) into the next one, and commits
 * go one at a time, so a partition's commits never overtake each other. A failed commit is
 * reported, not retried: its records are delivered again after the next rebalance or restart
 * (at-least-once), unless a later commit of the partition goes through first. The
 * @platformatic/kafka adapter commits through it. The kafkajs adapter still awaits a commit per
 * batch: moving it onto this measured no gain (BENCHMARKS.md, "Kafka: where a hop's time is not"),
 * and its commit then stays ordered with kafkajs's own rebalance handling.
 */
export class OffsetCommitter {
  private readonly pending = new Map<string, PartitionOffset>();
  private committing: Promise<void> | undefined;

  constructor(
    /** Sends one commit request for these partitions; rejects when the coordinator refuses it. */
    private readonly send: (offsets: PartitionOffset[]) => Promise<void>,
    private readonly onError: (offsets: PartitionOffset[], err: unknown) => void,
  ) {}

  /** Records `offset` as the partition's position to commit, and starts a commit unless one is in flight. */
  add(offset: PartitionOffset): void {
    this.pending.set(keyOf(offset.topic, offset.partition), offset);
    this.kick();
  }

  /** Drops the pending (not yet sent) position of partitions `keep` rejects: a rebalance gave them to another member, which commits them. */
  retain(keep: (topic: string, partition: number) => boolean): void {
    for (const [key, o] of this.pending) if (!keep(o.topic, o.partition)) this.pending.delete(key);
  }

  /** Resolves once every position recorded so far has been sent (or its commit has failed). */
  async settled(): Promise<void> {
    while (this.committing !== undefined) await this.committing;
  }

  private kick(): void {
    if (this.committing !== undefined) return;
    this.committing = this.flush().finally(() => {
      this.committing = undefined;
      if (this.pending.size > 0) this.kick();
    });
  }

  private async flush(): Promise<void> {
    while (this.pending.size > 0) {
      const offsets = [...this.pending.values()];
      this.pending.clear();
      try {
        await this.send(offsets);
      } catch (err) {
        this.onError(offsets, err);
      }
    }
  }
}
