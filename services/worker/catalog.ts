import type { ModelVersionRegistered, SwitchyardEvent, VersionWeight } from '../../schemas/generated/events.js';
import { evolve, initialRouterState, type RouterState } from '../router/state.js';

/**
 * The model catalog, for `switchyard models list` and for registering versions: a view over
 * the one control-state fold every service shares (`services/router/state.ts` — the routers',
 * the controller's and the workers' lane tables fold `control` with the same code), so which
 * versions exist, which digest a version has, the fallback model and the rollout (stable,
 * canary, weights, and whether a RolloutChanged of a deposed controller epoch applies) cannot
 * disagree with what routing does. Only the registration details the routers never read (size,
 * kind, metadata, who registered it, when and where) are kept here beside it, under the same
 * rule: the first registration of a (model, version) fixes it.
 */
export interface CatalogVersion extends Pick<ModelVersionRegistered, 'model' | 'version' | 'digest' | 'sizeBytes' | 'kind' | 'fallbackModel' | 'metadata' | 'registeredBy'> {
  /** occurredAt of its registration. */
  registeredAt: number;
  /** Offset of its registration in control. */
  offset: number;
}

export interface CatalogModel {
  name: string;
  /** In registration order. */
  versions: CatalogVersion[];
  stableVersion: string | null;
  canaryVersion: string | null;
  weights: readonly VersionWeight[];
}

export class ModelCatalog {
  /** The shared fold (control events only). */
  private readonly state: RouterState = initialRouterState();
  private readonly details = new Map<string, CatalogVersion[]>();

  apply(event: SwitchyardEvent, offset = -1): void {
    switch (event.type) {
      case 'ModelVersionRegistered': {
        const known = this.state.models.get(event.model)?.versions.has(event.version) === true;
        evolve(this.state, event);
        if (!known) this.remember(event, offset);
        break;
      }
      case 'RolloutChanged':
      case 'ControllerElected':
        evolve(this.state, event);
        break;
      default:
        break;
    }
  }

  private remember(e: ModelVersionRegistered, offset: number): void {
    let list = this.details.get(e.model);
    if (list === undefined) this.details.set(e.model, (list = []));
    list.push({
      model: e.model,
      version: e.version,
      digest: e.digest,
      sizeBytes: e.sizeBytes,
      kind: e.kind,
      fallbackModel: e.fallbackModel,
      metadata: e.metadata,
      registeredBy: e.registeredBy,
      registeredAt: e.occurredAt,
      offset,
    });
  }

  /** Every model, as the shared fold sees it, with its registration details. */
  get models(): Map<string, CatalogModel> {
    const out = new Map<string, CatalogModel>();
    for (const [name, m] of this.state.models) {
      const rollout = m.rollout;
      out.set(name, {
        name,
        versions: this.details.get(name) ?? [],
        stableVersion: rollout?.stableVersion ?? null,
        canaryVersion: rollout?.canaryVersion ?? null,
        weights: rollout?.weights ?? [],
      });
    }
    return out;
  }

  version(model: string, version: string): CatalogVersion | undefined {
    return this.details.get(model)?.find((v) => v.version === version);
  }

  byDigest(digest: string): CatalogVersion | undefined {
    for (const list of this.details.values()) for (const v of list) if (v.digest === digest) return v;
    return undefined;
  }

  /** Every version, by model name then registration order. */
  list(): CatalogVersion[] {
    return [...this.details.keys()].sort().flatMap((name) => this.details.get(name)!);
  }

  /** stable / canary / weight of a version, for display (the weights the routers split by). */
  status(v: CatalogVersion): string {
    const m = this.state.models.get(v.model);
    if (m === undefined) return '';
    const parts: string[] = [];
    const rollout = m.rollout;
    if (rollout?.stableVersion === v.version) parts.push('stable');
    if (rollout?.canaryVersion === v.version) parts.push('canary');
    const weights = rollout?.weights ?? [];
    const w = weights.find((x) => x.version === v.version);
    if (w !== undefined) {
      const total = weights.reduce((s, x) => s + x.weight, 0);
      if (total > 0) parts.push(`${Math.round((100 * w.weight) / total)}%`);
    }
    if (rollout === null && m.latest === v.version) parts.push('latest');
    return parts.join(' ');
  }
}
