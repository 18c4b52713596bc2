/**
 * A promise with its resolve and reject in hand (Node 20 has no `Promise.withResolvers`).
 * Observed from birth: whoever awaits it handles a rejection, and nobody awaiting it is not an
 * unhandled rejection (a batch whose appenders have all gone, a read-ahead nobody waits for).
 */
export interface Deferred {
  readonly promise: Promise<void>;
  readonly resolve: () => void;
  readonly reject: (err: unknown) => void;
}

export function deferred(): Deferred {
  let resolve!: () => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => {});
  return { promise, resolve, reject };
}
