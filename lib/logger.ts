import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * The process logger. Level from the caller (main.ts reads SWITCHYARD_LOG_LEVEL); JSON
 * lines on stderr so stdout stays free for CLI tables and --json output.
 */
export function createLogger(name: string, level: string = 'info'): Logger {
  return pino({ name, level }, pino.destination(2));
}

/** A logger that drops everything: the default for libraries and tests. */
export const silentLogger: Logger = pino({ level: 'silent' });
