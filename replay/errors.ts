/**
 * Errors of the replay area, with stable codes like every Switchyard error (`code`, `retriable`,
 * `cause`, `detail`).
 *
 * The codes live here rather than in `lib/errors.ts`'s `ErrorCode` union because that file is
 * shared by every area; `ReplayError` has the same shape as `SwitchyardError` so callers and the
 * CLI treat both alike (`isReplayError` / `code`).
 *
 * - `SY_ERR_REPLAY_NOT_FOUND`: nothing in the log names the request or session asked for.
 * - `SY_ERR_REPLAY_BAD_ARGUMENT`: a time, offset range or id that does not parse.
 * - `SY_ERR_REPLAY_SOURCE`: the log cannot be opened or read as a Switchyard log.
 * - `SY_ERR_REPLAY_INDEX`: the request index is unreadable (it is rebuilt; never fatal to a lookup).
 * - `SY_ERR_REPLAY_TIMEOUT`: `rerun` waited for a result past its timeout (retriable).
 */
export type ReplayErrorCode = 'SY_ERR_REPLAY_NOT_FOUND' | 'SY_ERR_REPLAY_BAD_ARGUMENT' | 'SY_ERR_REPLAY_SOURCE' | 'SY_ERR_REPLAY_INDEX' | 'SY_ERR_REPLAY_TIMEOUT';

export interface ReplayErrorOptions {
  /** @default false */
  retriable?: boolean;
  cause?: unknown;
  detail?: Record<string, unknown>;
}

export class ReplayError extends Error {
  readonly code: ReplayErrorCode;
  readonly retriable: boolean;
  readonly detail: Record<string, unknown>;

  constructor(code: ReplayErrorCode, message: string, { retriable = false, cause, detail = {} }: ReplayErrorOptions = {}) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'ReplayError';
    this.code = code;
    this.retriable = retriable;
    this.detail = detail;
  }
}

export const isReplayError = (err: unknown): err is ReplayError => err instanceof ReplayError;
