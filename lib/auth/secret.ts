import { createHash, hash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { SwitchyardError } from '../errors.js';

/**
 * Secrets (API keys, the admin token) as the services keep them: the sha256 of the secret,
 * never the secret. The keys are random and long, so a fast hash is enough (there is nothing
 * to brute-force that is smaller than the key itself); comparisons are constant-time.
 */

const HEX64 = /^[0-9a-f]{64}$/;

/** Shortest secret accepted, characters: shorter ones are guessable. */
export const MIN_SECRET_LENGTH = 16;

/** sha256 of a secret, 64 lowercase hex characters: what key files and options hold. */
export const hashSecret = (secret: string): string => hash('sha256', secret, 'hex');

/** A new random secret: 32 bytes as base64url (43 characters). */
export const generateSecret = (): string => randomBytes(32).toString('base64url');

/** `hash` as 64 lowercase hex characters, or `SY_ERR_CONFIG` naming `what`. */
export function parseSecretHash(hash: string, what: string): string {
  const hex = hash.trim().toLowerCase();
  if (!HEX64.test(hex)) throw new SwitchyardError('SY_ERR_CONFIG', `${what} must be the sha256 of the secret as 64 hex characters (switchyard gateway hash-key prints it)`);
  return hex;
}

/** A secret given in plain text (e.g. SWITCHYARD_ADMIN_TOKEN), hashed at once; too short is `SY_ERR_CONFIG`. */
export function hashConfiguredSecret(secret: string, what: string): string {
  if (secret.length < MIN_SECRET_LENGTH) throw new SwitchyardError('SY_ERR_CONFIG', `${what} must be at least ${MIN_SECRET_LENGTH} characters (got ${secret.length})`);
  return hashSecret(secret);
}

/** Does `presented` hash to `hash` (hex)? Constant-time in the content of both. */
export function secretMatches(presented: string, hash: string): boolean {
  const actual = createHash('sha256').update(presented, 'utf8').digest();
  const expected = Buffer.from(hash, 'hex');
  return expected.length === actual.length && timingSafeEqual(actual, expected);
}

/** What a request presents as its credential. */
export type Presented =
  | { kind: 'none' }
  /** Something was sent that is not a credential form the route takes. */
  | { kind: 'malformed'; message: string }
  | { kind: 'secret'; secret: string };

export interface CredentialForms {
  /** A header that carries the secret as its whole value, e.g. `x-api-key`. */
  header?: string;
  /** Accept `Authorization: Basic` with the secret as the password (any user name): what Confluent clients send. @default false */
  basic?: boolean;
}

/**
 * The credential in a request's headers: `Authorization: Bearer <secret>`, the route's own
 * header, or (when allowed) `Authorization: Basic` with the secret as password.
 */
export function presentedCredential(headers: IncomingHttpHeaders, forms: CredentialForms = {}): Presented {
  const authorization = headers.authorization;
  if (authorization !== undefined && authorization !== '') {
    const space = authorization.indexOf(' ');
    const scheme = (space < 0 ? authorization : authorization.slice(0, space)).toLowerCase();
    const value = space < 0 ? '' : authorization.slice(space + 1).trim();
    if (scheme === 'bearer' && value !== '') return { kind: 'secret', secret: value };
    if (scheme === 'basic' && forms.basic === true && value !== '') {
      const decoded = Buffer.from(value, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon >= 0 && colon < decoded.length - 1) return { kind: 'secret', secret: decoded.slice(colon + 1) };
    }
    const accepted = ['Bearer <secret>', ...(forms.basic === true ? ['Basic (the secret as password)'] : [])].join(' or ');
    return { kind: 'malformed', message: `the Authorization header must be ${accepted}` };
  }
  if (forms.header !== undefined) {
    const value = headers[forms.header];
    const one = Array.isArray(value) ? value[0] : value;
    if (one !== undefined && one !== '') return { kind: 'secret', secret: one };
  }
  return { kind: 'none' };
}
