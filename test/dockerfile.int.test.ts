import { execFile, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * The Dockerfile's own steps, run in a scratch directory: no Docker engine or base image is
 * here, so each stage gets a directory as its root, and
 *
 * - FROM starts a stage; the base image must be node:<major>-… with the major of the node
 *   running this test (RUN steps run with this machine's node and npm, not the image's);
 * - WORKDIR, COPY (from the build context less .dockerignore, or `--from` an earlier stage,
 *   hard-linked), RUN (`sh -c` in the stage's workdir, with the ENV so far and nothing of
 *   this process's environment but PATH and HOME) and ENV are carried out;
 * - USER and `--chown` are checked for their value but not carried out (one user here): file
 *   ownership in the image is not tested;
 * - ENTRYPOINT is run at the end in the last stage, as the image would run it;
 * - any other instruction, a RUN with an absolute path (it would touch this machine), or a
 *   .dockerignore pattern this test does not understand fails the test: nothing is skipped
 *   silently.
 *
 * What this catches: a step that fails (npm install, the TypeScript build, prune), a COPY of
 * something the build does not make, an image that cannot start its CLI from compiled
 * JavaScript or lost a runtime dependency (chDB's native module) to the prune.
 */

const ROOT = resolve(import.meta.dirname, '..');
const run = promisify(execFile);

interface Instruction {
  line: number;
  keyword: string;
  args: string;
}

/** The Dockerfile's instructions: comments dropped, `\` continuations joined. */
export function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = [];
  let pending = '';
  let start = 0;
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/\r$/, '');
    if (pending === '' && /^\s*(#|$)/.test(line)) return;
    if (pending !== '' && /^\s*#/.test(line)) return; // comment lines inside a continuation
    if (pending === '') start = i + 1;
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1)} `;
      return;
    }
    const full = (pending + line).trim();
    pending = '';
    const m = /^(\S+)\s*(.*)$/.exec(full)!;
    out.push({ line: start, keyword: m[1]!.toUpperCase(), args: m[2]! });
  });
  if (pending !== '') throw new Error('Dockerfile ends inside a line continuation');
  return out;
}

/** Exec form (`["a", "b"]`) as argv, or undefined for the shell form. */
const execForm = (args: string): string[] | undefined => (args.trimStart().startsWith('[') ? (JSON.parse(args) as string[]) : undefined);

/** `--flag=value` options in front of an instruction's arguments. */
function flagsOf(args: string): { flags: Record<string, string>; rest: string[] } {
  const words = args.split(/\s+/).filter(Boolean);
  const flags: Record<string, string> = {};
  while (words[0]?.startsWith('--')) {
    const [k, v] = words.shift()!.slice(2).split('=');
    flags[k!] = v ?? '';
  }
  return { flags, rest: words };
}

/** `KEY=value KEY2="value 2"` (or the old `KEY value`) of ENV. */
function envPairs(args: string): [string, string][] {
  if (!args.includes('=')) {
    const [k, ...v] = args.split(/\s+/);
    return [[k!, v.join(' ')]];
  }
  return [...args.matchAll(/([A-Za-z_][A-Za-z0-9_]*)=("(?:[^"\\]|\\.)*"|\S*)/g)].map((m) => [m[1]!, m[2]!.startsWith('"') ? (JSON.parse(m[2]!) as string) : m[2]!]);
}

/** A matcher of .dockerignore (plain paths and `*` within a segment; anything else is refused). */
function dockerignore(text: string): (rel: string) => boolean {
  const patterns = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  const regexes = patterns.map((p) => {
    if (/[!?[\]{}]|\*\*/.test(p)) throw new Error(`.dockerignore pattern "${p}" is not understood by test/dockerfile.int.test.ts: teach it`);
    const body = p
      .replace(/^\/+|\/+$/g, '')
      .split('/')
      .map((seg) => seg.replace(/[.+^$()|\\]/g, '\\$&').replace(/\*/g, '[^/]*'))
      .join('/');
    return new RegExp(`^${body}(/|$)`);
  });
  return (rel) => regexes.some((r) => r.test(rel));
}

interface Stage {
  name: string;
  root: string;
  workdir: string;
  env: Record<string, string>;
  user: string | undefined;
  entrypoint: string[] | undefined;
}

interface BuildResult {
  final: Stage;
  stages: Stage[];
  /** What was not carried out, by instruction (for the reader of the test output). */
  notEmulated: string[];
  ms: number;
}

/** Run the Dockerfile's steps under `scratch` (see the comment at the top). */
async function buildInScratch(dockerfile: string, scratch: string): Promise<BuildResult> {
  const started = Date.now();
  const ignored = dockerignore(existsSync(join(ROOT, '.dockerignore')) ? readFileSync(join(ROOT, '.dockerignore'), 'utf8') : '');
  const stages: Stage[] = [];
  const notEmulated: string[] = [];
  let stage: Stage | undefined;
  const inStage = (p: string) => join(stage!.root, isAbsolute(p) ? p : join(stage!.workdir, p));

  for (const ins of parseDockerfile(readFileSync(dockerfile, 'utf8'))) {
    const where = `Dockerfile:${ins.line} ${ins.keyword}`;
    if (ins.keyword !== 'FROM' && stage === undefined) throw new Error(`${where}: before any FROM`);
    switch (ins.keyword) {
      case 'FROM': {
        const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.args);
        if (!m) throw new Error(`${where}: "${ins.args}" is not FROM <image> [AS <name>]`);
        const major = /^node:(\d+)(?:[.-]|$)/.exec(m[1]!)?.[1];
        if (major === undefined) throw new Error(`${where}: base image ${m[1]} is not node:<major>-…; the scratch run can only stand in for a node image`);
        if (major !== process.versions.node.split('.')[0]) throw new Error(`${where}: the image's node is ${major}, this machine's ${process.versions.node}: the RUN steps here would not be the image's`);
        const name = m[2] ?? String(stages.length);
        stage = { name, root: join(scratch, `stage-${stages.length}-${name}`), workdir: '/', env: {}, user: undefined, entrypoint: undefined };
        mkdirSync(stage.root, { recursive: true });
        stages.push(stage);
        break;
      }
      case 'WORKDIR':
        stage!.workdir = isAbsolute(ins.args) ? ins.args : join(stage!.workdir, ins.args);
        mkdirSync(join(stage!.root, stage!.workdir), { recursive: true });
        break;
      case 'ENV':
        for (const [k, v] of envPairs(ins.args)) stage!.env[k] = v;
        break;
      case 'COPY': {
        const { flags, rest } = flagsOf(ins.args);
        for (const f of Object.keys(flags)) if (f !== 'from' && f !== 'chown') throw new Error(`${where}: --${f} is not understood by this test`);
        if (flags['chown'] !== undefined) notEmulated.push(`${where} --chown=${flags['chown']} (ownership)`);
        const dest = rest.pop()!;
        if (rest.length === 0) throw new Error(`${where}: COPY needs a source and a destination`);
        const from = flags['from'] === undefined ? undefined : stages.find((s) => s.name === flags['from']);
        if (flags['from'] !== undefined && from === undefined) throw new Error(`${where}: no stage named ${flags['from']}`);
        const target = inStage(dest);
        const intoDir = dest.endsWith('/') || rest.length > 1;
        for (const src of rest) {
          const origin = from === undefined ? join(ROOT, src) : join(from.root, isAbsolute(src) ? src : join(from.workdir, src));
          if (!existsSync(origin)) throw new Error(`${where}: ${src} does not exist ${from === undefined ? 'in the build context' : `in stage ${from.name}`}`);
          const to = intoDir && !statSync(origin).isDirectory() ? join(target, src.split('/').pop()!) : target;
          mkdirSync(dirname(to), { recursive: true });
          if (from === undefined) {
            // The build context, less .dockerignore.
            cpSync(origin, to, { recursive: true, filter: (p) => relative(ROOT, p) === '' || !ignored(relative(ROOT, p)) });
          } else {
            await run('cp', ['-al', origin, to]);
          }
        }
        break;
      }
      case 'RUN': {
        const argv = execForm(ins.args) ?? ['sh', '-c', ins.args];
        if (/(^|[\s=:'"])\/[A-Za-z]/.test(argv.slice(argv[0] === 'sh' ? 2 : 0).join(' '))) {
          throw new Error(`${where}: "${ins.args}" uses an absolute path, which would reach outside the scratch root: use paths relative to WORKDIR`);
        }
        const env = { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: process.env['HOME'] ?? tmpdir(), ...stage!.env };
        const cwd = join(stage!.root, stage!.workdir);
        const code = await new Promise<number>((done, fail) => {
          const child = spawn(argv[0]!, argv.slice(1), { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
          let output = '';
          child.stdout.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-20_000)));
          child.stderr.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-20_000)));
          child.on('error', fail);
          child.on('close', (c) => {
            if (c !== 0) process.stderr.write(`${where} ${ins.args} failed (exit ${c}):\n${output}\n`);
            done(c ?? -1);
          });
        });
        if (code !== 0) throw new Error(`${where}: "${ins.args}" exited ${code}`);
        break;
      }
      case 'USER':
        stage!.user = ins.args;
        notEmulated.push(`${where} ${ins.args} (the steps run as this machine's user)`);
        break;
      case 'ENTRYPOINT': {
        const argv = execForm(ins.args);
        if (argv === undefined) throw new Error(`${where}: use the exec form (["node", …]) so signals reach node`);
        stage!.entrypoint = argv;
        break;
      }
      default:
        throw new Error(`${where}: instruction not understood by test/dockerfile.int.test.ts; teach it rather than skip it`);
    }
  }
  if (stage === undefined) throw new Error('the Dockerfile has no FROM');
  return { final: stage, stages, notEmulated, ms: Date.now() - started };
}

describe('Dockerfile, built step by step in a scratch directory', () => {
  let scratch: string;
  let built: BuildResult;

  /** Run the image's ENTRYPOINT with `args`, in the final stage, with its ENV (absolute paths that exist in the stage mapped into it). */
  const entrypoint = async (...args: string[]) => {
    const { final } = built;
    const env: Record<string, string> = { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: process.env['HOME'] ?? tmpdir() };
    for (const [k, v] of Object.entries(final.env)) env[k] = isAbsolute(v) && existsSync(join(final.root, v)) ? join(final.root, v) : v;
    const [cmd, ...rest] = final.entrypoint!;
    return run(cmd!, [...rest, ...args], { cwd: join(final.root, final.workdir), env, maxBuffer: 16 * 1024 * 1024 });
  };

  beforeAll(async () => {
    scratch = mkdtempSync(join(tmpdir(), 'sy-dockerfile-'));
    built = await buildInScratch(join(ROOT, 'Dockerfile'), scratch);
    process.stderr.write(`dockerfile: built ${built.stages.map((s) => s.name).join(' → ')} in ${(built.ms / 1000).toFixed(0)} s; not carried out: ${built.notEmulated.join('; ')}\n`);
  }, 480_000);

  afterAll(() => {
    if (scratch !== undefined) rmSync(scratch, { recursive: true, force: true });
  });

  it('parses continuations and comments, and refuses what it does not understand', () => {
    expect(parseDockerfile('FROM node:20 AS b\n# c\nRUN a && \\\n  # inside\n  b\nENTRYPOINT ["x"]\n')).toEqual([
      { line: 1, keyword: 'FROM', args: 'node:20 AS b' },
      { line: 3, keyword: 'RUN', args: 'a &&    b' },
      { line: 6, keyword: 'ENTRYPOINT', args: '["x"]' },
    ]);
    expect(() => dockerignore('!keep')).toThrowError(/not understood/);
    const ignore = dockerignore('node_modules\n/dist\n*.log\n');
    expect([ignore('node_modules'), ignore('node_modules/x/y'), ignore('dist/a.js'), ignore('a.log'), ignore('lib/dist.ts'), ignore('src/a.log')]).toEqual([true, true, true, true, false, false]);
  });

  it('ships compiled JavaScript only, without dev dependencies, and runs as node', () => {
    const app = join(built.final.root, built.final.workdir);
    expect(existsSync(join(app, 'dist', 'cli', 'main.js'))).toBe(true);
    expect(existsSync(join(app, 'dist', 'BUILD'))).toBe(true);
    expect(existsSync(join(app, 'cli', 'main.ts'))).toBe(false);
    expect(existsSync(join(app, 'dist', 'models', 'manifest.json'))).toBe(true);
    const modules = readdirSync(join(app, 'node_modules'));
    expect(modules).toEqual(expect.arrayContaining(['fastify', 'kafkajs', 'chdb', 'tsx']));
    for (const dev of ['vitest', 'typescript', 'eslint']) expect(modules, dev).not.toContain(dev);
    expect(built.final.user).toBe('node');
    expect(built.final.env['NODE_ENV']).toBe('production');
  });

  it('starts the CLI from dist/ (--help, gateway hash-key)', async () => {
    const help = await entrypoint('--help');
    expect(help.stdout).toMatch(/^Usage: switchyard/);
    expect(help.stderr).not.toContain('running the sources');
    expect((await entrypoint('gateway', 'hash-key', 'abc')).stdout.trim()).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });

  it('initializes a data directory (embedded log, blobs, chDB analytics: native modules survived the prune)', async () => {
    const { stdout } = await entrypoint('--json', 'init');
    expect(stdout.length).toBeGreaterThan(0);
    const data = join(built.final.root, 'data');
    expect(readdirSync(data)).toEqual(expect.arrayContaining(['log', 'blobs', 'analytics']));
  }, 120_000);
});
