import { spawn, type ChildProcess } from 'node:child_process';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SwitchyardError } from '../../errors.js';
import { silentLogger } from '../../logger.js';
import { captureLogger, tempDir } from '../../../test/support/log-dir.js';
import { openEmbeddedLog, type EmbeddedLog } from './index.js';

const lockedError = async (promise: Promise<unknown>): Promise<SwitchyardError> => {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(SwitchyardError);
  expect((err as SwitchyardError).code).toBe('SY_ERR_LOG_LOCKED');
  return err as SwitchyardError;
};

const exited = (child: ChildProcess) => new Promise<void>((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', () => resolve())));

describe('embedded log directory lock', () => {
  let dir: string;
  let remove: () => Promise<void>;
  let opened: EmbeddedLog[];
  let children: ChildProcess[];

  beforeEach(async () => {
    ({ dir, remove } = await tempDir('sy-lock-'));
    opened = [];
    children = [];
  });
  afterEach(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await Promise.all(children.map(exited));
    await Promise.all(opened.map((l) => l.close()));
    await remove();
  });

  const open = async (logger = silentLogger) => {
    const log = await openEmbeddedLog({ dir, fsync: 'never', logger });
    opened.push(log);
    return log;
  };

  it('holds a LOCK file with the pid while open, and removes it on close', async () => {
    const log = await open();
    expect((await readFile(join(dir, 'LOCK'), 'utf8')).trim()).toBe(String(process.pid));
    await log.close();
    await expect(stat(join(dir, 'LOCK'))).rejects.toThrow();
    await open();
  });

  it('a second open of the same directory in this process fails clearly', async () => {
    await open();
    const err = await lockedError(openEmbeddedLog({ dir: join(dir, '.', ''), logger: silentLogger }));
    expect(err.message).toContain('already open in this process');
  });

  it('a directory locked by another live process cannot be opened', async () => {
    const holder = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60_000)'], { stdio: 'ignore' });
    children.push(holder);
    await writeFile(join(dir, 'LOCK'), `${holder.pid}\n`);
    const err = await lockedError(open());
    expect(err.message).toContain(`locked by process ${holder.pid}`);
    expect(err.detail).toMatchObject({ pid: holder.pid });
    expect(err.retriable).toBe(true);
  });

  it('a stale lock (its process is gone) is taken over with a warning', async () => {
    const gone = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
    await exited(gone);
    await writeFile(join(dir, 'LOCK'), `${gone.pid}\n`);
    const capture = captureLogger();
    await open(capture.logger);
    expect(capture.lines.find((l) => l.msg.includes('stale lock'))).toMatchObject({ pid: gone.pid });
    expect((await readFile(join(dir, 'LOCK'), 'utf8')).trim()).toBe(String(process.pid));
  });

  it('two processes: the second fails while the first runs, and opens after the first is killed', async () => {
    const script = `
      import { openEmbeddedLog } from ${JSON.stringify(new URL('./index.ts', import.meta.url).pathname)};
      const log = await openEmbeddedLog({ dir: ${JSON.stringify(dir)}, fsync: 'never' });
      await log.ensureTopics([{ name: 't', partitions: 1 }]);
      await log.append([{ topic: 't', partition: 0, value: Buffer.from('from the child') }]);
      process.stdout.write('ready\\n');
      setTimeout(() => {}, 60_000);
    `;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(child);
    await new Promise<void>((resolve, reject) => {
      child.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
      child.once('exit', (code) => reject(new Error(`child exited early with ${code}`)));
    });
    const err = await lockedError(open());
    expect(err.detail).toMatchObject({ pid: child.pid });
    child.kill('SIGKILL'); // a crash: no close, the LOCK file stays
    await exited(child);
    const log = await open();
    expect((await log.read({ topic: 't', partition: 0, from: 0 })).map((r) => r.value!.toString())).toEqual(['from the child']);
  }, 30_000);
});
