import { SwitchyardError } from '../../lib/errors.js';
import { backoffSchedule, type BackoffSchedule } from '../../lib/backoff.js';

/**
 * Version of the controller's decision code, recorded in every tick that decides (the
 * ControllerTick's producer field names the controller; this names its rules). Bump it whenever a
 * change to decide.ts, state.ts or detector.ts can change a decision for the same inputs, so
 * `replay verify` can tell "the code changed" from "the decision diverged".
 */
export const CONTROLLER_CODE_VERSION = 'controller/1';

/** Failure detection (phi accrual over heartbeat intervals, judged on log time). */
export interface DetectorPolicy {
  /** Evict when phi reaches this. @default 8 */
  readonly phiThreshold: number;
  /** ...and the silence is at least this, ms, whatever phi says. @default 500 */
  readonly minSilenceMs: number;
  /** A pause the detector accepts on top of the mean interval (GC, a loaded machine), ms. @default 200 */
  readonly acceptablePauseMs: number;
  /** Floor of the interval standard deviation, ms (a metronome-regular worker would otherwise be evicted after one late beat). @default 60 */
  readonly minStdMs: number;
  /** Heartbeat intervals remembered per worker. @default 100 */
  readonly window: number;
  /** Interval assumed before a worker has two heartbeats, ms. @default 100 */
  readonly firstIntervalMs: number;
  /**
   * The controller's own pause: a tick more than this after its previous tick means the controller
   * (or its event loop) stopped, so silence is measured from that tick, not from the last heartbeat.
   * @default 300
   */
  readonly selfPauseMs: number;
}

/** What the controller does for one model (retries, deadlines). */
export interface ModelControl {
  /** Attempts in all (the first routing, retries and re-dispatches), unless the request says. @default 3 */
  readonly maxAttempts: number;
  /** Deadline of a request that has none, ms after it was requested. @default 120000 */
  readonly maxRequestMs: number;
}

export interface ControllerPolicy {
  readonly version: string;
  readonly detector: DetectorPolicy;
  /** The one backoff schedule (lib/backoff.ts) for retries of retriable failures. */
  readonly retry: BackoffSchedule;
  /** Defaults for every model. */
  readonly model: ModelControl;
  /** Per-model overrides. */
  readonly models: Readonly<Record<string, ModelControl>>;
  /**
   * Grace after a deadline before the controller ends a request itself (DEADLINE_EXCEEDED), ms:
   * a worker that drops the request at its deadline answers first, so the controller's outcome
   * is not superseded noise.
   * @default 1000
   */
  readonly deadlineGraceMs: number;
  /** Terminal outcomes remembered per results partition to recognise a later one as superseded (~80 B each, in typed arrays outside the V8 heap: 10,000 × 12 partitions ≈ 9 MiB; a late outcome older than the window is not recognised). @default 10000 */
  readonly outcomeMemory: number;
  /** A worker whose latest heartbeat is older than this cannot receive a migrated session (the routers' staleHeartbeatMs). @default 2000 */
  readonly staleHeartbeatMs: number;
}

export interface ControllerPolicyInput {
  detector?: Partial<DetectorPolicy>;
  retry?: Partial<BackoffSchedule>;
  model?: Partial<ModelControl>;
  models?: Record<string, Partial<ModelControl>>;
  deadlineGraceMs?: number;
  outcomeMemory?: number;
  staleHeartbeatMs?: number;
}

const DETECTOR: DetectorPolicy = {
  phiThreshold: 8,
  minSilenceMs: 500,
  acceptablePauseMs: 200,
  minStdMs: 60,
  window: 100,
  firstIntervalMs: 100,
  selfPauseMs: 300,
};
const MODEL: ModelControl = { maxAttempts: 3, maxRequestMs: 120_000 };

function fail(message: string): never {
  throw new SwitchyardError('SY_ERR_CONFIG', `controller policy: ${message}`);
}
function num(path: string, v: number, min: number, max: number, integer = false): number {
  if (typeof v !== 'number' || Number.isNaN(v) || v < min || v > max || (integer && !Number.isInteger(v))) fail(`${path} must be ${integer ? 'an integer' : 'a number'} in [${min}, ${max}], got ${String(v)}`);
  return v;
}
function modelControl(path: string, m: Partial<ModelControl>, base: ModelControl): ModelControl {
  return Object.freeze({
    maxAttempts: num(`${path}.maxAttempts`, m.maxAttempts ?? base.maxAttempts, 1, 100, true),
    maxRequestMs: num(`${path}.maxRequestMs`, m.maxRequestMs ?? base.maxRequestMs, 1, 7 * 86_400_000, true),
  });
}

/** Validate and fill defaults once; pass the frozen result down. */
export function resolveControllerPolicy(input: ControllerPolicyInput = {}): ControllerPolicy {
  const d = { ...DETECTOR, ...input.detector };
  const detector: DetectorPolicy = Object.freeze({
    phiThreshold: num('detector.phiThreshold', d.phiThreshold, 0.1, 100),
    minSilenceMs: num('detector.minSilenceMs', d.minSilenceMs, 1, 3_600_000, true),
    acceptablePauseMs: num('detector.acceptablePauseMs', d.acceptablePauseMs, 0, 3_600_000, true),
    minStdMs: num('detector.minStdMs', d.minStdMs, 1, 3_600_000),
    window: num('detector.window', d.window, 2, 10_000, true),
    firstIntervalMs: num('detector.firstIntervalMs', d.firstIntervalMs, 1, 3_600_000, true),
    selfPauseMs: num('detector.selfPauseMs', d.selfPauseMs, 1, 3_600_000, true),
  });
  const model = modelControl('model', input.model ?? {}, MODEL);
  const models: Record<string, ModelControl> = {};
  for (const [name, m] of Object.entries(input.models ?? {})) models[name] = modelControl(`models.${name}`, m, model);
  const retry = backoffSchedule(input.retry);
  const deadlineGraceMs = num('deadlineGraceMs', input.deadlineGraceMs ?? 1000, 0, 3_600_000, true);
  const outcomeMemory = num('outcomeMemory', input.outcomeMemory ?? 10_000, 16, 10_000_000, true);
  const staleHeartbeatMs = num('staleHeartbeatMs', input.staleHeartbeatMs ?? 2000, 1, 86_400_000);
  const version = `${CONTROLLER_CODE_VERSION};${JSON.stringify({ detector, retry, model, models, deadlineGraceMs, outcomeMemory, staleHeartbeatMs })}`;
  return Object.freeze({ version, detector, retry, model, models: Object.freeze(models), deadlineGraceMs, outcomeMemory, staleHeartbeatMs });
}

export const DEFAULT_CONTROLLER_POLICY = resolveControllerPolicy();

/** The settings of one model. */
export const modelControlOf = (policy: ControllerPolicy, model: string): ModelControl => policy.models[model] ?? policy.model;
