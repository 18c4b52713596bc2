import type { ModelVersionRegistered, SwitchyardEvent, VersionWeight } from '../../schemas/generated/events.js';

/**
 * The model catalog: a fold of `control`'s ModelVersionRegistered and RolloutChanged events,
 * for `switchyard models list` and for registering versions. As in the router's fold, a
 * version is immutable: its first registration fixes its digest; a later one of the same
 * (model, version) is ignored here and refused by `pushModel`.
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
  weights: VersionWeight[];
}

export class ModelCatalog {
  readonly models = new Map<string, CatalogModel>();

  apply(event: SwitchyardEvent, offset = -1): void {
    if (event.type === 'ModelVersionRegistered') this.register(event, offset);
    else if (event.type === 'RolloutChanged') {
      const m = this.model(event.model);
      m.stableVersion = event.stableVersion;
      m.canaryVersion = event.canary ? event.canaryVersion : null;
      m.weights = event.weights;
    }
  }

  private model(name: string): CatalogModel {
    let m = this.models.get(name);
    if (m === undefined) {
      m = { name, versions: [], stableVersion: null, canaryVersion: null, weights: [] };
      this.models.set(name, m);
    }
    return m;
  }

  private register(e: ModelVersionRegistered, offset: number): void {
    const m = this.model(e.model);
    if (m.versions.some((v) => v.version === e.version)) return;
    m.versions.push({
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

  version(model: string, version: string): CatalogVersion | undefined {
    return this.models.get(model)?.versions.find((v) => v.version === version);
  }

  byDigest(digest: string): CatalogVersion | undefined {
    for (const m of this.models.values()) for (const v of m.versions) if (v.digest === digest) return v;
    return undefined;
  }

  /** Every version, by model name then registration order. */
  list(): CatalogVersion[] {
    return [...this.models.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)).flatMap((m) => m.versions);
  }

  /** stable / canary / weight of a version, for display. */
  status(v: CatalogVersion): string {
    const m = this.models.get(v.model);
    if (m === undefined) return '';
    const parts: string[] = [];
    if (m.stableVersion === v.version) parts.push('stable');
    if (m.canaryVersion === v.version) parts.push('canary');
    const w = m.weights.find((x) => x.version === v.version);
    if (w !== undefined && m.weights.length > 0) {
      const total = m.weights.reduce((s, x) => s + Math.max(0, x.weight), 0);
      if (total > 0) parts.push(`${Math.round((100 * Math.max(0, w.weight)) / total)}%`);
    }
    if (m.stableVersion === null && m.versions.at(-1)?.version === v.version) parts.push('latest');
    return parts.join(' ');
  }
}
