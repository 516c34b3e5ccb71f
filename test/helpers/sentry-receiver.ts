/**
 * A stand-in for Sentry's ingest endpoint: an HTTP server on 127.0.0.1 that accepts
 * `POST /api/<project>/envelope/`, keeps every envelope's bytes exactly as they arrived (and
 * gunzipped, when the SDK compressed them), and parses the items so tests can assert on events,
 * transactions and on the raw text that left the process.
 *
 *   const receiver = await startSentryReceiver();
 *   Sentry.init({ dsn: receiver.dsn, … });
 *   const [event] = await receiver.waitFor((e) => e.type === 'event');
 */
import { buffer } from 'node:stream/consumers';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';

export interface EnvelopeItem {
  /** The item header: `type` is event, transaction, session, client_report, span, log, … */
  header: { type: string; length?: number; [key: string]: unknown };
  /** The payload parsed as JSON, or undefined when it is not JSON (attachments). */
  payload: unknown;
  /** The payload's bytes. */
  raw: Buffer;
}

export interface Envelope {
  project: string;
  /** The request's headers (x-sentry-auth carries the DSN's public key). */
  requestHeaders: IncomingMessage['headers'];
  /** The request body exactly as received on the wire. */
  raw: Buffer;
  /** The envelope bytes after undoing any content-encoding: what the SDK serialised. */
  body: Buffer;
  header: Record<string, unknown>;
  items: EnvelopeItem[];
}

/** An event or transaction payload, loosely typed for assertions. */
export type SentryEvent = Record<string, unknown> & {
  event_id?: string;
  type?: string;
  environment?: string;
  release?: string;
  tags?: Record<string, string>;
  user?: Record<string, unknown>;
};

export interface SentryReceiver {
  /** A DSN that sends to this receiver, project 1 by default. */
  dsn: string;
  port: number;
  envelopes: Envelope[];
  /** Every item of every envelope so far, flattened, with the envelope it came in. */
  items(): (EnvelopeItem & { envelope: Envelope })[];
  /** Payloads of items whose type is `event` (errors and messages). */
  errorEvents(): SentryEvent[];
  /** Payloads of items whose type is `transaction`. */
  transactions(): SentryEvent[];
  /** Resolves with the matching item payloads once at least `count` exist; rejects after `timeoutMs`. */
  waitFor(match: (item: EnvelopeItem) => boolean, opts?: { count?: number; timeoutMs?: number }): Promise<SentryEvent[]>;
  /** Forgets everything received so far. */
  clear(): void;
  close(): Promise<void>;
}

const ENVELOPE_PATH = /^\/api\/([^/]+)\/envelope\/?(?:\?.*)?$/;

/** Parses the envelope wire format: a header line, then per item a header line and a payload. */
export function parseEnvelope(body: Buffer): { header: Record<string, unknown>; items: EnvelopeItem[] } {
  let offset = 0;
  const readLine = (): Buffer => {
    const nl = body.indexOf(0x0a, offset);
    const end = nl === -1 ? body.length : nl;
    const line = body.subarray(offset, end);
    offset = nl === -1 ? body.length : nl + 1;
    return line;
  };
  const header = JSON.parse(readLine().toString('utf8')) as Record<string, unknown>;
  const items: EnvelopeItem[] = [];
  while (offset < body.length) {
    const headerLine = readLine();
    if (headerLine.length === 0) continue;
    const itemHeader = JSON.parse(headerLine.toString('utf8')) as EnvelopeItem['header'];
    let raw: Buffer;
    if (typeof itemHeader.length === 'number') {
      raw = body.subarray(offset, offset + itemHeader.length);
      offset += itemHeader.length;
      if (body[offset] === 0x0a) offset += 1;
    } else {
      raw = readLine();
    }
    let payload: unknown;
    try {
      payload = JSON.parse(raw.toString('utf8'));
    } catch {
      payload = undefined;
    }
    items.push({ header: itemHeader, payload, raw });
  }
  return { header, items };
}

export async function startSentryReceiver(opts: { port?: number; project?: string } = {}): Promise<SentryReceiver> {
  const envelopes: Envelope[] = [];
  const waiters = new Set<() => void>();
  const notify = () => {
    for (const w of waiters) w();
  };

  const server: Server = createServer((req, res) => {
    const m = ENVELOPE_PATH.exec(req.url ?? '');
    if (req.method !== 'POST' || !m) {
      res.writeHead(404).end();
      return;
    }
    buffer(req).then(
      (raw) => {
        try {
          const body = req.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw;
          const parsed = parseEnvelope(body);
          envelopes.push({ project: m[1]!, requestHeaders: req.headers, raw, body, ...parsed });
          res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
          notify();
        } catch (err) {
          res.writeHead(400).end(String(err));
        }
      },
      () => res.writeHead(400).end(),
    );
  });
  // Keep-alive sockets from the SDK's agent must not hold close() open.
  server.keepAliveTimeout = 1_000;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;

  const items = () => envelopes.flatMap((envelope) => envelope.items.map((item) => ({ ...item, envelope })));
  const payloadsOf = (type: string) => items().filter((i) => i.header.type === type).map((i) => i.payload as SentryEvent);

  return {
    dsn: `http://publickey@127.0.0.1:${port}/${opts.project ?? '1'}`,
    port,
    envelopes,
    items,
    errorEvents: () => payloadsOf('event'),
    transactions: () => payloadsOf('transaction'),
    waitFor(match, { count = 1, timeoutMs = 10_000 } = {}) {
      const found = () => items().filter(match).map((i) => i.payload as SentryEvent);
      return new Promise((resolve, reject) => {
        const check = () => {
          const hits = found();
          if (hits.length < count) return;
          cleanup();
          resolve(hits);
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`sentry receiver: expected ${count} matching item(s), got ${found().length} within ${timeoutMs} ms`));
        }, timeoutMs);
        const cleanup = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    },
    clear() {
      envelopes.length = 0;
    },
    close() {
      return new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      });
    },
  };
}
