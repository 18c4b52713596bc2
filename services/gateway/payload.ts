/**
 * How the gateway carries request inputs and result outputs through JSON, by media type:
 * - JSON (`application/json`, `application/*+json`): the value itself;
 * - text (`text/*`): a string, sent as UTF-8;
 * - anything else (binary): a base64 string.
 * Pure; shared by the input encoder and the output decoder.
 */

import { isJsonMediaType } from '../../schemas/request-rules.js';

export type PayloadKind = 'json' | 'text' | 'binary';

/** The media type without parameters, lower-cased: `Text/Plain; charset=utf-8` → `text/plain`. */
export const essence = (contentType: string): string => {
  const semi = contentType.indexOf(';');
  return (semi < 0 ? contentType : contentType.slice(0, semi)).trim().toLowerCase();
};

export { isJsonMediaType };

export function payloadKind(contentType: string): PayloadKind {
  if (isJsonMediaType(contentType)) return 'json';
  return essence(contentType).startsWith('text/') ? 'text' : 'binary';
}

export const DEFAULT_CONTENT_TYPE = 'application/json';

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

export type EncodedInput = { ok: true; bytes: Buffer } | { ok: false; message: string };

/** The bytes of a request's `input` for its content type, or why it cannot be carried. */
export function encodeInput(input: unknown, contentType: string): EncodedInput {
  switch (payloadKind(contentType)) {
    case 'json':
      // JSON.stringify of a parsed JSON body cannot fail or return undefined.
      return { ok: true, bytes: Buffer.from(JSON.stringify(input), 'utf8') };
    case 'text':
      return typeof input === 'string'
        ? { ok: true, bytes: Buffer.from(input, 'utf8') }
        : { ok: false, message: `input must be a string for contentType ${contentType}` };
    case 'binary':
      if (typeof input !== 'string') return { ok: false, message: `input must be a base64 string for contentType ${contentType}` };
      if (!BASE64.test(input)) return { ok: false, message: `input must be base64 (RFC 4648, padded) for contentType ${contentType}` };
      return { ok: true, bytes: Buffer.from(input, 'base64') };
  }
}

const OPEN_BRACE = 0x7b;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACE = 0x7d;
const CLOSE_BRACKET = 0x5d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/**
 * Does JSON text nest objects and arrays deeper than `maxDepth`? One pass over the text, no
 * parsing (brackets inside strings do not count), so a hostile body is refused before
 * anything recursive (the parser's prototype check, JSON.stringify, a schema validator)
 * walks it. Text that is not JSON may give either answer; the parser refuses it next.
 */
export function jsonNestingExceeds(text: string, maxDepth: number): boolean {
  if (text.length <= maxDepth) return false; // each level takes at least one character
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === BACKSLASH) i++;
      else if (c === QUOTE) inString = false;
    } else if (c === QUOTE) inString = true;
    else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      if (++depth > maxDepth) return true;
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) depth--;
  }
  return false;
}

export interface DecodedOutput {
  /** How `value` carries the bytes: a JSON value, a string, or base64. */
  encoding: 'json' | 'text' | 'base64';
  value: unknown;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** A result's output for a JSON response; bytes that do not match their content type fall back to base64. */
export function decodeOutput(output: Uint8Array, contentType: string): DecodedOutput {
  const kind = payloadKind(contentType);
  if (kind !== 'binary') {
    try {
      const text = utf8.decode(output);
      return kind === 'json' ? { encoding: 'json', value: JSON.parse(text) as unknown } : { encoding: 'text', value: text };
    } catch {
      // not UTF-8, or not JSON: fall through to base64 so nothing is lost
    }
  }
  return { encoding: 'base64', value: Buffer.from(output.buffer, output.byteOffset, output.byteLength).toString('base64') };
}
