import { get } from '../api.ts';
import { LiveChart } from '../charts.ts';
import { badge, dl, empty, h, swap, type DescItem } from '../dom.ts';
import { dateTime, duration, mb, ms, num, pct } from '../format.ts';
import type { Metrics, Overview, QueueInfo } from '../types.ts';
import type { PageDef } from './page.ts';

const tone = (status: string): 'ok' | 'warn' | 'bad' =>
  status === 'ready' || status === 'ok' ? 'ok' : status === 'draining' ? 'warn' : 'bad';

function card(title: string, ...body: (Node | string)[]): HTMLElement {
  return h('section', { class: 'card' }, h('h3', null, title), ...body);
}

export function queueFacts(q: QueueInfo): DescItem[] {
  return [
    { term: 'Backend', value: q.backend },
    { term: 'Queue', value: q.queue },
    { term: 'Workers', value: num(q.workers) },
  ];
}

export function countsList(counts: Record<string, number>): HTMLElement {
  const entries = Object.entries(counts);
  if (entries.length === 0) return empty('No job counts');
  return h(
    'ul',
    { class: 'counts', 'aria-label': 'Jobs per state' },
    entries.map(([state, n]) => h('li', null, h('span', { class: 'count' }, num(n)), ' ', state)),
  );
}

function cards(o: Overview): HTMLElement {
  const r = o.readiness;
  const checks = h(
    'ul',
    { class: 'checks' },
    r.checks.map((c) =>
      h(
        'li',
        null,
        badge(c.status, tone(c.status)),
        ' ',
        h('span', { class: 'check-name' }, c.name),
        c.required ? null : h('span', { class: 'muted' }, ' (optional)'),
        ' ',
        h('span', { class: 'muted' }, ms(c.duration_ms, 0)),
        c.error ? h('span', { class: 'check-error' }, c.error) : null,
      ),
    ),
  );
  const p = o.process;
  const redis = o.redis;
  const redisState = !redis.configured ? 'not configured' : redis.connected ? 'connected' : 'down';
  return h(
    'div',
    { class: 'cards' },
    card('Readiness', h('p', { class: 'big' }, badge(r.status.replace('_', ' '), tone(r.status))), checks),
    card('Version', dl([
      { term: 'Version', value: o.version },
      { term: 'Environment', value: o.environment },
      { term: 'Mode', value: o.mode },
    ])),
    card('Uptime', h('p', { class: 'big' }, duration(o.uptime_seconds)), dl([
      { term: 'Since', value: dateTime(Date.now() - o.uptime_seconds * 1000) },
      { term: 'Replica', value: `${o.replica.id} (pid ${o.replica.pid})` },
    ])),
    card('Process', dl([
      { term: 'CPU', value: pct(p.cpu_percent) },
      { term: 'RSS', value: mb(p.rss_bytes) },
      { term: 'Heap used', value: `${mb(p.heap_used_bytes)} of ${mb(p.heap_total_bytes)}` },
      { term: 'Event-loop delay p99', value: ms(p.event_loop_delay_ms.p99) },
      { term: 'Event-loop delay p50 / max', value: `${ms(p.event_loop_delay_ms.p50)} / ${ms(p.event_loop_delay_ms.max)}` },
    ])),
    card('Database', dl([
      { term: 'Mode', value: o.database.mode },
      { term: 'Pool available', value: `${num(o.database.pool_available)} of ${num(o.database.pool_size)} connections` },
    ])),
    card(
      'Redis',
      h('p', { class: 'big' }, badge(redisState, !redis.configured ? 'neutral' : redis.connected ? 'ok' : 'bad')),
      redis.configured ? dl([{ term: 'Memory used', value: mb(redis.used_memory_bytes) }]) : '',
    ),
    o.queue
      ? card('Queue', dl(queueFacts(o.queue)), countsList(o.queue.counts))
      : card('Queue', empty('No job queue in this process')),
  );
}

export const overviewPage: PageDef = {
  path: 'overview',
  label: 'Overview',
  mount(root, ctx) {
    const cardsHost = h('div');
    root.append(h('h2', { class: 'visually-hidden' }, 'Status'));
    const chartsNote = h('div');
    const chartsGrid = h('div', { class: 'charts' });
    root.append(
      cardsHost,
      h('section', { 'aria-labelledby': 'charts-h' }, h('h2', { id: 'charts-h' }, 'Last hour'), chartsNote, chartsGrid),
    );

    const charts = {
      requests: new LiveChart({ title: 'Requests (req/s)', unit: 'req/s', digits: 2, series: [{ label: 'Requests' }] }),
      errors: new LiveChart({
        title: 'Error ratio (% of requests answered 5xx)',
        unit: '%',
        digits: 2,
        series: [{ label: '5xx ratio', color: '#dc2626' }],
      }),
      latency: new LiveChart({ title: 'p95 latency by route (ms)', unit: 'ms', digits: 1, series: [] }),
      refusals: new LiveChart({
        title: 'Rate-limit refusals (req/s)',
        unit: 'req/s',
        digits: 2,
        series: [{ label: 'Refused (429)', color: '#ea580c' }],
      }),
      jobs: new LiveChart({
        title: 'Jobs (per interval: completed, failed)',
        unit: 'jobs',
        digits: 0,
        series: [{ label: 'Completed', color: '#16a34a' }, { label: 'Failed', color: '#dc2626' }],
      }),
    };
    let chartsShown = false;

    function renderMetrics(m: Metrics): void {
      const interval = m.interval_seconds || ctx.session.sample_interval_seconds;
      if (!m.metrics_enabled || m.points.length === 0) {
        if (chartsShown) {
          chartsGrid.replaceChildren();
          chartsShown = false;
        }
        swap(
          chartsNote,
          empty(
            !m.metrics_enabled
              ? 'Metrics are off (METRICS_ENABLED=false)'
              : `No samples yet: the console samples this process's metrics every ${interval} s; charts fill as requests arrive`,
          ),
        );
        return;
      }
      swap(chartsNote, h('p', { class: 'muted' }, `One sample every ${interval} s over the last ${duration(m.window_seconds)}; times are local.`));
      if (!chartsShown) {
        chartsGrid.replaceChildren(...Object.values(charts).map((c) => c.el));
        chartsShown = true;
      }
      const xs = m.points.map((p) => p.t / 1000);
      charts.requests.update(xs, [m.points.map((p) => p.requests_per_second)]);
      charts.errors.update(xs, [m.points.map((p) => (p.error_ratio === null ? null : p.error_ratio * 100))]);
      charts.latency.update(
        xs,
        m.latency_p95_seconds.map((r) => xs.map((_, i) => {
          const v = r.values[i];
          return v === null || v === undefined ? null : v * 1000;
        })),
        m.latency_p95_seconds.map((r) => ({ label: r.route })),
      );
      charts.refusals.update(xs, [m.points.map((p) => p.rate_limited_per_second)]);
      charts.jobs.update(xs, [m.points.map((p) => p.jobs_completed), m.points.map((p) => p.jobs_failed)]);
    }

    return {
      async refresh() {
        const [overview, metrics] = await Promise.all([get<Overview>('/ops/api/overview'), get<Metrics>('/ops/api/history')]);
        swap(cardsHost, cards(overview));
        renderMetrics(metrics);
      },
      destroy() {
        for (const c of Object.values(charts)) c.destroy();
      },
    };
  },
};
