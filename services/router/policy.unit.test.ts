import { describe, expect, it } from 'vitest';
import { SwitchyardError } from '../../lib/errors.js';
import { DEFAULT_ROUTER_POLICY, POLICY_CODE_VERSION, policyFromVersion, resolveRouterPolicy } from './policies/options.js';

describe('RouterPolicy', () => {
  it('fills every default and names itself by the code version alone', () => {
    expect(DEFAULT_ROUTER_POLICY).toEqual({
      version: POLICY_CODE_VERSION,
      affinityEpsilon: 0.25,
      affinityFloor: 0.5,
      powerOfTwoChoices: true,
      staleHeartbeatMs: 2000,
      zoneSpillLoad: 1,
      shedAtUtilization: { CRITICAL: Infinity, HIGH: 3, NORMAL: 1.5, LOW: 0.9, BACKGROUND: 0.75 },
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
      },
    });
    expect(Object.isFrozen(DEFAULT_ROUTER_POLICY) && Object.isFrozen(DEFAULT_ROUTER_POLICY.ejection)).toBe(true);
  });

  it('records the options that differ from the defaults in its version, and the version gives the policy back', () => {
    const p = resolveRouterPolicy({ affinityEpsilon: 0.5, powerOfTwoChoices: false, shedAtUtilization: { HIGH: Infinity }, ejection: { cooldownMs: 1000 } });
    expect(p.version).toBe('router/3;affinityEpsilon=0.5;powerOfTwoChoices=false;shedAtUtilization.HIGH=Infinity;ejection.cooldownMs=1000');
    expect(policyFromVersion(p.version)).toEqual(p);
    expect(policyFromVersion(POLICY_CODE_VERSION)).toEqual(DEFAULT_ROUTER_POLICY);
    // Setting a default explicitly is the same policy.
    expect(resolveRouterPolicy({ affinityEpsilon: 0.25 }).version).toBe(POLICY_CODE_VERSION);
  });

  it.each([
    [{ affinityEpsilon: -1 }, /affinityEpsilon/],
    [{ staleHeartbeatMs: 0 }, /staleHeartbeatMs/],
    [{ shedAtUtilization: { LOW: 0.1, BACKGROUND: 0.5 } }, /must not decrease/],
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
    expect(() => policyFromVersion('router/3;bogus=1')).toThrow(/unknown option/);
    expect(() => policyFromVersion('router/3;affinityEpsilon=0.25')).toThrow(/not canonical/);
  });
});
