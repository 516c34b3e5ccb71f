/**
 * Structured logging (ARCHITECTURE §7). JSON lines in production:
 *   {"level":"info","timestamp":"…Z","logger":"api.auth",…,"event":"user_login"}
 * and one human line each in development:
 *   2024-02-17 10:30:15 api.auth INFO user_login user_id=123 email=u***@example.com
 * Every structured field passes through `scrub` (redact.ts) before it is written.
 */
import { Writable } from 'node:stream';
import pino, { type Logger, type DestinationStream } from 'pino';
import { scrub, scrubErrorMessage, scrubText } from './redact.ts';
import { traceLogFields } from './trace-context.ts';

export type { Logger };

export interface LoggingOptions {
  level: string;
  format: 'text' | 'json';
  file?: string;
  /** Where lines go (default stdout); tests pass a stream to capture them. */
  destination?: NodeJS.WritableStream;
  /**
   * Also receives every warning-and-above event (Sentry turns them into breadcrumbs). Unset, it
   * costs nothing; the fields are raw here, so the receiver scrubs them.
   */
  onWarning?: (entry: LogEvent) => void;
}

/** A warning-or-above log event as handed to `onWarning`: the logger's bindings plus the call's fields. */
export interface LogEvent {
  level: 'warning' | 'error' | 'fatal';
  event: string;
  fields: Record<string, unknown>;
}

function toLogEvent(level: number, bindings: Record<string, unknown>, args: unknown[]): LogEvent {
  const [first] = args;
  const fields = first instanceof Error ? { error: first } : typeof first === 'object' && first !== null ? first : {};
  const event = args.find((a) => typeof a === 'string') as string | undefined;
  return { level: level >= 60 ? 'fatal' : level >= 50 ? 'error' : 'warning', event: event ?? '', fields: { ...bindings, ...fields } };
}

const TEXT_SKIP = new Set(['level', 'timestamp', 'logger', 'event']);

/**
 * Characters a terminal or a line-oriented shipper could act on: C0 controls (NUL, BEL, backspace,
 * ESC, CR, LF, …), DEL, C1 controls (U+0080–U+009F), the Unicode line and paragraph separators, and
 * lone surrogates (not encodable as UTF-8). A valid surrogate pair (an emoji) is left alone.
 */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;
/** The cheap test for CONTROL; surrogates of either kind only send the line to the exact replace. */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const MAYBE_CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\ud800-\udfff]/;
/** What pino's JSON leaves raw inside a string: DEL, C1, U+2028/9, lone surrogates (CONTROL less C0). */
const JSON_RAW = /[\u007f-\u009f\u2028\u2029]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;
const MAYBE_JSON_RAW = /[\u007f-\u009f\u2028\u2029\ud800-\udfff]/;
const SHORT_ESCAPES: Record<string, string> = { '\b': '\\b', '\t': '\\t', '\n': '\\n', '\f': '\\f', '\r': '\\r' };

/** JSON-style escapes for every control character: `\n`, `\t`, `\u0007`, `\u009b`, `\u2028`, `\ud800`. */
export function escapeControls(text: string): string {
  if (!MAYBE_CONTROL.test(text)) return text;
  return text.replace(CONTROL, escapeOne);
}

function escapeOne(c: string): string {
  return SHORT_ESCAPES[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
}

/**
 * pino's JSON already escapes C0 controls, quotes and backslashes; DEL, C1 controls, U+2028/9 and
 * lone surrogates it writes raw (valid JSON, but some line splitters break lines there). They can
 * only stand inside a JSON string, where `\uXXXX` means the same character: JSON.parse gives back
 * exactly what was logged.
 */
function escapeJsonLine(line: string): string {
  return MAYBE_JSON_RAW.test(line) ? line.replace(JSON_RAW, escapeOne) : line;
}

/** A value that needs quoting: a reader could take part of it for a separator, a quote or an escape. */
const NEEDS_QUOTES = /[\s"=\\]/;

/**
 * Renders one JSON log line as the guide's text line. Formatting is kept out of the JSON path.
 * Every part (timestamp, logger, level, event, keys and values) is written with its control
 * characters escaped, so one event is always exactly one line whatever its fields hold.
 */
export function formatTextLine(json: string): string {
  let rec: Record<string, unknown>;
  try {
    rec = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return `${escapeControls(json.endsWith('\n') ? json.slice(0, -1) : json)}\n`;
  }
  const ts = String(rec.timestamp ?? new Date().toISOString()).replace('T', ' ').slice(0, 19);
  const parts = [ts, String(rec.logger ?? 'app'), String(rec.level ?? 'info').toUpperCase(), String(rec.event ?? '')];
  for (const [key, value] of Object.entries(rec)) {
    if (TEXT_SKIP.has(key) || value === undefined) continue;
    parts.push(`${key}=${typeof value === 'string' && !NEEDS_QUOTES.test(value) && !MAYBE_CONTROL.test(value) ? value : JSON.stringify(value)}`);
  }
  return `${escapeControls(parts.join(' '))}\n`;
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

/**
 * The lines logged in one turn of the event loop leave in one write. Under load a turn handles
 * many requests, each with its completion line; handed to pino's asynchronous writer one by one,
 * each line to each destination costs a write of its own (a thread-pool round trip), most of what
 * a logged request pays. Here the lines are joined and written at the end of the turn
 * (setImmediate), so no line waits longer than the turn that logged it; if the process exits
 * first, what is pending is written synchronously.
 */
class CoalescingDestination {
  /** The destinations holding lines, written synchronously if the process exits first (one listener for all). */
  private static readonly holding = new Set<CoalescingDestination>();
  private static exitHooked = false;

  private pending = '';
  private scheduled = false;
  private readonly flushNow = () => {
    this.scheduled = false;
    CoalescingDestination.holding.delete(this);
    if (this.pending === '') return;
    const out = this.pending;
    this.pending = '';
    this.dest.write(out);
  };

  constructor(private readonly dest: pino.DestinationStream & { flushSync(): void }) {
    if (!CoalescingDestination.exitHooked) {
      CoalescingDestination.exitHooked = true;
      process.on('exit', () => {
        for (const destination of CoalescingDestination.holding) destination.flushSync();
      });
    }
  }

  write(line: string): boolean {
    this.pending += line;
    if (!this.scheduled) {
      this.scheduled = true;
      CoalescingDestination.holding.add(this);
      setImmediate(this.flushNow);
    }
    return true;
  }

  flushSync(): void {
    this.flushNow();
    try {
      this.dest.flushSync();
    } catch {
      // a write still in flight: sonic-boom's own exit hook finishes it
    }
  }
}

const PRESCRUBBED = Symbol('nest-egg.log.prescrubbed');

/**
 * Marks fields that cannot hold a secret or personal data — values the service made itself (its
 * own request ids, route templates, status codes, durations, user ids from a verified token) — so
 * the log formatter writes them without a scrubbing pass. The completion line of every request
 * uses it (request-context.ts); anything carrying client input must not.
 */
export function prescrubbed<T extends object>(fields: T): T {
  Object.defineProperty(fields, PRESCRUBBED, { value: true });
  return fields;
}

/**
 * A line written inside a request or job gets its `trace_id` and `span_id` (unless it names them
 * itself), added after scrubbing: the ids are the service's own hex, and the text rules could take
 * a run of digits in one for an account number. `fields` is the formatter's own object (scrub's
 * copy) unless it was prescrubbed, which is the caller's: that one is copied, never changed.
 */
function withTraceIds(fields: Record<string, unknown>, owned: boolean): Record<string, unknown> {
  if (fields.trace_id !== undefined) return fields;
  const trace = traceLogFields();
  if (trace === undefined) return fields;
  const out = owned ? fields : { ...fields };
  out.trace_id = trace.trace_id;
  out.span_id = trace.span_id;
  return out;
}

export function createLogger(opts: LoggingOptions): Logger {
  const out = opts.destination ?? process.stdout;
  const onWarning = opts.onWarning;
  // JSON to the process's stdout goes through pino's own buffered writer (one write for many lines
  // under load instead of a blocking write per line; flushed when the process exits).
  const main = opts.format === 'text' ? new TextStream(out) : (opts.destination ?? new CoalescingDestination(pino.destination({ dest: 1, sync: false })));
  const streams: { stream: DestinationStream | NodeJS.WritableStream; level: string }[] = [
    { stream: main, level: opts.level === 'silent' ? 'fatal' : opts.level },
  ];
  if (opts.file) {
    // pino's own destination flushes itself when the process exits (shutdown ends in process.exit).
    streams.push({ stream: new CoalescingDestination(pino.destination({ dest: opts.file, append: true, mkdir: true, sync: false })), level: opts.level });
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
        log: (obj) =>
          (obj as { [PRESCRUBBED]?: boolean })[PRESCRUBBED] === true ? withTraceIds(obj, false) : withTraceIds(scrub(obj) as Record<string, unknown>, true),
      },
      serializers: { error: (e: unknown) => scrub(e), err: (e: unknown) => scrub(e) },
      hooks: {
        streamWrite: escapeJsonLine,
        // Event names are fixed strings, but a message built from user input must be scrubbed too.
        logMethod(args, method, level) {
          for (let i = 0; i < args.length; i++) if (typeof args[i] === 'string') args[i] = scrubText(args[i] as string);
          // `log.error(err)` makes the error's own message the event: it is scrubbed like any text.
          if (args.length === 1) {
            const message = errorMessage(args[0]);
            if (message !== undefined) (args as unknown[]).push(scrubErrorMessage(message));
          }
          if (onWarning !== undefined && level >= 40) onWarning(toLogEvent(level, this.bindings(), args));
          method.apply(this, args as Parameters<typeof method>);
        },
      },
      // pino serialises a child's bindings once, past the `log` formatter: scrub them here.
      onChild: scrubBindings,
    },
    pino.multistream(streams as pino.StreamEntry[]),
  );
}

/** The message pino would take as the event when a call passes an error and no message. */
function errorMessage(first: unknown): string | undefined {
  if (first instanceof Error) return first.message;
  if (typeof first !== 'object' || first === null || 'event' in first) return undefined;
  const error = (first as { error?: unknown }).error;
  return error instanceof Error ? error.message : undefined;
}

/** Rewrites a child logger's serialised bindings (`,"k":v,…`) with secrets and personal data scrubbed. */
function scrubBindings(child: Logger): void {
  const holder = child as unknown as Record<symbol, unknown>;
  const chindings = holder[pino.symbols.chindingsSym];
  if (typeof chindings !== 'string' || chindings.length < 2) return;
  const bindings = scrub(JSON.parse(`{${chindings.slice(1)}}`)) as Record<string, unknown>;
  let out = '';
  for (const [key, value] of Object.entries(bindings)) out += `,${JSON.stringify(key)}:${JSON.stringify(value)}`;
  holder[pino.symbols.chindingsSym] = out;
}

/** pino appends a child's bindings to its parent's, so a renamed child would write `logger` twice. */
const NAME_BINDING = ',"logger":';
const FIRST_NAME_BINDING = /,"logger":"(?:[^"\\]|\\.)*"/;

/**
 * A child logger named for its module, e.g. getLogger(root, 'api.auth'). The parent may be named
 * already (request.log is `http`, with the request id): the child keeps the parent's other bindings
 * and takes the new name, so each line carries exactly one `logger` key.
 */
export function getLogger(root: Logger, name: string): Logger {
  const child = root.child({ logger: name });
  const holder = child as unknown as Record<symbol, string>;
  const chindings = holder[pino.symbols.chindingsSym];
  if (typeof chindings === 'string' && chindings.indexOf(NAME_BINDING) !== chindings.lastIndexOf(NAME_BINDING)) {
    holder[pino.symbols.chindingsSym] = chindings.replace(FIRST_NAME_BINDING, '');
  }
  return child;
}

type LogArgs = Parameters<Logger['info']>;

/**
 * A request's logger (Fastify's childLoggerFactory, app.ts), made on its first use: pino makes a
 * child by serialising and scrubbing its bindings, which most requests never need — their one line,
 * `request_completed`, is written by the app's logger with the request id as a field
 * (request-context.ts). A call at a level that is off costs a level check and makes nothing.
 */
export class LazyChildLogger {
  private made: Logger | undefined;

  constructor(
    private readonly parent: Logger,
    private readonly childBindings: Record<string, unknown>,
  ) {}

  private get log(): Logger {
    return (this.made ??= this.parent.child(this.childBindings));
  }

  get level(): string {
    return this.made?.level ?? this.parent.level;
  }

  set level(level: string) {
    this.log.level = level;
  }

  isLevelEnabled(level: string): boolean {
    return (this.made ?? this.parent).isLevelEnabled(level);
  }

  bindings(): Record<string, unknown> {
    return this.log.bindings();
  }

  child(bindings: Record<string, unknown>, options?: Parameters<Logger['child']>[1]): Logger {
    return this.log.child(bindings, options) as unknown as Logger;
  }

  trace(...args: LogArgs): void {
    if (this.isLevelEnabled('trace')) this.log.trace(...args);
  }

  debug(...args: LogArgs): void {
    if (this.isLevelEnabled('debug')) this.log.debug(...args);
  }

  info(...args: LogArgs): void {
    if (this.isLevelEnabled('info')) this.log.info(...args);
  }

  warn(...args: LogArgs): void {
    if (this.isLevelEnabled('warn')) this.log.warn(...args);
  }

  error(...args: LogArgs): void {
    if (this.isLevelEnabled('error')) this.log.error(...args);
  }

  fatal(...args: LogArgs): void {
    if (this.isLevelEnabled('fatal')) this.log.fatal(...args);
  }

  silent(): void {}
}

/** Fastify's childLoggerFactory: a lazy child, or a real one when the route sets its own log level. */
export function requestChildLogger(logger: Logger, bindings: Record<string, unknown>, opts: Parameters<Logger['child']>[1]): Logger | LazyChildLogger {
  return opts?.level !== undefined ? (logger.child(bindings, opts) as unknown as Logger) : new LazyChildLogger(logger, bindings);
}
