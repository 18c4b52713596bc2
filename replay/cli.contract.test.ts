import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createChdbAnalyticsStore } from '../lib/analytics/chdb.js';
import { openEmbeddedLog } from '../lib/log/embedded/index.js';
import { archiveWithSink, copyToHome, GOLDEN, openEmbeddedSource, tamperedCopy } from './test-support.js';

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, '..');

/** `switchyard replay …` as a user runs it, on a copy of the golden recording (embedded log). */
async function cli(home: string, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', 'cli/main.ts', '--home', home, 'replay', ...args], { cwd: ROOT, env: { ...process.env, NO_COLOR: '1' }, maxBuffer: 32 * 1024 * 1024 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

describe('switchyard replay (CLI, embedded)', () => {
  let home: Awaited<ReturnType<typeof copyToHome>>;
  beforeAll(async () => {
    home = await copyToHome(GOLDEN);
  });
  afterAll(async () => {
    await home?.remove();
  });

  it('request: a readable timeline, --json, and --html writes a self-contained page', async () => {
    const html = join(home.home, 'r.html');
    const text = await cli(home.home, 'request', 'req-00013', '--html', html);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^request req-00013 · \w+/);
    expect(text.stdout).toContain('RECEIVED');
    expect(text.stdout).toMatch(/ROUTED|REJECTED/);
    expect(await readFile(html, 'utf8')).toMatch(/^<!doctype html>[\s\S]*Request req-00013/);
    const json = await cli(home.home, '--json', 'request', 'req-00013');
    const parsed = JSON.parse(json.stdout) as { requestId: string; hops: { kind: string }[]; lookup: { strategy: string } };
    expect(parsed.requestId).toBe('req-00013');
    expect(parsed.lookup.strategy).toBe('index');
    expect(parsed.hops[0]!.kind).toBe('received');
  }, 60_000);

  it('not found: exit 3 and a message with the code', async () => {
    const r = await cli(home.home, 'request', 'no-such-request');
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('[SY_ERR_REPLAY_NOT_FOUND]');
  }, 60_000);

  it('verify: exit 0 on the recording; exit 1 with the diff on a tampered copy', async () => {
    const ok = await cli(home.home, 'verify', '--strict');
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/\d+ decisions: \d+ verified, 0 diverged/);
    expect(ok.stdout).toContain('OK: every decision re-derived identically');

    const source = await openEmbeddedSource(home.logDir);
    const bad = join(home.home, 'tampered');
    try {
      let done = false;
      await tamperedCopy(source, join(bad, 'log'), (e) => {
        if (done || e.type !== 'RequestRouted' || e.candidates.length < 2) return undefined;
        done = true;
        return { ...e, reason: 'PINNED' };
      });
    } finally {
      await source.close();
    }
    const failed = await cli(bad, 'verify');
    expect(failed.code).toBe(1);
    expect(failed.stdout).toContain('DIVERGENCES (1)');
    expect(failed.stdout).toMatch(/reason: recorded "PINNED" · re-derived "(AFFINITY|LEAST_LOADED|ZONE_FAILOVER)"/);
  }, 120_000);

  it('verify: a missing log is exit 1 and is not created; an empty log or an empty window is exit 3, never "OK"', async () => {
    const scratch = await mkdtemp(join(tmpdir(), 'sy-replay-empty-'));
    try {
      const missing = join(scratch, 'never-ran');
      const none = await cli(missing, 'verify');
      expect(none.code).toBe(1);
      expect(none.stderr).toContain('[SY_ERR_REPLAY_SOURCE]');
      expect(none.stderr).toContain(`no embedded log under ${missing}`);
      expect(none.stdout).not.toContain('OK');
      expect(existsSync(missing)).toBe(false);

      const emptyHome = join(scratch, 'empty');
      const log = await openEmbeddedLog({ dir: join(emptyHome, 'log'), fsync: 'never' });
      await log.close();
      const empty = await cli(emptyHome, 'verify');
      expect(empty.code).toBe(3);
      expect(empty.stderr).toMatch(/no routing decisions in embedded log .*: nothing was verified \[SY_ERR_REPLAY_NOT_FOUND\]/);
      expect(empty.stdout).not.toContain('OK');
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
    const window = await cli(home.home, 'verify', '--from', '2030-01-01T00:00:00Z');
    expect(window.code).toBe(3);
    expect(window.stderr).toContain('within the given bounds: nothing was verified');
  }, 120_000);

  it('session and at', async () => {
    const s = await cli(home.home, 'session', 's-2');
    expect(s.code).toBe(0);
    expect(s.stdout).toMatch(/^session s-2 · \d+ request\(s\)/);
    const at = await cli(home.home, 'at', '2025-01-01T00:00:00.500Z');
    expect(at.code).toBe(0);
    expect(at.stdout).toMatch(/^cluster at 2025-01-01T00:00:00.500Z/);
    expect(at.stdout).toContain('w4');
    const bad = await cli(home.home, 'at', 'yesterday');
    expect(bad.code).not.toBe(0);
  }, 60_000);
});

describe('switchyard replay --archive (CLI, the ClickHouse archive in chDB)', () => {
  let home: Awaited<ReturnType<typeof copyToHome>>;
  beforeAll(async () => {
    home = await copyToHome(GOLDEN);
    const source = await openEmbeddedSource(home.logDir);
    const store = await createChdbAnalyticsStore({ path: join(home.home, 'analytics') });
    try {
      await archiveWithSink(source, store);
    } finally {
      await store.close();
      await source.close();
    }
  }, 120_000);
  afterAll(async () => {
    await home?.remove();
  });

  it('request, session and verify read the archive (the log is not opened)', async () => {
    const r = await cli(home.home, '--json', 'request', 'req-00013', '--archive');
    expect(r.code).toBe(0);
    const trace = JSON.parse(r.stdout) as { requestId: string; hops: { kind: string }[]; lookup: { strategy: string } };
    expect(trace.requestId).toBe('req-00013');
    expect(trace.hops[0]!.kind).toBe('received');
    const fromLog = JSON.parse((await cli(home.home, '--json', 'request', 'req-00013')).stdout) as typeof trace;
    expect(trace.hops).toEqual(fromLog.hops);
    const s = await cli(home.home, 'session', 's-2', '--archive');
    expect(s.code).toBe(0);
    expect(s.stdout).toMatch(/^session s-2 · \d+ request\(s\)/);
    const v = await cli(home.home, 'verify', '--strict', '--archive');
    expect(v.code).toBe(0);
    expect(v.stdout).toMatch(/^verify ClickHouse archive \(chDB /);
    expect(v.stdout).toMatch(/\d+ decisions: \d+ verified, 0 diverged/);
  }, 120_000);

  it('no analytics, or analytics without the archive: exit 1 with what to run, nothing created', async () => {
    const empty = await copyToHome(GOLDEN);
    try {
      const none = await cli(empty.home, 'request', 'req-00013', '--archive');
      expect(none.code).toBe(1);
      expect(none.stderr).toContain('[SY_ERR_REPLAY_SOURCE]');
      expect(none.stderr).toContain('no analytics under');
      expect(existsSync(join(empty.home, 'analytics'))).toBe(false);
      const store = await createChdbAnalyticsStore({ path: join(empty.home, 'analytics') });
      await store.close();
      const r = await cli(empty.home, 'request', 'req-00013', '--archive');
      expect(r.code).toBe(1);
      expect(r.stderr).toContain('[SY_ERR_REPLAY_SOURCE]');
      expect(r.stderr).toContain('no log archive');
    } finally {
      await empty.remove();
    }
  }, 60_000);
});
