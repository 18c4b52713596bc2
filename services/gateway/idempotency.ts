import { hash } from 'node:crypto';
import { v5 as uuidv5 } from 'uuid';

/**
 * Idempotency-Key semantics (pure).
 *
 * The request id of a keyed request is a UUIDv5 of (tenant or `-`, key): the same key names the
 * same request in every gateway instance and across restarts, with no shared store. The router
 * decides a requestId once, so a repeated key never executes twice; a gateway that knows the
 * request answers its known status or result. `-` cannot be a tenant (tenants start with a
 * letter or digit), so anonymous keys never collide with a tenant's.
 *
 * The body's fingerprint (sha256 of its canonical JSON: object keys sorted at every level) tells
 * a repeat of the same request from a different request under a reused key (422).
 */

// Namespace of idempotent request ids (a random UUID fixed once for Switchyard).
const IDEMPOTENCY_NAMESPACE = '1cc24032-894d-4b1f-97b0-010cb6fe4b56';

export const idempotentRequestId = (tenant: string | null | undefined, key: string): string =>
  uuidv5(`${tenant ?? '-'}\u0000${key}`, IDEMPOTENCY_NAMESPACE);

/** JSON with object keys sorted at every level: equal values give equal text. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj)
    .filter((k) => obj[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(',')}}`;
}

export const fingerprint = (body: unknown): string => hash('sha256', canonicalJson(body), 'hex');
