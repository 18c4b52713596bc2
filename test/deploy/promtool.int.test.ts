import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';

const DEPLOY = fileURLToPath(new URL('../../deploy/', import.meta.url));

/** Runs promtool; resolves with its exit code and output (it never rejects on a non-zero exit). */
function promtool(args: string[], cwd: string): Promise<{ code: number; output: string }> {
  return new Promise((resolve, reject) => {
    execFile('promtool', args, { cwd, timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1;
      if (err !== null && (err as NodeJS.ErrnoException).code === 'ENOENT') {
        reject(new Error("promtool is not installed. It comes with Debian's prometheus package: apt-get install -y prometheus (.ci/run installs it)"));
        return;
      }
      resolve({ code, output: `${stdout}${stderr}` });
    });
  });
}

/** The PromQL of every panel of the dashboard, with Grafana's variables given values Prometheus accepts. */
function dashboardQueries(): { record: string; expr: string }[] {
  const dashboard = JSON.parse(readFileSync(join(DEPLOY, 'grafana', 'switchyard.json'), 'utf8')) as { panels: { id: number; targets?: { refId: string; expr: string }[] }[] };
  return dashboard.panels.flatMap((p) =>
    (p.targets ?? []).map((t) => ({
      record: `dashboard:panel_${p.id}:${t.refId.toLowerCase()}`,
      expr: t.expr.replaceAll('$__rate_interval', '5m').replaceAll('$__range', '1h').replaceAll('$model', '.*'),
    })),
  );
}

/**
 * The Prometheus config, the alerting rules and the dashboard's queries, checked by Prometheus's
 * own `promtool` (Debian's `prometheus` package): syntax, the rules' unit tests
 * (`deploy/prometheus/rules.test.yml`), and every panel's PromQL parsed as a recording rule.
 * Fails — never skips — when promtool is missing.
 */
describe('promtool on deploy/prometheus and the dashboard', () => {
  let scratch: string;
  beforeAll(async () => {
    scratch = mkdtempSync(join(tmpdir(), 'sy-promtool-'));
    const { code, output } = await promtool(['--version'], DEPLOY);
    expect(code, output).toBe(0);
  });
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  it('accepts prometheus.yml and the rule files it names', async () => {
    const { code, output } = await promtool(['check', 'config', 'prometheus.yml'], join(DEPLOY, 'prometheus'));
    expect(code, output).toBe(0);
    expect(output).toMatch(/SUCCESS: \d+ rules found/);
  });

  it('accepts rules.yml, and its unit tests pass', async () => {
    const check = await promtool(['check', 'rules', 'rules.yml'], join(DEPLOY, 'prometheus'));
    expect(check.code, check.output).toBe(0);
    const test = await promtool(['test', 'rules', 'rules.test.yml'], join(DEPLOY, 'prometheus'));
    expect(test.code, test.output).toBe(0);
    expect(test.output).toContain('SUCCESS');
  });

  it('parses the PromQL of every panel of the dashboard', async () => {
    const rules = dashboardQueries();
    expect(rules.length).toBeGreaterThan(30);
    for (const r of rules) expect(r.expr, r.record).not.toContain('$');
    const file = join(scratch, 'dashboard-queries.yml');
    writeFileSync(file, stringify({ groups: [{ name: 'dashboard', rules }] }));
    const { code, output } = await promtool(['check', 'rules', file], scratch);
    expect(code, output).toBe(0);
    expect(output).toContain(`SUCCESS: ${rules.length} rules found`);
  });

  it('the check is real: promtool refuses a broken expression', async () => {
    const file = join(scratch, 'broken.yml');
    writeFileSync(file, stringify({ groups: [{ name: 'broken', rules: [{ record: 'x:y', expr: 'sum by (model (rate(a_total[5m]))' }] }] }));
    const { code } = await promtool(['check', 'rules', file], scratch);
    expect(code).not.toBe(0);
  });
});
