import type { MessagePort } from 'node:worker_threads';
import { SwitchyardError } from '../../errors.js';
import { silentLogger, type Logger } from '../../logger.js';
import type { AppendRecord, EventLog, LogRecord, ReadRange, RecordPosition, SubscribeOptions, Subscription, TopicPartitions, TopicSpec } from '../port.js';
import { Outbox, type Request, type ToOwner, type ToService } from './protocol.js';
import { packAppends, packError, unpackError, unpackRecords, type Packed, type WireError, type WireRecord } from './wire.js';

const closedError = () => new SwitchyardError('SY_ERR_LOG_CLOSED', 'log thread: the log is closed');

interface Call {
  resolve(result: unknown): void;
  reject(err: Error): void;
}

interface ServiceSubscription {
  options: SubscribeOptions;
  assigned: TopicPartitions[];
  /** Whether an `assigned` message came (newer than the subscribe reply's snapshot). */
  reassigned: boolean;
  /** The close in progress, which a second close (the log's) waits for too. */
  closing: Promise<void> | undefined;
}

/** Distributes `Omit` over a union (the built-in `Omit` collapses it). */
type WithoutId<T> = T extends unknown ? Omit<T, 'id'> : never;

/**
 * An `EventLog` served by another thread (`serveLog` there): what a service thread of
 * `switchyard up` uses, so the services of both threads share one log — the embedded log, which
 * only one thread may own, or one set of Kafka clients. Every call is a message to the owner; a
 * subscription runs on the owner, which hands each batch over and commits it once `onBatch`
 * here has resolved. It reports the owner's `kind`, and passes the same contract suite.
 */
export class ThreadLog implements EventLog {
  private readonly outbox: Outbox<ToOwner>;
  private readonly calls = new Map<number, Call>();
  /** Set while `close` waits for the calls in flight: called once none is left. */
  private whenNoCalls: (() => void) | undefined;
  private readonly subscriptions = new Map<number, ServiceSubscription>();
  private nextId = 0;
  private closed = false;
  private closing: Promise<void> | undefined;

  private constructor(
    private readonly port: MessagePort,
    readonly kind: EventLog['kind'],
    private readonly logger: Logger,
  ) {
    this.outbox = new Outbox(port, (m, err) => this.undeliverable(m, err));
    port.on('message', (messages: ToService[]) => {
      for (const m of messages) {
        try {
          this.received(m);
        } catch (err) {
          // One message's failure must not drop the others of its array.
          this.logger.error({ err, op: m.op }, 'log thread: handling a message from the log’s thread failed');
        }
      }
    });
    port.on('close', () => this.ended());
  }

  /** Connects over `port` to a `serveLog` at its other end; resolves once the owner has greeted. */
  static connect(port: MessagePort, { logger = silentLogger }: { logger?: Logger } = {}): Promise<ThreadLog> {
    return new Promise((resolve, reject) => {
      const hello = ([m]: ToService[]) => {
        if (m?.op !== 'hello') return;
        port.off('message', hello);
        port.off('close', gone);
        resolve(new ThreadLog(port, m.kind, logger));
      };
      const gone = () => reject(closedError());
      port.on('message', hello);
      port.once('close', gone);
    });
  }

  private call<T>(request: WithoutId<Request>, transfer: ArrayBuffer[] = [], { whileClosing = false } = {}): Promise<T> {
    if (this.closed || (this.closing !== undefined && !whileClosing)) return Promise.reject(closedError());
    const id = ++this.nextId;
    return new Promise<T>((resolve, reject) => {
      this.calls.set(id, { resolve: resolve as (r: unknown) => void, reject });
      this.post({ ...request, id } as Request, transfer);
    });
  }

  /** The call `id`, no longer in flight (undefined when it was not). */
  private settle(id: number): Call | undefined {
    const call = this.calls.get(id);
    this.calls.delete(id);
    if (this.calls.size === 0) this.whenNoCalls?.();
    return call;
  }

  /** A message the port could not clone: the call it was fails; an ack's batch is failed too. */
  private undeliverable(m: ToOwner, err: unknown): void {
    if (m.op === 'ack') {
      this.logger.error({ err, sub: m.sub }, 'log thread: an acknowledgement could not be sent');
      if (m.error === undefined) this.post({ ...m, error: packError(err) });
      return;
    }
    this.settle(m.id)?.reject(new SwitchyardError('SY_ERR_LOG_BAD_RECORD', `log thread: the ${m.op} call could not be sent to the log’s thread: ${err instanceof Error ? err.message : String(err)}`, { cause: err }));
  }

  private post(message: ToOwner, transfer?: ArrayBuffer[]): void {
    this.outbox.send(message, transfer);
  }

  private received(m: ToService): void {
    switch (m.op) {
      case 'reply': {
        const call = this.settle(m.id);
        if (call === undefined) return;
        if (m.error === undefined) call.resolve(m.result);
        else call.reject(unpackError(m.error));
        return;
      }
      case 'batch': {
        const s = this.subscriptions.get(m.sub);
        const ack = (error: WireError | undefined) => {
          if (!this.closed) this.post({ op: 'ack', sub: m.sub, seq: m.seq, error });
        };
        if (s === undefined) {
          ack(packError(new Error('log thread: no such subscription')));
          return;
        }
        const records = unpackRecords(m.topic, m.partition, m.packed);
        // Through a promise: an onBatch that throws is a failed batch (delivered again), as on the owner.
        Promise.resolve()
          .then(() => s.options.onBatch({ topic: m.topic, partition: m.partition, records, highWatermark: m.highWatermark }))
          .then(
            () => ack(undefined),
            (err: unknown) => ack(packError(err)),
          );
        return;
      }
      case 'assigned': {
        const s = this.subscriptions.get(m.sub);
        if (s === undefined) return;
        s.assigned = m.assigned;
        s.reassigned = true;
        try {
          s.options.onAssigned?.(m.assigned);
        } catch (err) {
          this.logger.warn({ err, groupId: s.options.groupId }, 'log thread: onAssigned threw');
        }
        return;
      }
      case 'hello':
        return;
    }
  }

  /** The owner is gone (its thread ended or closed the port): nothing pending will be answered. */
  private ended(): void {
    this.closed = true;
    for (const call of this.calls.values()) call.reject(closedError());
    this.calls.clear();
    this.whenNoCalls?.();
    this.subscriptions.clear();
  }

  ensureTopics(specs: TopicSpec[]): Promise<void> {
    return this.call({ op: 'ensureTopics', specs });
  }

  partitionCount(topic: string): Promise<number | undefined> {
    return this.call({ op: 'partitionCount', topic });
  }

  append(records: AppendRecord[]): Promise<RecordPosition[]> {
    const packed = packAppends(records);
    return this.call({ op: 'append', packed }, [packed.bytes]);
  }

  startOffsets(topic: string): Promise<number[]> {
    return this.call({ op: 'startOffsets', topic });
  }

  endOffsets(topic: string): Promise<number[]> {
    return this.call({ op: 'endOffsets', topic });
  }

  async read(range: ReadRange): Promise<LogRecord[]> {
    const packed = await this.call<Packed<WireRecord>>({ op: 'read', range });
    return unpackRecords(range.topic, range.partition, packed);
  }

  committedOffsets(groupId: string, topic: string): Promise<number[]> {
    return this.call({ op: 'committedOffsets', groupId, topic });
  }

  async subscribe(options: SubscribeOptions): Promise<Subscription> {
    if (this.closed) throw closedError();
    const sub = ++this.nextId; // from the calls' counter: unique to this log
    const s: ServiceSubscription = { options, assigned: [], reassigned: false, closing: undefined };
    this.subscriptions.set(sub, s);
    try {
      const snapshot = await this.call<TopicPartitions[]>({
        op: 'subscribe',
        sub,
        options: { groupId: options.groupId, topics: options.topics, fromBeginning: options.fromBeginning, assignment: options.assignment, maxBatchRecords: options.maxBatchRecords },
      });
      // An `assigned` message that came before the reply is newer than the reply's snapshot.
      if (!s.reassigned) s.assigned = snapshot;
    } catch (err) {
      this.subscriptions.delete(sub);
      throw err;
    }
    return { assigned: () => s.assigned, close: () => this.unsubscribe(sub, s) };
  }

  /** Closes a subscription once, however many ask: the owner waits for its batch in hand and commits it. */
  private unsubscribe(sub: number, s: ServiceSubscription): Promise<void> {
    s.closing ??= (async () => {
      if (!this.closed) await this.call({ op: 'unsubscribe', sub }, [], { whileClosing: true }).catch(() => undefined);
      this.subscriptions.delete(sub);
    })();
    return s.closing;
  }

  /**
   * Closes this thread's subscriptions (each commits its batch in hand), after the calls in
   * flight are answered (an append sent is an append made: failing it here would invite a
   * duplicate), then the port; the owner's log stays open.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      if (this.closed) return;
      if (this.calls.size > 0) await new Promise<void>((resolve) => (this.whenNoCalls = resolve));
      this.whenNoCalls = undefined;
      await Promise.all([...this.subscriptions].map(([sub, s]) => this.unsubscribe(sub, s)));
      this.outbox.flush();
      this.ended();
      this.port.close();
    })();
    return this.closing;
  }
}
