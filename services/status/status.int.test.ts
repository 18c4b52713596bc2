import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openRuntime, type Runtime } from '../../lib/bootstrap.js';
import { tempDir } from '../../test/support/log-dir.js';
import { startCluster, type Cluster } from '../../cli/cluster.js';

/**
 * The status page in a real browser: Debian's Chromium (`.ci/run` installs it; playwright-core
 * never downloads one) against an embedded cluster running in this process, served by its
 * gateway. The page must show the live numbers moving under traffic, list the members, and
 * render a request's path replayed from the log. No Chromium is a failure, not a skip.
 */
const CHROMIUM = process.env['SWITCHYARD_TEST_CHROMIUM'] ?? '/usr/bin/chromium';
const SCREENSHOT = join(tmpdir(), 'switchyard-status.png');

describe('status page in headless Chromium (embedded cluster)', () => {
  let rt: Runtime;
  let cluster: Cluster;
  let removeHome: () => Promise<void>;
  let profile: string;
  let context: BrowserContext;
  let page: Page;
  let url: string;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    const home = await tempDir('sy-status-');
    removeHome = home.remove;
    rt = await openRuntime({ brokers: [], home: home.dir, topicPrefix: 'switchyard.', lanes: 16, schemaRegistryUrl: undefined, clickhouseUrl: undefined, fsync: 'never', logLevel: 'warn' });
    cluster = await startCluster(rt, { gateway: { port: 0 } });
    url = cluster.gateway!.url;
  }, 120_000);

  /** Debian's Chromium, driven by playwright-core. Checked in the test, so a missing browser fails it (a hook's failure would report it skipped). */
  async function openBrowser(): Promise<void> {
    expect(existsSync(CHROMIUM), `no Chromium at ${CHROMIUM}: install Debian's package (apt-get install chromium; .ci/run does), or set SWITCHYARD_TEST_CHROMIUM`).toBe(true);
    profile = await mkdtemp(join(tmpdir(), 'sy-chromium-'));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      // This machine's network is closed: no background connections, no component updates.
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      viewport: { width: 1400, height: 1000 },
    });
    page = context.pages()[0] ?? (await context.newPage());
    page.on('pageerror', (err) => pageErrors.push(`pageerror: ${err.message}`));
    page.on('console', (msg) => {
      // A Content-Security-Policy refusal of the page's own script or style shows here.
      if (msg.type() === 'error') pageErrors.push(`console: ${msg.text()}`);
    });
  }

  afterAll(async () => {
    await context?.close();
    if (profile) await rm(profile, { recursive: true, force: true });
    await cluster?.close();
    await rt?.close();
    await removeHome?.();
  });

  const infer = async (text: string): Promise<{ status: number; requestId: string }> => {
    const res = await fetch(`${url}/v1/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'sentiment-small', input: { text }, deadlineMs: 20_000 }) });
    const body = (await res.json()) as { requestId: string };
    return { status: res.status, requestId: body.requestId };
  };
  const text = async (selector: string): Promise<string> => ((await page.locator(selector).textContent()) ?? '').trim();

  it('lists the members, shows throughput rising under traffic, and renders a request path looked up by id', async () => {
    await openBrowser();
    await page.goto(`${url}/status`);
    await expect.poll(() => text('#conn'), { timeout: 20_000 }).toBe('live');

    // Members: the four workers of the default plan, each live and healthy.
    const workers = cluster.workers.map((w) => w.id).sort();
    expect(workers).toHaveLength(4);
    await expect.poll(async () => (await page.locator('#members tbody tr[data-worker]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-worker')))).sort(), { timeout: 20_000 }).toEqual(workers);
    await expect.poll(() => text('#members-healthy'), { timeout: 20_000 }).toBe('4 / 4');
    expect(await text('#leader')).toBe('controller-1');

    // No traffic yet: nothing completed.
    const before = Number(await text('#throughput'));
    expect(before).toBe(0);
    const updated = await text('#updated');

    // Traffic for a few seconds: the page's throughput number (whole seconds) must rise.
    let stop = false;
    const ids: string[] = [];
    const load = Array.from({ length: 6 }, async (_, k) => {
      for (let i = 0; !stop; i++) {
        const r = await infer(`load ${k}-${i}`);
        expect(r.status).toBe(200);
        ids.push(r.requestId);
      }
    });
    try {
      await expect.poll(async () => Number(await text('#throughput')), { timeout: 30_000, interval: 250 }).toBeGreaterThan(0);
    } finally {
      stop = true;
      await Promise.all(load);
    }
    expect(await text('#updated')).not.toBe(updated);
    const during = Number(await text('#throughput'));
    expect(during).toBeGreaterThan(before);
    // The chart drew the completions: a line off the baseline.
    expect(await page.locator('#chart-throughput polyline').count()).toBeGreaterThan(0);
    expect(ids.length).toBeGreaterThan(5);

    // Look a request up by id: its path, replayed from the log, rendered hop by hop.
    const requestId = ids[ids.length - 1]!;
    await page.fill('#request-id', requestId);
    await page.click('#lookup button');
    await page.locator('#path .hop[data-kind="completed"]').waitFor({ timeout: 20_000 });
    const kinds = await page.locator('#path .hop').evaluateAll((hops) => hops.map((h) => h.getAttribute('data-kind')));
    // Received and routed can share a millisecond (the hops are in time order): both must be there, before the outcome.
    expect(kinds.indexOf('received'), JSON.stringify(kinds)).toBeGreaterThanOrEqual(0);
    expect(kinds.indexOf('routed'), JSON.stringify(kinds)).toBeGreaterThanOrEqual(0);
    expect(kinds.indexOf('completed')).toBeGreaterThan(Math.max(kinds.indexOf('received'), kinds.indexOf('routed')));
    expect(await text('#path')).toContain(requestId);
    expect(pageErrors).toEqual([]);

    // An unknown id: the service's 404, shown as such.
    await page.fill('#request-id', 'no-such-request');
    await page.click('#lookup button');
    await expect.poll(() => text('#path'), { timeout: 20_000 }).toContain('SY_ERR_STATUS_NOT_FOUND');
    await page.fill('#request-id', requestId);
    await page.click('#lookup button');
    await page.locator('#path .hop[data-kind="completed"]').waitFor({ timeout: 20_000 });

    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    // Only the unknown id's 404 was refused.
    expect(pageErrors).toEqual(['console: Failed to load resource: the server responded with a status of 404 (Not Found)']);
  });
});
