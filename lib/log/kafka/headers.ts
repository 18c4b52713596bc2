import type { Headers } from '../port.js';

/** Normalises kafkajs headers (string | Buffer | arrays of them) to one Buffer per key; a repeated key keeps its last value. */
export function toHeaders(raw: Record<string, unknown> | undefined): Headers {
  const headers: Headers = {};
  for (const [k, v] of Object.entries(raw ?? {})) {
    const last = Array.isArray(v) ? v[v.length - 1] : v;
    if (last === undefined || last === null) continue;
    headers[k] = Buffer.isBuffer(last) ? last : Buffer.from(String(last));
  }
  return headers;
}
