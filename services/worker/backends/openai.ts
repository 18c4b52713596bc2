import { backoffDelayMs, backoffSchedule } from '../../../lib/backoff.js';
import { SwitchyardError, errorMessage } from '../../../lib/errors.js';
import type { ModelFile } from './format.js';
import { inputError, jsonInput, jsonOutput } from './input.js';
import type { Backend, InferenceItem, ItemResult, LoadedModel } from './port.js';

/**
 * The `http` backend: an OpenAI-compatible model server beside the worker (vLLM, TGI,
 * llama.cpp's server, Ollama all speak this API). The model file of an `http` model holds no
 * weights, only which server model to call and how (`config`):
 * - `endpoint`: `chat` (POST /v1/chat/completions), `completions` (POST /v1/completions) or
 *   `embeddings` (POST /v1/embeddings);
 * - `servedModel`: the `model` field the server knows the model by;
 * - `defaults` (optional): request fields sent unless the request's parameters override them.
 *
 * Inputs (JSON): chat `{ messages: [{ role, content }] }` or `{ prompt }` (or text/plain, sent as
 * one user message); completions `{ prompt }` or text/plain; embeddings `{ input }` / `{ text }` or
 * text/plain. Request parameters `max_tokens`, `temperature`, `top_p`, `presence_penalty`,
 * `frequency_penalty`, `seed` (numbers) and `stop` (a string or a JSON array) are passed on;
 * others are ignored, so a server never sees a field it may reject.
 *
 * Each call has a timeout; statuses 408, 409, 425, 429, 500, 502, 503, 504 and network errors are
 * retried with exponential backoff (honouring a `Retry-After` up to `maxBackoffMs`). Errors keep
 * the server's message and carry the InferenceFailed code in `detail.resultCode`:
 * `BACKEND_TIMEOUT`, `BACKEND_UNAVAILABLE` (retriable), `BACKEND_ERROR`, `INVALID_INPUT` (4xx).
 * A batch of embeddings is one request (`input` is an array); chat and completion items are
 * sent concurrently, one request each.
 */
export interface OpenAiBackendOptions {
  /** Server base URL, e.g. `http://127.0.0.1:8000` (a trailing `/v1` is accepted). */
  url: string;
  /** Sent as `Authorization: Bearer …` when set. */
  apiKey?: string;
  /** Per attempt. @default 60_000 */
  timeoutMs?: number;
  /** Retries after the first attempt for retriable failures. @default 2 */
  retries?: number;
  /** Ceiling of the first retry delay, doubled per retry (full jitter below it). @default 100 */
  backoffMs?: number;
  /** Longest retry delay (also caps Retry-After). @default 2_000 */
  maxBackoffMs?: number;
  /** @default globalThis.fetch */
  fetch?: typeof globalThis.fetch;
  /** @default setTimeout */
  sleep?: (ms: number) => Promise<void>;
  /** Jitter of the retry delays (lib/backoff.ts, full jitter). @default Math.random */
  random?: () => number;
}

export type OpenAiEndpoint = 'chat' | 'completions' | 'embeddings';
const PATHS: Record<OpenAiEndpoint, string> = { chat: '/v1/chat/completions', completions: '/v1/completions', embeddings: '/v1/embeddings' };
const RETRIABLE_STATUS = new Set([408, 409, 425, 429, 500, 502, 503, 504]);
const NUMERIC_PARAMS = ['max_tokens', 'temperature', 'top_p', 'presence_penalty', 'frequency_penalty', 'seed'] as const;

const backendError = (message: string, resultCode: string, retriable: boolean, detail: Record<string, unknown> = {}, cause?: unknown): SwitchyardError =>
  new SwitchyardError(retriable ? 'SY_ERR_BACKEND_UNAVAILABLE' : 'SY_ERR_BACKEND', message, { retriable, cause, detail: { resultCode, ...detail } });

/** Request fields from the request's parameters (only the known ones, typed). */
export function openAiParameters(parameters: Readonly<Record<string, string>>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of NUMERIC_PARAMS) {
    const raw = parameters[key];
    if (raw === undefined) continue;
    const n = Number(raw);
    if (raw.trim() === '' || !Number.isFinite(n)) throw inputError(`parameter ${key} must be a number, got ${JSON.stringify(raw)}`);
    out[key] = n;
  }
  const stop = parameters['stop'];
  if (stop !== undefined) {
    let parsed: unknown = stop;
    if (stop.startsWith('[')) {
      try {
        parsed = JSON.parse(stop);
      } catch {
        throw inputError('parameter stop must be a string or a JSON array of strings');
      }
    }
    out['stop'] = parsed;
  }
  return out;
}

const isText = (item: InferenceItem): boolean => item.contentType.split(';')[0]!.trim().toLowerCase() === 'text/plain';

function chatMessages(item: InferenceItem): unknown[] {
  if (isText(item)) return [{ role: 'user', content: item.input.toString('utf8') }];
  const v = jsonInput(item) as Record<string, unknown> | string | null;
  if (typeof v === 'string') return [{ role: 'user', content: v }];
  if (v !== null && typeof v === 'object') {
    if (Array.isArray(v['messages']) && v['messages'].length > 0) return v['messages'];
    const prompt = v['prompt'] ?? v['text'];
    if (typeof prompt === 'string') return [{ role: 'user', content: prompt }];
  }
  throw inputError('chat input must be { "messages": [...] }, { "prompt": "..." } or text/plain');
}

function promptOf(item: InferenceItem, field: 'prompt' | 'input'): string {
  if (isText(item)) return item.input.toString('utf8');
  const v = jsonInput(item) as Record<string, unknown> | string | null;
  if (typeof v === 'string') return v;
  if (v !== null && typeof v === 'object') {
    const s = v[field] ?? v['text'];
    if (typeof s === 'string') return s;
  }
  throw inputError(`input must be { "${field}": "..." }, a JSON string or text/plain`);
}

const realSleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class OpenAiBackend implements Backend {
  readonly name = 'http';
  private readonly base: string;
  private readonly opts: Required<Omit<OpenAiBackendOptions, 'apiKey' | 'url'>> & { apiKey: string | undefined };

  constructor({ url, apiKey, timeoutMs = 60_000, retries = 2, backoffMs = 100, maxBackoffMs = 2_000, fetch = globalThis.fetch, sleep = realSleep, random = Math.random }: OpenAiBackendOptions) {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch (err) {
      throw new SwitchyardError('SY_ERR_CONFIG', `HTTP backend URL "${url}" is not a URL`, { cause: err });
    }
    if (!Number.isInteger(retries) || retries < 0) throw new SwitchyardError('SY_ERR_CONFIG', `retries must be a non-negative integer, got ${retries}`);
    this.base = parsed.toString().replace(/\/+$/, '').replace(/\/v1$/, '');
    this.opts = { timeoutMs, retries, backoffMs, maxBackoffMs, fetch, sleep, random, apiKey };
  }

  supports(kind: string): boolean {
    return kind === 'http';
  }

  async load(model: ModelFile, digest: string): Promise<LoadedModel> {
    const { endpoint, servedModel, defaults } = model.header.config as { endpoint?: unknown; servedModel?: unknown; defaults?: unknown };
    if (endpoint !== 'chat' && endpoint !== 'completions' && endpoint !== 'embeddings') {
      throw new SwitchyardError('SY_ERR_MODEL_FORMAT', `http model config.endpoint must be chat, completions or embeddings, got ${JSON.stringify(endpoint)}`);
    }
    if (typeof servedModel !== 'string' || servedModel === '') throw new SwitchyardError('SY_ERR_MODEL_FORMAT', 'http model config.servedModel must name the server\'s model');
    const base = defaults !== null && typeof defaults === 'object' ? (defaults as Record<string, unknown>) : {};
    const infer = async (items: readonly InferenceItem[]): Promise<ItemResult[]> =>
      endpoint === 'embeddings' ? this.embeddings(servedModel, base, items) : Promise.all(items.map((item) => this.generate(endpoint, servedModel, base, item)));
    return { digest, kind: 'http', sizeBytes: model.sizeBytes, infer };
  }

  private async generate(endpoint: 'chat' | 'completions', model: string, defaults: Record<string, unknown>, item: InferenceItem): Promise<ItemResult> {
    try {
      const body =
        endpoint === 'chat'
          ? { ...defaults, ...openAiParameters(item.parameters), model, messages: chatMessages(item) }
          : { ...defaults, ...openAiParameters(item.parameters), model, prompt: promptOf(item, 'prompt') };
      const started = performance.now();
      const res = (await this.post(PATHS[endpoint], body)) as {
        choices?: { message?: { content?: string | null }; text?: string; finish_reason?: string | null }[];
        usage?: { prompt_tokens?: number; completion_tokens?: number };
        model?: string;
      };
      const choice = res.choices?.[0];
      const text = endpoint === 'chat' ? choice?.message?.content : choice?.text;
      if (choice === undefined || typeof text !== 'string') throw backendError(`${PATHS[endpoint]} answered without ${endpoint === 'chat' ? 'choices[0].message.content' : 'choices[0].text'}`, 'BACKEND_ERROR', false);
      return {
        ok: true,
        value: {
          output: jsonOutput({ text, finishReason: choice.finish_reason ?? null, model: res.model ?? model }),
          contentType: 'application/json',
          inputTokens: res.usage?.prompt_tokens ?? null,
          outputTokens: res.usage?.completion_tokens ?? null,
          metrics: { backend_ms: performance.now() - started },
        },
      };
    } catch (err) {
      return { ok: false, error: asBackendError(err) };
    }
  }

  private async embeddings(model: string, defaults: Record<string, unknown>, items: readonly InferenceItem[]): Promise<ItemResult[]> {
    const results: (ItemResult | undefined)[] = new Array(items.length);
    const inputs: string[] = [];
    const slots: number[] = [];
    items.forEach((item, i) => {
      try {
        inputs.push(promptOf(item, 'input'));
        slots.push(i);
      } catch (err) {
        results[i] = { ok: false, error: asBackendError(err) };
      }
    });
    if (inputs.length > 0) {
      try {
        const started = performance.now();
        const res = (await this.post(PATHS.embeddings, { ...defaults, model, input: inputs })) as { data?: { index?: number; embedding?: number[] }[]; usage?: { prompt_tokens?: number } };
        const data = res.data ?? [];
        if (data.length !== inputs.length) throw backendError(`/v1/embeddings returned ${data.length} embeddings for ${inputs.length} inputs`, 'BACKEND_ERROR', false);
        const ms = performance.now() - started;
        data.forEach((d, k) => {
          const at = slots[d.index ?? k];
          if (at === undefined || !Array.isArray(d.embedding)) throw backendError('/v1/embeddings returned an entry without an embedding or with a bad index', 'BACKEND_ERROR', false);
          results[at] = {
            ok: true,
            value: {
              output: jsonOutput({ embedding: d.embedding, dim: d.embedding.length }),
              contentType: 'application/json',
              inputTokens: inputs.length === 1 ? (res.usage?.prompt_tokens ?? null) : null,
              metrics: { backend_ms: ms },
            },
          };
        });
      } catch (err) {
        const error = asBackendError(err);
        for (const i of slots) results[i] ??= { ok: false, error };
      }
    }
    return results.map((r) => r ?? { ok: false, error: backendError('no result for the item', 'BACKEND_ERROR', false) });
  }

  /** POST JSON with timeout and retries; the parsed JSON body of a 2xx answer. */
  async post(path: string, body: unknown): Promise<unknown> {
    const { retries, backoffMs, maxBackoffMs, sleep } = this.opts;
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.postOnce(path, body);
      } catch (err) {
        const e = asBackendError(err);
        if (!e.retriable || attempt >= retries) {
          if (attempt > 0) e.detail['attempts'] = attempt + 1;
          throw e;
        }
        const retryAfter = typeof e.detail['retryAfterMs'] === 'number' ? (e.detail['retryAfterMs'] as number) : undefined;
        // The server's Retry-After when it gave one, else the project's one schedule (lib/backoff.ts, full jitter).
        await sleep(Math.min(retryAfter ?? backoffDelayMs(backoffSchedule({ baseMs: backoffMs, capMs: Math.max(backoffMs, maxBackoffMs) }), attempt + 1, this.opts.random()), maxBackoffMs));
      }
    }
  }

  private async postOnce(path: string, body: unknown): Promise<unknown> {
    const url = `${this.base}${path}`;
    let res: Response;
    try {
      res = await this.opts.fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json', ...(this.opts.apiKey ? { authorization: `Bearer ${this.opts.apiKey}` } : {}) },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(this.opts.timeoutMs),
      });
    } catch (err) {
      const name = (err as { name?: string } | null)?.name;
      if (name === 'TimeoutError' || name === 'AbortError') {
        throw backendError(`POST ${url} timed out after ${this.opts.timeoutMs} ms`, 'BACKEND_TIMEOUT', true, { url }, err);
      }
      throw backendError(`POST ${url} failed: ${errorMessage((err as { cause?: unknown }).cause ?? err)}`, 'BACKEND_UNAVAILABLE', true, { url }, err);
    }
    let text: string;
    try {
      text = await res.text();
    } catch (err) {
      throw backendError(`POST ${url}: reading the answer failed: ${errorMessage(err)}`, 'BACKEND_UNAVAILABLE', true, { url, status: res.status }, err);
    }
    if (!res.ok) {
      const retriable = RETRIABLE_STATUS.has(res.status);
      const retryAfterS = Number(res.headers.get('retry-after'));
      const detail: Record<string, unknown> = { url, status: res.status };
      if (Number.isFinite(retryAfterS) && retryAfterS >= 0 && res.headers.get('retry-after') !== null) detail['retryAfterMs'] = retryAfterS * 1000;
      const resultCode = retriable ? (res.status === 408 ? 'BACKEND_TIMEOUT' : 'BACKEND_UNAVAILABLE') : res.status === 400 || res.status === 422 ? 'INVALID_INPUT' : 'BACKEND_ERROR';
      throw backendError(`POST ${url}: HTTP ${res.status}: ${serverMessage(text)}`, resultCode, retriable, detail);
    }
    try {
      return JSON.parse(text) as unknown;
    } catch {
      throw backendError(`POST ${url}: the answer is not JSON: ${text.slice(0, 200)}`, 'BACKEND_ERROR', false, { url, status: res.status });
    }
  }
}

/** The server's error message: OpenAI's `{ error: { message } }`, TGI's `{ error }`, or the raw text. */
function serverMessage(text: string): string {
  try {
    const v = JSON.parse(text) as { error?: { message?: string } | string; message?: string; detail?: string };
    const m = typeof v.error === 'string' ? v.error : (v.error?.message ?? v.message ?? v.detail);
    if (typeof m === 'string') return m;
  } catch {
    // not JSON
  }
  return text.slice(0, 500) || '(empty body)';
}

function asBackendError(err: unknown): SwitchyardError {
  if (err instanceof SwitchyardError) return err;
  return backendError(errorMessage(err), 'BACKEND_ERROR', false, {}, err);
}
