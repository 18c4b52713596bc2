/**
 * Errors of the status area (the status page, `/status.json`, `switchyard status`), with stable
 * codes like every Switchyard error. As in `replay/errors.ts`, the codes live here rather than in
 * the shared `lib/errors.ts` union; `StatusError` has the same shape as `SwitchyardError`.
 *
 * | code | HTTP | when |
 * |---|---|---|
 * | `SY_ERR_STATUS_NOT_FOUND` | 404 | no record of the request id within the lookup window |
 * | `SY_ERR_STATUS_BAD_REQUEST` | 400 | a request id or query that is not acceptable |
 * | `SY_ERR_STATUS_UNAVAILABLE` | 503 | the log cannot be read (retriable) |
 * | `SY_ERR_STATUS_SOURCE` | — | `switchyard status`: no log to read, or a gateway that does not answer |
 * | `SY_ERR_STATUS_INTERNAL` | 500 | anything else (logged) |
 */
export type StatusErrorCode = 'SY_ERR_STATUS_NOT_FOUND' | 'SY_ERR_STATUS_BAD_REQUEST' | 'SY_ERR_STATUS_UNAVAILABLE' | 'SY_ERR_STATUS_SOURCE' | 'SY_ERR_STATUS_INTERNAL';

const HTTP: Record<StatusErrorCode, number> = {
  SY_ERR_STATUS_NOT_FOUND: 404,
  SY_ERR_STATUS_BAD_REQUEST: 400,
  SY_ERR_STATUS_UNAVAILABLE: 503,
  SY_ERR_STATUS_SOURCE: 503,
  SY_ERR_STATUS_INTERNAL: 500,
};

export interface StatusErrorOptions {
  /** @default false (true for SY_ERR_STATUS_UNAVAILABLE) */
  retriable?: boolean;
  cause?: unknown;
  detail?: Record<string, unknown>;
}

export class StatusError extends Error {
  readonly code: StatusErrorCode;
  readonly statusCode: number;
  readonly retriable: boolean;
  readonly detail: Record<string, unknown>;

  constructor(code: StatusErrorCode, message: string, { retriable = code === 'SY_ERR_STATUS_UNAVAILABLE', cause, detail = {} }: StatusErrorOptions = {}) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'StatusError';
    this.code = code;
    this.statusCode = HTTP[code];
    this.retriable = retriable;
    this.detail = detail;
  }
}

export const isStatusError = (err: unknown): err is StatusError => err instanceof StatusError;
