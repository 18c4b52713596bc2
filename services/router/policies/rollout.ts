import { hash32, unitInterval } from '../hash.js';
import type { ModelVersionView, ModelView } from '../state.js';

/** How a model version was chosen. */
export type VersionChoice =
  | { readonly ok: true; readonly version: ModelVersionView; readonly how: 'PINNED' | 'ROLLOUT' | 'CANARY' | 'LATEST' }
  | { readonly ok: false; readonly detail: string };

/**
 * The model version a request is served with:
 * 1. the request's pinned `modelVersion` (it must be registered);
 * 2. else the model's rollout: a point u = hash32(stickyKey ␀ model) / 2³² on [0, 1) picks a
 *    version by cumulative weight (stable first, canary last; unregistered versions skipped), so a
 *    session (stickyKey = sessionId, else requestId) keeps its version while the weights stand,
 *    and raising the canary's weight only moves sessions from stable to canary;
 * 3. else (no rollout, or no positive weight on a registered version) the rollout's stable
 *    version when registered, else the version registered last.
 */
export function chooseVersion(model: ModelView, pinned: string | null, stickyKey: string): VersionChoice {
  if (pinned !== null) {
    const v = model.versions.get(pinned);
    return v ? { ok: true, version: v, how: 'PINNED' } : { ok: false, detail: `version "${pinned}" of model "${model.name}" is not registered` };
  }
  const rollout = model.rollout;
  if (rollout !== null) {
    let total = 0;
    for (const w of rollout.weights) if (model.versions.has(w.version)) total += w.weight;
    if (total > 0) {
      const target = unitInterval(hash32(`${stickyKey}\u0000${model.name}`)) * total;
      let cum = 0;
      let chosen: ModelVersionView | undefined;
      for (const w of rollout.weights) {
        const v = model.versions.get(w.version);
        if (v === undefined) continue;
        chosen = v;
        cum += w.weight;
        if (target < cum) break;
      }
      if (chosen !== undefined) {
        return { ok: true, version: chosen, how: chosen.version === rollout.canaryVersion ? 'CANARY' : 'ROLLOUT' };
      }
    }
    const stable = model.versions.get(rollout.stableVersion);
    if (stable) return { ok: true, version: stable, how: 'ROLLOUT' };
  }
  const latest = model.latest === null ? undefined : model.versions.get(model.latest);
  return latest ? { ok: true, version: latest, how: 'LATEST' } : { ok: false, detail: `model "${model.name}" has no registered version` };
}
