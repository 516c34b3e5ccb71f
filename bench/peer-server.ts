/**
 * The typical peer (issue 13): Fastify 5 with the two plugins its users reach for, configured as
 * their READMEs show — fastify-metrics (route histograms and summaries plus prom-client's default
 * process metrics, exposed on /metrics) and Fastify's built-in pino logger writing every request
 * to a file (an "incoming request" and a "request completed" line each, Fastify's default request
 * logging). `GET /health` answers the same JSON as the API's liveness route. Same kind of process
 * (node + tsx) as the API and the bare server.
 */
import Fastify, { type FastifyPluginAsync } from 'fastify';
import fastifyMetrics from 'fastify-metrics';
import { announceReady, installProbe } from './probe.ts';

installProbe();
const file = process.env.PEER_LOG_FILE;
if (!file) throw new Error('PEER_LOG_FILE is required');
const app = Fastify({ logger: { level: 'info', file } });
// The package is CommonJS with an `exports.default`: under ESM its plugin is the default's default.
const metricsPlugin = (fastifyMetrics as unknown as { default: FastifyPluginAsync<{ endpoint: string }> }).default;
await app.register(metricsPlugin, { endpoint: '/metrics' });
app.get('/health', async () => ({ status: 'healthy' }));
await app.listen({ host: '127.0.0.1', port: 0 });
const address = app.server.address();
announceReady(typeof address === 'object' && address ? address.port : 0);
