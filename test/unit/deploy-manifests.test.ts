/**
 * The deployment and monitoring files under deploy/ and docs/ are code: they parse, they agree
 * with each other and with the service (ports, paths, metric names, variables), every alert is
 * documented and unit-tested, the dashboard is current and valid, and the Kubernetes manifests
 * pass a schema validation (kubernetes-models' bundled Kubernetes 1.27 and Prometheus Operator
 * JSON schemas, offline).
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { ConfigMap, Namespace, Secret, Service } from 'kubernetes-models/v1';
import { Deployment } from 'kubernetes-models/apps/v1';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1';
import { loadConfig } from '../../src/config.ts';
import { buildDashboard, DASHBOARD_PATH, renderDashboard, type Panel } from '../../deploy/grafana/dashboard.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const DEPLOY = join(ROOT, 'deploy');
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Any = any;
// merge: compose files share settings through `<<: *anchor`, which Docker Compose resolves.
const yamlFile = (path: string): Any => parse(read(path), { merge: true });
const yamlDocs = (path: string): Any[] => parseAllDocuments(read(path)).map((d) => {
  expect(d.errors, `${path}: ${d.errors.join('; ')}`).toEqual([]);
  return d.toJS();
});

// ARCHITECTURE §6, plus the additions the metrics catalog promises and prom-client's defaults.
const CATALOG = {
  counters: ['http_requests_total', 'celery_tasks_total', 'rate_limit_hits_total', 'rate_limit_requests_total', 'plaid_syncs_total', 'budget_alerts_total', 'auth_login_attempts_total', 'security_events_total'],
  histograms: ['http_request_duration_seconds', 'http_request_size_bytes', 'http_response_size_bytes', 'db_query_duration_seconds', 'celery_task_duration_seconds'],
  gauges: [
    'http_requests_inprogress', 'db_connection_pool_size', 'db_connection_pool_available', 'celery_tasks_inprogress',
    'users_total', 'transactions_total', 'accounts_total', 'app_info', 'nest_egg_dependency_up', 'nest_egg_job_queue_jobs',
  ],
};
const PROCESS_METRICS = ['process_cpu_seconds_total', 'process_resident_memory_bytes', 'nodejs_heap_size_used_bytes', 'nodejs_eventloop_lag_p50_seconds', 'nodejs_eventloop_lag_p99_seconds'];
const CATALOG_NAMES = [...CATALOG.counters, ...CATALOG.histograms, ...CATALOG.gauges];

const rules = yamlFile('deploy/prometheus/alerts.yml');
const ruleList: Any[] = rules.groups.flatMap((g: Any) => g.rules);
const alerts = ruleList.filter((r) => r.alert);
const recorded = new Set<string>(ruleList.filter((r) => r.record).map((r) => r.record));
const KNOWN = new Set<string>([
  ...CATALOG_NAMES,
  ...CATALOG.histograms.flatMap((h) => [`${h}_bucket`, `${h}_sum`, `${h}_count`]),
  ...PROCESS_METRICS,
  'up',
  ...recorded,
]);

/** Names of the series a PromQL expression selects (every selector here carries a {…} matcher). */
const metricNames = (expr: string) => [...expr.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{/g)].map((m) => m[1]!);

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens. */
const slug = (heading: string) => heading.trim().toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-');
const runbooks = read('docs/runbooks.md');
const runbookAnchors = new Set([...runbooks.matchAll(/^#{1,6}\s+(.+)$/gm)].map((m) => slug(m[1]!)));

function runNode(args: string[], env: Record<string, string>): Promise<number> {
  return new Promise((done) => {
    execFile(process.execPath, args, { env: { ...process.env, ...env }, timeout: 10_000 }, (error) => {
      done(error ? (typeof error.code === 'number' ? error.code : -1) : 0);
    });
  });
}

async function withHealthServer<T>(status: number, fn: (port: number) => Promise<T>): Promise<T> {
  const server = http.createServer((req, res) => {
    res.writeHead(req.url === '/health' ? status : 404, { 'content-type': 'application/json' }).end('{}');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    return await fn((server.address() as AddressInfo).port);
  } finally {
    await new Promise((r) => server.close(r));
  }
}

/** Runs a `node -e <script>` health check against a local server answering /health with `status`. */
async function healthCheckExit(command: string[], status: number, rewrite: (script: string, port: number) => string): Promise<number> {
  expect(command.slice(0, 2)).toEqual(['node', '-e']);
  return withHealthServer(status, (port) => runNode(['-e', rewrite(command[2]!, port)], { PORT: String(port) }));
}

// -------------------------------------------------------------------------------------------------
describe('Prometheus alert rules', () => {
  it('the rule file has recording rules and alerts to check (every loop below walks them)', () => {
    expect(ruleList.filter((r) => r.record).length).toBeGreaterThan(0);
    expect(alerts.length).toBeGreaterThanOrEqual(8);
  });

  it('every alert has a severity, a summary, a description and a runbook section', () => {
    expect(alerts.length).toBeGreaterThanOrEqual(16);
    for (const a of alerts) {
      expect(['critical', 'warning'], a.alert).toContain(a.labels?.severity);
      expect(a.annotations?.summary, a.alert).toMatch(/\S/);
      expect(a.annotations?.description, a.alert).toMatch(/\S/);
      const url = String(a.annotations?.runbook_url);
      expect(url, a.alert).toMatch(/\/docs\/runbooks\.md#[a-z0-9-]+$/);
      const anchor = url.split('#')[1]!;
      expect(runbookAnchors.has(anchor), `${a.alert}: no heading for #${anchor} in docs/runbooks.md`).toBe(true);
      expect(anchor, a.alert).toBe(slug(a.alert));
    }
  });

  it('alert names are unique and the guide\'s alerts are all there, corrected', () => {
    const names = alerts.map((a) => a.alert as string);
    expect(new Set(names).size).toBe(names.length);
    const byName = new Map(alerts.map((a) => [a.alert as string, a]));
    for (const name of ['HighErrorRate', 'ApiDown', 'DatabaseDown', 'SlowResponses', 'HighRateLimitHits', 'HighRateLimitBlockRatio', 'CeleryTaskBacklog', 'WorkerDown']) {
      expect(byName.has(name), name).toBe(true);
    }
    const expr = (name: string) => String(byName.get(name).expr).replace(/\s+/g, ' ').trim();
    // A ratio of sums: 5xx rate / all requests' rate, not a rate compared to 0.05.
    expect(expr('HighErrorRate')).toMatch(
      /^sum by \(job\) \(rate\(http_requests_total\{[^}]*status=~"5\.\."[^}]*\}\[5m\]\)\) \/ sum by \(job\) \(rate\(http_requests_total\{[^}]*\}\[5m\]\)\) > 0\.05$/,
    );
    expect(expr('ApiDown')).toBe('up{job="nestegg-api"} == 0');
    expect(expr('DatabaseDown')).toContain('nest_egg_dependency_up{');
    expect(expr('DatabaseDown')).not.toMatch(/\bup\{/);
    expect(expr('SlowResponses')).toMatch(/histogram_quantile\(0\.95, sum by \(job, le\)/);
    expect(expr('CeleryTaskBacklog')).toMatch(/^sum\(celery_tasks_inprogress\{.*\}\) > 100$/);
    expect(byName.get('CeleryTaskBacklog').for).toBe('15m');
  });

  it('SLO alerts are multi-window, multi-burn-rate over recorded SLIs', () => {
    const windows = ['5m', '30m', '1h', '6h', '3d'];
    for (const sli of ['availability', 'latency']) {
      for (const w of windows) expect(recorded.has(`job:slo_${sli}_errors:ratio_rate${w}`), `${sli} ${w}`).toBe(true);
    }
    const pairs: Array<[string, string, string, string]> = [
      ['FastBurn', '1h', '5m', '14.4 \\*'],
      ['SlowBurn', '6h', '30m', '6 \\*'],
      ['Erosion', '3d', '6h', ''],
    ];
    for (const [sli, budget] of [['Availability', '0.001'], ['Latency', '0.05']] as const) {
      for (const [suffix, long, short, factor] of pairs) {
        const alert = alerts.find((a) => a.alert === `${sli}Budget${suffix}`);
        expect(alert, `${sli}Budget${suffix}`).toBeDefined();
        const e = String(alert.expr).replace(/\s+/g, ' ').trim();
        const threshold = factor ? `\\(${factor} ${budget.replace('.', '\\.')}\\)` : budget.replace('.', '\\.');
        const rule = (w: string) => `job:slo_${sli.toLowerCase()}_errors:ratio_rate${w} > ${threshold}`;
        expect(e).toMatch(new RegExp(`^${rule(long)} and ${rule(short)}$`));
        expect(alert.labels.severity).toBe(suffix === 'Erosion' ? 'warning' : 'critical');
      }
    }
    // The latency SLI reads the 0.5 s bucket, and the probe endpoints are left out of both SLIs.
    const latency = ruleList.find((r) => r.record === 'job:slo_latency_errors:ratio_rate5m');
    expect(latency.expr).toContain('le="0.5"');
    for (const r of ruleList.filter((x) => x.record)) expect(r.expr).toContain('endpoint!~"/health|/metrics|/api/v1/monitoring/health"');
  });

  it('rules read only metrics the service exports (or recorded series)', () => {
    let checked = 0;
    for (const r of ruleList) {
      const names = metricNames(String(r.expr));
      for (const name of names) expect(KNOWN.has(name), `${r.alert ?? r.record}: ${name}`).toBe(true);
      checked += names.length;
    }
    // The names were really read (a selector-less expression such as a recorded ratio has none).
    expect(ruleList.length).toBeGreaterThanOrEqual(16);
    expect(checked).toBeGreaterThanOrEqual(ruleList.filter((r) => r.record).length);
  });

  it('alerts.test.yml fires every alert at least once and keeps it quiet at least once', () => {
    const tests = yamlFile('deploy/prometheus/alerts.test.yml');
    expect(tests.rule_files).toEqual(['alerts.yml']);
    const cases: Any[] = tests.tests.flatMap((t: Any) => t.alert_rule_test ?? []);
    for (const a of alerts) {
      const mine = cases.filter((c) => c.alertname === a.alert);
      expect(mine.some((c) => (c.exp_alerts ?? []).length > 0), `${a.alert} never fires in a test`).toBe(true);
      expect(mine.some((c) => (c.exp_alerts ?? []).length === 0), `${a.alert} has no quiet case`).toBe(true);
    }
  });

  it('runbooks link only to sections that exist', () => {
    const links = [...runbooks.matchAll(/\]\(#([^)]+)\)/g)].map((m) => m[1]!);
    // The runbooks do cross-link (a section pointing at another), and every `](#` is one of the links read.
    expect(links.length).toBeGreaterThan(0);
    expect(links).toHaveLength(runbooks.split('](#').length - 1);
    for (const anchor of links) expect(runbookAnchors.has(anchor), anchor).toBe(true);
  });
});

// -------------------------------------------------------------------------------------------------
describe('Prometheus and Alertmanager configuration', () => {
  it('compose config scrapes the API and the worker, loads the rules and alerts Alertmanager', () => {
    const cfg = yamlFile('deploy/prometheus/prometheus.yml');
    const job = (name: string) => cfg.scrape_configs.find((s: Any) => s.job_name === name);
    expect(job('nestegg-api').static_configs[0].targets).toEqual(['api:8000']);
    expect(job('nestegg-api').metrics_path).toBe('/metrics');
    expect(job('nestegg-worker').static_configs[0].targets).toEqual(['worker:9101']);
    expect(cfg.rule_files).toEqual(['alerts.yml']);
    expect(cfg.alerting.alertmanagers[0].static_configs[0].targets).toEqual(['alertmanager:9093']);
  });

  it('the Kubernetes variant discovers exactly the pods and ports the Deployments define', () => {
    const cfg = yamlFile('deploy/prometheus/prometheus.k8s.yml');
    expect(cfg.rule_files).toEqual(['alerts.yml']);
    const deployments = yamlDocs('deploy/k8s/api-deployment.yaml').concat(yamlDocs('deploy/k8s/worker-deployment.yaml'));
    for (const [jobName, component] of [['nestegg-api', 'api'], ['nestegg-worker', 'worker']] as const) {
      const job = cfg.scrape_configs.find((s: Any) => s.job_name === jobName);
      const sd = job.kubernetes_sd_configs[0];
      expect(sd.role).toBe('pod');
      expect(sd.namespaces.names).toEqual(['nest-egg']);
      const selector = Object.fromEntries(String(sd.selectors[0].label).split(',').map((kv) => kv.split('=')));
      const deployment = deployments.find((d) => d.metadata.labels['app.kubernetes.io/component'] === component);
      expect(deployment.spec.template.metadata.labels).toMatchObject(selector);
      const keep = job.relabel_configs.find((r: Any) => r.action === 'keep' && r.source_labels[0] === '__meta_kubernetes_pod_container_port_name');
      const portNames = deployment.spec.template.spec.containers.flatMap((c: Any) => c.ports.map((p: Any) => p.name));
      expect(portNames).toContain(keep.regex);
    }
  });

  it('Alertmanager pages on critical, chats on warning, and keeps secrets in files', () => {
    const am = yamlFile('deploy/alertmanager/alertmanager.yml');
    const routes = am.route.routes.map((r: Any) => [r.matchers[0], r.receiver]);
    expect(routes.length).toBeGreaterThan(0);
    expect(routes).toEqual([['severity="critical"', 'pager'], ['severity="warning"', 'chat']]);
    const receivers = new Set(am.receivers.map((r: Any) => r.name));
    expect(receivers.has(am.route.receiver)).toBe(true);
    for (const [, receiver] of routes) expect(receivers.has(receiver)).toBe(true);
    expect(read('deploy/alertmanager/alertmanager.yml')).not.toMatch(/routing_key:|api_url:/);
    // Every alert name an inhibit rule mentions exists.
    const names = alerts.map((a) => a.alert as string);
    expect(am.inhibit_rules.length).toBeGreaterThan(0);
    for (const rule of am.inhibit_rules) {
      for (const m of [...rule.source_matchers, ...rule.target_matchers]) {
        const re = new RegExp(`^(?:${/alertname=~?"(.*)"/.exec(m)![1]})$`);
        expect(names.some((n) => re.test(n)), m).toBe(true);
      }
    }
  });
});

// -------------------------------------------------------------------------------------------------
describe('Grafana dashboard', () => {
  const dashboard = JSON.parse(readFileSync(DASHBOARD_PATH, 'utf8'));
  const dataPanels: Panel[] = dashboard.panels.filter((p: Panel) => p.type !== 'row');

  it('the committed JSON is what deploy/grafana/dashboard.ts generates', () => {
    expect(readFileSync(DASHBOARD_PATH, 'utf8'), 'run: npx tsx deploy/grafana/dashboard.ts').toBe(renderDashboard());
  });

  it('is a valid dashboard: schema version, uid, unique panel ids, non-overlapping grid', () => {
    expect(Number.isInteger(dashboard.schemaVersion) && dashboard.schemaVersion >= 36).toBe(true);
    expect(dashboard.uid).toMatch(/^[a-zA-Z0-9_-]{1,40}$/);
    expect(dashboard.title).toMatch(/\S/);
    const ids = dashboard.panels.map((p: Panel) => p.id);
    expect(ids.length).toBeGreaterThan(0);
    expect(ids.every((id: unknown) => Number.isInteger(id) && (id as number) > 0)).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
    const boxes = dashboard.panels.map((p: Panel) => p.gridPos);
    for (const [i, a] of boxes.entries()) {
      expect(a.x >= 0 && a.w > 0 && a.x + a.w <= 24 && a.h > 0 && a.y >= 0).toBe(true);
      for (const b of boxes.slice(i + 1)) {
        const overlap = a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
        expect(overlap, `${JSON.stringify(a)} overlaps ${JSON.stringify(b)}`).toBe(false);
      }
    }
  });

  it('has a Prometheus data source variable and job and instance variables', () => {
    const vars = new Map<string, Any>(dashboard.templating.list.map((v: Any) => [v.name, v]));
    expect(vars.get('datasource')).toMatchObject({ type: 'datasource', query: 'prometheus' });
    for (const name of ['job', 'instance']) {
      expect(vars.get(name)).toMatchObject({ type: 'query', datasource: { type: 'prometheus', uid: '${datasource}' }, includeAll: true });
      expect(String(vars.get(name).query)).toMatch(/^label_values\(up\{job=~"[^"]+"\}, (job|instance)\)$/);
    }
  });

  it('every panel queries Prometheus through $datasource with only known metrics and variables', () => {
    expect(dataPanels.length).toBeGreaterThanOrEqual(30);
    let names = 0;
    for (const p of dataPanels) {
      expect(p.datasource, p.title).toEqual({ type: 'prometheus', uid: '${datasource}' });
      expect(p.targets?.length, p.title).toBeGreaterThan(0);
      const refIds = p.targets!.map((t) => t.refId);
      expect(new Set(refIds).size, p.title).toBe(refIds.length);
      for (const t of p.targets!) {
        expect(t.expr, p.title).toMatch(/\S/);
        for (const v of t.expr.matchAll(/\$\{?(\w+)/g)) expect(['job', 'instance'], `${p.title}: $${v[1]}`).toContain(v[1]);
        for (const name of metricNames(t.expr)) expect(KNOWN.has(name), `${p.title}: ${name}`).toBe(true);
        names += metricNames(t.expr).length;
      }
    }
    // The metric-name check saw the panels' series (at least one per data panel).
    expect(names).toBeGreaterThanOrEqual(dataPanels.length);
  });

  it('covers every metric of the catalog, the process metrics and the SLO recordings', () => {
    const used = new Set(dataPanels.flatMap((p) => p.targets!.flatMap((t) => metricNames(t.expr))));
    const base = (n: string) => n.replace(/_(bucket|sum|count)$/, '');
    const usedBase = new Set([...used].map(base));
    for (const name of [...CATALOG_NAMES, ...PROCESS_METRICS]) expect(usedBase.has(name), name).toBe(true);
    for (const sli of ['availability', 'latency']) expect(used.has(`job:slo_${sli}_errors:ratio_rate1h`), sli).toBe(true);
  });

  it('Grafana provisioning points at the compose Prometheus and the mounted dashboard', () => {
    const ds = yamlFile('deploy/grafana/provisioning/datasources/prometheus.yml').datasources[0];
    expect(ds).toMatchObject({ type: 'prometheus', url: 'http://prometheus:9090', uid: 'prometheus' });
    const dsVar = buildDashboard().templating.list.find((v) => v.name === 'datasource')!;
    expect(dsVar.current).toMatchObject({ value: ds.uid });
    const provider = yamlFile('deploy/grafana/provisioning/dashboards/nest-egg.yml').providers[0];
    const grafana = yamlFile('deploy/docker-compose.monitoring.yml').services.grafana;
    const mount = grafana.volumes.find((v: string) => v.startsWith('../docs/grafana-dashboard.json:'));
    expect(mount, 'grafana mounts docs/grafana-dashboard.json').toBeDefined();
    expect(dirname(mount.split(':')[1])).toBe(provider.options.path);
  });

  it('the latency panels show exemplars, which link to their trace by a configurable URL template', () => {
    const latency = dataPanels.filter((p) => p.targets!.some((t) => t.expr.includes('http_request_duration_seconds_bucket') || t.expr.includes('celery_task_duration_seconds_bucket')));
    const timeseries = latency.filter((p) => p.type === 'timeseries');
    expect(timeseries.length).toBeGreaterThanOrEqual(3);
    for (const panel of timeseries) expect(panel.targets!.filter((t) => t.exemplar === true), panel.title).toHaveLength(1);
    const ds = yamlFile('deploy/grafana/provisioning/datasources/prometheus.yml').datasources[0];
    expect(ds.jsonData.exemplarTraceIdDestinations).toEqual([{ name: 'trace_id', url: '$GRAFANA_TRACE_URL', urlDisplayLabel: 'Open trace' }]);
    const compose = yamlFile('deploy/docker-compose.monitoring.yml').services;
    // Compose turns `$$` into `$`: Grafana receives the template with its ${__value.raw}.
    expect(compose.grafana.environment.GRAFANA_TRACE_URL).toMatch(/^\$\{GRAFANA_TRACE_URL:-https:\/\/.+\$\$\{__value\.raw\}\}$/);
    expect(compose.prometheus.command).toContain('--enable-feature=exemplar-storage');
  });
});

// -------------------------------------------------------------------------------------------------
/** Resolves compose ${VAR:-default}, ${VAR:?error} (given a test value) and ${VAR}. */
function interpolate(value: unknown): string {
  return String(value).replace(/\$\{(\w+)(?::([-?])([^}]*))?\}/g, (_m, name: string, op?: string, arg?: string) => {
    if (op === '-') return arg ?? '';
    if (op === '?') return name === 'JWT_SECRET' ? 'x'.repeat(32) : `test-${name}`;
    return '';
  });
}

describe('docker compose files', () => {
  const compose = yamlFile('deploy/docker-compose.yml');
  const monitoring = yamlFile('deploy/docker-compose.monitoring.yml');

  it('run api, worker, postgres and redis, each with a health check', () => {
    for (const name of ['api', 'worker', 'postgres', 'redis']) {
      expect(compose.services[name]?.healthcheck?.test, name).toBeDefined();
    }
    expect(compose.services.api.command).toEqual(['node', '--enable-source-maps', 'dist/main.js', 'serve']);
    expect(compose.services.worker.command).toEqual(['node', '--enable-source-maps', 'dist/main.js', 'worker']);
    expect(compose.services.migrate.command).toEqual(['node', '--enable-source-maps', 'dist/main.js', 'migrate']);
    for (const name of ['api', 'worker']) {
      expect(compose.services[name].depends_on).toMatchObject({
        migrate: { condition: 'service_completed_successfully' },
        postgres: { condition: 'service_healthy' },
        redis: { condition: 'service_healthy' },
      });
      expect(compose.services[name].build).toEqual({ context: '..', dockerfile: 'deploy/Dockerfile' });
    }
    expect(compose.services.api.healthcheck).toMatchObject({ interval: '30s', timeout: '3s', start_period: '40s', retries: 3 });
    expect(compose.services.api.ports).toContain('8000:8000');
  });

  it('give the app a configuration src/config.ts accepts, with JWT_SECRET required', () => {
    const env = compose.services.api.environment;
    // The worker runs with the API's configuration, but gives running jobs longer to finish on SIGTERM.
    const { SHUTDOWN_TIMEOUT_MS: workerShutdown, ...workerEnv } = compose.services.worker.environment;
    expect(env).toEqual(workerEnv);
    const workerConfig = loadConfig(Object.fromEntries(Object.entries(compose.services.worker.environment).map(([k, v]) => [k, interpolate(v)])));
    expect(workerConfig.shutdown.timeoutMs).toBe(50_000);
    expect(Number(workerShutdown)).toBe(50_000);
    expect(String(env.JWT_SECRET)).toMatch(/^\$\{JWT_SECRET:\?/);
    const config = loadConfig(Object.fromEntries(Object.entries(env).map(([k, v]) => [k, interpolate(v)])));
    expect(config.environment).toBe('production');
    expect(config.log.format).toBe('json');
    expect(config.database.url).toMatch(/^postgres:\/\/nestegg:.*@postgres:5432\/nestegg$/);
    expect(config.redisUrl).toBe('redis://redis:6379');
    expect(config.database.migrateOnStart).toBe(false);
  });

  it('health checks need no curl and tell a healthy service from a failing one', async () => {
    for (const [name, port] of [['api', '8000'], ['worker', '9101']] as const) {
      const [kind, ...command] = compose.services[name].healthcheck.test as string[];
      expect(kind).toBe('CMD');
      const rewrite = (script: string, p: number) => script.replace(`127.0.0.1:${port}`, `127.0.0.1:${p}`);
      expect(await healthCheckExit(command, 200, rewrite), `${name} healthy`).toBe(0);
      expect(await healthCheckExit(command, 503, rewrite), `${name} failing`).toBe(1);
    }
  });

  it('the monitoring stack mounts our Prometheus config, rules, Alertmanager and Grafana files', () => {
    const s = monitoring.services;
    expect(Object.keys(s).sort()).toEqual(['alertmanager', 'grafana', 'prometheus']);
    expect(s.prometheus.command).toContain('--config.file=/etc/prometheus/prometheus.yml');
    expect(s.prometheus.volumes).toContain('./prometheus:/etc/prometheus:ro');
    expect(s.alertmanager.command).toContain('--config.file=/etc/alertmanager/alertmanager.yml');
    expect(s.grafana.volumes).toContain('./grafana/provisioning:/etc/grafana/provisioning:ro');
    for (const svc of Object.values<Any>(s)) {
      expect(svc.healthcheck?.test).toBeDefined();
      expect(svc.image, 'images are pinned').toMatch(/:v?\d+\.\d+\.\d+$/);
    }
    expect(existsSync(join(DEPLOY, 'prometheus/prometheus.yml'))).toBe(true);
    expect(existsSync(join(DEPLOY, 'alertmanager/alertmanager.yml'))).toBe(true);
  });

  it('every bind-mounted path exists', () => {
    for (const file of [compose, monitoring]) {
      for (const svc of Object.values<Any>(file.services)) {
        for (const v of (svc.volumes ?? []) as string[]) {
          const source = v.split(':')[0]!;
          if (!source.startsWith('.')) continue; // a named volume
          expect(existsSync(join(DEPLOY, source)), v).toBe(true);
        }
      }
    }
  });
});

// -------------------------------------------------------------------------------------------------
describe('Dockerfile', () => {
  const instructions = read('deploy/Dockerfile')
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      const [op, ...rest] = l.split(/\s+/);
      return { op: op!.toUpperCase(), args: rest.join(' ') };
    });
  const all = (op: string) => instructions.filter((i) => i.op === op).map((i) => i.args);
  const args = Object.fromEntries(all('ARG').map((a) => a.split('=') as [string, string]));

  it('is multi-stage on node:24-bookworm-slim with production dependencies only', () => {
    const froms = all('FROM').map((f) => f.replace(/\$\{(\w+)\}/, (_m, n: string) => args[n] ?? ''));
    expect(froms.length).toBeGreaterThan(1); // a multi-stage build
    expect(froms.length).toBeGreaterThanOrEqual(2);
    for (const f of froms) expect(f).toMatch(/^node:24-bookworm-slim AS \w+$/);
    expect(all('RUN').some((r) => /npm ci --omit=dev/.test(r))).toBe(true);
    expect(all('COPY')).toContain('--from=deps /app/node_modules ./node_modules');
    expect(all('COPY')).toContain('--from=build /app/dist ./dist');
    for (const path of ['package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json', 'src/main.ts']) {
      expect(existsSync(join(ROOT, path)), path).toBe(true);
    }
  });

  it('runs as a non-root user with the production environment and the serve command', () => {
    const users = all('USER');
    expect(users.length).toBeGreaterThan(0);
    expect(users.at(-1)).not.toMatch(/^(root|0)(:|$)/);
    const env = all('ENV').join(' ');
    for (const kv of ['HOST=0.0.0.0', 'LOG_FORMAT=json', 'ENVIRONMENT=production', 'PORT=8000']) expect(env).toContain(kv);
    expect(all('EXPOSE').join(' ').split(/\s+/)).toContain('8000');
    expect(JSON.parse(all('CMD').at(-1)!)).toEqual(['node', '--enable-source-maps', 'dist/main.js', 'serve']);
    expect(instructions.some((i) => /\bcurl\b/.test(i.args))).toBe(false);
  });

  it('HEALTHCHECK has the guide\'s timings and works without curl', async () => {
    const hc = all('HEALTHCHECK');
    expect(hc).toHaveLength(1);
    const m = /^--interval=30s --timeout=3s --start-period=40s --retries=3\s+CMD\s+(\[.*\])$/.exec(hc[0]!);
    expect(m, hc[0]).not.toBeNull();
    const command = JSON.parse(m![1]!) as string[];
    expect(command[2]).toContain('/health');
    const same = (script: string) => script; // reads PORT from the environment
    expect(await healthCheckExit(command, 200, same)).toBe(0);
    expect(await healthCheckExit(command, 500, same)).toBe(1);
    // Nothing listening: fails instead of hanging.
    const closedPort = await withHealthServer(200, async (port) => port);
    expect(await runNode(['-e', command[2]!], { PORT: String(closedPort) })).toBe(1);
  });
});

// -------------------------------------------------------------------------------------------------
describe('Kubernetes manifests', () => {
  const k8sDir = join(DEPLOY, 'k8s');
  const files = readdirSync(k8sDir).filter((f) => f.endsWith('.yaml') && statSync(join(k8sDir, f)).isFile());
  const manifests = files.filter((f) => f !== 'kustomization.yaml').flatMap((f) => yamlDocs(`deploy/k8s/${f}`).map((doc) => ({ file: f, doc })));
  const docs = manifests.map((m) => m.doc);
  const ofKind = (kind: string) => docs.filter((d) => d.kind === kind);
  const byName = (kind: string, name: string) => ofKind(kind).find((d) => d.metadata.name === name);

  type Validating = new (data: never) => { validate(): void };
  const MODELS: Record<string, Validating> = {
    'v1/Namespace': Namespace,
    'v1/ConfigMap': ConfigMap,
    'v1/Secret': Secret,
    'v1/Service': Service,
    'apps/v1/Deployment': Deployment,
    'autoscaling/v2/HorizontalPodAutoscaler': HorizontalPodAutoscaler,
    'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
    'monitoring.coreos.com/v1/ServiceMonitor': ServiceMonitor,
  };
  const validate = (doc: Any) => {
    const Model = MODELS[`${doc.apiVersion}/${doc.kind}`];
    if (!Model) throw new Error(`no schema for ${doc.apiVersion}/${doc.kind}`);
    new Model(doc as never).validate();
  };

  // The configuration the pods get: the ConfigMap plus a real secret in place of the placeholder.
  const configMap = byName('ConfigMap', 'nestegg-config');
  const secret = byName('Secret', 'nestegg-secrets');
  const podConfig = loadConfig({ ...configMap.data, ...secret.stringData, JWT_SECRET: 'k'.repeat(32) });

  it('every manifest passes the Kubernetes / Prometheus Operator schema', () => {
    expect(docs.length).toBeGreaterThanOrEqual(11);
    for (const { file, doc } of manifests) expect(() => validate(doc), `${file}: ${doc.kind}/${doc.metadata?.name}`).not.toThrow();
  });

  it('the schema validation rejects a broken manifest', () => {
    const broken = structuredClone(byName('Deployment', 'nestegg-api'));
    broken.spec.replicas = 'two';
    expect(() => validate(broken)).toThrow(/replicas/);
    const noContainers = structuredClone(byName('Deployment', 'nestegg-api'));
    delete noContainers.spec.template.spec.containers;
    expect(() => validate(noContainers)).toThrow(/containers/);
    const badMonitor = structuredClone(byName('ServiceMonitor', 'nestegg-api'));
    badMonitor.spec.endpoints[0].interval = 'every minute';
    expect(() => validate(badMonitor)).toThrow(/interval/);
  });

  it('kustomization.yaml lists every manifest file', () => {
    const k = yamlFile('deploy/k8s/kustomization.yaml');
    expect([...k.resources].sort()).toEqual(files.filter((f) => f !== 'kustomization.yaml').sort());
  });

  it('the ConfigMap is a valid configuration with a drain delay; the placeholder secret cannot start the service', () => {
    expect(podConfig.environment).toBe('production');
    expect(podConfig.host).toBe('0.0.0.0');
    expect(podConfig.port).toBe(8000);
    expect(podConfig.workerPort).toBe(9101);
    expect(podConfig.shutdown.drainDelayMs).toBeGreaterThanOrEqual(5000);
    expect(secret.metadata.annotations['nest-egg/placeholder']).toMatch(/^true/);
    expect(() => loadConfig({ ...configMap.data, ...secret.stringData })).toThrow(/JWT_SECRET/);
  });

  it('the API Deployment has the guide\'s probes, a startupProbe and a grace period longer than shutdown', () => {
    const api = byName('Deployment', 'nestegg-api');
    const pod = api.spec.template.spec;
    const c = pod.containers.find((x: Any) => x.name === 'api');
    const portNames = c.ports.map((p: Any) => p.name);
    expect(c.ports.find((p: Any) => p.name === 'http').containerPort).toBe(podConfig.port);
    expect(c.command).toEqual(['node', '--enable-source-maps', 'dist/main.js', 'serve']);
    expect(c.livenessProbe).toMatchObject({
      httpGet: { path: '/health' }, initialDelaySeconds: 30, periodSeconds: 10, timeoutSeconds: 5, failureThreshold: 3,
    });
    expect(c.readinessProbe).toMatchObject({
      httpGet: { path: '/api/v1/monitoring/health' }, initialDelaySeconds: 10, periodSeconds: 5, timeoutSeconds: 3, successThreshold: 1,
    });
    expect(c.startupProbe.httpGet.path).toBe('/health');
    for (const probe of [c.livenessProbe, c.readinessProbe, c.startupProbe]) expect(portNames).toContain(probe.httpGet.port);
    expect(pod.terminationGracePeriodSeconds * 1000).toBeGreaterThan(podConfig.shutdown.timeoutMs + podConfig.shutdown.drainDelayMs);
    expect(pod.initContainers.map((x: Any) => x.command)).toContainEqual(['node', '--enable-source-maps', 'dist/main.js', 'migrate']);
    expect(api.spec.strategy.rollingUpdate.maxUnavailable).toBe(0);
  });

  it('the worker Deployment probes its own /health on WORKER_PORT, with a startupProbe', () => {
    const worker = byName('Deployment', 'nestegg-worker');
    const pod = worker.spec.template.spec;
    const c = pod.containers.find((x: Any) => x.name === 'worker');
    expect(c.command).toEqual(['node', '--enable-source-maps', 'dist/main.js', 'worker']);
    expect(c.ports.find((p: Any) => p.name === 'metrics').containerPort).toBe(podConfig.workerPort);
    for (const probe of [c.livenessProbe, c.readinessProbe, c.startupProbe]) expect(probe.httpGet).toEqual({ path: '/health', port: 'metrics' });
    expect(c.livenessProbe).toMatchObject({ initialDelaySeconds: 30, periodSeconds: 10, timeoutSeconds: 5, failureThreshold: 3 });
    expect(pod.terminationGracePeriodSeconds * 1000).toBeGreaterThan(podConfig.shutdown.timeoutMs + podConfig.shutdown.drainDelayMs);
  });

  it('pods run as non-root with read-only root filesystems, reading the ConfigMap and Secret', () => {
    for (const d of ofKind('Deployment')) {
      const pod = d.spec.template.spec;
      expect(pod.securityContext.runAsNonRoot, d.metadata.name).toBe(true);
      for (const c of [...pod.containers, ...(pod.initContainers ?? [])]) {
        expect(c.securityContext).toMatchObject({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true });
        expect(c.envFrom).toEqual([{ configMapRef: { name: 'nestegg-config' } }, { secretRef: { name: 'nestegg-secrets' } }]);
        expect(c.volumeMounts.map((v: Any) => v.mountPath)).toContain('/tmp');
      }
      expect(d.spec.selector.matchLabels).toEqual(Object.fromEntries(Object.entries(d.spec.template.metadata.labels).filter(([k]) => k in d.spec.selector.matchLabels)));
    }
  });

  it('Services, HPA, PDB and ServiceMonitors select what exists', () => {
    const labelsMatch = (selector: Record<string, string>, labels: Record<string, string>) =>
      Object.entries(selector).every(([k, v]) => labels[k] === v);
    for (const svc of ofKind('Service')) {
      const targets = ofKind('Deployment').filter((d) => labelsMatch(svc.spec.selector, d.spec.template.metadata.labels));
      expect(targets, svc.metadata.name).toHaveLength(1);
      const containerPorts = targets[0].spec.template.spec.containers.flatMap((c: Any) => c.ports.map((p: Any) => p.name));
      for (const p of svc.spec.ports) expect(containerPorts).toContain(p.targetPort);
    }
    // Service names become the `job` label under the Operator.
    expect(ofKind('Service').map((s) => s.metadata.name).sort()).toEqual(['nestegg-api', 'nestegg-worker']);

    const hpa = byName('HorizontalPodAutoscaler', 'nestegg-api');
    expect(hpa.spec.scaleTargetRef).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment', name: 'nestegg-api' });
    expect(hpa.spec.minReplicas).toBeGreaterThanOrEqual(2);
    const pdb = byName('PodDisruptionBudget', 'nestegg-api');
    expect(labelsMatch(pdb.spec.selector.matchLabels, byName('Deployment', 'nestegg-api').spec.template.metadata.labels)).toBe(true);
    expect(pdb.spec.minAvailable).toBeLessThan(hpa.spec.minReplicas);

    expect(ofKind('ServiceMonitor').length).toBeGreaterThan(0);
    for (const sm of ofKind('ServiceMonitor')) {
      const services = ofKind('Service').filter((s) => labelsMatch(sm.spec.selector.matchLabels, s.metadata.labels));
      expect(services.map((s) => s.metadata.name), sm.metadata.name).toEqual([sm.metadata.name]);
      const portNames = services[0].spec.ports.map((p: Any) => p.name);
      expect(sm.spec.endpoints.length, sm.metadata.name).toBeGreaterThan(0);
      for (const e of sm.spec.endpoints) {
        expect(portNames).toContain(e.port);
        expect(e.path).toBe('/metrics');
      }
    }
  });

  it('every object lives in the nest-egg namespace', () => {
    for (const d of docs.filter((x) => x.kind !== 'Namespace')) expect(d.metadata.namespace, `${d.kind}/${d.metadata.name}`).toBe('nest-egg');
  });
});
