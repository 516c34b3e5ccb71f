/**
 * A local stand-in for Sentry's ingest endpoint: accepts every envelope on 127.0.0.1, answers 200
 * and only counts them (the test suite's receiver, test/helpers/sentry-receiver.ts, parses and
 * keeps every envelope, which a load run must not pay for). It runs in its own process so that
 * receiving the API's envelopes costs the load generator nothing.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { announceReady, installProbe } from './probe.ts';

installProbe();
let envelopes = 0;
let bytes = 0;
const server = createServer((req, res) => {
  req.on('data', (chunk: Buffer) => (bytes += chunk.length));
  req.on('end', () => {
    if (req.method === 'POST' && /^\/api\/[^/]+\/envelope\/?/.test(req.url ?? '')) envelopes++;
    res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
  });
});
// The parent asks how many arrived (the proof that the "on" server really reported to Sentry).
process.on('message', (m: { type?: string }) => {
  if (m.type === 'sentry-count') process.send?.({ type: 'sentry-count', envelopes, bytes });
});
server.listen(0, '127.0.0.1', () => announceReady((server.address() as AddressInfo).port));
