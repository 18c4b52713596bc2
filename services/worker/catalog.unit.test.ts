import { describe, expect, it } from 'vitest';
import type { SwitchyardEvent } from '../../schemas/generated/events.js';
import { registered, rollout, T0 } from '../router/fixtures.js';
import { evolve, initialRouterState } from '../router/state.js';
import { ModelCatalog } from './catalog.js';

const elected = (epoch: number): SwitchyardEvent => ({
  type: 'ControllerElected', eventId: `el-${epoch}`, occurredAt: T0, requestId: null, traceId: null, producer: `c${epoch}`, causationId: null, clock: [],
  controllerId: `c${epoch}`, epoch, previousControllerId: null, reason: 'FIRST_LEADER', leaderSilenceMs: null, leaseMs: 2000,
});

/** The catalog is a view over the routers' own control fold: it cannot disagree with routing. */
describe('model catalog (the shared control fold)', () => {
  const events: SwitchyardEvent[] = [
    registered('m', 'v1', { digest: 'd1' }),
    registered('m', 'v2', { digest: 'd2' }),
    registered('m', 'v1', { digest: 'other' }), // a later registration of v1 changes nothing
    elected(1),
    { ...rollout('m', [{ version: 'v2', weight: 10 }, { version: 'v1', weight: 90 }], { stable: 'v1', canary: 'v2' }), epoch: 1 },
    elected(2),
    // A deposed controller's late rollout: ignored by the routers, so by the catalog too.
    { ...rollout('m', [{ version: 'v2', weight: 100 }], { stable: 'v2' }), epoch: 1 },
  ];

  it('agrees with the routers on versions, digests and the rollout, deposed epochs included', () => {
    const catalog = new ModelCatalog();
    events.forEach((e, i) => catalog.apply(e, i));
    const router = initialRouterState();
    for (const e of events) evolve(router, e);
    const m = catalog.models.get('m')!;
    expect(m.versions.map((v) => [v.version, v.digest, v.offset])).toEqual([['v1', 'd1', 0], ['v2', 'd2', 1]]);
    expect([...router.models.get('m')!.versions.values()].map((v) => v.digest)).toEqual(['d1', 'd2']);
    expect({ stable: m.stableVersion, canary: m.canaryVersion, weights: m.weights }).toEqual({
      stable: router.models.get('m')!.rollout!.stableVersion,
      canary: router.models.get('m')!.rollout!.canaryVersion,
      weights: router.models.get('m')!.rollout!.weights,
    });
    expect(m.stableVersion).toBe('v1');
    expect(catalog.status(catalog.version('m', 'v1')!)).toBe('stable 90%');
    expect(catalog.status(catalog.version('m', 'v2')!)).toBe('canary 10%');
    expect(catalog.byDigest('d2')?.version).toBe('v2');
  });

  it('without a rollout, the latest registration is the one routed to', () => {
    const catalog = new ModelCatalog();
    catalog.apply(registered('n', 'a'));
    catalog.apply(registered('n', 'b'));
    expect(catalog.status(catalog.version('n', 'b')!)).toBe('latest');
    expect(catalog.status(catalog.version('n', 'a')!)).toBe('');
  });
});
