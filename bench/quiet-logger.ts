/** A service logger that writes nowhere, for the parts of the app the bench builds in-process. */
import { Writable } from 'node:stream';
import { createLogger, type Logger } from '../src/observability/logging.ts';

export function quietLogger(): Logger {
  return createLogger({ level: 'warn', format: 'json', destination: new Writable({ write: (_chunk, _encoding, done) => done() }) });
}
