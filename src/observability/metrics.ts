/**
 * The metrics catalog (ARCHITECTURE §6) in one place, on one prom-client Registry per app
 * instance (never the library's global registry), so two apps in one process never share series.
 *
 * Names are a contract: the guide's dashboards and alerts read them. Every metric carries HELP
 * text and base units (seconds, bytes). Label sets that are closed (a query status, an alert
 * priority, a db operation) are initialised to zero, so the guide's queries answer before the
 * first event instead of returning nothing.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics, exponentialBuckets, type Metric, type OpenMetricsContentType } from 'prom-client';
import type { DbOperation, QueryObserver } from '../db/client.ts';

export const PROMETHEUS_CONTENT_TYPE = Registry.PROMETHEUS_CONTENT_TYPE;
export const OPENMETRICS_CONTENT_TYPE = Registry.OPENMETRICS_CONTENT_TYPE;

export const DB_OPERATIONS: readonly DbOperation[] = ['select', 'insert', 'update', 'delete', 'other'];
export const ALERT_PRIORITIES = ['low', 'medium', 'high'] as const;
export const SYNC_STATUSES = ['success', 'failure'] as const;
export const TASK_STATUSES = ['success', 'failure', 'retry'] as const;

/** auth_login_attempts_total{outcome}: every sign-in attempt that reached the login handler gets exactly one. */
export const LOGIN_OUTCOMES = ['success', 'bad_credentials', 'throttled', 'locked'] as const;
/** security_events_total{type}: the closed set of security events (src/observability/security.ts). */
export const SECURITY_EVENT_TYPES = ['login_throttled', 'account_locked', 'refresh_token_reuse', 'admin_denied'] as const;

export type LoginOutcome = (typeof LOGIN_OUTCOMES)[number];
export type SecurityEventType = (typeof SECURITY_EVENT_TYPES)[number];
export type AlertPriorityLabel = (typeof ALERT_PRIORITIES)[number];
export type SyncStatus = (typeof SYNC_STATUSES)[number];
export type TaskStatus = (typeof TASK_STATUSES)[number];

/** Request latency: fine below 100 ms, and edges at the guide's SLO (0.5 s) and alert (2 s). */
const HTTP_DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10];
/** 64 B … 4 MiB in powers of four (the default body limit is 1 MiB). */
const SIZE_BUCKETS = exponentialBuckets(64, 4, 9);
const DB_DURATION_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
const TASK_DURATION_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

export interface MetricsOptions {
  version: string;
  environment: string;
  /** Process and event-loop metrics (off when METRICS_ENABLED=false: nothing left running). */
  processMetrics?: boolean;
  /**
   * users_total, transactions_total, accounts_total and their refresh gauges: on for the API,
   * which refreshes them; off for the worker, which would otherwise export them as a stale 0.
   */
  businessGauges?: boolean;
}

export interface PoolStats {
  size: number;
  available: number;
}

type HttpLabel = 'method' | 'endpoint' | 'status';

export class Metrics {
  readonly registry = new Registry();

  readonly httpRequests = new Counter<HttpLabel>({
    name: 'http_requests_total',
    help: 'HTTP requests answered, by method, route template (endpoint) and status code.',
    labelNames: ['method', 'endpoint', 'status'],
    registers: [this.registry],
  });
  readonly httpRequestDuration = new Histogram<HttpLabel>({
    name: 'http_request_duration_seconds',
    help: 'Time from receiving an HTTP request to finishing its response, in seconds.',
    labelNames: ['method', 'endpoint', 'status'],
    buckets: HTTP_DURATION_BUCKETS,
    // A sampled request's observation carries its trace id (OpenMetrics exposition only): observe with
    // `{ labels, value, exemplarLabels }` (exemplarOf). prom-client refuses an exemplar histogram in a
    // text-format registry's `registers` (though it renders one there, without exemplars, as the
    // 0.0.4 format wants): registered in the constructor instead.
    enableExemplars: true,
    registers: [],
  });
  readonly httpRequestsInProgress = new Gauge<'method' | 'endpoint'>({
    name: 'http_requests_inprogress',
    help: 'HTTP requests being served right now.',
    labelNames: ['method', 'endpoint'],
    registers: [this.registry],
  });
  readonly httpRequestSize = new Histogram<'method' | 'endpoint'>({
    name: 'http_request_size_bytes',
    help: 'HTTP request body size in bytes (Content-Length; 0 when the request has none).',
    labelNames: ['method', 'endpoint'],
    buckets: SIZE_BUCKETS,
    registers: [this.registry],
  });
  readonly httpResponseSize = new Histogram<'method' | 'endpoint'>({
    name: 'http_response_size_bytes',
    help: 'HTTP response body size in bytes.',
    labelNames: ['method', 'endpoint'],
    buckets: SIZE_BUCKETS,
    registers: [this.registry],
  });

  readonly dbQueryDuration = new Histogram<'operation'>({
    name: 'db_query_duration_seconds',
    help: 'Database query execution time in seconds, by statement kind (select, insert, update, delete, other).',
    labelNames: ['operation'],
    buckets: DB_DURATION_BUCKETS,
    registers: [this.registry],
  });
  readonly dbQueryErrors = new Counter<'operation'>({
    name: 'db_query_errors_total',
    help: 'Database queries that failed, by statement kind.',
    labelNames: ['operation'],
    registers: [this.registry],
  });
  private poolSource: (() => PoolStats) | undefined;
  readonly dbPoolSize: Gauge;
  readonly dbPoolAvailable: Gauge;

  readonly celeryTasks = new Counter<'task_name' | 'status'>({
    name: 'celery_tasks_total',
    help: 'Background tasks finished, by task name and status (success, failure, retry).',
    labelNames: ['task_name', 'status'],
    registers: [this.registry],
  });
  readonly celeryTaskDuration = new Histogram<'task_name' | 'status'>({
    name: 'celery_task_duration_seconds',
    help: 'Background task execution time in seconds, by task name and status.',
    labelNames: ['task_name', 'status'],
    buckets: TASK_DURATION_BUCKETS,
    enableExemplars: true,
    registers: [],
  });
  readonly celeryTasksInProgress = new Gauge<'task_name'>({
    name: 'celery_tasks_inprogress',
    help: 'Background tasks running right now, by task name.',
    labelNames: ['task_name'],
    registers: [this.registry],
  });
  private queueSource: (() => Promise<Record<string, number> | undefined>) | undefined;
  readonly jobQueueJobs: Gauge<'state'>;

  readonly rateLimitHits = new Counter<'endpoint'>({
    name: 'rate_limit_hits_total',
    help: 'Requests blocked by rate limiting (answered 429), by route template.',
    labelNames: ['endpoint'],
    registers: [this.registry],
  });
  readonly rateLimitRequests = new Counter<'endpoint'>({
    name: 'rate_limit_requests_total',
    help: 'Requests subject to rate limiting (allowed or blocked), by route template.',
    labelNames: ['endpoint'],
    registers: [this.registry],
  });
  readonly rateLimitStoreErrors = new Counter<'reason'>({
    name: 'rate_limit_store_errors_total',
    help: 'Calls to the shared rate-limit store (Redis) that failed (error), timed out (timeout) or found it disconnected (unavailable); each such decision fell back to per-process limits.',
    labelNames: ['reason'],
    registers: [this.registry],
  });

  // The guide names these three gauges `_total`; promtool flags the suffix, and we keep the names
  // because the guide's dashboards query them. Refreshed in the background (business-metrics.ts).
  readonly usersTotal = new Gauge({
    name: 'users_total',
    help: 'Registered users (a count refreshed in the background; aggregate replicas with max).',
    registers: [this.registry],
  });
  readonly transactionsTotal = new Gauge({
    name: 'transactions_total',
    help: 'Stored transactions (a count refreshed in the background; aggregate replicas with max).',
    registers: [this.registry],
  });
  readonly accountsTotal = new Gauge({
    name: 'accounts_total',
    help: 'Linked and manual accounts (a count refreshed in the background; aggregate replicas with max).',
    registers: [this.registry],
  });
  readonly businessRefreshTimestamp = new Gauge({
    name: 'nest_egg_business_metrics_last_refresh_timestamp_seconds',
    help: 'Unix time of the last successful refresh of users_total, transactions_total and accounts_total.',
    registers: [this.registry],
  });
  readonly businessRefreshFailures = new Counter({
    name: 'nest_egg_business_metrics_refresh_failures_total',
    help: 'Background refreshes of the business gauges that failed.',
    registers: [this.registry],
  });

  readonly plaidSyncs = new Counter<'status'>({
    name: 'plaid_syncs_total',
    help: 'Bank (Plaid) sync operations, by status (success, failure).',
    labelNames: ['status'],
    registers: [this.registry],
  });
  readonly budgetAlerts = new Counter<'priority'>({
    name: 'budget_alerts_total',
    help: 'Budget alerts created, by priority (low, medium, high).',
    labelNames: ['priority'],
    registers: [this.registry],
  });

  readonly otlpSpansExported = new Counter({
    name: 'otlp_spans_exported_total',
    help: 'Spans the OTLP collector accepted.',
    registers: [this.registry],
  });
  readonly otlpSpansDropped = new Counter<'reason'>({
    name: 'otlp_spans_dropped_total',
    help: 'Spans not exported, by reason: queue_full (the export queue was at OTEL_BSP_MAX_QUEUE_SIZE), export_failed (the collector refused or did not answer).',
    labelNames: ['reason'],
    registers: [this.registry],
  });
  readonly auditWriteFailures = new Counter({
    name: 'audit_write_failures_total',
    help: 'Audit events that could not be stored (the request they belong to answered as usual).',
    registers: [this.registry],
  });
  readonly authLoginAttempts = new Counter<'outcome'>({
    name: 'auth_login_attempts_total',
    help: 'Sign-in attempts by outcome: success, bad_credentials (wrong password or unknown email), locked (a bad attempt that locked the account), throttled (refused unchecked while the account is locked).',
    labelNames: ['outcome'],
    registers: [this.registry],
  });
  readonly securityEvents = new Counter<'type'>({
    name: 'security_events_total',
    help: 'Security events by type: login_throttled, account_locked, refresh_token_reuse, admin_denied (each also logged as a security_event line).',
    labelNames: ['type'],
    registers: [this.registry],
  });

  readonly appInfo = new Gauge<'version' | 'environment'>({
    name: 'app_info',
    help: 'Always 1; the labels carry the running version and environment.',
    labelNames: ['version', 'environment'],
    registers: [this.registry],
  });
  readonly dependencyUp = new Gauge<'dependency'>({
    name: 'nest_egg_dependency_up',
    help: 'Whether a dependency answered its last health check (1) or not (0), by dependency.',
    labelNames: ['dependency'],
    registers: [this.registry],
  });

  // Label objects for closed label sets, made once: the hot paths pass these instead of allocating.
  private readonly operationLabels = Object.fromEntries(DB_OPERATIONS.map((operation) => [operation, { operation }])) as Record<
    DbOperation,
    { operation: DbOperation }
  >;
  private readonly priorityLabels = Object.fromEntries(ALERT_PRIORITIES.map((priority) => [priority, { priority }])) as Record<
    AlertPriorityLabel,
    { priority: AlertPriorityLabel }
  >;

  private readonly outcomeLabels = Object.fromEntries(LOGIN_OUTCOMES.map((outcome) => [outcome, { outcome }])) as Record<LoginOutcome, { outcome: LoginOutcome }>;
  private readonly securityTypeLabels = Object.fromEntries(SECURITY_EVENT_TYPES.map((type) => [type, { type }])) as Record<
    SecurityEventType,
    { type: SecurityEventType }
  >;

  constructor(opts: MetricsOptions) {
    const pool = () => this.poolSource?.();
    this.dbPoolSize = new Gauge({
      name: 'db_connection_pool_size',
      help: 'Database connections the pool may hold (its maximum; 1 for the embedded database).',
      registers: [this.registry],
      collect() {
        const p = pool();
        if (p) this.set(p.size);
      },
    });
    this.dbPoolAvailable = new Gauge({
      name: 'db_connection_pool_available',
      help: 'Database connections free for a new query (the pool size minus the connections in use).',
      registers: [this.registry],
      collect() {
        const p = pool();
        if (p) this.set(p.available);
      },
    });
    const queue = () => this.queueSource?.();
    this.jobQueueJobs = new Gauge<'state'>({
      name: 'nest_egg_job_queue_jobs',
      help: 'Background jobs in the queue by state (waiting, active, delayed, prioritized, and the completed and failed jobs kept), read at scrape time. Every process reports the same shared queue: aggregate with max.',
      labelNames: ['state'],
      registers: [this.registry],
      async collect() {
        try {
          const counts = await queue();
          if (counts) for (const [state, n] of Object.entries(counts)) this.set({ state }, n);
        } catch {
          // The queue's store did not answer: keep the last values rather than fail the scrape.
        }
      },
    });

    this.registry.registerMetric(this.httpRequestDuration);
    this.registry.registerMetric(this.celeryTaskDuration);
    this.appInfo.set({ version: opts.version, environment: opts.environment }, 1);
    for (const operation of DB_OPERATIONS) {
      this.dbQueryDuration.zero(this.operationLabels[operation]);
      this.dbQueryErrors.inc(this.operationLabels[operation], 0);
    }
    for (const priority of ALERT_PRIORITIES) this.budgetAlerts.inc(this.priorityLabels[priority], 0);
    for (const status of SYNC_STATUSES) this.plaidSyncs.inc({ status }, 0);
    for (const reason of ['error', 'timeout', 'unavailable']) this.rateLimitStoreErrors.inc({ reason }, 0);
    for (const reason of ['queue_full', 'export_failed']) this.otlpSpansDropped.inc({ reason }, 0);
    for (const outcome of LOGIN_OUTCOMES) this.authLoginAttempts.inc(this.outcomeLabels[outcome], 0);
    for (const type of SECURITY_EVENT_TYPES) this.securityEvents.inc(this.securityTypeLabels[type], 0);

    if (opts.processMetrics ?? true) {
      for (const m of processMetrics()) this.registry.registerMetric(m);
    }
    if (opts.businessGauges === false) {
      for (const g of [this.usersTotal, this.transactionsTotal, this.accountsTotal, this.businessRefreshTimestamp, this.businessRefreshFailures]) {
        this.registry.removeSingleMetric((g as unknown as { name: string }).name);
      }
    }
  }

  /** Feeds db_query_duration_seconds; pass as `onQuery` to openDatabase. */
  readonly observeQuery: QueryObserver = (operation, seconds, failed) => {
    const labels = this.operationLabels[operation];
    this.dbQueryDuration.observe(labels, seconds);
    if (failed) this.dbQueryErrors.inc(labels);
  };

  /** Where the pool gauges read from at scrape time. */
  watchPool(source: () => PoolStats): void {
    this.poolSource = source;
  }

  /** Where nest_egg_job_queue_jobs reads the queue's counts by state at scrape time (undefined: keep the last). */
  watchQueue(source: () => Promise<Record<string, number> | undefined>): void {
    this.queueSource = source;
  }

  recordBudgetAlert(priority: AlertPriorityLabel): void {
    this.budgetAlerts.inc(this.priorityLabels[priority]);
  }

  recordLoginAttempt(outcome: LoginOutcome): void {
    this.authLoginAttempts.inc(this.outcomeLabels[outcome]);
  }

  recordSecurityEvent(type: SecurityEventType): void {
    this.securityEvents.inc(this.securityTypeLabels[type]);
  }

  setDependencyUp(dependency: string, up: boolean): void {
    this.dependencyUp.set({ dependency }, up ? 1 : 0);
  }

  /** Zero-initialises the task series (every status), so the worker's queries answer before the first run. */
  registerTaskNames(taskNames: Iterable<string>): void {
    for (const task_name of taskNames) {
      this.celeryTasksInProgress.set({ task_name }, 0);
      for (const status of TASK_STATUSES) {
        this.celeryTasks.inc({ task_name, status }, 0);
        this.celeryTaskDuration.zero({ task_name, status });
      }
    }
  }

  /** Zero-initialises the rate-limit series of the route templates a policy covers. */
  registerRateLimitedEndpoints(endpoints: Iterable<string>): void {
    for (const endpoint of endpoints) {
      this.rateLimitHits.inc({ endpoint }, 0);
      this.rateLimitRequests.inc({ endpoint }, 0);
    }
  }

  /** The exposition: Prometheus text 0.0.4, or OpenMetrics 1.0.0 when the scraper asks for it. */
  async render(format: 'prometheus' | 'openmetrics' = 'prometheus'): Promise<string> {
    if (format === 'prometheus') return this.registry.metrics();
    // prom-client's OpenMetrics output renames each counter object in place (drops `_total`), which
    // would break every later Prometheus-format scrape and any other registry sharing the object.
    // So the OpenMetrics registry is built per scrape over read-only views of the counters.
    const om = new Registry<OpenMetricsContentType>();
    om.setContentType(Registry.OPENMETRICS_CONTENT_TYPE);
    for (const m of this.registry.getMetricsAsArray() as unknown as Metric[]) {
      om.registerMetric(m instanceof Counter ? counterView(m) : m);
    }
    return om.metrics();
  }
}

const NO_EXEMPLAR = Object.freeze({});

/** The exemplar of an observation made for a trace: its id when the trace is sampled (its spans exist), else none. */
export function exemplarOf(trace: { traceId: string; sampled: boolean } | undefined): Record<string, string> {
  return trace?.sampled ? { trace_id: trace.traceId } : NO_EXEMPLAR;
}

export function createMetrics(opts: MetricsOptions): Metrics {
  return new Metrics(opts);
}

/** Picks the exposition format from an Accept header (OpenMetrics only when preferred to text). */
export function negotiateFormat(accept: string | undefined): 'prometheus' | 'openmetrics' {
  const header = accept?.toLowerCase();
  if (!header || !header.includes('application/openmetrics-text')) return 'prometheus';
  let om = -1;
  let text = -1;
  for (const part of header.split(',')) {
    const [type = '', ...params] = part.split(';').map((s) => s.trim());
    let q = 1;
    for (const p of params) {
      if (p.startsWith('q=')) q = Number(p.slice(2)) || 0;
    }
    if (type === 'application/openmetrics-text') om = Math.max(om, q);
    else if (type === 'text/plain' || type === 'text/*' || type === '*/*') text = Math.max(text, q);
  }
  return om > 0 && om >= text ? 'openmetrics' : 'prometheus';
}

function counterView(counter: Counter): Metric {
  const view = {
    name: (counter as unknown as { name: string }).name,
    type: 'counter',
    help: (counter as unknown as { help: string }).help,
    get: async () => ({ ...(await counter.get()), name: view.name }),
  };
  return view as unknown as Metric;
}

/**
 * Node process and event-loop metrics describe the process, not an app: they are collected once
 * per process (on a private registry) and registered into every app's registry. Collecting them
 * per app would start a GC observer and an event-loop-delay monitor per app that never stop.
 */
let processMetricObjects: Metric[] | undefined;
function processMetrics(): Metric[] {
  if (!processMetricObjects) {
    const registry = new Registry();
    collectDefaultMetrics({ register: registry });
    processMetricObjects = registry.getMetricsAsArray() as unknown as Metric[];
  }
  return processMetricObjects;
}
