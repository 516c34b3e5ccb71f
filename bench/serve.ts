/**
 * The API under load: exactly what `nest-egg serve` runs (src/main.ts, which starts Sentry before
 * the application's modules when SENTRY_DSN is set), with the bench's IPC probe installed first.
 * Started by processes.ts as `node --expose-gc --import tsx bench/serve.ts serve`.
 */
import { installProbe } from './probe.ts';

installProbe();
await import('../src/main.ts');
