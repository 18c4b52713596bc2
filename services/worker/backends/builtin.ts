import { SwitchyardError } from '../../../lib/errors.js';
import { charNgramFeatures, hashedVector, wordFeatures } from './features.js';
import { configInt, tensor, type ModelFile } from './format.js';
import { inputError, jsonOutput, textInput } from './input.js';
import type { Backend, InferenceItem, ItemResult, LoadedModel } from './port.js';

/**
 * The built-in CPU models: real computation over the weights in the model file.
 *
 * - `classifier`: hashed word unigrams and bigrams (config `buckets`) → linear layer
 *   (tensors `W` [labels × buckets], `b` [labels]) → softmax over `config.labels`. Output:
 *   `{ label, scores: { <label>: p } }`.
 * - `embedding`: hashed words and character 3/4-grams (config `buckets`) → projection
 *   (tensor `P` [buckets × dim]) → L2-normalised vector. Output: `{ embedding: number[], dim }`.
 *
 * Inputs are text: `text/plain`, a JSON string, or JSON `{ "text": … }`. Computation is
 * synchronous; a batch is computed in one call and yields to the event loop between items
 * only when the batch is large.
 */
export class BuiltinBackend implements Backend {
  readonly name = 'cpu';

  supports(kind: string): boolean {
    return kind === 'classifier' || kind === 'embedding';
  }

  async load(model: ModelFile, digest: string): Promise<LoadedModel> {
    switch (model.header.kind) {
      case 'classifier':
        return classifier(model, digest);
      case 'embedding':
        return embedding(model, digest);
      default:
        throw new SwitchyardError('SY_ERR_MODEL_FORMAT', `the cpu backend does not run ${model.header.kind} models`, {
          retriable: true,
          detail: { resultCode: 'UNSUPPORTED_MODEL', kind: model.header.kind },
        });
    }
  }
}

function each(items: readonly InferenceItem[], run: (item: InferenceItem) => Buffer): ItemResult[] {
  return items.map((item) => {
    try {
      return { ok: true, value: { output: run(item), contentType: 'application/json' } };
    } catch (err) {
      if (err instanceof SwitchyardError) return { ok: false, error: err };
      return { ok: false, error: new SwitchyardError('SY_ERR_BACKEND', `computing ${item.requestId}: ${String(err)}`, { cause: err, detail: { resultCode: 'BACKEND_ERROR' } }) };
    }
  });
}

function classifier(model: ModelFile, digest: string): LoadedModel {
  const labels = model.header.config['labels'];
  if (!Array.isArray(labels) || labels.length < 2 || !labels.every((l) => typeof l === 'string')) {
    throw new SwitchyardError('SY_ERR_MODEL_FORMAT', 'classifier config.labels must list at least two label names');
  }
  const buckets = configInt(model, 'buckets');
  const L = labels.length;
  const W = tensor(model, 'W', [L, buckets]);
  const b = tensor(model, 'b', [L]);
  const logits = new Float64Array(L);

  const run = (item: InferenceItem): Buffer => {
    const text = textInput(item);
    if (text.length > 1_000_000) throw inputError('input text is longer than 1,000,000 characters');
    const { index, value } = hashedVector(wordFeatures(text), buckets);
    let max = -Infinity;
    for (let l = 0; l < L; l++) {
      let z = b[l]!;
      const row = l * buckets;
      for (let k = 0; k < index.length; k++) z += W[row + index[k]!]! * value[k]!;
      logits[l] = z;
      if (z > max) max = z;
    }
    let sum = 0;
    for (let l = 0; l < L; l++) sum += (logits[l] = Math.exp(logits[l]! - max));
    const scores: Record<string, number> = {};
    let best = 0;
    for (let l = 0; l < L; l++) {
      scores[labels[l] as string] = logits[l]! / sum;
      if (logits[l]! > logits[best]!) best = l;
    }
    return jsonOutput({ label: labels[best], scores });
  };
  return { digest, kind: 'classifier', sizeBytes: model.sizeBytes, infer: async (items) => each(items, run) };
}

function embedding(model: ModelFile, digest: string): LoadedModel {
  const buckets = configInt(model, 'buckets');
  const dim = configInt(model, 'dim');
  const P = tensor(model, 'P', [buckets, dim]);
  const rawSizes = model.header.config['ngrams'];
  const sizes = Array.isArray(rawSizes) && rawSizes.every((n) => Number.isInteger(n) && n > 0) ? (rawSizes as number[]) : [3, 4];

  const run = (item: InferenceItem): Buffer => {
    const text = textInput(item);
    if (text.length > 1_000_000) throw inputError('input text is longer than 1,000,000 characters');
    const { index, value } = hashedVector(charNgramFeatures(text, sizes), buckets);
    const e = new Float64Array(dim);
    for (let k = 0; k < index.length; k++) {
      const row = index[k]! * dim;
      const x = value[k]!;
      for (let d = 0; d < dim; d++) e[d]! += P[row + d]! * x;
    }
    let norm = 0;
    for (let d = 0; d < dim; d++) norm += e[d]! * e[d]!;
    norm = Math.sqrt(norm);
    // Text with no words embeds to the zero vector: there is no direction to normalise.
    const embedding = Array.from(e, (v) => (norm > 0 ? v / norm : 0));
    return jsonOutput({ embedding, dim });
  };
  return { digest, kind: 'embedding', sizeBytes: model.sizeBytes, infer: async (items) => each(items, run) };
}
