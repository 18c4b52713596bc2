import { SwitchyardError } from '../../../lib/errors.js';
import { sha256Hex } from '../../../lib/blob/digest.js';
import { fnv1a32 } from './features.js';
import type { ModelFile } from './format.js';
import { jsonOutput } from './input.js';
import type { Backend, InferenceItem, LoadedModel } from './port.js';

/**
 * The `synthetic` backend, for load tests: it computes nothing. A batch of n items takes
 * `baseMs + perItemMs × n + jitter` ms, where the jitter in [0, jitterMs) comes from a hash of
 * the batch's request ids (so a rerun of the same traffic takes the same time; no
 * `Math.random`). The output names the input's sha256 and size and the service time.
 *
 * The profile comes from the model file when its kind is `synthetic` (config `baseMs`,
 * `perItemMs`, `jitterMs`), else from the backend's options; `anyKind: true` makes the backend
 * serve every model kind with its own profile (a worker started with `--backend synthetic`).
 */
export interface SyntheticProfile {
  /** Fixed cost of a batch, ms. @default 0 */
  baseMs: number;
  /** Added per item of the batch, ms. @default 0 */
  perItemMs: number;
  /** Largest extra delay, ms. @default 0 */
  jitterMs: number;
}

export interface SyntheticBackendOptions {
  /** @default { baseMs: 0, perItemMs: 0, jitterMs: 0 } */
  profile?: Partial<SyntheticProfile>;
  /** Serve models of every kind (with `profile`), not only `synthetic` ones. @default false */
  anyKind?: boolean;
  /** How to wait; tests pass a fake. @default setTimeout */
  sleep?: (ms: number) => Promise<void>;
}

const realSleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export function resolveProfile(p: Partial<SyntheticProfile> = {}): SyntheticProfile {
  const profile = { baseMs: p.baseMs ?? 0, perItemMs: p.perItemMs ?? 0, jitterMs: p.jitterMs ?? 0 };
  for (const [k, v] of Object.entries(profile)) {
    if (!Number.isFinite(v) || v < 0) throw new SwitchyardError('SY_ERR_CONFIG', `synthetic profile ${k} must be a non-negative number, got ${v}`);
  }
  return profile;
}

/** Service time of a batch under a profile, ms. */
export function serviceTimeMs(profile: SyntheticProfile, requestIds: readonly string[]): number {
  const jitter = profile.jitterMs > 0 ? (fnv1a32(requestIds.join('\u0000')) / 0x1_0000_0000) * profile.jitterMs : 0;
  return profile.baseMs + profile.perItemMs * requestIds.length + jitter;
}

export class SyntheticBackend implements Backend {
  readonly name = 'synthetic';
  private readonly profile: SyntheticProfile;
  private readonly anyKind: boolean;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor({ profile, anyKind = false, sleep = realSleep }: SyntheticBackendOptions = {}) {
    this.profile = resolveProfile(profile);
    this.anyKind = anyKind;
    this.sleep = sleep;
  }

  supports(kind: string): boolean {
    return this.anyKind || kind === 'synthetic';
  }

  async load(model: ModelFile, digest: string): Promise<LoadedModel> {
    const c = model.header.config;
    const num = (k: keyof SyntheticProfile): number | undefined => (typeof c[k] === 'number' ? (c[k] as number) : undefined);
    const profile =
      model.header.kind === 'synthetic'
        ? resolveProfile({ baseMs: num('baseMs') ?? this.profile.baseMs, perItemMs: num('perItemMs') ?? this.profile.perItemMs, jitterMs: num('jitterMs') ?? this.profile.jitterMs })
        : this.profile;
    const sleep = this.sleep;
    return {
      digest,
      kind: model.header.kind,
      sizeBytes: model.sizeBytes,
      async infer(items: readonly InferenceItem[]) {
        const ms = serviceTimeMs(profile, items.map((i) => i.requestId));
        if (ms > 0) await sleep(ms);
        return items.map((item) => ({
          ok: true as const,
          value: {
            output: jsonOutput({ synthetic: true, inputSha256: sha256Hex(item.input), inputBytes: item.input.length, serviceMs: ms }),
            contentType: 'application/json',
            metrics: { synthetic_service_ms: ms },
          },
        }));
      },
    };
  }
}
