/**
 * The Nest Egg Grafana dashboard as code. `npx tsx deploy/grafana/dashboard.ts` writes
 * docs/grafana-dashboard.json; test/unit/deploy-manifests.test.ts fails when the committed file
 * differs from what this module builds.
 *
 * Plain TypeScript rather than @grafana/grafana-foundation-sdk: the SDK is published only as
 * 0.0.x and per-Grafana-version pre-releases, and the few panel shapes used here (timeseries,
 * stat, bargauge, row) are small enough to type locally. Every query uses only the metric names
 * of the metrics catalog (ARCHITECTURE §6) and the recording rules in
 * deploy/prometheus/alerts.yml, and only two template variables: $job and $instance
 * ($datasource picks the data source).
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const DASHBOARD_PATH = fileURLToPath(new URL('../../docs/grafana-dashboard.json', import.meta.url));

/** What "All" means for each query variable; an integration test substitutes these to run the panel queries. */
export const VARIABLE_ALL_VALUES = { job: 'nestegg-api|nestegg-worker', instance: '.*' } as const;

/** Replaces $job / $instance (or ${job} / ${instance}) in a panel expression. */
export function expandExpr(expr: string, values: Record<string, string> = VARIABLE_ALL_VALUES): string {
  return expr.replace(/\$\{?(\w+)\}?/g, (whole, name: string) => values[name] ?? whole);
}

interface DataSourceRef {
  type: 'prometheus';
  uid: string;
}

export interface Target {
  refId: string;
  expr: string;
  legendFormat: string;
  instant?: boolean;
  range?: boolean;
  /** Grafana asks Prometheus for the series' exemplars (trace ids) and draws them as points. */
  exemplar?: boolean;
  datasource: DataSourceRef;
}

export interface Panel {
  id: number;
  type: 'timeseries' | 'stat' | 'bargauge' | 'row';
  title: string;
  description?: string;
  gridPos: { x: number; y: number; w: number; h: number };
  datasource?: DataSourceRef;
  targets?: Target[];
  fieldConfig?: { defaults: Record<string, unknown>; overrides: unknown[] };
  options?: Record<string, unknown>;
  collapsed?: boolean;
  panels?: Panel[];
}

const DS: DataSourceRef = { type: 'prometheus', uid: '${datasource}' };

// Selectors. API traffic for ratios and latency leaves out the probe endpoints, as the alerts do.
const SEL = 'job=~"$job", instance=~"$instance"';
const API = `${SEL}, endpoint!~"/health|/metrics|/api/v1/monitoring/health"`;
const SLO = 'job="nestegg-api", endpoint!~"/health|/metrics|/api/v1/monitoring/health"';

interface QuerySpec {
  expr: string;
  legend?: string;
  instant?: boolean;
  /** Show the histogram's trace_id exemplars (the data source links each to its trace). */
  exemplar?: boolean;
}

interface PanelSpec {
  type: 'timeseries' | 'stat' | 'bargauge';
  title: string;
  description: string;
  w: number;
  h?: number;
  unit?: string;
  min?: number;
  max?: number;
  /** Colour below the first threshold (green unless said). */
  baseColor?: string;
  /** Threshold steps after the base step: [value, colour]. */
  thresholds?: Array<[number, string]>;
  mappings?: unknown[];
  queries: QuerySpec[];
}

interface RowSpec {
  title: string;
  panels: PanelSpec[];
}

const rate = (metric: string, selector: string, window = '5m') => `rate(${metric}{${selector}}[${window}])`;
const quantile = (q: number, metric: string, selector: string, by: string[] = []) =>
  `histogram_quantile(${q}, sum by (${[...by, 'le'].join(', ')}) (${rate(`${metric}_bucket`, selector)}))`;
/** errors / total, reading 0 rather than "no data" while no error series exists yet. */
const ratio = (errors: string, total: string) => `(${errors} or 0 * ${total}) / ${total}`;

const UP_DOWN = [
  { type: 'value', options: { '0': { text: 'down', color: 'red', index: 0 }, '1': { text: 'up', color: 'green', index: 1 } } },
];

const ROWS: RowSpec[] = [
  {
    title: 'Overview',
    panels: [
      { type: 'stat', title: 'Request rate', description: 'Requests per second answered by the API, every endpoint.', w: 4, unit: 'reqps',
        queries: [{ expr: `sum(${rate('http_requests_total', SEL)})` }] },
      { type: 'stat', title: '5xx ratio', description: 'Share of API requests answered 5xx over 5 minutes (probes excluded). HighErrorRate fires above 5%.', w: 4, unit: 'percentunit',
        thresholds: [[0.01, 'orange'], [0.05, 'red']],
        queries: [{ expr: ratio(`sum(${rate('http_requests_total', `${API}, status=~"5.."`)})`, `sum(${rate('http_requests_total', API)})`) }] },
      { type: 'stat', title: 'p95 latency', description: '95th percentile request duration (probes excluded). The latency SLO is p95 < 500 ms; SlowResponses fires above 2 s.', w: 4, unit: 's',
        thresholds: [[0.5, 'orange'], [2, 'red']],
        queries: [{ expr: quantile(0.95, 'http_request_duration_seconds', API) }] },
      { type: 'stat', title: 'In-flight requests', description: 'Requests being served right now, all instances.', w: 4, unit: 'short',
        queries: [{ expr: `sum(http_requests_inprogress{${SEL}})` }] },
      { type: 'stat', title: 'Dependencies', description: 'The application\'s own dependency checks (nest_egg_dependency_up), worst instance.', w: 4,
        baseColor: 'red', thresholds: [[1, 'green']], mappings: UP_DOWN,
        queries: [{ expr: `min by (dependency) (nest_egg_dependency_up{${SEL}})`, legend: '{{dependency}}' }] },
      { type: 'stat', title: 'Running versions', description: 'Instances per version and environment (app_info).', w: 4, unit: 'short',
        queries: [{ expr: `count by (version, environment) (app_info{${SEL}})`, legend: '{{version}} ({{environment}})' }] },
    ],
  },
  {
    title: 'HTTP',
    panels: [
      { type: 'timeseries', title: 'Request rate by status', description: 'Requests per second by HTTP status code.', w: 12, unit: 'reqps',
        queries: [{ expr: `sum by (status) (${rate('http_requests_total', SEL)})`, legend: '{{status}}' }] },
      { type: 'timeseries', title: 'Request rate by endpoint', description: 'Requests per second by method and route template.', w: 12, unit: 'reqps',
        queries: [{ expr: `sum by (method, endpoint) (${rate('http_requests_total', SEL)})`, legend: '{{method}} {{endpoint}}' }] },
      { type: 'timeseries', title: '5xx ratio', description: 'Share of requests answered 5xx, overall and per endpoint (probes excluded).', w: 12, unit: 'percentunit', min: 0,
        thresholds: [[0.05, 'red']],
        queries: [
          { expr: ratio(`sum(${rate('http_requests_total', `${API}, status=~"5.."`)})`, `sum(${rate('http_requests_total', API)})`), legend: 'all endpoints' },
          { expr: `sum by (endpoint) (${rate('http_requests_total', `${API}, status=~"5.."`)}) / sum by (endpoint) (${rate('http_requests_total', API)})`, legend: '{{endpoint}}' },
        ] },
      { type: 'timeseries', title: 'Latency p50 / p95 / p99', description: 'Request duration quantiles over every endpoint (probes excluded). The points are exemplars: sampled requests, each linked to its trace.', w: 12, unit: 's',
        thresholds: [[0.5, 'orange'], [2, 'red']],
        queries: [0.5, 0.95, 0.99].map((q) => ({ expr: quantile(q, 'http_request_duration_seconds', API), legend: `p${Math.round(q * 100)}`, exemplar: q === 0.99 })) },
      { type: 'timeseries', title: 'Latency by endpoint', description: 'p50, p95 and p99 request duration per route template; the points are exemplars of sampled requests, each linked to its trace.', w: 24, h: 10, unit: 's',
        queries: [0.5, 0.95, 0.99].map((q) => ({
          expr: quantile(q, 'http_request_duration_seconds', SEL, ['endpoint']),
          legend: `p${Math.round(q * 100)} {{endpoint}}`,
          exemplar: q === 0.99,
        })) },
      { type: 'timeseries', title: 'In-flight requests', description: 'Requests being served, per instance.', w: 8, unit: 'short',
        queries: [{ expr: `sum by (instance) (http_requests_inprogress{${SEL}})`, legend: '{{instance}}' }] },
      { type: 'timeseries', title: 'Request size', description: 'Request body size: p95 and mean.', w: 8, unit: 'bytes',
        queries: [
          { expr: quantile(0.95, 'http_request_size_bytes', SEL), legend: 'p95' },
          { expr: `sum(${rate('http_request_size_bytes_sum', SEL)}) / sum(${rate('http_request_size_bytes_count', SEL)})`, legend: 'mean' },
        ] },
      { type: 'timeseries', title: 'Response size', description: 'Response body size: p95 and mean.', w: 8, unit: 'bytes',
        queries: [
          { expr: quantile(0.95, 'http_response_size_bytes', SEL), legend: 'p95' },
          { expr: `sum(${rate('http_response_size_bytes_sum', SEL)}) / sum(${rate('http_response_size_bytes_count', SEL)})`, legend: 'mean' },
        ] },
    ],
  },
  {
    title: 'Database',
    panels: [
      { type: 'timeseries', title: 'Query p95 by operation', description: '95th percentile query duration by operation (select, insert, update, delete, other).', w: 8, unit: 's',
        queries: [{ expr: quantile(0.95, 'db_query_duration_seconds', SEL, ['operation']), legend: '{{operation}}' }] },
      { type: 'timeseries', title: 'Queries per second', description: 'Queries per second by operation.', w: 8, unit: 'ops',
        queries: [{ expr: `sum by (operation) (${rate('db_query_duration_seconds_count', SEL)})`, legend: '{{operation}}' }] },
      { type: 'timeseries', title: 'Connection pool utilisation', description: 'Connections in use / pool size, per instance. Near 100% means requests queue for a connection.', w: 8, unit: 'percentunit', min: 0, max: 1,
        thresholds: [[0.8, 'orange'], [0.95, 'red']],
        queries: [{ expr: `(db_connection_pool_size{${SEL}} - db_connection_pool_available{${SEL}}) / db_connection_pool_size{${SEL}}`, legend: '{{job}} {{instance}}' }] },
    ],
  },
  {
    title: 'Background tasks',
    panels: [
      { type: 'timeseries', title: 'Task throughput', description: 'Tasks finished per second by task and outcome (success, failure, retry).', w: 12, unit: 'ops',
        queries: [
          { expr: `sum by (task_name, status) (${rate('celery_tasks_total', SEL)})`, legend: '{{task_name}} {{status}}' },
          { expr: `sum(${rate('celery_tasks_total', SEL)}) or vector(0)`, legend: 'all tasks' },
        ] },
      { type: 'timeseries', title: 'Task success rate', description: 'Share of finished tasks that succeeded, per task.', w: 12, unit: 'percentunit', min: 0, max: 1,
        queries: [{
          expr: ratio(`sum by (task_name) (${rate('celery_tasks_total', `${SEL}, status="success"`)})`, `sum by (task_name) (${rate('celery_tasks_total', SEL)})`),
          legend: '{{task_name}}',
        }] },
      { type: 'timeseries', title: 'Task duration p95', description: '95th percentile task duration per task.', w: 12, unit: 's',
        queries: [{ expr: quantile(0.95, 'celery_task_duration_seconds', SEL, ['task_name']), legend: '{{task_name}}', exemplar: true }] },
      { type: 'timeseries', title: 'Tasks in progress (backlog)', description: 'Tasks running at once (CeleryTaskBacklog fires when the total stays above 100 for 15 minutes), and jobs waiting in the shared queue (every process reports the same queue, hence max).', w: 12, unit: 'short',
        thresholds: [[100, 'red']],
        queries: [
          { expr: `sum by (task_name) (celery_tasks_inprogress{${SEL}})`, legend: '{{task_name}}' },
          { expr: `sum(celery_tasks_inprogress{${SEL}}) or vector(0)`, legend: 'total in progress' },
          { expr: `max by (state) (nest_egg_job_queue_jobs{${SEL}, state=~"waiting|delayed|prioritized"})`, legend: 'queued {{state}}' },
        ] },
    ],
  },
  {
    title: 'Rate limiting',
    panels: [
      { type: 'timeseries', title: 'Blocked requests', description: 'Requests answered 429 per second. HighRateLimitHits fires above 10/s.', w: 8, unit: 'reqps',
        thresholds: [[10, 'red']],
        queries: [
          { expr: `sum(${rate('rate_limit_hits_total', SEL)}) or vector(0)`, legend: 'all endpoints' },
          { expr: `sum by (endpoint) (${rate('rate_limit_hits_total', SEL)})`, legend: '{{endpoint}}' },
        ] },
      { type: 'timeseries', title: 'Block ratio', description: 'Blocked / rate-limited requests. HighRateLimitBlockRatio fires above 10%.', w: 8, unit: 'percentunit', min: 0,
        thresholds: [[0.1, 'red']],
        queries: [{ expr: ratio(`sum(${rate('rate_limit_hits_total', SEL)})`, `sum(${rate('rate_limit_requests_total', SEL)})`) }] },
      { type: 'bargauge', title: 'Top rate-limited endpoints', description: 'The ten endpoints with the most requests subject to rate limiting, per second.', w: 8, unit: 'reqps',
        queries: [{ expr: `topk(10, sum by (endpoint) (${rate('rate_limit_requests_total', SEL)}))`, legend: '{{endpoint}}', instant: true }] },
    ],
  },
  {
    title: 'Security',
    panels: [
      { type: 'timeseries', title: 'Sign-in attempts by outcome', description: 'Sign-ins per second: success, bad_credentials, locked (a failure that locked the account), throttled (refused unchecked while locked). CredentialStuffing fires when failures stay above 1/s.', w: 8, unit: 'reqps',
        thresholds: [[1, 'red']],
        queries: [
          { expr: `sum by (outcome) (${rate('auth_login_attempts_total', SEL)})`, legend: '{{outcome}}' },
          { expr: `sum(${rate('auth_login_attempts_total', `${SEL}, outcome=~"bad_credentials|locked"`)}) or vector(0)`, legend: 'failed (all)' },
        ] },
      { type: 'timeseries', title: 'Security events per 5 minutes', description: 'security_events_total by type: login_throttled, account_locked, refresh_token_reuse, admin_denied (each also a security_event log line).', w: 8, unit: 'short',
        queries: [{ expr: `sum by (type) (increase(security_events_total{${SEL}}[5m]))`, legend: '{{type}}' }] },
      { type: 'stat', title: 'Sign-in failure ratio', description: 'Failed sign-ins / all sign-in attempts over 5 minutes (throttled attempts left out).', w: 4, h: 8, unit: 'percentunit',
        thresholds: [[0.2, 'orange'], [0.5, 'red']],
        queries: [{ expr: ratio(`sum(${rate('auth_login_attempts_total', `${SEL}, outcome=~"bad_credentials|locked"`)})`, `sum(${rate('auth_login_attempts_total', `${SEL}, outcome!="throttled"`)})`) }] },
      { type: 'stat', title: 'Refresh-token reuse (24 h)', description: 'Spent refresh tokens presented again over the last day (RefreshTokenReuse fires on any).', w: 4, h: 8, unit: 'short',
        thresholds: [[1, 'red']],
        queries: [{ expr: `sum(increase(security_events_total{${SEL}, type="refresh_token_reuse"}[24h])) or vector(0)` }] },
    ],
  },
  {
    title: 'Business',
    panels: [
      { type: 'stat', title: 'Users', h: 8, description: 'Registered users (users_total gauge).', w: 4, unit: 'short',
        queries: [{ expr: `max(users_total{${SEL}})` }] },
      { type: 'stat', title: 'Accounts', h: 8, description: 'Linked accounts (accounts_total gauge).', w: 4, unit: 'short',
        queries: [{ expr: `max(accounts_total{${SEL}})` }] },
      { type: 'stat', title: 'Transactions', h: 8, description: 'Stored transactions (transactions_total gauge).', w: 4, unit: 'short',
        queries: [{ expr: `max(transactions_total{${SEL}})` }] },
      { type: 'timeseries', title: 'Bank syncs per hour', description: 'Plaid sync operations over the last hour, by outcome.', w: 6, unit: 'short',
        queries: [
          { expr: `sum by (status) (increase(plaid_syncs_total{${SEL}}[1h]))`, legend: '{{status}}' },
          { expr: `sum(increase(plaid_syncs_total{${SEL}}[1h])) or vector(0)`, legend: 'all' },
        ] },
      { type: 'timeseries', title: 'Budget alerts per hour', description: 'Budget alerts raised over the last hour, by priority.', w: 6, unit: 'short',
        queries: [
          { expr: `sum by (priority) (increase(budget_alerts_total{${SEL}}[1h]))`, legend: '{{priority}}' },
          { expr: `sum(increase(budget_alerts_total{${SEL}}[1h])) or vector(0)`, legend: 'all' },
        ] },
    ],
  },
  {
    title: 'Process',
    panels: [
      { type: 'timeseries', title: 'CPU', description: 'CPU time per second (1 = one core), per process.', w: 8, unit: 'percentunit',
        queries: [{ expr: rate('process_cpu_seconds_total', SEL), legend: '{{job}} {{instance}}' }] },
      { type: 'timeseries', title: 'Memory', description: 'Resident set size and V8 heap in use, per process.', w: 8, unit: 'bytes',
        queries: [
          { expr: `process_resident_memory_bytes{${SEL}}`, legend: 'rss {{instance}}' },
          { expr: `nodejs_heap_size_used_bytes{${SEL}}`, legend: 'heap {{instance}}' },
        ] },
      { type: 'timeseries', title: 'Event loop lag', description: 'Event-loop delay p50 and p99, per process. EventLoopLagHigh fires when p99 stays above 500 ms.', w: 8, unit: 's',
        thresholds: [[0.5, 'red']],
        queries: [
          { expr: `nodejs_eventloop_lag_p50_seconds{${SEL}}`, legend: 'p50 {{instance}}' },
          { expr: `nodejs_eventloop_lag_p99_seconds{${SEL}}`, legend: 'p99 {{instance}}' },
        ] },
    ],
  },
  {
    title: 'SLO error budget',
    panels: [
      { type: 'stat', title: 'Availability (30 days)', description: 'Share of API requests not answered 5xx over 30 days. Objective 99.9%.', w: 6, unit: 'percentunit',
        baseColor: 'red', thresholds: [[0.999, 'green']],
        queries: [{ expr: `1 - ${ratio(`sum(increase(http_requests_total{${SLO}, status=~"5.."}[30d]))`, `sum(increase(http_requests_total{${SLO}}[30d]))`)}` }] },
      { type: 'stat', title: 'Availability error budget left (30 days)', description: 'Share of the 0.1% error budget not yet spent over 30 days.', w: 6, unit: 'percentunit',
        baseColor: 'red', thresholds: [[0, 'orange'], [0.25, 'green']],
        queries: [{ expr: `1 - (${ratio(`sum(increase(http_requests_total{${SLO}, status=~"5.."}[30d]))`, `sum(increase(http_requests_total{${SLO}}[30d]))`)}) / 0.001` }] },
      { type: 'stat', title: 'Requests within 500 ms (30 days)', description: 'Share of API requests faster than 500 ms over 30 days. Objective 95% (p95 < 500 ms).', w: 6, unit: 'percentunit',
        baseColor: 'red', thresholds: [[0.95, 'green']],
        queries: [{ expr: `sum(increase(http_request_duration_seconds_bucket{${SLO}, le="0.5"}[30d])) / sum(increase(http_request_duration_seconds_count{${SLO}}[30d]))` }] },
      { type: 'stat', title: 'Latency error budget left (30 days)', description: 'Share of the 5% slow-request budget not yet spent over 30 days.', w: 6, unit: 'percentunit',
        baseColor: 'red', thresholds: [[0, 'orange'], [0.25, 'green']],
        queries: [{ expr: `1 - (1 - sum(increase(http_request_duration_seconds_bucket{${SLO}, le="0.5"}[30d])) / sum(increase(http_request_duration_seconds_count{${SLO}}[30d]))) / 0.05` }] },
      { type: 'timeseries', title: 'Availability burn rate', description: 'Error ratio / error budget (0.1%) per alert window. Pages at 14.4 (1 h and 5 m) and 6 (6 h and 30 m); ticket at 1 (3 d and 6 h).', w: 12, unit: 'short',
        thresholds: [[1, 'orange'], [6, 'red']],
        queries: ['5m', '30m', '1h', '6h', '3d'].map((w) => ({ expr: `job:slo_availability_errors:ratio_rate${w}{job="nestegg-api"} / 0.001`, legend: w })) },
      { type: 'timeseries', title: 'Latency burn rate', description: 'Share of requests slower than 500 ms / budget (5%) per alert window. Same thresholds as availability.', w: 12, unit: 'short',
        thresholds: [[1, 'orange'], [6, 'red']],
        queries: ['5m', '30m', '1h', '6h', '3d'].map((w) => ({ expr: `job:slo_latency_errors:ratio_rate${w}{job="nestegg-api"} / 0.05`, legend: w })) },
    ],
  },
];

function buildPanel(spec: PanelSpec, id: number, x: number, y: number): Panel {
  const steps = [{ color: spec.baseColor ?? 'green', value: null as number | null }, ...(spec.thresholds ?? []).map(([value, color]) => ({ color, value }))];
  const defaults: Record<string, unknown> = {
    unit: spec.unit ?? 'short',
    thresholds: { mode: 'absolute', steps },
    color: { mode: spec.type === 'timeseries' ? 'palette-classic' : 'thresholds' },
  };
  if (spec.min !== undefined) defaults.min = spec.min;
  if (spec.max !== undefined) defaults.max = spec.max;
  if (spec.mappings) defaults.mappings = spec.mappings;
  if (spec.type === 'timeseries' && spec.thresholds) defaults.custom = { thresholdsStyle: { mode: 'line' } };

  const reduce = { calcs: ['lastNotNull'], fields: '', values: false };
  const options: Record<string, unknown> =
    spec.type === 'timeseries'
      ? { legend: { displayMode: 'list', placement: 'bottom', showLegend: true }, tooltip: { mode: 'multi', sort: 'desc' } }
      : spec.type === 'stat'
        ? { reduceOptions: reduce, colorMode: 'value', graphMode: 'area', justifyMode: 'auto', textMode: 'auto', orientation: 'auto' }
        : { reduceOptions: reduce, displayMode: 'gradient', orientation: 'horizontal', showUnfilled: true };

  return {
    id,
    type: spec.type,
    title: spec.title,
    description: spec.description,
    gridPos: { x, y, w: spec.w, h: spec.h ?? (spec.type === 'stat' ? 4 : 8) },
    datasource: DS,
    targets: spec.queries.map((q, i) => ({
      refId: String.fromCharCode(65 + i),
      expr: q.expr,
      legendFormat: q.legend ?? '__auto',
      ...(q.instant ? { instant: true, range: false } : {}),
      ...(q.exemplar ? { exemplar: true } : {}),
      datasource: DS,
    })),
    fieldConfig: { defaults, overrides: [] },
    options,
  };
}

/** Lays the rows out top to bottom, panels left to right wrapping at Grafana's 24 columns. */
function layout(rows: RowSpec[]): Panel[] {
  const panels: Panel[] = [];
  let id = 1;
  let y = 0;
  for (const row of rows) {
    panels.push({ id: id++, type: 'row', title: row.title, gridPos: { x: 0, y, w: 24, h: 1 }, collapsed: false, panels: [] });
    y += 1;
    let x = 0;
    let lineHeight = 0;
    for (const spec of row.panels) {
      if (x + spec.w > 24) {
        x = 0;
        y += lineHeight;
        lineHeight = 0;
      }
      const panel = buildPanel(spec, id++, x, y);
      panels.push(panel);
      x += spec.w;
      lineHeight = Math.max(lineHeight, panel.gridPos.h);
    }
    y += lineHeight;
  }
  return panels;
}

function queryVariable(name: string, label: string, query: string, allValue: string) {
  return {
    name,
    label,
    type: 'query',
    datasource: DS,
    query,
    definition: query,
    refresh: 2,
    includeAll: true,
    multi: true,
    allValue,
    current: { selected: true, text: ['All'], value: ['$__all'] },
    options: [],
    regex: '',
    sort: 1,
    hide: 0,
  };
}

export function buildDashboard() {
  return {
    uid: 'nest-egg-api',
    title: 'Nest Egg API',
    description: 'HTTP, database, background tasks, rate limiting, security, business metrics, process health and SLO error budgets of the Nest Egg API and worker.',
    tags: ['nest-egg', 'prometheus'],
    timezone: 'browser',
    editable: true,
    graphTooltip: 1,
    refresh: '30s',
    time: { from: 'now-3h', to: 'now' },
    schemaVersion: 39,
    version: 1,
    fiscalYearStartMonth: 0,
    liveNow: false,
    links: [],
    annotations: {
      list: [
        {
          builtIn: 1,
          datasource: { type: 'grafana', uid: '-- Grafana --' },
          enable: true,
          hide: true,
          iconColor: 'rgba(0, 211, 255, 1)',
          name: 'Annotations & Alerts',
          type: 'dashboard',
        },
      ],
    },
    templating: {
      list: [
        {
          name: 'datasource',
          label: 'Data source',
          type: 'datasource',
          query: 'prometheus',
          current: { selected: false, text: 'Prometheus', value: 'prometheus' },
          options: [],
          refresh: 1,
          regex: '',
          hide: 0,
          includeAll: false,
          multi: false,
        },
        queryVariable('job', 'Job', 'label_values(up{job=~"nestegg-api|nestegg-worker"}, job)', VARIABLE_ALL_VALUES.job),
        queryVariable('instance', 'Instance', 'label_values(up{job=~"$job"}, instance)', VARIABLE_ALL_VALUES.instance),
      ],
    },
    panels: layout(ROWS),
  };
}

/** The committed file's exact text: two-space JSON and a final newline. */
export function renderDashboard(): string {
  return `${JSON.stringify(buildDashboard(), null, 2)}\n`;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  writeFileSync(DASHBOARD_PATH, renderDashboard());
  process.stdout.write(`wrote ${DASHBOARD_PATH}\n`);
}
