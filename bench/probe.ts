/**
 * The child side of the benchmark's IPC channel, imported first by every process the bench
 * starts. It answers the parent's questions between load runs (CPU time used, memory after a full
 * garbage collection) and makes sure the process never outlives the bench: it stops itself when
 * the parent goes away or after a fixed lifetime.
 */

export type ProbeRequest = { type: 'cpu' } | { type: 'memory' };

export interface CpuReply {
  type: 'cpu';
  /** process.cpuUsage(): user + system microseconds since the process started. */
  micros: number;
}

export interface MemoryReply {
  type: 'memory';
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
}

export interface ReadyMessage {
  type: 'ready';
  port: number;
}

/** Longer than any run (npm run bench takes under five minutes with the defaults). */
const MAX_LIFETIME_MS = 15 * 60 * 1000;

function stopSelf(): void {
  // SIGTERM runs the service's own graceful shutdown; a process without a handler just ends.
  process.kill(process.pid, 'SIGTERM');
}

function collectGarbage(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  // Twice: the first pass may leave objects whose finalizers free more.
  gc?.();
  gc?.();
}

export function installProbe(): void {
  if (!process.send) return;
  const send = process.send.bind(process);
  process.on('message', (message: ProbeRequest) => {
    if (message.type === 'cpu') {
      const { user, system } = process.cpuUsage();
      send({ type: 'cpu', micros: user + system } satisfies CpuReply);
    } else if (message.type === 'memory') {
      collectGarbage();
      const m = process.memoryUsage();
      send({ type: 'memory', rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external } satisfies MemoryReply);
    }
  });
  process.once('disconnect', stopSelf);
  setTimeout(stopSelf, MAX_LIFETIME_MS).unref();
}

export function announceReady(port: number): void {
  process.send?.({ type: 'ready', port } satisfies ReadyMessage);
}
