import { get, messageOf, post, SessionEnded } from '../api.ts';
import { badge, dl, empty, h, swap, table, timeEl, uid } from '../dom.ts';
import { dateTime, num } from '../format.ts';
import type { RateLimits, RateLimitWindow } from '../types.ts';
import type { PageDef } from './page.ts';

export const rateLimitsPage: PageDef = {
  path: 'rate-limits',
  label: 'Rate limits',
  mount(root, ctx) {
    let data: RateLimits | null = null;
    const totals = h('div');
    const windowsHost = h('div');
    const topHost = h('div', { class: 'two-col' });

    const filterId = uid('f');
    const blockedId = uid('f');
    const filter = h('input', { id: filterId, type: 'search', autocomplete: 'off', spellcheck: 'false' });
    const blockedOnly = h('input', { id: blockedId, type: 'checkbox' });
    const filters = h(
      'form',
      { class: 'filters', role: 'search', 'aria-label': 'Filter active windows', onsubmit: (e: Event) => e.preventDefault() },
      h('div', { class: 'field' }, h('label', { for: filterId }, 'Client or endpoint contains'), filter),
      h('div', { class: 'field field-check' }, blockedOnly, h('label', { for: blockedId }, 'Blocked only')),
    );
    filter.addEventListener('input', () => renderWindows());
    blockedOnly.addEventListener('change', () => renderWindows());

    root.append(
      totals,
      h('section', { 'aria-labelledby': 'rl-active' }, h('h2', { id: 'rl-active' }, 'Active windows'), filters, windowsHost),
      topHost,
    );

    async function unblock(w: RateLimitWindow, button: HTMLButtonElement): Promise<void> {
      button.disabled = true;
      try {
        const res = await post<{ reset: number }>('/ops/api/rate-limits/reset', { client_id: w.client_id, endpoint: w.endpoint });
        ctx.announce(`Reset ${res.reset} window(s) for ${w.client_id}`, 'ok');
        ctx.refreshNow();
      } catch (err) {
        if (err instanceof SessionEnded) return;
        ctx.announce(`Could not unblock ${w.client_id}: ${messageOf(err)}`, 'bad');
        button.disabled = false;
      }
    }

    function renderWindows(): void {
      if (!data) return;
      const all = data.current_active_limits;
      if (all.length === 0) {
        swap(windowsHost, empty('No active rate-limit windows: windows appear when clients call limited endpoints'));
        return;
      }
      const needle = filter.value.trim().toLowerCase();
      const rows = all.filter(
        (w) =>
          (!blockedOnly.checked || w.blocked) &&
          (!needle || w.client_id.toLowerCase().includes(needle) || w.endpoint.toLowerCase().includes(needle)),
      );
      const summary = h('p', { class: 'muted' }, `${rows.length} of ${all.length} window(s) shown`);
      if (rows.length === 0) {
        swap(windowsHost, summary, empty('No window matches the filters'));
        return;
      }
      swap(
        windowsHost,
        summary,
        table<RateLimitWindow>('Active rate-limit windows', [
          { label: 'Endpoint', cell: (w) => h('code', null, w.endpoint) },
          { label: 'Client', cell: (w) => h('code', null, w.client_id) },
          { label: 'Requests / limit', className: 'num', cell: (w) => `${num(w.requests)} / ${num(w.limit)}` },
          { label: 'Window (s)', className: 'num', cell: (w) => num(w.window_seconds) },
          { label: 'Resets at', cell: (w) => timeEl(w.resets_at, dateTime(w.resets_at)) },
          { label: 'State', cell: (w) => (w.blocked ? badge('blocked', 'bad') : badge('open', 'ok')) },
          {
            label: 'Action',
            cell: (w) => {
              const button = h('button', {
                type: 'button',
                class: w.blocked ? 'btn btn-small btn-primary' : 'btn btn-small',
                'aria-label': `Unblock ${w.client_id}`,
                title: `Reset the window of ${w.client_id} on ${w.endpoint}`,
                'data-focus-key': `unblock:${w.client_id}\u0000${w.endpoint}`,
              }, 'Unblock');
              button.addEventListener('click', () => void unblock(w, button));
              return button;
            },
          },
        ], rows),
      );
    }

    function render(d: RateLimits): void {
      swap(
        totals,
        dl([
          { term: 'Requests in the last hour', value: num(d.total_requests_last_hour) },
          { term: 'Blocked in the last hour', value: num(d.blocked_requests_last_hour) },
          { term: 'Active windows', value: num(d.current_active_limits.length) },
          { term: 'Store', value: d.store },
        ], 'stats'),
      );
      renderWindows();
      swap(
        topHost,
        h('section', { 'aria-labelledby': 'rl-clients' },
          h('h2', { id: 'rl-clients' }, 'Top clients (last hour)'),
          d.top_clients.length
            ? table('Top clients', [
                { label: 'Client', cell: (r) => h('code', null, r.client_id) },
                { label: 'Requests', className: 'num', cell: (r) => num(r.requests) },
              ], d.top_clients)
            : empty('No requests in the last hour')),
        h('section', { 'aria-labelledby': 'rl-endpoints' },
          h('h2', { id: 'rl-endpoints' }, 'Top endpoints (last hour)'),
          d.top_endpoints.length
            ? table('Top endpoints', [
                { label: 'Endpoint', cell: (r) => h('code', null, r.endpoint) },
                { label: 'Requests', className: 'num', cell: (r) => num(r.requests) },
              ], d.top_endpoints)
            : empty('No requests in the last hour')),
      );
    }

    return {
      async refresh() {
        data = await get<RateLimits>('/ops/api/rate-limits');
        render(data);
      },
    };
  },
};
