import { isIP } from 'node:net';
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { AuthError } from './errors.js';
import { hashConfiguredSecret, parseSecretHash, presentedCredential, secretMatches } from './secret.js';

/**
 * The admin token: one secret that guards every route that changes the cluster's
 * configuration rather than running inference — the registry's writes (register a schema,
 * change compatibility, delete), the blob store's PUT, and the model lifecycle routes to come.
 *
 * A client sends it as `Authorization: Bearer <token>`, `X-Admin-Token: <token>`, or HTTP Basic
 * with the token as the password (what Confluent's clients send: `basic.auth.user.info`,
 * `@kafkajs/confluent-schema-registry`'s `auth`). Services keep only its sha256.
 *
 * Without a token configured, admin routes answer only clients connected over loopback
 * (127.0.0.0/8, ::1) and 403 anyone else: a service bound to 127.0.0.1 works as before, one
 * bound to a public address does not expose its writes by accident. The peer address is the
 * socket's, never X-Forwarded-For: behind a proxy on the same host every client looks local,
 * so configure the token there.
 *
 * Use: `{ onRequest: requireAdmin(opts) }` on a route, or register routes inside
 * `adminScope(opts, routes)` to guard them all.
 */
export interface AdminAuthOptions {
  /**
   * sha256 of the admin token, 64 hex characters (the CLI hashes SWITCHYARD_ADMIN_TOKEN at
   * start). Unset: admin routes answer loopback clients only. @default undefined
   */
  tokenHash?: string | undefined;
}

/** The header that may carry the admin token (besides Authorization). */
export const ADMIN_TOKEN_HEADER = 'x-admin-token';

const LOOPBACK_V4 = /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/;

/** Is this a loopback address (127.0.0.0/8, ::1, or IPv4-mapped 127.x)? Host names other than `localhost` are not. */
export function isLoopbackAddress(address: string | undefined): boolean {
  if (address === undefined) return false;
  const a = address.startsWith('[') && address.endsWith(']') ? address.slice(1, -1) : address;
  if (a === 'localhost' || a === '::1') return true;
  const v4 = a.toLowerCase().startsWith('::ffff:') ? a.slice(7) : a;
  return isIP(v4) === 4 && LOOPBACK_V4.test(v4);
}

/**
 * Admin auth from the token as configured (SWITCHYARD_ADMIN_TOKEN): hashed at once, at least
 * 16 characters (`SY_ERR_CONFIG` otherwise); empty or undefined = no token.
 */
export function adminAuthFromToken(token: string | undefined): AdminAuthOptions {
  return token === undefined || token === '' ? {} : { tokenHash: hashConfiguredSecret(token, 'the admin token (SWITCHYARD_ADMIN_TOKEN)') };
}

/** The hex hash of `options.tokenHash`, validated (`SY_ERR_CONFIG` when malformed). */
export function resolveAdminAuth(options: AdminAuthOptions = {}): AdminAuthOptions {
  return options.tokenHash === undefined ? {} : { tokenHash: parseSecretHash(options.tokenHash, 'the admin token hash') };
}

/**
 * A fastify `onRequest` hook that lets the request through only with the admin token (or,
 * with none configured, only from loopback). It throws an `AuthError`; the app's error handler
 * renders it in the service's format. Runs before the body is read, so a refused upload is
 * never buffered.
 */
export function requireAdmin(options: AdminAuthOptions = {}): (req: FastifyRequest) => Promise<void> {
  const { tokenHash } = resolveAdminAuth(options);
  return async (req) => {
    if (tokenHash === undefined) {
      if (isLoopbackAddress(req.raw.socket?.remoteAddress)) return;
      throw new AuthError('SY_ERR_AUTH_FORBIDDEN', 'this admin route is open only to clients on loopback: no admin token is configured (set SWITCHYARD_ADMIN_TOKEN)', {
        reason: 'ADMIN_TOKEN_NOT_CONFIGURED',
      });
    }
    const presented = presentedCredential(req.headers, { header: ADMIN_TOKEN_HEADER, basic: true });
    if (presented.kind === 'none') {
      throw new AuthError('SY_ERR_AUTH_REQUIRED', 'this is an admin route: send the admin token as Authorization: Bearer <token> (or X-Admin-Token, or Basic auth with the token as password)', {
        reason: 'MISSING_ADMIN_TOKEN',
      });
    }
    if (presented.kind === 'malformed') throw new AuthError('SY_ERR_AUTH_REQUIRED', `this is an admin route: ${presented.message}`, { reason: 'MALFORMED_CREDENTIAL' });
    if (!secretMatches(presented.secret, tokenHash)) throw new AuthError('SY_ERR_AUTH_INVALID', 'the admin token is not valid', { reason: 'INVALID_ADMIN_TOKEN' });
  };
}

/** A plugin whose routes (registered by `routes`) all require the admin token. */
export function adminScope(options: AdminAuthOptions, routes: FastifyPluginAsync): FastifyPluginAsync {
  const hook = requireAdmin(options);
  return async (app) => {
    app.addHook('onRequest', hook);
    await app.register(routes);
  };
}

/** One line for a service's start-up log: how its admin routes are guarded. */
export const describeAdminAuth = (options: AdminAuthOptions = {}): string =>
  options.tokenHash === undefined ? 'admin routes: no admin token configured, open to loopback clients only' : 'admin routes: admin token required';
