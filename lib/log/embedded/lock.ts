import { link, readFile, realpath, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SwitchyardError } from '../../errors.js';
import type { Logger } from '../../logger.js';

export const LOCK_FILE = 'LOCK';

/** Directories (real paths) locked by this process, so a second open in-process fails too. */
const held = new Set<string>();

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const lockedError = (dir: string, pid: number | undefined, why: string): SwitchyardError =>
  new SwitchyardError('SY_ERR_LOG_LOCKED', `embedded log directory ${dir} is ${why}; only one process may open it at a time`, {
    retriable: true,
    detail: { dir, pid },
  });

/**
 * Takes the log directory's lock: a `LOCK` file holding the owner's pid, created with
 * `link()` so that it appears atomically with its content. A lock whose pid is not a live
 * process is stale (the owner crashed) and is taken over with a warning. Returns the
 * release function.
 */
export async function acquireLock(dir: string, logger: Logger): Promise<() => Promise<void>> {
  const real = await realpath(dir);
  if (held.has(real)) throw lockedError(dir, process.pid, 'already open in this process');
  const path = join(dir, LOCK_FILE);
  const tmp = join(dir, `${LOCK_FILE}.${process.pid}.tmp`);
  await writeFile(tmp, `${process.pid}\n`);
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        await link(tmp, path);
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt >= 3) throw err;
      }
      const pid = Number.parseInt(await readFile(path, 'utf8').catch(() => ''), 10);
      if (Number.isInteger(pid) && pid !== process.pid && isAlive(pid)) {
        throw lockedError(dir, pid, `locked by process ${pid} (${path})`);
      }
      logger.warn({ dir, pid: Number.isInteger(pid) ? pid : undefined }, 'embedded log: taking over a stale lock');
      await unlink(path).catch(() => {});
    }
  } finally {
    await unlink(tmp).catch(() => {});
  }
  held.add(real);
  return async () => {
    held.delete(real);
    const owner = await readFile(path, 'utf8').catch(() => '');
    if (Number.parseInt(owner, 10) === process.pid) await unlink(path).catch(() => {});
  };
}
