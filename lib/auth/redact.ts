import type { FastifyBaseLogger } from 'fastify';

/**
 * Log paths that may hold a credential, censored by every HTTP service's logger: fastify's
 * request serializer does not log headers, but a handler or hook that logs `req` or its
 * headers must not write a key or token either.
 */
export const SECRET_LOG_PATHS = [
  'req.headers.authorization',
  'req.headers["x-api-key"]',
  'req.headers["x-admin-token"]',
  'req.headers.cookie',
  'headers.authorization',
  'headers["x-api-key"]',
  'headers["x-admin-token"]',
  'headers.cookie',
];

/** A child of `logger` that writes `[redacted]` in place of credentials (see SECRET_LOG_PATHS). */
export const redactingLogger = (logger: FastifyBaseLogger): FastifyBaseLogger =>
  logger.child({}, { redact: { paths: SECRET_LOG_PATHS, censor: '[redacted]' } });
