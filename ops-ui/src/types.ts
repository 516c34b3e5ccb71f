// The JSON shapes of /ops/api (see the API contract).

export interface Replica {
  id: string;
  hostname: string;
  pid: number;
}

export interface Session {
  signed_in: true;
  user: { id: string; email: string };
  csrf_token: string;
  expires_at: string;
  idle_timeout_seconds: number;
  replica: Replica;
  mode: 'embedded' | 'server' | string;
  version: string;
  sample_interval_seconds: number;
}

export interface Problem {
  type?: string;
  title?: string;
  status?: number;
  detail?: string;
  request_id?: string;
  trace_id?: string;
  errors?: { field: string; message: string }[];
}

export type QueueCounts = Record<string, number>;

export interface QueueInfo {
  backend: string;
  queue: string;
  counts: QueueCounts;
  workers: number;
}

export interface Overview {
  replica: Replica;
  mode: string;
  version: string;
  environment: string;
  uptime_seconds: number;
  timestamp: string;
  readiness: {
    status: string;
    checks: { name: string; required: boolean; status: string; duration_ms: number; error?: string }[];
  };
  process: {
    cpu_percent: number;
    rss_bytes: number;
    heap_used_bytes: number;
    heap_total_bytes: number;
    event_loop_delay_ms: { p50: number; p99: number; max: number };
  };
  database: { mode: string; pool_size: number; pool_available: number };
  redis: { configured: false } | { configured: true; connected: boolean; used_memory_bytes: number | null };
  queue: QueueInfo | null;
}

export interface MetricPoint {
  t: number;
  requests_per_second: number;
  error_ratio: number | null;
  rate_limited_per_second: number;
  jobs_completed: number;
  jobs_failed: number;
}

export interface Metrics {
  metrics_enabled: boolean;
  interval_seconds: number;
  window_seconds: number;
  points: MetricPoint[];
  latency_p95_seconds: { route: string; values: (number | null)[] }[];
}

export interface RateLimitWindow {
  endpoint: string;
  client_id: string;
  requests: number;
  limit: number;
  window_seconds: number;
  resets_at: string;
  blocked: boolean;
}

export interface RateLimits {
  current_active_limits: RateLimitWindow[];
  total_requests_last_hour: number;
  blocked_requests_last_hour: number;
  top_clients: { client_id: string; requests: number }[];
  top_endpoints: { endpoint: string; requests: number }[];
  store: string;
  timestamp: string;
}

export interface JobFailure {
  id: string;
  task_name: string;
  failed_reason: string;
  attempts_made: number;
  failed_at: string | null;
  data?: unknown;
}

export interface Jobs extends QueueInfo {
  schedules: { id: string; task: string; every: string; next_run_at: string | null }[];
  recent_failures: JobFailure[];
  timestamp: string;
}

export interface ServerError {
  time: string;
  method: string;
  route: string;
  status: number;
  request_id: string;
  trace_id: string;
  message: string;
  sentry_event_id: string | null;
  sentry_url: string | null;
  trace_url: string | null;
}

export interface SecurityEvent {
  time: string;
  type: string;
  severity: string;
  request_id: string | null;
  details: Record<string, unknown> | null;
}

export interface AuditItem {
  id: number;
  occurred_at: string;
  actor: string;
  action: string;
  target_type: string | null;
  target_id: string | null;
  outcome: string;
  ip: string | null;
  user_agent: string | null;
  request_id: string | null;
  trace_id: string | null;
  details: Record<string, unknown> | null;
  prev_hash: string;
  hash: string;
}

export interface AuditPage {
  items: AuditItem[];
  next_cursor: string | null;
}
