import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { processTable, freePort } from './proc.js';
import { processTree } from './measure.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** The Ray Serve the peers benchmark installs: pinned, so every run measures the same peer. */
export const RAY_VERSION = '2.60.0';
export const RAY_REQUIREMENT = `ray[serve]==${RAY_VERSION}`;
/** One replica may hold this many requests at once (Ray's default is 5). */
export const RAY_MAX_ONGOING_REQUESTS = 64;

/** Where the virtualenv lives (`.switchyard/` is not committed). */
export const PEERS_DIR = join(ROOT, '.switchyard', 'peers');
const VENV = join(PEERS_DIR, 'venv');
/** Written once the pinned version is installed; a second run with the same stamp reinstalls nothing. */
const STAMP = join(VENV, 'switchyard-peers.stamp');

export type RayInstall = { ok: true; python: string; reused: boolean } | { ok: false; reason: string };

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[], timeoutMs: number): Promise<Ran> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => void (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => void (stderr += c.toString()));
    const timer = setTimeout(() => {
      stderr += `\ntimed out after ${Math.round(timeoutMs / 1000)} s`;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.once('error', (e) => {
      clearTimeout(timer);
      resolve({ code: null, stdout, stderr: `${stderr}\n${e.message}` });
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** The last line of a failed command's output that says something, for a one-line reason. */
const lastLine = (r: Ran): string =>
  `${r.stderr}\n${r.stdout}`
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('[notice]'))
    .at(-1) ?? `exit ${r.code}`;

/**
 * The pinned Ray Serve in `.switchyard/peers/venv`, made with `python3` (or
 * SWITCHYARD_BENCH_PYTHON) and pip from PyPI unless the stamp there names the pinned version.
 * Never throws: a failure is a reason the benchmark prints.
 */
export async function installRay(progress: (line: string) => void): Promise<RayInstall> {
  const python = join(VENV, 'bin', 'python');
  if (existsSync(python) && existsSync(STAMP) && readFileSync(STAMP, 'utf8').trim() === RAY_REQUIREMENT) return { ok: true, python, reused: true };
  const base = process.env.SWITCHYARD_BENCH_PYTHON ?? 'python3';
  progress(`installing ${RAY_REQUIREMENT} into ${VENV} with ${base} (a few minutes the first time)`);
  rmSync(VENV, { recursive: true, force: true });
  mkdirSync(PEERS_DIR, { recursive: true });
  const venv = await run(base, ['-m', 'venv', VENV], 120_000);
  if (venv.code !== 0) return { ok: false, reason: `${base} -m venv failed: ${lastLine(venv)}` };
  const pip = await run(python, ['-m', 'pip', 'install', '--disable-pip-version-check', '--quiet', RAY_REQUIREMENT], 20 * 60_000);
  if (pip.code !== 0) return { ok: false, reason: `pip install ${RAY_REQUIREMENT} failed: ${lastLine(pip)}` };
  writeFileSync(STAMP, `${RAY_REQUIREMENT}\n`);
  return { ok: true, python, reused: false };
}

/** A running Ray cluster with the no-op Serve application, started by `startRay`. */
export interface RayProcess {
  /** The driver (bench/peers/ray_app.py); every Ray process is below it. */
  pid: number;
  /** The Serve HTTP proxy's route to the no-op deployment. */
  url: string;
  /** What the driver reported: Ray and Python versions, the cluster's CPUs. */
  ready: { ray: string; python: string; cpus: number };
  /** Closes the driver's stdin (Serve and Ray shut down), waits ≤ 60 s, then kills what is left. */
  stop: () => Promise<void>;
  logFile: string;
}

/** Starts Ray and the Serve app (bench/peers/ray_app.py); resolves when it answers. Ray takes a while. */
export async function startRay(python: string, readyTimeoutMs = 300_000): Promise<RayProcess> {
  const port = await freePort();
  // Ray's unix sockets live under its temp dir: keep the path short (sun_path is 108 bytes).
  const tempDir = mkdtempSync('/tmp/sy-ray-');
  mkdirSync(PEERS_DIR, { recursive: true });
  const logFile = join(PEERS_DIR, 'ray.log');
  const log = createWriteStream(logFile);
  const child: ChildProcess = spawn(python, [join(ROOT, 'bench', 'peers', 'ray_app.py'), '--port', String(port), '--temp-dir', tempDir, '--max-ongoing-requests', String(RAY_MAX_ONGOING_REQUESTS)], {
    cwd: ROOT,
    env: { ...process.env, RAY_SERVE_ENABLE_ACCESS_LOG: '0', RAY_USAGE_STATS_ENABLED: '0', PYTHONUNBUFFERED: '1' },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  child.stderr!.pipe(log);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async (): Promise<void> => {
    const tree = processTree(processTable(), child.pid!);
    child.stdin!.end();
    const killer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    await exited;
    clearTimeout(killer);
    // Whatever of the tree outlived its driver (a raylet, a worker): ended by pid.
    const alive = processTable();
    for (const pid of tree) {
      if (alive.has(pid)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
    rmSync(tempDir, { recursive: true, force: true });
  };
  try {
    const ready = await new Promise<RayProcess['ready']>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`not ready after ${Math.round(readyTimeoutMs / 1000)} s; see ${logFile}`)), readyTimeoutMs);
      const lines = createInterface({ input: child.stdout! });
      lines.on('line', (line) => {
        log.write(`${line}\n`);
        if (!line.startsWith('READY ')) return;
        clearTimeout(timer);
        resolve(JSON.parse(line.slice('READY '.length)) as RayProcess['ready']);
      });
      void exited.then(() => {
        clearTimeout(timer);
        reject(new Error(`the driver exited before Serve was ready; see ${logFile}`));
      });
    });
    return { pid: child.pid!, url: `http://127.0.0.1:${port}/`, ready, stop, logFile };
  } catch (e) {
    await stop();
    throw e;
  }
}
