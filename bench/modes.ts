/**
 * One mode of a run. Embedded: PGlite on disk and the in-memory rate-limit store, as a fresh
 * `npm start` runs. Server: Postgres and Redis (the rate-limit store and the job queue).
 *
 * Each mode starts two API servers on the same data, both ENVIRONMENT=production and each in its
 * own process (Sentry's SDK is process-global and hooks modules as they load, so "off" and "on"
 * cannot share one):
 *   off  METRICS_ENABLED=false, RATE_LIMIT_ENABLED=false, LOG_LEVEL=warn (no per-request line),
 *        no SENTRY_DSN (the SDK is not even imported);
 *   on   every one of FEATURES: metrics, JSON request logs at info to stdout and to LOG_FILE,
 *        rate limiting with quotas too high to refuse anything, Sentry sending to the local sink
 *        with traces at 0.1, OTLP/JSON export of the same tenth of traces to the local sink.
 * The breakdown case starts "off" plus one feature at a time.
 */
import { join } from 'node:path';
import { embeddedFixture, postgresFixture, type Fixture } from './fixtures.ts';
import { startApi, type ApiServer, type Child } from './processes.ts';
import type { BenchSettings } from './settings.ts';

export interface ModeContext {
  mode: 'embedded' | 'server';
  settings: BenchSettings;
  /** The run's temporary directory (logs, PGlite copies). */
  dir: string;
  sentryPort: number;
  /** Server mode: REDIS_URL and the run's own key prefixes. */
  redisEnv: Record<string, string>;
}

export interface ModeServers {
  off: ApiServer;
  on: ApiServer;
}

const NO_REFUSALS = 'transactions=1000000/60,default=1000000/60,anonymous=1000000/60';

/** Each part of the observability, as the environment that switches it on over the "off" server. */
export const FEATURES = {
  metrics: () => ({ METRICS_ENABLED: 'true' }),
  logs: (ctx: ModeContext, server: string) => ({ LOG_LEVEL: 'info', LOG_FILE: join(ctx.dir, `${server}.api.log`) }),
  'rate limiting': () => ({ RATE_LIMIT_ENABLED: 'true', RATE_LIMIT_POLICIES: NO_REFUSALS }),
  sentry: (ctx: ModeContext) => ({ SENTRY_DSN: `http://bench@127.0.0.1:${ctx.sentryPort}/1`, SENTRY_TRACES_SAMPLE_RATE: '0.1' }),
  // OTLP/JSON to the local sink (it answers every POST), a tenth of the traces sampled as for Sentry.
  tracing: (ctx: ModeContext) => ({
    OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${ctx.sentryPort}`,
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
    OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
    OTEL_TRACES_SAMPLER_ARG: '0.1',
  }),
} satisfies Record<string, (ctx: ModeContext, server: string) => Record<string, string>>;

export type Feature = keyof typeof FEATURES;

export function prepareFixture(ctx: ModeContext): Promise<Fixture> {
  return ctx.mode === 'embedded' ? embeddedFixture(ctx.settings, ctx.dir) : postgresFixture(ctx.settings);
}

/** A server's name in logs and file names, e.g. `embedded-rate-limiting`. */
const serverName = (ctx: ModeContext, variant: string) => `${ctx.mode}-${variant.replace(' ', '-')}`;

/** The environment of an API server: everything off, everything on, or off plus one feature. */
export function apiEnv(ctx: ModeContext, fixture: Fixture, variant: 'off' | 'on' | Feature, jwtSecret: string, server = serverName(ctx, variant)): Record<string, string> {
  const off = {
    ENVIRONMENT: 'production',
    JWT_SECRET: jwtSecret,
    BANK_SYNC_PROVIDER: 'none',
    LOG_FORMAT: 'json',
    SHUTDOWN_TIMEOUT_MS: '5000',
    ...fixture.databaseEnv(server),
    ...ctx.redisEnv,
    METRICS_ENABLED: 'false',
    RATE_LIMIT_ENABLED: 'false',
    LOG_LEVEL: 'warn',
  };
  if (variant === 'off') return off;
  const features = variant === 'on' ? (Object.keys(FEATURES) as Feature[]) : [variant];
  return Object.assign(off, ...features.map((f) => FEATURES[f](ctx, server)));
}

/** Starts one API server of the mode (`off`, `on`, or off plus one feature), with `extra` variables on top. */
export function startVariant(ctx: ModeContext, fixture: Fixture, variant: 'off' | 'on' | Feature, jwtSecret: string, extra?: { name: string; env: Record<string, string> }): Promise<ApiServer> {
  // A server of its own name has data of its own (PGlite serves one process).
  const name = serverName(ctx, extra ? `${variant}-${extra.name}` : variant);
  return startApi(name, { ...apiEnv(ctx, fixture, variant, jwtSecret, name), ...extra?.env }, ctx.dir);
}

export async function startServers(ctx: ModeContext, fixture: Fixture, jwtSecret: string): Promise<ModeServers> {
  const off = await startVariant(ctx, fixture, 'off', jwtSecret);
  try {
    const on = await startVariant(ctx, fixture, 'on', jwtSecret);
    return { off, on };
  } catch (err) {
    await off.child.stop();
    throw err;
  }
}

export async function stopAll(children: Child[]): Promise<void> {
  await Promise.all(children.map((c) => c.stop()));
}
