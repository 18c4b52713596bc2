import type { MessagePort } from 'node:worker_threads';
import type { Logger } from '../../logger.js';
import { silentLogger } from '../../logger.js';
import type { EventLog, Subscription } from '../port.js';
import { Outbox, type ToOwner, type ToService, type Request } from './protocol.js';
import { packError, packRecords, unpackAppends, type WireError } from './wire.js';

/** What serves a log to one service thread. */
export interface ServedLog {
  /** Close the service thread's subscriptions (their batches in hand are given up) and the port. */
  close(): Promise<void>;
}

/** A batch sent to the service thread, waiting for its acknowledgement. */
interface Pending {
  resolve(): void;
  reject(err: Error): void;
}

/**
 * Serves `log` to a `ThreadLog` at the other end of `port`: the owner's side of a service
 * thread's log. Calls run on `log` as they arrive; each subscription runs here, on `log`, and
 * hands its batches over the port, committing a batch once the service thread acknowledges it
 * (so a batch the service thread fails, or never answers because it died, is not committed).
 * When the port closes (the service thread ended or crashed), its subscriptions are closed.
 */
export function serveLog(log: EventLog, port: MessagePort, { logger = silentLogger }: { logger?: Logger } = {}): ServedLog {
  const subscriptions = new Map<number, Promise<Subscription>>();
  const pending = new Map<number, Map<number, Pending>>();
  let closed = false;

  const outbox = new Outbox<ToService>(port);
  const send = (message: ToService, transfer?: ArrayBuffer[]) => {
    if (!closed) outbox.send(message, transfer);
  };

  const ended = (sub: number) => {
    const waiting = pending.get(sub);
    pending.delete(sub);
    for (const p of waiting?.values() ?? []) p.reject(new Error('log thread: the service thread went away before acknowledging a batch'));
  };

  const closeSubscription = async (sub: number) => {
    const subscription = subscriptions.get(sub);
    subscriptions.delete(sub);
    if (subscription === undefined) return;
    const s = await subscription.catch(() => undefined);
    await s?.close();
    ended(sub);
  };

  const handle = async (m: Request): Promise<{ result: unknown; transfer?: ArrayBuffer[] }> => {
    switch (m.op) {
      case 'ensureTopics':
        return { result: await log.ensureTopics(m.specs) };
      case 'partitionCount':
        return { result: await log.partitionCount(m.topic) };
      case 'startOffsets':
        return { result: await log.startOffsets(m.topic) };
      case 'endOffsets':
        return { result: await log.endOffsets(m.topic) };
      case 'committedOffsets':
        return { result: await log.committedOffsets(m.groupId, m.topic) };
      case 'append':
        return { result: await log.append(unpackAppends(m.packed)) };
      case 'read': {
        const packed = packRecords(await log.read(m.range));
        return { result: packed, transfer: [packed.bytes] };
      }
      case 'subscribe': {
        const sub = m.sub;
        const waiting = new Map<number, Pending>();
        pending.set(sub, waiting);
        let seq = 0;
        const subscribing = log.subscribe({
          groupId: m.options.groupId,
          topics: m.options.topics,
          ...(m.options.fromBeginning !== undefined ? { fromBeginning: m.options.fromBeginning } : {}),
          ...(m.options.assignment !== undefined ? { assignment: m.options.assignment } : {}),
          ...(m.options.maxBatchRecords !== undefined ? { maxBatchRecords: m.options.maxBatchRecords } : {}),
          onAssigned: (assigned) => send({ op: 'assigned', sub, assigned }),
          onBatch: (batch) =>
            new Promise<void>((resolve, reject) => {
              if (closed || !pending.has(sub)) {
                reject(new Error('log thread: the service thread went away'));
                return;
              }
              const n = ++seq;
              waiting.set(n, { resolve, reject });
              const packed = packRecords(batch.records);
              send({ op: 'batch', sub, seq: n, topic: batch.topic, partition: batch.partition, highWatermark: batch.highWatermark, packed }, [packed.bytes]);
            }),
        });
        subscriptions.set(sub, subscribing);
        try {
          const subscription = await subscribing;
          return { result: subscription.assigned() };
        } catch (err) {
          subscriptions.delete(sub);
          pending.delete(sub);
          throw err;
        }
      }
      case 'unsubscribe':
        await closeSubscription(m.sub);
        return { result: undefined };
    }
  };

  const acknowledged = (sub: number, seq: number, error: WireError | undefined) => {
    const p = pending.get(sub)?.get(seq);
    if (p === undefined) return;
    pending.get(sub)!.delete(seq);
    if (error === undefined) p.resolve();
    else p.reject(Object.assign(new Error(error.message), { name: error.name, code: error.code, retriable: error.retriable }));
  };

  const received = (m: ToOwner) => {
    if (m.op === 'ack') {
      acknowledged(m.sub, m.seq, m.error);
      return;
    }
    handle(m).then(
      ({ result, transfer }) => send({ op: 'reply', id: m.id, result, error: undefined }, transfer),
      (err: unknown) => send({ op: 'reply', id: m.id, result: undefined, error: packError(err) }),
    );
  };
  port.on('message', (messages: ToOwner[]) => {
    for (const m of messages) received(m);
  });

  const closeAll = async () => {
    if (closed) return;
    outbox.flush();
    closed = true;
    for (const sub of pending.keys()) ended(sub);
    await Promise.all([...subscriptions.keys()].map((sub) => closeSubscription(sub).catch((err: unknown) => logger.warn({ err }, 'log thread: closing a subscription failed'))));
    port.close();
  };
  port.on('close', () => void closeAll());
  send({ op: 'hello', kind: log.kind });
  return { close: closeAll };
}
