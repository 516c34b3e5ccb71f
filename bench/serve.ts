/**
 * The API under load: exactly what `nest-egg serve` runs (bin/nest-egg.js), with the bench's IPC
 * probe installed first. Sentry, when SENTRY_DSN is set, starts before the application's modules
 * are imported, as in the CLI. Started by processes.ts as `node --expose-gc --import tsx bench/serve.ts serve`.
 */
import { installProbe } from './probe.ts';

installProbe();
const { initSentryFromEnvironment } = await import('../src/observability/sentry.ts');
await initSentryFromEnvironment();
await import('../src/main.ts');
