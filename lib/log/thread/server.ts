import type { MessagePort } from 'node:worker_threads';
import type { Logger } from '../../logger.js';
import { silentLogger } from '../../logger.js';
import { SwitchyardError } from '../../errors.js';
import type { EventLog, Subscription } from '../port.js';
import { Outbox, type ToOwner, type ToService, type Request } from './protocol.js';
import { packError, packRecords, unpackAppends, unpackError, type WireError } from './wire.js';

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
  /** Closes in progress, by subscription: a second close waits for the first. */
  const closing = new Map<number, Promise<void>>();
  let closed = false;
  let closingAll: Promise<void> | undefined;

  const outbox = new Outbox<ToService>(port, (m, err) => {
    logger.error({ err, op: m.op }, 'log thread: a message to the service thread could not be sent');
    if (m.op === 'reply' && m.error === undefined) send({ ...m, result: undefined, error: packError(err) });
    else if (m.op === 'batch') pending.get(m.sub)?.get(m.seq)?.reject(new Error(`log thread: a batch could not be sent: ${String(err)}`));
  });
  const send = (message: ToService, transfer?: ArrayBuffer[]) => {
    if (!closed) outbox.send(message, transfer);
  };

  const ended = (sub: number) => {
    const waiting = pending.get(sub);
    pending.delete(sub);
    for (const p of waiting?.values() ?? []) p.reject(new Error('log thread: the service thread went away before acknowledging a batch'));
  };

  /**
   * Closes a subscription (its batch in hand acknowledged and committed first); `abandoned` when
   * the service thread is gone, so the batch in hand is given up once the subscription stops.
   */
  const closeSubscription = (sub: number, abandoned = false): Promise<void> => {
    const running = closing.get(sub);
    if (running !== undefined) {
      if (abandoned) ended(sub);
      return running;
    }
    const subscription = subscriptions.get(sub);
    subscriptions.delete(sub);
    if (subscription === undefined) return Promise.resolve();
    const done = (async () => {
      const s = await subscription.catch(() => undefined);
      const stopping = s?.close(); // stops fetching at once, then waits for the batch in hand
      if (abandoned) ended(sub);
      await stopping;
      ended(sub);
    })();
    closing.set(sub, done);
    return done;
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
        if (closed) throw new SwitchyardError('SY_ERR_LOG_CLOSED', 'log thread: the service thread’s log is closing');
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
          // The port closed while the owner subscribed: closeAll did not see this one.
          if (closed) {
            await closeSubscription(sub, true);
            throw new SwitchyardError('SY_ERR_LOG_CLOSED', 'log thread: the service thread’s log is closing');
          }
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
    else p.reject(unpackError(error));
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

  const closeAll = (): Promise<void> => {
    closingAll ??= (async () => {
      outbox.flush();
      closed = true;
      const subs = new Set([...subscriptions.keys(), ...closing.keys()]);
      await Promise.all([...subs].map((sub) => closeSubscription(sub, true).catch((err: unknown) => logger.warn({ err }, 'log thread: closing a subscription failed'))));
      port.close();
    })();
    return closingAll;
  };
  port.on('close', () => void closeAll());
  send({ op: 'hello', kind: log.kind });
  return { close: closeAll };
}
