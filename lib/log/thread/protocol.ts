import type { MessagePort } from 'node:worker_threads';
import type { Assignment, ReadRange, TopicPartitions, TopicSpec } from '../port.js';
import type { Packed, WireAppend, WireError, WireRecord } from './wire.js';

/**
 * The messages between a `ThreadLog` (a service thread's `EventLog`) and `serveLog` (the thread
 * that owns the log). Every request carries an id its reply names; a subscription's batches carry
 * a sequence number its acknowledgement names, and the owner commits a batch only once the
 * service thread's `onBatch` has resolved it.
 */

/** What a subscription asks for, less its callbacks. */
export interface WireSubscribe {
  groupId: string;
  topics: string[];
  fromBeginning: boolean | undefined;
  assignment: Assignment | undefined;
  maxBatchRecords: number | undefined;
}

export type Request =
  | { op: 'ensureTopics'; id: number; specs: TopicSpec[] }
  | { op: 'partitionCount'; id: number; topic: string }
  | { op: 'startOffsets' | 'endOffsets'; id: number; topic: string }
  | { op: 'committedOffsets'; id: number; groupId: string; topic: string }
  | { op: 'append'; id: number; packed: Packed<WireAppend> }
  | { op: 'read'; id: number; range: ReadRange }
  | { op: 'subscribe'; id: number; sub: number; options: WireSubscribe }
  | { op: 'unsubscribe'; id: number; sub: number };

/** From the service thread: the batch `seq` of subscription `sub` was handled (or failed). */
export interface Ack {
  op: 'ack';
  sub: number;
  seq: number;
  error: WireError | undefined;
}

export type ToOwner = Request | Ack;

export type ToService =
  | { op: 'hello'; kind: 'embedded' | 'kafka' | 'clickhouse' }
  | { op: 'reply'; id: number; result: unknown; error: WireError | undefined }
  | { op: 'batch'; sub: number; seq: number; topic: string; partition: number; highWatermark: number; packed: Packed<WireRecord> }
  | { op: 'assigned'; sub: number; assigned: TopicPartitions[] };

/**
 * Messages to one port, posted together once per event-loop turn: a `postMessage` costs a
 * serialization and a wake-up of the other thread whatever it carries, and one turn of a busy
 * thread makes several (a flush wakes several subscriptions; a poll phase reads several HTTP
 * requests). The other side receives an array, in order. A message that cannot be cloned is
 * handed to `undeliverable` and the others still go (posted one by one when the array fails).
 */
export class Outbox<M> {
  private messages: M[] = [];
  private transfers: ArrayBuffer[][] = [];
  private scheduled = false;

  constructor(
    private readonly port: MessagePort,
    private readonly undeliverable: (message: M, err: unknown) => void,
  ) {}

  send(message: M, transfer: ArrayBuffer[] = []): void {
    this.messages.push(message);
    this.transfers.push(transfer);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flush);
    }
  }

  /** Post what is queued now (also before the port closes). */
  readonly flush = (): void => {
    this.scheduled = false;
    if (this.messages.length === 0) return;
    const messages = this.messages;
    const transfers = this.transfers;
    this.messages = [];
    this.transfers = [];
    try {
      this.port.postMessage(messages, transfers.flat());
    } catch {
      // A clone failure throws before anything is detached: find the message, send the others.
      messages.forEach((m, i) => {
        try {
          this.port.postMessage([m], transfers[i]);
        } catch (err) {
          this.undeliverable(m, err);
        }
      });
    }
  };
}
