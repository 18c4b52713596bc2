import { describe, expect, it } from 'vitest';
import { SwitchyardError } from '../../lib/errors.js';
import { DEFAULT_ROUTER_POLICY, POLICY_CODE_VERSION, policyFromVersion, resolveRouterPolicy } from './policies/options.js';

describe('RouterPolicy', () => {
  it('is fully defaulted, frozen all the way down, and named by the code version alone', () => {
    const walk = (o: object, path: string): void => {
      expect(Object.isFrozen(o), path).toBe(true);
      for (const [k, v] of Object.entries(o)) {
        expect(v, `${path}.${k}`).not.toBeUndefined();
        if (typeof v === 'object' && v !== null) walk(v as object, `${path}.${k}`);
      }
    };
    walk(DEFAULT_ROUTER_POLICY, 'policy');
    expect(DEFAULT_ROUTER_POLICY.version).toBe(POLICY_CODE_VERSION);
    // Lower classes shed first: the default thresholds grow with the priority, and CRITICAL is never shed.
    const s = DEFAULT_ROUTER_POLICY.shedAtQueueDelayMs;
    expect([s.BACKGROUND, s.LOW, s.NORMAL, s.HIGH, s.CRITICAL]).toEqual([...[s.BACKGROUND, s.LOW, s.NORMAL, s.HIGH, s.CRITICAL]].sort((a, b) => a - b));
    expect(s.CRITICAL).toBe(Infinity);
    // Every option the caller can set round-trips through the version string.
    const every = resolveRouterPolicy({
      affinityEpsilon: 0.3,
      affinityFloor: 0.7,
      powerOfTwoChoices: false,
      staleHeartbeatMs: 1500,
      zoneSpillLoad: 2,
      shedAtQueueDelayMs: { BACKGROUND: 1, LOW: 2, NORMAL: 3, HIGH: 4, CRITICAL: 5 },
      shedRetryAfterMs: 7,
      ejection: { enabled: false, windowMs: 2000, minRequests: 3, errorRateMargin: 0.1, latencyPercentile: 0.5, latencyFactor: 2, minLatencyMs: 1, cooldownMs: 9, maxEjectedFraction: 0.2 },
    });
    expect(policyFromVersion(every.version)).toEqual(every);
    for (const [k, v] of Object.entries(every)) if (k !== 'version') expect(v, k).not.toEqual(DEFAULT_ROUTER_POLICY[k as keyof typeof every]);
  });

  it('records the options that differ from the defaults in its version, and the version gives the policy back', () => {
    const p = resolveRouterPolicy({ affinityEpsilon: 0.5, powerOfTwoChoices: false, shedAtQueueDelayMs: { HIGH: Infinity }, ejection: { cooldownMs: 1000 } });
    expect(p.version).toBe('router/4;affinityEpsilon=0.5;powerOfTwoChoices=false;shedAtQueueDelayMs.HIGH=Infinity;ejection.cooldownMs=1000');
    expect(policyFromVersion(p.version)).toEqual(p);
    expect(policyFromVersion(POLICY_CODE_VERSION)).toEqual(DEFAULT_ROUTER_POLICY);
    // Setting a default explicitly is the same policy.
    expect(resolveRouterPolicy({ affinityEpsilon: 0.25 }).version).toBe(POLICY_CODE_VERSION);
  });

  it.each([
    [{ affinityEpsilon: -1 }, /affinityEpsilon/],
    [{ staleHeartbeatMs: 0 }, /staleHeartbeatMs/],
    [{ shedAtQueueDelayMs: { LOW: 100, BACKGROUND: 500 } }, /must not decrease/],
    [{ ejection: { windowMs: 120_000 } }, /ejection.windowMs/],
    [{ ejection: { minRequests: 1.5 } }, /integer/],
    [{ powerOfTwoChoices: 'yes' as unknown as boolean }, /boolean/],
  ])('fails fast on invalid options %j', (input, message) => {
    expect(() => resolveRouterPolicy(input)).toThrow(message);
    try {
      resolveRouterPolicy(input);
    } catch (err) {
      expect(err).toBeInstanceOf(SwitchyardError);
      expect((err as SwitchyardError).code).toBe('SY_ERR_CONFIG');
    }
  });

  it('refuses versions from other routing code or with unknown options', () => {
    expect(() => policyFromVersion('router/0')).toThrow(/other routing code/);
    expect(() => policyFromVersion('router/4;bogus=1')).toThrow(/unknown option/);
    expect(() => policyFromVersion('router/4;affinityEpsilon=0.25')).toThrow(/not canonical/);
  });
});
