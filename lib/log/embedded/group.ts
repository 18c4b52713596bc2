import type { TopicPartitions } from '../port.js';

/** What the coordinator needs of a group member (an `EmbeddedSubscription` in group mode). */
export interface GroupMember {
  readonly memberId: string;
  readonly topics: readonly string[];
  /** Stop consuming these partitions: the batch in hand finishes and commits first. */
  revoke(partitions: TopicPartitions[]): Promise<void>;
  /** Take this (complete) assignment; start consuming what is new; notify `onAssigned`. */
  assign(partitions: TopicPartitions[], generation: number): void;
}

/**
 * Kafka's range assignor, per topic: the members subscribed to a topic, in join order,
 * each get a contiguous range of its partitions; the first `partitions % members` get one
 * more. Pure, so it is tested on its own.
 */
export function rangeAssign(
  members: readonly { memberId: string; topics: readonly string[] }[],
  partitionCount: (topic: string) => number,
): Map<string, TopicPartitions[]> {
  const out = new Map<string, TopicPartitions[]>(members.map((m) => [m.memberId, []]));
  const topics = [...new Set(members.flatMap((m) => m.topics))];
  for (const topic of topics) {
    const subscribers = members.filter((m) => m.topics.includes(topic));
    const n = partitionCount(topic);
    const per = Math.floor(n / subscribers.length);
    const extra = n % subscribers.length;
    let next = 0;
    subscribers.forEach((m, i) => {
      const count = per + (i < extra ? 1 : 0);
      if (count === 0) return;
      const partitions = Array.from({ length: count }, (_, k) => next + k);
      next += count;
      out.get(m.memberId)!.push({ topic, partitions });
    });
  }
  return out;
}

const keysOf = (parts: TopicPartitions[]): Set<string> => new Set(parts.flatMap((tp) => tp.partitions.map((p) => `${tp.topic}\u0000${p}`)));

/** The partitions of `from` that are not in `to`. */
export function subtract(from: TopicPartitions[], to: TopicPartitions[]): TopicPartitions[] {
  const keep = keysOf(to);
  return from
    .map((tp) => ({ topic: tp.topic, partitions: tp.partitions.filter((p) => !keep.has(`${tp.topic}\u0000${p}`)) }))
    .filter((tp) => tp.partitions.length > 0);
}

/**
 * The in-process coordinator of one consumer group. Joins and leaves are serialized; each
 * triggers a rebalance in two phases, so that no partition ever has two consumers:
 * 1. every member gives up the partitions it loses (its batch in hand finishes and its
 *    offset is committed before `revoke` resolves);
 * 2. every member gets its new assignment and starts on what it gained, from the
 *    committed offsets.
 * Partitions a member keeps are not interrupted (an incremental, "cooperative" rebalance).
 */
export class GroupCoordinator {
  private members: GroupMember[] = [];
  private readonly owned = new Map<GroupMember, TopicPartitions[]>();
  private chain: Promise<void> = Promise.resolve();
  private generation = 0;

  constructor(
    readonly groupId: string,
    private readonly partitionCount: (topic: string) => number,
  ) {}

  get size(): number {
    return this.members.length;
  }

  /** Adds the member; resolves after the rebalance that gives it its partitions. */
  join(member: GroupMember): Promise<void> {
    return this.serially(async () => {
      this.members.push(member);
      await this.rebalance();
    });
  }

  /** Stops the member's partitions (committing), removes it, and rebalances the rest. */
  leave(member: GroupMember): Promise<void> {
    return this.serially(async () => {
      if (!this.members.includes(member)) return;
      await member.revoke(this.owned.get(member) ?? []);
      this.members = this.members.filter((m) => m !== member);
      this.owned.delete(member);
      if (this.members.length > 0) await this.rebalance();
    });
  }

  private serially(task: () => Promise<void>): Promise<void> {
    const run = this.chain.then(task);
    this.chain = run.catch(() => {});
    return run;
  }

  private async rebalance(): Promise<void> {
    this.generation++;
    const target = rangeAssign(this.members, this.partitionCount);
    await Promise.all(this.members.map((m) => m.revoke(subtract(this.owned.get(m) ?? [], target.get(m.memberId) ?? []))));
    for (const m of this.members) {
      const parts = target.get(m.memberId) ?? [];
      this.owned.set(m, parts);
      m.assign(parts, this.generation);
    }
  }
}
