import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from './proc.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** A running `switchyard up`, started by `startUp`. */
export interface UpProcess {
  pid: number;
  /** The gateway, e.g. http://127.0.0.1:41234. */
  url: string;
  /** Whether bin/switchyard.js ran the compiled dist/ or the sources through tsx. */
  ran: 'compiled dist/' | 'sources through tsx';
  /** SIGTERM, wait (≤ 30 s, then SIGKILL); the temp home is removed unless `keep`. */
  stop: (keep?: boolean) => Promise<void>;
  /** The server's stdout and stderr. */
  logFile: string;
  /** Its home (the embedded log is under `<home>/log`); removed by `stop()` unless kept. */
  home: string;
}

export interface UpOptions {
  /** Kafka bootstrap brokers; none: the embedded log in the temp home. */
  brokers: string[];
  /** Topic prefix (give a unique one on a shared broker). */
  prefix?: string;
  /** How long `/readyz` may take to answer 200, ms. @default 300_000 */
  readyTimeoutMs?: number;
  /** Run the sources through tsx even when dist/ is fresh (SWITCHYARD_FROM_SOURCE=1). @default false */
  fromSource?: boolean;
  /** Another checkout of Switchyard to run (its bin/switchyard.js), e.g. an older commit to compare with. @default this one */
  checkout?: string;
  /** Flags for node itself, e.g. `--cpu-prof`. */
  nodeArgs?: string[];
  /** More environment for the server (after the caller's own, which is inherited). */
  env?: Record<string, string>;
  /** More flags for `switchyard up` itself, after the ones above (e.g. `--controllers 0`). */
  upArgs?: string[];
}

/**
 * `switchyard up` as a user runs it — `node bin/switchyard.js up` in a process of its own, a
 * fresh home under the OS temp dir, a free port, log level warn — as bench/soak.ts starts it.
 * Resolves once `/readyz` answers 200.
 */
export async function startUp({ brokers, prefix, readyTimeoutMs = 300_000, fromSource = false, checkout = ROOT, nodeArgs = [], env: extraEnv = {}, upArgs = [] }: UpOptions): Promise<UpProcess> {
  const home = mkdtempSync(join(tmpdir(), 'sy-bench-peers-'));
  const port = await freePort();
  const logFile = join(home, 'up.log');
  const out = createWriteStream(logFile);
  const args = [...nodeArgs, join(checkout, 'bin', 'switchyard.js'), 'up', '--port', String(port), '--home', home];
  if (brokers.length > 0) args.push('--brokers', brokers.join(','));
  if (prefix !== undefined) args.push('--prefix', prefix);
  args.push(...upArgs);
  // This run's flags only: no deployment settings inherited from the caller's environment.
  const env: NodeJS.ProcessEnv = { ...process.env, SWITCHYARD_LOG_LEVEL: 'warn', ...extraEnv };
  for (const k of ['SWITCHYARD_BROKERS', 'SWITCHYARD_HOME', 'SWITCHYARD_TOPIC_PREFIX', 'SWITCHYARD_FROM_SOURCE']) delete env[k];
  if (fromSource) env.SWITCHYARD_FROM_SOURCE = '1';
  const child: ChildProcess = spawn(process.execPath, args, { cwd: checkout, env, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.pipe(out);
  child.stderr!.pipe(out);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async (keep = false): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      await exited;
      clearTimeout(killer);
    }
    if (!keep) rmSync(home, { recursive: true, force: true });
  };
  const url = `http://127.0.0.1:${port}`;
  const deadline = performance.now() + readyTimeoutMs;
  try {
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`switchyard up exited (${child.exitCode ?? child.signalCode}); see ${logFile}`);
      try {
        if ((await fetch(`${url}/readyz`)).status === 200) break;
      } catch {
        // not listening yet
      }
      if (performance.now() > deadline) throw new Error(`switchyard up not ready after ${Math.round(readyTimeoutMs / 1000)} s; see ${logFile}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  } catch (e) {
    await stop(true);
    throw e;
  }
  // bin/switchyard.js says on stderr when it falls back to the sources; no dist/ at all is the other case.
  const sources = fromSource || !existsSync(join(checkout, 'dist', 'cli', 'main.js')) || !existsSync(join(checkout, 'dist', 'BUILD')) || readFileSync(logFile, 'utf8').includes('running the sources');
  return { pid: child.pid!, url, ran: sources ? 'sources through tsx' : 'compiled dist/', stop, logFile, home };
}
