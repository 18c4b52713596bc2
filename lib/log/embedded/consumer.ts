import { errorMessage } from '../../errors.js';
import { backoffDelayMs } from '../../backoff.js';
import type { Batch, SubscribeOptions, Subscription, TopicPartitions } from '../port.js';
import type { GroupCoordinator, GroupMember } from './group.js';
import type { OffsetStore } from './offsets.js';
import type { ConsumerErrorContext, ResolvedEmbeddedLogOptions } from './options.js';
import type { PartitionLog } from './partition.js';

/** What a subscription needs from the log that owns it. */
export interface ConsumerHost {
  readonly options: ResolvedEmbeddedLogOptions;
  readonly offsets: OffsetStore;
  /** The partition, which exists (checked at subscribe). */
  partition(topic: string, partition: number): PartitionLog;
  /** Called when the subscription has closed. */
  forget(subscription: EmbeddedSubscription): void;
}

const key = (topic: string, partition: number): string => `${topic}\u0000${partition}`;

/**
 * Consumes one partition for a subscription: read a batch from the position, hand it to
 * `onBatch`, commit the offset after it, repeat; when caught up, sleep until the partition's
 * end offset moves (no polling). A rejected `onBatch` is reported and the same batch is
 * delivered again after a backoff on the one schedule (lib/backoff.ts: ceilings doubling up to `retryBackoffMaxMs`, full jitter).
 */
class PartitionFetcher {
  private stopping = false;
  /** Cuts short the current wait (for data or backoff). */
  private wake: (() => void) | undefined;
  /** Ends the current wait for data; one function for every wait (`PartitionLog.whenReadable`). */
  private readonly readable = (): void => {
    const resolve = this.wake;
    this.wake = undefined;
    resolve?.();
  };
  private lastCommit: Promise<void> | undefined;
  /** The partition being consumed, once `run` has it. */
  private log: PartitionLog | undefined;
  /** The offset store's write the last commit joined (commits of one window share it). */
  private commitWrite: Promise<void> | undefined;
  /** False for a `follow` subscription: no committed position is read or written. */
  private readonly commits: boolean;
  readonly done: Promise<void>;

  constructor(
    private readonly host: ConsumerHost,
    private readonly sub: SubscribeOptions,
    readonly topic: string,
    readonly partition: number,
  ) {
    this.commits = sub.assignment?.kind !== 'follow';
    this.done = this.run();
  }

  /** Stops after the batch in hand (if any) is handled and committed. */
  stop(): Promise<void> {
    this.stopping = true;
    this.log?.unwait(this.readable);
    this.wake?.();
    return this.done;
  }

  private async run(): Promise<void> {
    const { host, sub, topic, partition } = this;
    const { groupId, fromBeginning = true, maxBatchRecords = 500 } = sub;
    const log = host.partition(topic, partition);
    this.log = log;
    const committed = this.commits ? host.offsets.get(groupId, topic, partition) : -1;
    let position = committed >= 0 ? committed : fromBeginning ? log.startOffset : log.endOffset;
    let readFailures = 0;
    try {
      while (!this.stopping) {
        if (position < log.startOffset) position = log.startOffset;
        const end = log.endOffset;
        if (position >= end) {
          await this.untilReadable(log, position);
          continue;
        }
        // From the tail cache without a promise when it has them, as it does for a consumer that keeps up.
        let records = log.readCached(position, end, maxBatchRecords);
        if (records === undefined) {
          try {
            records = await log.read(position, end, maxBatchRecords);
            readFailures = 0;
          } catch (err) {
            this.report(err, { stage: 'read', attempt: ++readFailures });
            await this.backoff(readFailures - 1);
            continue;
          }
        }
        if (records.length === 0) {
          // Everything in [position, end) was compacted away.
          position = end;
          continue;
        }
        const batch: Batch = { topic, partition, records, highWatermark: log.endOffset };
        if (!(await this.deliver(batch))) break;
        position = records[records.length - 1]!.offset + 1;
        if (this.commits) this.commit(position);
      }
    } finally {
      await this.lastCommit;
    }
  }

  /** Hands the batch to `onBatch` until it resolves; false when stopped before that. */
  private async deliver(batch: Batch): Promise<boolean> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.sub.onBatch(batch);
        return true;
      } catch (err) {
        this.report(err, { stage: 'onBatch', attempt, batch });
        if (this.stopping) return false;
        await this.backoff(attempt - 1);
        if (this.stopping) return false;
      }
    }
  }

  private commit(offset: number): void {
    const { host, sub, topic, partition } = this;
    const write = host.offsets.commit(sub.groupId, topic, partition, offset, host.options.clock.now());
    // Commits within one window share the store's write: one failure handler for all of them.
    if (write === this.commitWrite) return;
    this.commitWrite = write;
    this.lastCommit = write.catch((err: unknown) => {
      this.report(err, { stage: 'commit', attempt: 1 });
    });
  }

  private report(err: unknown, ctx: Omit<ConsumerErrorContext, 'groupId' | 'topic' | 'partition'>): void {
    const { options } = this.host;
    const context: ConsumerErrorContext = { groupId: this.sub.groupId, topic: this.topic, partition: this.partition, ...ctx };
    const { batch, ...fields } = context;
    options.logger.warn(
      { ...fields, err: errorMessage(err), firstOffset: batch?.records[0]?.offset, records: batch?.records.length },
      ctx.stage === 'onBatch' ? 'embedded log: onBatch failed; the batch will be delivered again' : `embedded log: consumer ${ctx.stage} failed`,
    );
    try {
      options.onConsumerError?.(err, context);
    } catch (hookErr) {
      options.logger.error({ err: errorMessage(hookErr) }, 'embedded log: onConsumerError threw');
    }
  }

  private untilReadable(log: PartitionLog, position: number): Promise<void> {
    return new Promise<void>((resolve) => {
      this.wake = resolve;
      log.whenReadable(position, this.readable);
      if (this.stopping) {
        log.unwait(this.readable);
        this.readable();
      }
    });
  }

  private backoff(attempt: number): Promise<void> {
    const { retryBackoffMs, retryBackoffMaxMs } = this.host.options;
    // The project's one schedule (lib/backoff.ts): doubling ceilings up to the cap, full jitter.
    const ms = backoffDelayMs({ baseMs: retryBackoffMs, factor: 2, capMs: Math.max(retryBackoffMs, retryBackoffMaxMs) }, Math.min(attempt, 30) + 1, Math.random());
    return new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wake = done;
      if (this.stopping) done();
    });
  }
}

let memberSeq = 0;

/**
 * A subscription of the embedded log. In `group` mode it is a member of an in-process
 * `GroupCoordinator`; in `static` and `follow` mode it consumes exactly the given partitions
 * (`follow` without committing).
 */
export class EmbeddedSubscription implements Subscription, GroupMember {
  readonly memberId: string;
  readonly topics: readonly string[];
  private readonly fetchers = new Map<string, PartitionFetcher>();
  private current: TopicPartitions[] = [];
  private closing: Promise<void> | undefined;

  constructor(
    private readonly host: ConsumerHost,
    private readonly sub: SubscribeOptions,
    private readonly group: GroupCoordinator | undefined,
  ) {
    this.memberId = `${sub.groupId}-${++memberSeq}`;
    this.topics = [...sub.topics];
  }

  assigned(): TopicPartitions[] {
    return this.current.map((tp) => ({ topic: tp.topic, partitions: [...tp.partitions] }));
  }

  async revoke(partitions: TopicPartitions[]): Promise<void> {
    const stopping: Promise<void>[] = [];
    for (const { topic, partitions: ps } of partitions) {
      for (const p of ps) {
        const f = this.fetchers.get(key(topic, p));
        if (f === undefined) continue;
        this.fetchers.delete(key(topic, p));
        stopping.push(f.stop());
      }
    }
    await Promise.all(stopping);
  }

  assign(partitions: TopicPartitions[], generation: number): void {
    this.current = partitions.map((tp) => ({ topic: tp.topic, partitions: [...tp.partitions].sort((a, b) => a - b) }));
    if (this.closing === undefined) {
      for (const { topic, partitions: ps } of this.current) {
        for (const p of ps) {
          if (!this.fetchers.has(key(topic, p))) this.fetchers.set(key(topic, p), new PartitionFetcher(this.host, this.sub, topic, p));
        }
      }
    }
    try {
      this.sub.onAssigned?.(this.assigned());
    } catch (err) {
      this.host.options.logger.error({ groupId: this.sub.groupId, generation, err: errorMessage(err) }, 'embedded log: onAssigned threw');
    }
  }

  /** Starts a static subscription on its partitions. */
  start(partitions: TopicPartitions[]): void {
    this.assign(partitions, 0);
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      if (this.group !== undefined) await this.group.leave(this);
      await this.revoke(this.current);
      this.current = [];
      this.host.forget(this);
    })();
    return this.closing;
  }
}
