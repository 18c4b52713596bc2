import { hostname } from 'node:os';
import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger };

/**
 * Paths never written to a log line, whichever service logs them: credentials in options,
 * headers and config objects. pino replaces them with "[redacted]".
 */
export const REDACTED_PATHS: readonly string[] = [
  'password',
  '*.password',
  'apiKey',
  '*.apiKey',
  'token',
  '*.token',
  'adminToken',
  '*.adminToken',
  'authorization',
  '*.authorization',
  'headers.authorization',
  'headers["x-api-key"]',
  'headers["x-admin-token"]',
  'req.headers.authorization',
  'req.headers["x-api-key"]',
  'req.headers["x-admin-token"]',
  'sasl.password',
];

/**
 * The process logger: one JSON object per line on stderr (stdout stays free for CLI tables and
 * `--json` output), the same shape from every service so a central store can join them:
 * `time` (ISO 8601), `level` (a number, pino's), `service` (router, worker, controller, …),
 * `instance` (the host and pid), `msg`, and the fields of the line — `requestId`, `traceId`,
 * `workerId`, `lane`, `controllerId`, `epoch` where the line is about one. Level from the caller
 * (`main.ts` reads SWITCHYARD_LOG_LEVEL). Credentials are redacted (`REDACTED_PATHS`).
 */
export function createLogger(service: string, level: string = 'info', destination: DestinationStream = pino.destination(2)): Logger {
  return pino(
    {
      name: service,
      level,
      base: { service, instance: `${hostname()}:${process.pid}` },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: [...REDACTED_PATHS], censor: '[redacted]' },
    },
    destination,
  );
}

/** A logger that drops everything: the default for libraries and tests. */
export const silentLogger: Logger = pino({ level: 'silent' });
