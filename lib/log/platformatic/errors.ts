import { backoffDelayMs, type BackoffSchedule } from '../../backoff.js';
import { SwitchyardError } from '../../errors.js';

/**
 * What the adapter reads from @platformatic/kafka's errors. Every error of the library has a
 * `code` (`PLT_KFK_…`) and `canRetry`; protocol errors carry the broker's error as `apiId`
 * (`UNKNOWN_TOPIC_OR_PARTITION`, …); a failure after retries is a `MultipleErrors` holding
 * each attempt's error in `errors`, and `findBy(property, value)` searches the whole tree.
 */
interface LibraryError {
  code?: string;
  message?: string;
  apiId?: string;
  canRetry?: boolean;
  errors?: unknown[];
  cause?: unknown;
  findBy?: (property: string, value: unknown) => LibraryError | null;
}

/** Every error in the tree below `err` (itself, its `errors` and `cause`s), depth-first. */
export function errorTree(err: unknown): LibraryError[] {
  const out: LibraryError[] = [];
  const visit = (e: unknown, depth: number): void => {
    if (e === null || typeof e !== 'object' || depth > 8) return;
    const le = e as LibraryError;
    out.push(le);
    for (const child of le.errors ?? []) visit(child, depth + 1);
    visit(le.cause, depth + 1);
  };
  visit(err, 0);
  return out;
}

/** The broker's error ids (`apiId`) anywhere in the tree. */
export const brokerErrors = (err: unknown): Set<string> => new Set(errorTree(err).flatMap((e) => (typeof e.apiId === 'string' ? [e.apiId] : [])));

/**
 * The library reports a topic the metadata does not know as a user error ("Unknown topic x.")
 * once its retries of UNKNOWN_TOPIC_OR_PARTITION ran out.
 */
const isUnknownTopic = (err: unknown): boolean =>
  errorTree(err).some((e) => e.apiId === 'UNKNOWN_TOPIC_OR_PARTITION' || (e.code === 'PLT_KFK_USER' && /^Unknown topic /.test(e.message ?? '')));

const isAuthFailure = (err: unknown): boolean =>
  errorTree(err).some((e) => e.code === 'PLT_KFK_AUTHENTICATION' || e.apiId === 'SASL_AUTHENTICATION_FAILED' || e.apiId === 'UNSUPPORTED_SASL_MECHANISM' || e.apiId === 'ILLEGAL_SASL_STATE');

/** Network trouble: the broker unreachable, a connection closed or timed out (a restart). */
export const isUnreachable = (err: unknown): boolean => errorTree(err).some((e) => e.code === 'PLT_KFK_NETWORK' || e.code === 'PLT_KFK_TIMEOUT');

/**
 * Whether the library calls every error in the tree retriable (as its own retry does), or the
 * broker was unreachable.
 */
export const isTransient = (err: unknown): boolean => isUnreachable(err) || !errorTree(err).some((e) => e.canRetry === false);

/** The innermost message worth showing: the last attempt's error, not "x failed 4 times". */
function lastMessage(err: unknown): string {
  const tree = errorTree(err);
  const leaf = [...tree].reverse().find((e) => typeof e.message === 'string' && e.message !== '' && !(e.errors && e.errors.length > 0));
  const top = tree[0]?.message ?? String(err);
  return leaf && leaf !== tree[0] ? `${top} (${leaf.message})` : top;
}

/**
 * Wraps a @platformatic/kafka error in a SwitchyardError with a stable code; `retriable` is the
 * library's own verdict (`canRetry` on every error in the tree), or true when the broker was
 * unreachable.
 */
export function fromPlatformaticError(err: unknown, what: string, detail: Record<string, unknown> = {}): SwitchyardError {
  if (err instanceof SwitchyardError) return err;
  if (isUnknownTopic(err)) return new SwitchyardError('SY_ERR_LOG_UNKNOWN_TOPIC', `${what}: unknown topic or partition`, { cause: err, detail });
  const ids = brokerErrors(err);
  if (ids.has('OFFSET_OUT_OF_RANGE')) return new SwitchyardError('SY_ERR_LOG_OFFSET_OUT_OF_RANGE', `${what}: offset out of range`, { cause: err, detail });
  if (isAuthFailure(err)) {
    // Wrong credentials or mechanism: retrying with the same ones cannot help.
    return new SwitchyardError('SY_ERR_LOG_AUTH', `${what}: SASL authentication failed: ${lastMessage(err)}`, { cause: err, detail: { kafkaError: [...ids], ...detail } });
  }
  const top = err as LibraryError | null;
  return new SwitchyardError('SY_ERR_LOG_BROKER', `${what}: ${lastMessage(err)}`, {
    retriable: isTransient(err),
    cause: err,
    detail: { kafkaError: top?.code, kafkaTypes: [...ids], ...detail },
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Retries an admin or fetch call while it fails transiently (leadership moving, metadata not yet
 * propagated after topic creation, the broker unreachable), on the project's backoff schedule,
 * until `timeoutMs`. Anything else, or running out of time, throws the mapped error.
 */
export async function withRetry<T>(what: string, fn: () => Promise<T>, schedule: BackoffSchedule, { timeoutMs = 15_000 } = {}): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      const e = fromPlatformaticError(err, what);
      if (!(e.retriable && e.code === 'SY_ERR_LOG_BROKER') || Date.now() > deadline) throw e;
      await sleep(backoffDelayMs(schedule, attempt, Math.random()));
    }
  }
}
