import { SwitchyardError } from '../../../lib/errors.js';
import type { Priority } from '../../../schemas/generated/events.js';

/**
 * Version of the routing code. Part of every `policyVersion`: bump it whenever a change to
 * decide.ts, state.ts, hash.ts or policies/ can change a decision for the same inputs, so
 * `replay verify` can tell "the code changed" from "the decision diverged".
 */
export const POLICY_CODE_VERSION = 'router/4';

/** Outlier ejection (circuit breaker), judged from results in the log. */
export interface EjectionPolicy {
  /** Eject outliers at all. @default true */
  readonly enabled: boolean;
  /**
   * Length of the judging window: a worker is judged on its results of the last `windowMs` of log
   * time before its newest result. Rounded up to whole seconds; at most 64 s.
   * @default 10000
   */
  readonly windowMs: number;
  /** Results a worker needs in its window before it is judged. @default 10 */
  readonly minRequests: number;
  /**
   * Error-rate outlier: error rate at least this much above the median of its peers' (0..1).
   * Failures the client caused (deadline passed, invalid input) do not count.
   * @default 0.3
   */
  readonly errorRateMargin: number;
  /** Percentile of latency (queueMs + computeMs) compared across workers, 0..1. @default 0.9 */
  readonly latencyPercentile: number;
  /** Latency outlier: the worker's percentile is at least this multiple of its peers' median. @default 3 */
  readonly latencyFactor: number;
  /** ...and at least this many ms (no ejection among uniformly fast workers). @default 100 */
  readonly minLatencyMs: number;
  /**
   * Cool-down: an outlier is ejected until `cooldownMs` of log time (results' occurredAt) after its
   * newest result; then it is half-open and may take one probe at a time.
   * @default 5000
   */
  readonly cooldownMs: number;
  /** At most this fraction of the live workers is ejected at once (worst first). @default 0.5 */
  readonly maxEjectedFraction: number;
  /**
   * Breaker on absolute latency: a worker whose `latencyPercentile` of compute time (its own
   * computeMs, not queue or log transit) over the window reaches this is backed out, whatever its
   * peers do (e.g. 6 for a 10 ms objective). Not capped by maxEjectedFraction: when every worker
   * is over it, the fallback model answers (degraded). Infinity: off.
   * @default Infinity
   */
  readonly maxComputeMs: number;
}

/**
 * Router options. Compile once with `resolveRouterPolicy` (fully defaulted, validated, frozen,
 * with its `version`), pass the result in every RouteCommand.
 */
export interface RouterPolicy {
  /**
   * The policy's identity, recorded in every decision: POLICY_CODE_VERSION followed by the options
   * that differ from the defaults (`router/1;affinityEpsilon=0.5`). `policyFromVersion` inverts it.
   */
  readonly version: string;
  /**
   * Bounded-load slack ε for session affinity: a session keeps its rendezvous worker unless that
   * worker would go above (1+ε)·the average load of the candidates.
   * @default 0.25
   */
  readonly affinityEpsilon: number;
  /**
   * Below this load (outstanding / capacity) a session's worker always keeps it, whatever the
   * average: the bound guards against hot spots on a busy fleet, not against one request in
   * flight on an idle one (where ⌈(1+ε)·(M+1)/n⌉ is 1 and every session would spill as soon as
   * its previous request's result had not been read back yet).
   * @default 0.5
   */
  readonly affinityFloor: number;
  /** Pick between two hash-chosen candidates (true) or scan for the least loaded (false). @default true */
  readonly powerOfTwoChoices: boolean;
  /** A worker whose latest heartbeat is older than this (vs. the command's `now`) is excluded. @default 2000 */
  readonly staleHeartbeatMs: number;
  /**
   * Zone spill: fail over to other zones also when every candidate in the preferred zone has a
   * load (outstanding / capacity) of at least this and some other-zone candidate is below it.
   * @default 1
   */
  readonly zoneSpillLoad: number;
  /**
   * Load shedding on real queueing: a request of class P is rejected (SHED) when every eligible
   * worker of the model has work queued (not started) that has waited at least
   * `shedAtQueueDelayMs[P]` — the queue delay its latest heartbeat reported, plus the heartbeat's
   * age while it still reported a queue. Decisions a router has just made are not queueing: a
   * takeover's backlog or a burst is not shed while any worker is idle. Lower classes have lower
   * thresholds, so they are shed first; re-dispatches and retries (attempt > 1) are never shed.
   * @default { BACKGROUND: 250, LOW: 500, NORMAL: 2000, HIGH: 5000, CRITICAL: Infinity }
   */
  readonly shedAtQueueDelayMs: Readonly<Record<Priority, number>>;
  /** retryAfterMs hint on SHED and NO_CAPACITY rejections. @default 1000 */
  readonly shedRetryAfterMs: number;
  /** Outlier ejection. */
  readonly ejection: EjectionPolicy;
}

/** What a caller may set; everything else takes its default. */
export type RouterPolicyInput = {
  readonly [K in Exclude<keyof RouterPolicy, 'version' | 'shedAtQueueDelayMs' | 'ejection'>]?: RouterPolicy[K];
} & {
  readonly shedAtQueueDelayMs?: Partial<Record<Priority, number>>;
  readonly ejection?: Partial<EjectionPolicy>;
};

type Leaves = Omit<RouterPolicy, 'version'>;

const DEFAULTS: Leaves = {
  affinityEpsilon: 0.25,
  affinityFloor: 0.5,
  powerOfTwoChoices: true,
  staleHeartbeatMs: 2000,
  zoneSpillLoad: 1,
  shedAtQueueDelayMs: { CRITICAL: Infinity, HIGH: 5000, NORMAL: 2000, LOW: 500, BACKGROUND: 250 },
  shedRetryAfterMs: 1000,
  ejection: {
    enabled: true,
    windowMs: 10_000,
    minRequests: 10,
    errorRateMargin: 0.3,
    latencyPercentile: 0.9,
    latencyFactor: 3,
    minLatencyMs: 100,
    cooldownMs: 5000,
    maxEjectedFraction: 0.5,
    maxComputeMs: Infinity,
  },
};

/** Longest judging window the fold keeps results for (state.ts RESULT_RING_SIZE × 1 s). */
export const MAX_EJECTION_WINDOW_MS = 64_000;

function fail(message: string): never {
  throw new SwitchyardError('SY_ERR_CONFIG', `router policy: ${message}`);
}

function num(path: string, v: unknown, min: number, max: number, { integer = false } = {}): number {
  if (typeof v !== 'number' || Number.isNaN(v) || v < min || v > max || (integer && !Number.isInteger(v))) {
    fail(`${path} must be ${integer ? 'an integer' : 'a number'} in [${min}, ${max}], got ${String(v)}`);
  }
  return v;
}

function bool(path: string, v: unknown): boolean {
  if (typeof v !== 'boolean') fail(`${path} must be a boolean, got ${String(v)}`);
  return v;
}

/** Flattened leaves in a fixed order: the canonical form `version` is made from. */
function leaves(p: Leaves): [string, number | boolean][] {
  const out: [string, number | boolean][] = [];
  for (const [k, v] of Object.entries(p)) {
    if (typeof v === 'object') for (const [k2, v2] of Object.entries(v as object)) out.push([`${k}.${k2}`, v2 as number | boolean]);
    else out.push([k, v as number | boolean]);
  }
  return out;
}

const DEFAULT_LEAVES = new Map(leaves(DEFAULTS));

/** Validate options and fill defaults; the result is frozen and carries its `version`. */
export function resolveRouterPolicy(input: RouterPolicyInput = {}): RouterPolicy {
  const shed = { ...DEFAULTS.shedAtQueueDelayMs, ...input.shedAtQueueDelayMs };
  const ej = { ...DEFAULTS.ejection, ...input.ejection };
  const p: Leaves = {
    affinityEpsilon: num('affinityEpsilon', input.affinityEpsilon ?? DEFAULTS.affinityEpsilon, 0, 1000),
    affinityFloor: num('affinityFloor', input.affinityFloor ?? DEFAULTS.affinityFloor, 0, 1000),
    powerOfTwoChoices: bool('powerOfTwoChoices', input.powerOfTwoChoices ?? DEFAULTS.powerOfTwoChoices),
    staleHeartbeatMs: num('staleHeartbeatMs', input.staleHeartbeatMs ?? DEFAULTS.staleHeartbeatMs, 1, 86_400_000),
    zoneSpillLoad: num('zoneSpillLoad', input.zoneSpillLoad ?? DEFAULTS.zoneSpillLoad, 0, Infinity),
    shedAtQueueDelayMs: Object.freeze({
      CRITICAL: num('shedAtQueueDelayMs.CRITICAL', shed.CRITICAL, 0, Infinity),
      HIGH: num('shedAtQueueDelayMs.HIGH', shed.HIGH, 0, Infinity),
      NORMAL: num('shedAtQueueDelayMs.NORMAL', shed.NORMAL, 0, Infinity),
      LOW: num('shedAtQueueDelayMs.LOW', shed.LOW, 0, Infinity),
      BACKGROUND: num('shedAtQueueDelayMs.BACKGROUND', shed.BACKGROUND, 0, Infinity),
    }),
    shedRetryAfterMs: num('shedRetryAfterMs', input.shedRetryAfterMs ?? DEFAULTS.shedRetryAfterMs, 0, 86_400_000, { integer: true }),
    ejection: Object.freeze({
      enabled: bool('ejection.enabled', ej.enabled),
      windowMs: num('ejection.windowMs', ej.windowMs, 1, MAX_EJECTION_WINDOW_MS),
      minRequests: num('ejection.minRequests', ej.minRequests, 1, 1_000_000, { integer: true }),
      errorRateMargin: num('ejection.errorRateMargin', ej.errorRateMargin, 0, 1),
      latencyPercentile: num('ejection.latencyPercentile', ej.latencyPercentile, 0, 1),
      latencyFactor: num('ejection.latencyFactor', ej.latencyFactor, 1, Infinity),
      minLatencyMs: num('ejection.minLatencyMs', ej.minLatencyMs, 0, Infinity),
      cooldownMs: num('ejection.cooldownMs', ej.cooldownMs, 0, 86_400_000),
      maxEjectedFraction: num('ejection.maxEjectedFraction', ej.maxEjectedFraction, 0, 1),
      maxComputeMs: num('ejection.maxComputeMs', ej.maxComputeMs, 0, Infinity),
    }),
  };
  const s = p.shedAtQueueDelayMs;
  if (!(s.BACKGROUND <= s.LOW && s.LOW <= s.NORMAL && s.NORMAL <= s.HIGH && s.HIGH <= s.CRITICAL)) {
    fail('shedAtQueueDelayMs must not decrease from BACKGROUND to CRITICAL (lower classes are shed first)');
  }
  const overrides = leaves(p)
    .filter(([k, v]) => DEFAULT_LEAVES.get(k) !== v)
    .map(([k, v]) => `;${k}=${String(v)}`)
    .join('');
  return Object.freeze({ version: POLICY_CODE_VERSION + overrides, ...p });
}

/**
 * The policy a recorded `policyVersion` names (replay). Throws SY_ERR_CONFIG when the version was
 * made by other routing code (a different POLICY_CODE_VERSION) or cannot be parsed.
 */
export function policyFromVersion(version: string): RouterPolicy {
  let policy = parsed.get(version);
  if (policy === undefined) {
    policy = parseVersion(version);
    if (parsed.size >= 256) parsed.clear();
    parsed.set(version, policy);
  }
  return policy;
}

// Replay parses the same few versions once per decision; the policies are frozen, so share them.
const parsed = new Map<string, RouterPolicy>();

function parseVersion(version: string): RouterPolicy {
  const [code, ...parts] = version.split(';');
  if (code !== POLICY_CODE_VERSION) fail(`policy version "${version}" is not ${POLICY_CODE_VERSION}; it was made by other routing code`);
  const flat: Record<string, unknown> = {};
  const nested: Record<string, Record<string, unknown>> = {};
  for (const part of parts) {
    const eq = part.indexOf('=');
    const key = part.slice(0, eq);
    const raw = part.slice(eq + 1);
    const def = DEFAULT_LEAVES.get(key);
    if (eq < 0 || def === undefined) fail(`unknown option "${part}" in policy version "${version}"`);
    const value = typeof def === 'boolean' ? raw === 'true' : Number(raw);
    const dot = key.indexOf('.');
    if (dot < 0) flat[key] = value;
    else (nested[key.slice(0, dot)] ??= {})[key.slice(dot + 1)] = value;
  }
  const policy = resolveRouterPolicy({ ...flat, ...nested } as RouterPolicyInput);
  if (policy.version !== version) fail(`policy version "${version}" is not canonical (expected "${policy.version}")`);
  return policy;
}

/** The policy with every default. */
export const DEFAULT_ROUTER_POLICY: RouterPolicy = resolveRouterPolicy();
