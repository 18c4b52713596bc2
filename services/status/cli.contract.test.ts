import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type Cluster } from '../../cli/cluster.js';
import { openRuntime, type Runtime } from '../../lib/bootstrap.js';
import { tempDir } from '../../test/support/log-dir.js';
import type { LiveStatus } from './service.js';

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, '..', '..');

/** `switchyard status …` as a user runs it. */
async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', 'cli/main.ts', ...args], { cwd: ROOT, env: { ...process.env, NO_COLOR: '1', SWITCHYARD_ADMIN_TOKEN: '' }, maxBuffer: 32 * 1024 * 1024 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

/**
 * A cluster runs in this process on an embedded log and serves 12 requests; `switchyard status`
 * reads its gateway while it runs (the embedded log is single-process) and the log itself once it
 * has stopped.
 */
describe('switchyard status (CLI, embedded)', () => {
  let home: { dir: string; remove: () => Promise<void> };
  let rt: Runtime | undefined;
  let cluster: Cluster | undefined;
  let url: string;
  const SENT = 12;

  beforeAll(async () => {
    home = await tempDir('sy-status-cli-');
    rt = await openRuntime({ brokers: [], home: home.dir, topicPrefix: 'switchyard.', lanes: 8, schemaRegistryUrl: undefined, clickhouseUrl: undefined, fsync: 'never', logLevel: 'warn' });
    cluster = await startCluster(rt, { gateway: { port: 0 } });
    url = cluster.gateway!.url;
    for (let i = 0; i < SENT; i++) {
      const res = await fetch(`${url}/v1/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'sentiment-small', input: { text: `hello ${i}` } }) });
      expect(res.status).toBe(200);
    }
  }, 60_000);
  afterAll(async () => {
    await cluster?.close();
    await rt?.close();
    await home?.remove();
  });

  it('while the cluster runs: --url prints what its gateway serves; the locked log is refused with that hint', async () => {
    const viaGateway = await cli('status', '--url', url, '--json');
    expect(viaGateway.code).toBe(0);
    const doc = JSON.parse(viaGateway.stdout) as LiveStatus;
    expect(doc.members.map((m) => m.workerId).sort()).toEqual(['worker-a1', 'worker-a2', 'worker-b1', 'worker-b2']);
    expect(doc.members.every((m) => m.status === 'live' && m.health === 'ok')).toBe(true);
    expect(doc.recent.completed).toBe(SENT);

    const locked = await cli('--home', home.dir, 'status');
    expect(locked.code).toBe(1);
    expect(locked.stderr).toContain('[SY_ERR_STATUS_SOURCE]');
    expect(locked.stderr).toContain('--url');
  }, 60_000);

  it('once stopped: --json is the document folded from the log; the default output is tables', async () => {
    await cluster!.close();
    await rt!.close();
    cluster = undefined;
    rt = undefined;

    const json = await cli('--home', home.dir, '--json', 'status');
    expect(json.code).toBe(0);
    const doc = JSON.parse(json.stdout) as LiveStatus;
    expect(doc.source).toMatchObject({ kind: 'embedded', error: null });
    // The workers drained at shutdown: each released its lane (left, not evicted).
    expect(doc.members.map((m) => m.workerId).sort()).toEqual(['worker-a1', 'worker-a2', 'worker-b1', 'worker-b2']);
    expect(doc.members.map((m) => m.status)).toEqual(['left', 'left', 'left', 'left']);
    expect(doc.summary).toMatchObject({ left: 4, evicted: 0 });
    expect(doc.lanes).toMatchObject({ total: 8, held: 0 });
    expect(doc.controller).toMatchObject({ epoch: 1, leader: 'controller-1' });
    expect(doc.models.map((m) => m.model)).toContain('sentiment-small');
    expect(doc.recent).toMatchObject({ completed: SENT, failed: 0, sheds: 0, evictions: 0 });
    expect(doc.series.completed.reduce((a, b) => a + b, 0)).toBe(SENT);
    expect(doc.rates.p50Ms).not.toBeNull();
    expect(doc.actions.map((a) => a.kind)).toEqual(expect.arrayContaining(['joined', 'elected', 'model-version', 'draining', 'left']));

    const text = await cli('--home', home.dir, 'status');
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^Switchyard status · embedded log /);
    expect(text.stdout).toContain('Controller: leader controller-1, epoch 1');
    expect(text.stdout).toMatch(/Members: 4 \(/);
    expect(text.stdout).toContain('worker-b2');
    expect(text.stdout).toContain('sentiment-small');
    expect(text.stdout).toContain(`Last 5 min: ${SENT} completed`);
  }, 60_000);

  it('a home with no log: exit 1 with the code, and no log is created', async () => {
    const empty = join(home.dir, 'nothing-here');
    const r = await cli('--home', empty, 'status');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('[SY_ERR_STATUS_SOURCE]');
    expect(existsSync(join(empty, 'log'))).toBe(false);
  }, 60_000);
});
