import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { failureOf } from '../failures.js';
import { decodeModelFile, encodeModelFile } from './format.js';
import { OpenAiBackend, openAiParameters } from './openai.js';
import type { InferenceItem, ItemResult } from './port.js';

/**
 * We cannot run vLLM, TGI, llama.cpp or Ollama here, so these tests run the backend against a
 * small local HTTP server that speaks the subset of the OpenAI-compatible API those servers
 * share (POST /v1/chat/completions, /v1/completions, /v1/embeddings, OpenAI's error shape),
 * with scripted failures for the retry and timeout paths.
 */
interface Seen {
  path: string;
  body: Record<string, unknown>;
  auth: string | undefined;
}
let server: Server;
let url: string;
let seen: Seen[] = [];
/** Scripted answers, consumed first; then the default behaviour. */
let script: ((res: ServerResponse) => void)[] = [];

const send = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
};

function handle(req: IncomingMessage, res: ServerResponse): void {
  let raw = '';
  req.on('data', (c: Buffer) => (raw += c.toString()));
  req.on('end', () => {
    const body = JSON.parse(raw || '{}') as Record<string, unknown>;
    seen.push({ path: req.url ?? '', body, auth: req.headers.authorization });
    const scripted = script.shift();
    if (scripted) return scripted(res);
    if (body['model'] !== 'served-model') return send(res, 404, { error: { message: `The model \`${String(body['model'])}\` does not exist.`, type: 'NotFoundError' } });
    if (req.url === '/v1/chat/completions') {
      const messages = body['messages'] as { content: string }[];
      return send(res, 200, {
        id: 'chatcmpl-1',
        object: 'chat.completion',
        model: 'served-model',
        choices: [{ index: 0, message: { role: 'assistant', content: `echo: ${messages.at(-1)!.content}` }, finish_reason: 'stop' }],
        usage: { prompt_tokens: 7, completion_tokens: 3, total_tokens: 10 },
      });
    }
    if (req.url === '/v1/completions') {
      return send(res, 200, { choices: [{ index: 0, text: `${String(body['prompt'])}...`, finish_reason: 'length' }], usage: { prompt_tokens: 2, completion_tokens: 5 } });
    }
    if (req.url === '/v1/embeddings') {
      const input = body['input'] as string[];
      // Answer out of order: clients must place by `index`.
      const data = input.map((s, index) => ({ object: 'embedding', index, embedding: [s.length, index] })).reverse();
      return send(res, 200, { object: 'list', data, usage: { prompt_tokens: 4 } });
    }
    send(res, 404, { error: { message: 'no such route' } });
  });
}

beforeAll(async () => {
  server = createServer(handle);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));
beforeEach(() => {
  seen = [];
  script = [];
});

const httpModel = (config: Record<string, unknown>) => decodeModelFile(encodeModelFile({ kind: 'http', name: 'llm', version: '1', config }));
const item = (input: unknown, parameters: Record<string, string> = {}, contentType = 'application/json'): InferenceItem => ({
  requestId: 'r1',
  input: Buffer.from(typeof input === 'string' && contentType === 'text/plain' ? input : JSON.stringify(input)),
  contentType,
  parameters,
});
const out = (r: ItemResult | undefined) => {
  if (!r?.ok) throw new Error(`expected success, got ${r?.ok === false ? r.error.message : 'nothing'}`);
  return { ...r.value, json: JSON.parse(r.value.output.toString()) as Record<string, unknown> };
};
const noSleep = { sleep: async () => {} };

describe('OpenAI-compatible HTTP backend (against a local stand-in server)', () => {
  it('chat: sends messages, typed parameters and the key; returns text and token counts', async () => {
    const backend = new OpenAiBackend({ url: `${url}/v1`, apiKey: 'sk-test' });
    const model = await backend.load(httpModel({ endpoint: 'chat', servedModel: 'served-model', defaults: { temperature: 0.7 } }), 'd');
    const r = out((await model.infer([item({ messages: [{ role: 'user', content: 'hi' }] }, { max_tokens: '16', temperature: '0', stop: '["\\n"]', unknown: 'x' })]))[0]);
    expect(r.json).toEqual({ text: 'echo: hi', finishReason: 'stop', model: 'served-model' });
    expect(r.inputTokens).toBe(7);
    expect(r.outputTokens).toBe(3);
    expect(seen[0]).toMatchObject({ path: '/v1/chat/completions', auth: 'Bearer sk-test' });
    expect(seen[0]!.body).toEqual({ model: 'served-model', messages: [{ role: 'user', content: 'hi' }], max_tokens: 16, temperature: 0, stop: ['\n'] });
  });

  it('chat: a prompt or plain text becomes one user message', async () => {
    const model = await new OpenAiBackend({ url }).load(httpModel({ endpoint: 'chat', servedModel: 'served-model' }), 'd');
    await model.infer([item({ prompt: 'p' }), item('plain', {}, 'text/plain')]);
    expect(seen.map((s) => s.body['messages'])).toEqual([[{ role: 'user', content: 'p' }], [{ role: 'user', content: 'plain' }]]);
  });

  it('completions: POST /v1/completions with the prompt', async () => {
    const model = await new OpenAiBackend({ url }).load(httpModel({ endpoint: 'completions', servedModel: 'served-model' }), 'd');
    expect(out((await model.infer([item({ prompt: 'once upon' })]))[0]).json).toMatchObject({ text: 'once upon...', finishReason: 'length' });
    expect(seen[0]!.path).toBe('/v1/completions');
  });

  it('embeddings: a batch is one request; results are placed by index', async () => {
    const model = await new OpenAiBackend({ url }).load(httpModel({ endpoint: 'embeddings', servedModel: 'served-model' }), 'd');
    const results = await model.infer([item({ input: 'a' }), item({ text: 'bbb' }), item('cc', {}, 'text/plain')]);
    expect(results.map((r) => out(r).json)).toEqual([
      { embedding: [1, 0], dim: 2 },
      { embedding: [3, 1], dim: 2 },
      { embedding: [2, 2], dim: 2 },
    ]);
    expect(seen).toHaveLength(1);
    expect(seen[0]!.body['input']).toEqual(['a', 'bbb', 'cc']);
  });

  it('retries retriable statuses (503, 429 with Retry-After) and then succeeds', async () => {
    const waits: number[] = [];
    script = [(res) => send(res, 503, { error: { message: 'loading model' } }), (res) => send(res, 429, { error: { message: 'slow down' } }, { 'retry-after': '1' })];
    const model = await new OpenAiBackend({ url, retries: 2, backoffMs: 10, maxBackoffMs: 5_000, sleep: async (ms) => void waits.push(ms), random: () => 0.5 }).load(httpModel({ endpoint: 'chat', servedModel: 'served-model' }), 'd');
    expect(out((await model.infer([item({ prompt: 'x' })]))[0]).json.text).toBe('echo: x');
    expect(seen).toHaveLength(3);
    // The first wait is the schedule's (ceiling 10 ms, full jitter at 0.5), the second the server's Retry-After.
    expect(waits).toEqual([5, 1000]);
  });

  it('gives up after the retries with a retriable BACKEND_UNAVAILABLE carrying the server message', async () => {
    script = [0, 1, 2].map(() => (res: ServerResponse) => send(res, 502, { error: { message: 'upstream gone' } }));
    const model = await new OpenAiBackend({ url, retries: 2, ...noSleep }).load(httpModel({ endpoint: 'chat', servedModel: 'served-model' }), 'd');
    const [r] = await model.infer([item({ prompt: 'x' })]);
    expect(r!.ok).toBe(false);
    const f = failureOf(r!.ok ? undefined : r!.error);
    expect(f).toMatchObject({ errorCode: 'BACKEND_UNAVAILABLE', retriable: true });
    expect(f.errorMessage).toContain('HTTP 502: upstream gone');
    expect(seen).toHaveLength(3);
  });

  it('does not retry a client error: 404 unknown model is BACKEND_ERROR, 400 is INVALID_INPUT', async () => {
    const backend = new OpenAiBackend({ url, retries: 3, ...noSleep });
    const wrong = await backend.load(httpModel({ endpoint: 'chat', servedModel: 'not-served' }), 'd');
    const [r] = await wrong.infer([item({ prompt: 'x' })]);
    expect(failureOf(r!.ok ? undefined : r!.error)).toMatchObject({ errorCode: 'BACKEND_ERROR', retriable: false });
    expect(failureOf(r!.ok ? undefined : r!.error).errorMessage).toContain('does not exist');
    expect(seen).toHaveLength(1);
    script = [(res) => send(res, 400, { error: { message: 'max_tokens too large' } })];
    const model = await backend.load(httpModel({ endpoint: 'chat', servedModel: 'served-model' }), 'd');
    const [bad] = await model.infer([item({ prompt: 'x' })]);
    expect(failureOf(bad!.ok ? undefined : bad!.error)).toMatchObject({ errorCode: 'INVALID_INPUT', retriable: false });
  });

  it('times out a slow server (BACKEND_TIMEOUT, retriable) and an unreachable one is BACKEND_UNAVAILABLE', async () => {
    script = [() => {}]; // never answers
    const slow = await new OpenAiBackend({ url, timeoutMs: 100, retries: 0 }).load(httpModel({ endpoint: 'chat', servedModel: 'served-model' }), 'd');
    const [r] = await slow.infer([item({ prompt: 'x' })]);
    expect(failureOf(r!.ok ? undefined : r!.error)).toMatchObject({ errorCode: 'BACKEND_TIMEOUT', retriable: true });
    const down = await new OpenAiBackend({ url: 'http://127.0.0.1:1', retries: 0 }).load(httpModel({ endpoint: 'chat', servedModel: 'm' }), 'd');
    const [d] = await down.infer([item({ prompt: 'x' })]);
    expect(failureOf(d!.ok ? undefined : d!.error)).toMatchObject({ errorCode: 'BACKEND_UNAVAILABLE', retriable: true });
  });

  it('rejects bad input and bad model configs clearly, without calling the server', async () => {
    const backend = new OpenAiBackend({ url });
    const model = await backend.load(httpModel({ endpoint: 'chat', servedModel: 'served-model' }), 'd');
    const [r] = await model.infer([item({ nothing: true })]);
    expect(failureOf(r!.ok ? undefined : r!.error).errorCode).toBe('INVALID_INPUT');
    expect(() => openAiParameters({ temperature: 'hot' })).toThrow(/temperature must be a number/);
    await expect(backend.load(httpModel({ endpoint: 'images', servedModel: 'x' }), 'd')).rejects.toThrow(/endpoint must be/);
    expect(seen).toHaveLength(0);
  });
});
