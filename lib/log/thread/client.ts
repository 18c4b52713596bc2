import type { MessagePort } from 'node:worker_threads';
import { SwitchyardError, type ErrorCode } from '../../errors.js';
import type { AppendRecord, EventLog, LogRecord, ReadRange, RecordPosition, SubscribeOptions, Subscription, TopicPartitions, TopicSpec } from '../port.js';
import { Outbox, type Request, type ToOwner, type ToService } from './protocol.js';
import { packAppends, packError, unpackRecords, type Packed, type WireError, type WireRecord } from './wire.js';

/** The owner's error, rebuilt here: a `SwitchyardError` keeps its code, `retriable` and detail. */
function errorFrom(e: WireError): Error {
  const err = e.code?.startsWith('SY_ERR_') ? new SwitchyardError(e.code as ErrorCode, e.message, { retriable: e.retriable, detail: e.detail ?? {} }) : Object.assign(new Error(e.message), { name: e.name, code: e.code, retriable: e.retriable });
  if (e.stack !== undefined) err.stack = `${err.stack ?? ''}\n    at (the log's thread)\n${e.stack}`;
  return err;
}

const closedError = () => new SwitchyardError('SY_ERR_LOG_CLOSED', 'log thread: the log is closed');

interface Call {
  resolve(result: unknown): void;
  reject(err: Error): void;
}

interface ServiceSubscription {
  options: SubscribeOptions;
  assigned: TopicPartitions[];
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
  private readonly subscriptions = new Map<number, ServiceSubscription>();
  private nextId = 0;
  private closed = false;

  private constructor(
    private readonly port: MessagePort,
    readonly kind: EventLog['kind'],
  ) {
    this.outbox = new Outbox(port);
    port.on('message', (messages: ToService[]) => {
      for (const m of messages) this.received(m);
    });
    port.on('close', () => this.ended());
  }

  /** Connects over `port` to a `serveLog` at its other end; resolves once the owner has greeted. */
  static connect(port: MessagePort): Promise<ThreadLog> {
    return new Promise((resolve, reject) => {
      const hello = ([m]: ToService[]) => {
        if (m?.op !== 'hello') return;
        port.off('message', hello);
        port.off('close', gone);
        resolve(new ThreadLog(port, m.kind));
      };
      const gone = () => reject(closedError());
      port.on('message', hello);
      port.once('close', gone);
    });
  }

  private call<T>(request: WithoutId<Request>, transfer: ArrayBuffer[] = []): Promise<T> {
    if (this.closed) return Promise.reject(closedError());
    const id = ++this.nextId;
    return new Promise<T>((resolve, reject) => {
      this.calls.set(id, { resolve: resolve as (r: unknown) => void, reject });
      this.post({ ...request, id } as Request, transfer);
    });
  }

  private post(message: ToOwner, transfer?: ArrayBuffer[]): void {
    this.outbox.send(message, transfer);
  }

  private received(m: ToService): void {
    switch (m.op) {
      case 'reply': {
        const call = this.calls.get(m.id);
        if (call === undefined) return;
        this.calls.delete(m.id);
        if (m.error === undefined) call.resolve(m.result);
        else call.reject(errorFrom(m.error));
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
        s.options.onBatch({ topic: m.topic, partition: m.partition, records, highWatermark: m.highWatermark }).then(
          () => ack(undefined),
          (err: unknown) => ack(packError(err)),
        );
        return;
      }
      case 'assigned': {
        const s = this.subscriptions.get(m.sub);
        if (s === undefined) return;
        s.assigned = m.assigned;
        s.options.onAssigned?.(m.assigned);
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
    const s: ServiceSubscription = { options, assigned: [] };
    this.subscriptions.set(sub, s);
    try {
      s.assigned = await this.call<TopicPartitions[]>({
        op: 'subscribe',
        sub,
        options: { groupId: options.groupId, topics: options.topics, fromBeginning: options.fromBeginning, assignment: options.assignment, maxBatchRecords: options.maxBatchRecords },
      });
    } catch (err) {
      this.subscriptions.delete(sub);
      throw err;
    }
    let closing: Promise<void> | undefined;
    return {
      assigned: () => s.assigned,
      close: () => {
        closing ??= (async () => {
          if (!this.closed) await this.call({ op: 'unsubscribe', sub }).catch(() => undefined);
          this.subscriptions.delete(sub);
        })();
        return closing;
      },
    };
  }

  /** Closes this thread's subscriptions and the port; the owner's log stays open. */
  async close(): Promise<void> {
    if (this.closed) return;
    await Promise.all([...this.subscriptions.keys()].map((sub) => this.call({ op: 'unsubscribe', sub }).catch(() => undefined)));
    this.outbox.flush();
    this.ended();
    this.port.close();
  }
}
