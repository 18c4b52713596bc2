import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';

/** A fresh temp directory and a function that removes it. */
export async function tempDir(prefix = 'sy-test-'): Promise<{ dir: string; remove: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

export interface CapturedLine {
  level: number;
  msg: string;
  [field: string]: unknown;
}

/** A pino logger that keeps every line (as parsed JSON) in `lines`, for asserting on what was logged. */
export function captureLogger(): { logger: Logger; lines: CapturedLine[]; messages: () => string[] } {
  const lines: CapturedLine[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line) as CapturedLine) });
  return { logger, lines, messages: () => lines.map((l) => l.msg) };
}
