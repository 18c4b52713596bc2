import { SwitchyardError } from '../../../lib/errors.js';
import type { InferenceItem } from './port.js';

/** `SY_ERR_MODEL_INPUT`: the request's input is wrong for the model (a client error, not retriable). */
export const inputError = (message: string, detail: Record<string, unknown> = {}): SwitchyardError =>
  new SwitchyardError('SY_ERR_MODEL_INPUT', message, { detail: { resultCode: 'INVALID_INPUT', ...detail } });

const mediaType = (contentType: string): string => contentType.split(';')[0]!.trim().toLowerCase();

/** The request's JSON input, parsed (`SY_ERR_MODEL_INPUT` when it is not JSON). */
export function jsonInput(item: InferenceItem): unknown {
  try {
    return JSON.parse(item.input.toString('utf8'));
  } catch {
    throw inputError(`input of ${item.requestId} is not valid JSON (content type ${item.contentType})`);
  }
}

/**
 * The text a text model reads: `text/plain` input as is, or JSON that is a string or an object
 * with a string `text` (or `input`) field.
 */
export function textInput(item: InferenceItem): string {
  const type = mediaType(item.contentType);
  if (type === 'text/plain') return item.input.toString('utf8');
  if (type !== 'application/json') throw inputError(`content type ${item.contentType} is not supported; send application/json or text/plain`);
  const value = jsonInput(item);
  if (typeof value === 'string') return value;
  if (value !== null && typeof value === 'object') {
    const v = value as Record<string, unknown>;
    const text = typeof v['text'] === 'string' ? v['text'] : typeof v['input'] === 'string' ? v['input'] : undefined;
    if (text !== undefined) return text;
  }
  throw inputError('input must be a JSON string or an object with a string "text" field');
}

export const jsonOutput = (value: unknown): Buffer => Buffer.from(JSON.stringify(value), 'utf8');
