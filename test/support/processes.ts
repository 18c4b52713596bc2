import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = join(ROOT, 'bin', 'switchyard.js');

/** A script run in a process of its own (to be killed for real), its stdout and stderr collected. */
export interface ScriptProcess {
  child: ChildProcess;
  /** Everything the process wrote so far, stdout and stderr interleaved. */
  output: () => string;
  exited: Promise<unknown>;
}

/** Runs `script` (an ES module's text, TypeScript imports allowed) with node through tsx, from the repository root. */
export function spawnScript(script: string): ScriptProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (b: Buffer) => (output += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (output += b.toString()));
  const exited = new Promise((resolve) => child.once('exit', resolve));
  return { child, output: () => output, exited };
}

/** A `switchyard` command running as its own process, its output in a file. */
export interface ServiceProcess {
  name: string;
  child: ChildProcess;
  logFile: string;
  /** Resolves with the exit code (or signal) once the process ended. */
  exited: Promise<number | string>;
  /** The command's arguments (after `switchyard`) and added environment, to start it again. */
  args: string[];
  env: Record<string, string>;
  /** The last lines of its output, for failure messages. */
  tail(lines?: number): string;
  /** Sends `signal` (SIGKILL, SIGSTOP, SIGCONT…) without waiting; false when the process has ended. */
  signal(signal: NodeJS.Signals): boolean;
  /** Sends `signal` (default SIGTERM) and resolves once the process has ended. */
  kill(signal?: NodeJS.Signals): Promise<number | string>;
}

/**
 * Starts `switchyard <args>` with `env` added to this process's environment. Its output is
 * appended to `<logDir>/<name>.log` (a restarted process of the same name continues the file).
 */
export function startSwitchyard(name: string, args: string[], env: Record<string, string>, logDir: string): ServiceProcess {
  const logFile = join(logDir, `${name}.log`);
  const out = createWriteStream(logFile, { flags: 'a' });
  const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.pipe(out, { end: false });
  child.stderr!.pipe(out, { end: false });
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')));
  const tail = (lines = 30) => {
    try {
      return readFileSync(logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '';
    }
  };
  const running = () => child.exitCode === null && child.signalCode === null;
  return {
    name,
    child,
    logFile,
    exited,
    args,
    env,
    tail,
    signal: (signal) => running() && child.kill(signal),
    kill: async (signal = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

/** Runs `switchyard <args>` to completion; rejects with its output when it fails. */
export async function runSwitchyard(args: string[], env: Record<string, string>, logDir: string, name = args[0] ?? 'cmd'): Promise<string> {
  const p = startSwitchyard(name, args, env, logDir);
  const code = await p.exited;
  if (code !== 0) throw new Error(`switchyard ${args.join(' ')} exited ${code}:\n${p.tail()}`);
  return readFileSync(p.logFile, 'utf8');
}

/** A TCP port free on loopback right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

/**
 * Runs `scripts/services.sh <command> <service>` against the broker the tests use
 * (`SWITCHYARD_TEST_BROKERS`' first port) and resolves with its output; rejects with it when
 * the script fails. `restart` stops (SIGTERM) and starts the service keeping its data, and
 * returns once it is healthy again. Other tests share these services: whoever stops one must
 * bring it back.
 */
export function servicesScript(command: 'up' | 'down' | 'restart' | 'status', service: 'kafka' | 'clickhouse'): Promise<string> {
  const broker = (process.env.SWITCHYARD_TEST_BROKERS ?? '127.0.0.1:9092').split(',')[0]!;
  const env = { ...process.env, SWITCHYARD_KAFKA_PORT: broker.split(':')[1] ?? '9092' };
  return new Promise((resolve, reject) => {
    execFile('bash', [join(ROOT, 'scripts', 'services.sh'), command, service], { cwd: ROOT, env, timeout: 300_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`scripts/services.sh ${command} ${service} failed (${err.message}):\n${stdout}${stderr}`));
      else resolve(`${stdout}${stderr}`);
    });
  });
}
