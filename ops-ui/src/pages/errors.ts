import { get } from '../api.ts';
import { badge, empty, h, safeLink, swap, table, timeEl } from '../dom.ts';
import { dateTime, plain } from '../format.ts';
import type { Replica, SecurityEvent, ServerError } from '../types.ts';
import type { PageDef } from './page.ts';

function details(d: Record<string, unknown> | null): Node {
  const entries = d ? Object.entries(d) : [];
  if (entries.length === 0) return document.createTextNode('—');
  return h(
    'ul',
    { class: 'kv' },
    entries.map(([k, v]) => h('li', null, h('span', { class: 'k' }, k), '=', h('span', { class: 'v' }, plain(v)))),
  );
}

export const errorsPage: PageDef = {
  path: 'errors',
  label: 'Errors and security',
  mount(root) {
    const errorsHost = h('div');
    const securityHost = h('div');
    root.append(
      h('section', { 'aria-labelledby': 'err-h' }, h('h2', { id: 'err-h' }, 'Recent server errors (this replica)'), errorsHost),
      h('section', { 'aria-labelledby': 'sec-h' }, h('h2', { id: 'sec-h' }, 'Security events (this replica)'), securityHost),
    );

    return {
      async refresh() {
        const [errs, sec] = await Promise.all([
          get<{ replica: Replica; errors: ServerError[] }>('/ops/api/errors'),
          get<{ replica: Replica; events: SecurityEvent[] }>('/ops/api/security'),
        ]);
        swap(
          errorsHost,
          errs.errors.length
            ? table('Recent server errors', [
                { label: 'Time', cell: (e) => timeEl(e.time, dateTime(e.time)) },
                { label: 'Request', cell: (e) => h('code', null, `${e.method} ${e.route}`) },
                { label: 'Status', className: 'num', cell: (e) => badge(String(e.status), 'bad') },
                { label: 'Request ID', cell: (e) => h('code', null, e.request_id || '—') },
                { label: 'Trace ID', cell: (e) => h('code', null, e.trace_id ? safeLink(e.trace_url, e.trace_id) : '—') },
                {
                  label: 'Sentry event',
                  cell: (e) => h('code', null, e.sentry_url ? safeLink(e.sentry_url, e.sentry_event_id ?? 'event') : (e.sentry_event_id ?? '—')),
                },
                { label: 'Message', className: 'wrap', cell: (e) => e.message || '—' },
              ], errs.errors)
            : empty('No 5xx answered since this process started'),
        );
        swap(
          securityHost,
          sec.events.length
            ? table('Security events', [
                { label: 'Time', cell: (e) => timeEl(e.time, dateTime(e.time)) },
                { label: 'Type', cell: (e) => h('code', null, e.type) },
                { label: 'Severity', cell: (e) => badge(e.severity, e.severity === 'high' ? 'bad' : 'warn') },
                { label: 'Details', className: 'wrap', cell: (e) => details(e.details) },
                { label: 'Request ID', cell: (e) => h('code', null, e.request_id ?? '—') },
              ], sec.events)
            : empty('No security events since this process started'),
        );
      },
    };
  },
};
