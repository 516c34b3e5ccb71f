/**
 * Structured logging (ARCHITECTURE §7). JSON lines in production:
 *   {"level":"info","timestamp":"…Z","logger":"api.auth",…,"event":"user_login"}
 * and one human line each in development:
 *   2024-02-17 10:30:15 api.auth INFO user_login user_id=123 email=u***@example.com
 * Every structured field passes through `scrub` (redact.ts) before it is written.
 */
import { createWriteStream } from 'node:fs';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { Writable } from 'node:stream';
import pino, { type Logger, type DestinationStream } from 'pino';
import { scrub, scrubText } from './redact.ts';

export type { Logger };

export interface LoggingOptions {
  level: string;
  format: 'text' | 'json';
  file?: string;
  /** Where lines go (default stdout); tests pass a stream to capture them. */
  destination?: NodeJS.WritableStream;
}

const TEXT_SKIP = new Set(['level', 'timestamp', 'logger', 'event']);

/** Renders one JSON log line as the guide's text line. Formatting is kept out of the JSON path. */
export function formatTextLine(json: string): string {
  let rec: Record<string, unknown>;
  try {
    rec = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json.endsWith('\n') ? json : `${json}\n`;
  }
  const ts = String(rec.timestamp ?? new Date().toISOString()).replace('T', ' ').slice(0, 19);
  const parts = [ts, String(rec.logger ?? 'app'), String(rec.level ?? 'info').toUpperCase(), String(rec.event ?? '')];
  for (const [key, value] of Object.entries(rec)) {
    if (TEXT_SKIP.has(key) || value === undefined) continue;
    parts.push(`${key}=${typeof value === 'string' ? value : JSON.stringify(value)}`);
  }
  return `${parts.join(' ')}\n`;
}

class TextStream extends Writable {
  constructor(private readonly out: NodeJS.WritableStream) {
    super();
  }
  override _write(chunk: Buffer, _enc: BufferEncoding, done: (err?: Error | null) => void): void {
    this.out.write(formatTextLine(chunk.toString('utf8')));
    done();
  }
}

export function createLogger(opts: LoggingOptions): Logger {
  const out = opts.destination ?? process.stdout;
  const streams: { stream: DestinationStream | NodeJS.WritableStream; level: string }[] = [
    { stream: opts.format === 'text' ? new TextStream(out) : out, level: opts.level === 'silent' ? 'fatal' : opts.level },
  ];
  if (opts.file) {
    mkdirSync(dirname(opts.file), { recursive: true });
    streams.push({ stream: createWriteStream(opts.file, { flags: 'a' }), level: opts.level });
  }
  return pino(
    {
      level: opts.level,
      messageKey: 'event',
      errorKey: 'error',
      base: null,
      timestamp: () => `,"timestamp":"${new Date().toISOString()}"`,
      formatters: {
        level: (label) => ({ level: label }),
        bindings: (b) => b,
        log: (obj) => scrub(obj) as Record<string, unknown>,
      },
      serializers: { error: (e: unknown) => scrub(e), err: (e: unknown) => scrub(e) },
      hooks: {
        // Event names are fixed strings, but a message built from user input must be scrubbed too.
        logMethod(args, method) {
          for (let i = 0; i < args.length; i++) if (typeof args[i] === 'string') args[i] = scrubText(args[i] as string);
          method.apply(this, args as Parameters<typeof method>);
        },
      },
    },
    pino.multistream(streams as pino.StreamEntry[]),
  );
}

/** A child logger named for its module, e.g. getLogger(root, 'api.auth'). */
export function getLogger(root: Logger, name: string): Logger {
  return root.child({ logger: name });
}
