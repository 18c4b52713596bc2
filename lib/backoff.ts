import { defer, retry, timer, type MonoTypeOperatorFunction, type Observable } from 'rxjs';
import { SwitchyardError, isRetriable } from './errors.js';

/**
 * The project's one backoff schedule: exponential growth with full jitter and a cap
 * ("Exponential Backoff And Jitter"), with a deadline as the hard stop.
 *
 *   delay(attempt) = jitter × min(capMs, baseMs × factor^(attempt − 1)),  jitter ∈ [0, 1)
 *
 * Pure: the jitter is an argument. The controller derives it from a hash of (request id,
 * attempt), so a retry's delay is re-derivable from the log; shells that retry I/O pass
 * Math.random. Every retry loop uses this schedule — the controller's request retries, the
 * sink's ClickHouse writes, `retryWithBackoff` for promises and `backoffRetry` for rxjs
 * pipelines — so one set of numbers says how the system backs off.
 */
export interface BackoffSchedule {
  /** Delay ceiling of the first retry, ms. @default 50 */
  readonly baseMs: number;
  /** Growth per attempt. @default 2 */
  readonly factor: number;
  /** Largest delay, ms. @default 5000 */
  readonly capMs: number;
}

export const DEFAULT_BACKOFF: BackoffSchedule = Object.freeze({ baseMs: 50, factor: 2, capMs: 5_000 });

/** Compile a schedule (validated, fully defaulted, frozen). */
export function backoffSchedule(input: Partial<BackoffSchedule> = {}): BackoffSchedule {
  const s = { ...DEFAULT_BACKOFF, ...input };
  if (!(s.baseMs >= 0) || !(s.factor >= 1) || !(s.capMs >= s.baseMs)) {
    throw new SwitchyardError('SY_ERR_CONFIG', `backoff: need baseMs ≥ 0, factor ≥ 1 and capMs ≥ baseMs, got ${JSON.stringify(s)}`);
  }
  return Object.freeze(s);
}

/** The ceiling of the delay before retry number `attempt` (1 = the first retry), ms. */
export function backoffCeilingMs(schedule: BackoffSchedule, attempt: number): number {
  const exp = schedule.baseMs * schedule.factor ** Math.max(0, attempt - 1);
  return Math.min(schedule.capMs, exp);
}

/** The delay before retry number `attempt`, given a jitter in [0, 1): full jitter, whole ms. */
export function backoffDelayMs(schedule: BackoffSchedule, attempt: number, jitter: number): number {
  const j = jitter < 0 ? 0 : jitter >= 1 ? 0.999999 : jitter;
  return Math.floor(j * backoffCeilingMs(schedule, attempt));
}

/** A jitter in [0, 1) from a 32-bit hash (deterministic callers). */
export const jitterOf = (hash32: number): number => (hash32 >>> 0) / 0x1_0000_0000;

export interface RetryOptions {
  schedule?: BackoffSchedule;
  /** Attempts in all, the first included. @default 5 */
  maxAttempts?: number;
  /** Absolute time (ms, same clock as `now`) after which no retry starts. @default none */
  deadlineAt?: number;
  /** Which errors to retry. @default the error's `retriable` flag */
  retryable?: (err: unknown) => boolean;
  /** Called before each wait. */
  onRetry?: (info: { attempt: number; delayMs: number; err: unknown }) => void;
  now?: () => number;
  random?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

const realSleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Run `fn` until it succeeds, retrying retriable errors on the schedule within the attempts and the deadline. */
export async function retryWithBackoff<T>(fn: (attempt: number) => Promise<T>, o: RetryOptions = {}): Promise<T> {
  const schedule = o.schedule ?? DEFAULT_BACKOFF;
  const maxAttempts = o.maxAttempts ?? 5;
  const retryable = o.retryable ?? isRetriable;
  const now = o.now ?? Date.now;
  const random = o.random ?? Math.random;
  const sleep = o.sleep ?? realSleep;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      if (attempt >= maxAttempts || !retryable(err)) throw err;
      const delayMs = backoffDelayMs(schedule, attempt, random());
      if (o.deadlineAt !== undefined && now() + delayMs >= o.deadlineAt) throw err;
      o.onRetry?.({ attempt, delayMs, err });
      await sleep(delayMs);
    }
  }
}

/**
 * rxjs form of the same schedule: `source.pipe(backoffRetry({ maxAttempts: 5 }))` resubscribes
 * after a retriable error with the schedule's delay.
 */
export function backoffRetry<T>(o: Omit<RetryOptions, 'sleep'> = {}): MonoTypeOperatorFunction<T> {
  const schedule = o.schedule ?? DEFAULT_BACKOFF;
  const retryable = o.retryable ?? isRetriable;
  const now = o.now ?? Date.now;
  const random = o.random ?? Math.random;
  return retry<T>({
    count: Math.max(0, (o.maxAttempts ?? 5) - 1),
    delay: (err: unknown, retryCount: number): Observable<number> => {
      const delayMs = backoffDelayMs(schedule, retryCount, random());
      if (!retryable(err) || (o.deadlineAt !== undefined && now() + delayMs >= o.deadlineAt)) throw err;
      o.onRetry?.({ attempt: retryCount, delayMs, err });
      return timer(delayMs);
    },
  });
}

/** An Observable of one promise-returning call, for `backoffRetry`. */
export const fromCall = <T>(fn: () => Promise<T>): Observable<T> => defer(fn);
