/**
 * The ceiling (B2): a bare Fastify 5 server with one route answering `GET /health` with the same
 * JSON as the API's liveness route, in the same kind of process (node + tsx) as the API.
 */
import Fastify from 'fastify';
import { announceReady, installProbe } from './probe.ts';

installProbe();
const app = Fastify();
app.get('/health', async () => ({ status: 'healthy' }));
await app.listen({ host: '127.0.0.1', port: 0 });
const address = app.server.address();
announceReady(typeof address === 'object' && address ? address.port : 0);
