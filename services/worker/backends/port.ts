import type { SwitchyardError } from '../../../lib/errors.js';
import type { ModelFile } from './format.js';

/** One request of a batch, as a backend sees it. */
export interface InferenceItem {
  requestId: string;
  /** The request payload (RequestRouted.input). */
  input: Buffer;
  /** Media type of `input`: `application/json` or `text/plain` for the built-in models. */
  contentType: string;
  parameters: Readonly<Record<string, string>>;
}

export interface InferenceOutput {
  output: Buffer;
  /** @default 'application/json' */
  contentType: string;
  inputTokens?: number | null;
  outputTokens?: number | null;
  /** Backend-specific measurements (InferenceCompleted.metrics). */
  metrics?: Record<string, number>;
}

/** Each item of a batch succeeds or fails on its own: one bad input does not fail its batch. */
export type ItemResult = { ok: true; value: InferenceOutput } | { ok: false; error: SwitchyardError };

/** A model loaded and ready: weights verified, parsed, held in memory. */
export interface LoadedModel {
  /** sha256 of the blob it was loaded from. */
  readonly digest: string;
  readonly kind: string;
  /** Bytes of the blob. */
  readonly sizeBytes: number;
  /** Compute a batch; results in the order of `items`. Rejects only when the whole batch failed. */
  infer(items: readonly InferenceItem[]): Promise<ItemResult[]>;
  /** Free what the model holds (connections, buffers). */
  unload?(): Promise<void>;
}

/** Runs model files of some kinds. */
export interface Backend {
  /** For WorkerJoined.backend and logs: `cpu`, `synthetic`, `http`. */
  readonly name: string;
  supports(kind: string): boolean;
  /** Build a runnable model from a verified model file. */
  load(model: ModelFile, digest: string): Promise<LoadedModel>;
}
