#!/usr/bin/env node
// The `nest-egg` CLI: loads the TypeScript sources through tsx, so a clone runs without a build step.
import { register } from 'tsx/esm/api';
import { fileURLToPath } from 'node:url';

register();
const command = process.argv[2];
if (command === 'serve' || command === 'worker') {
  // Sentry (when SENTRY_DSN is set) starts before the application's modules are imported, so its
  // instrumentation hooks see node:http and the Postgres and Redis drivers as they load.
  const { initSentryFromEnvironment } = await import(new URL('../src/observability/sentry.ts', import.meta.url).href);
  await initSentryFromEnvironment();
}
const main = fileURLToPath(new URL('../src/main.ts', import.meta.url));
await import(main);
