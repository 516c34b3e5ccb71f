/**
 * The committed Prometheus configuration, alert rules and rule unit tests pass promtool (Debian's
 * `prometheus` package), and so does the Alertmanager configuration with amtool where it is
 * installed. Every Grafana panel expression parses as PromQL.
 */
import { execFile } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { servicesAvailable } from '../helpers/services.ts';
import { buildDashboard, expandExpr } from '../../deploy/grafana/dashboard.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const PROM = join(ROOT, 'deploy/prometheus');

interface Run {
  code: number;
  output: string;
}

function run(command: string, args: string[], cwd = ROOT): Promise<Run> {
  return new Promise((done) => {
    execFile(command, args, { cwd, timeout: 120_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
      done({ code, output: `${stdout}${stderr}` });
    });
  });
}

const promtool = (...args: string[]) => run('promtool', args);

function hasBinary(name: string): Promise<boolean> {
  return run(name, ['--version']).then((r) => r.code === 0);
}

const ok = await servicesAvailable('promtool checks', 'prometheus');
const amtool = ok && (await hasBinary('amtool'));
const work = mkdtempSync(join(tmpdir(), 'nest-egg-promtool-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const alertRules = parse(readFileSync(join(PROM, 'alerts.yml'), 'utf8')) as { groups: Array<{ rules: unknown[] }> };
const ruleCount = alertRules.groups.reduce((n, g) => n + g.rules.length, 0);

describe.skipIf(!ok)('promtool on the committed monitoring configuration', () => {
  it('check config: prometheus.yml and the rule files it loads', async () => {
    const r = await promtool('check', 'config', 'deploy/prometheus/prometheus.yml');
    expect(r.code, r.output).toBe(0);
    expect(r.output).toContain('SUCCESS: deploy/prometheus/prometheus.yml is valid prometheus config file syntax');
    expect(r.output).toContain('SUCCESS: 1 rule files found');
    expect(r.output).toContain(`SUCCESS: ${ruleCount} rules found`);
  });

  it('check config: the Kubernetes service-discovery variant', async () => {
    const direct = await promtool('check', 'config', 'deploy/prometheus/prometheus.k8s.yml');
    if (direct.code === 0) {
      expect(direct.output).toContain('is valid prometheus config file syntax');
      return;
    }
    // Debian's Prometheus is built without Kubernetes service discovery. Check everything else
    // (globals, rule files, alerting, relabelling) with the discovery block swapped for a static
    // target; test/unit/deploy-manifests.test.ts checks the discovery block against the manifests.
    expect(direct.output).toMatch(/field kubernetes_sd_configs not found/);
    const config = parse(readFileSync(join(PROM, 'prometheus.k8s.yml'), 'utf8')) as { scrape_configs: Array<Record<string, unknown>> };
    expect(config.scrape_configs.length).toBeGreaterThan(0);
    for (const job of config.scrape_configs) {
      expect(job.kubernetes_sd_configs).toBeDefined();
      delete job.kubernetes_sd_configs;
      job.static_configs = [{ targets: ['pod.example:8000'] }];
    }
    writeFileSync(join(work, 'prometheus.k8s.yml'), stringify(config));
    copyFileSync(join(PROM, 'alerts.yml'), join(work, 'alerts.yml'));
    const r = await run('promtool', ['check', 'config', 'prometheus.k8s.yml'], work);
    expect(r.code, r.output).toBe(0);
    expect(r.output).toContain('SUCCESS: prometheus.k8s.yml is valid prometheus config file syntax');
  });

  it('check rules: alerts.yml', async () => {
    const r = await promtool('check', 'rules', 'deploy/prometheus/alerts.yml');
    expect(r.code, r.output).toBe(0);
    expect(r.output).toContain(`SUCCESS: ${ruleCount} rules found`);
  });

  it('test rules: every alert fires and stays quiet as alerts.test.yml expects', async () => {
    const r = await promtool('test', 'rules', 'deploy/prometheus/alerts.test.yml');
    expect(r.code, r.output).toBe(0);
    expect(r.output).toMatch(/Unit Testing:\s+deploy\/prometheus\/alerts\.test\.yml\s+SUCCESS/);
  });

  it('test rules fails when a rule no longer does what its test says', async () => {
    // The guide's original HighErrorRate (a rate compared to a ratio) must not pass our tests.
    const broken = readFileSync(join(PROM, 'alerts.yml'), 'utf8').replace(
      /(- alert: HighErrorRate\n\s+expr: )\|\n(?:\s{10}.*\n)+/,
      '$1sum by (job) (rate(http_requests_total{job="nestegg-api", status=~"5.."}[5m])) > 0.05\n',
    );
    expect(broken).toContain('status=~"5.."}[5m])) > 0.05\n');
    writeFileSync(join(work, 'alerts.yml'), broken);
    copyFileSync(join(PROM, 'alerts.test.yml'), join(work, 'alerts.test.yml'));
    const r = await run('promtool', ['test', 'rules', 'alerts.test.yml'], work);
    expect(r.code).not.toBe(0);
    expect(r.output).toMatch(/FAILED[\s\S]*alertname: HighErrorRate/);
  });

  it('every Grafana panel expression parses as PromQL', async () => {
    const exprs = buildDashboard().panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: expandExpr(t.expr) })));
    expect(exprs.length).toBeGreaterThan(30);
    const file = join(work, 'dashboard-rules.yml');
    writeFileSync(file, stringify({ groups: [{ name: 'dashboard', rules: exprs.map((e, i) => ({ record: `dashboard:expr_${i}`, expr: e.expr })) }] }));
    const r = await run('promtool', ['check', 'rules', file]);
    expect(r.code, r.output).toBe(0);
    expect(r.output).toContain(`SUCCESS: ${exprs.length} rules found`);
  });

  it.skipIf(!amtool)('amtool check-config: alertmanager.yml', async () => {
    const r = await run('amtool', ['check-config', 'deploy/alertmanager/alertmanager.yml']);
    expect(r.code, r.output).toBe(0);
    expect(r.output).toContain('SUCCESS');
  });
});
