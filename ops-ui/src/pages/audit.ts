import { ApiError, get, messageOf, SessionEnded } from '../api.ts';
import { badge, empty, h, swap, table, timeEl, uid } from '../dom.ts';
import { compactJson, dateTime } from '../format.ts';
import type { AuditItem, AuditPage } from '../types.ts';
import type { PageDef } from './page.ts';

interface Filters {
  action: string;
  outcome: string;
  actor: string;
}

function query(f: Filters, cursor: string | null): string {
  const params = new URLSearchParams();
  if (f.action) params.set('action', f.action);
  if (f.outcome) params.set('outcome', f.outcome);
  if (f.actor) params.set('actor', f.actor);
  params.set('limit', '50');
  if (cursor) params.set('cursor', cursor);
  return `/ops/api/audit?${params.toString()}`;
}

const outcomeTone = (o: string): 'ok' | 'warn' | 'bad' => (o === 'success' ? 'ok' : o === 'denied' ? 'warn' : 'bad');

export const auditPage: PageDef = {
  path: 'audit',
  label: 'Audit',
  mount(root, ctx) {
    let filters: Filters = { action: '', outcome: '', actor: '' };
    let items: AuditItem[] = [];
    let nextCursor: string | null = null;
    let pages = 0;

    const ids = { action: uid('a'), outcome: uid('a'), actor: uid('a') };
    const action = h('input', { id: ids.action, name: 'action', type: 'text', autocomplete: 'off', spellcheck: 'false', placeholder: 'e.g. ops.rate_limit_reset' });
    const outcome = h('select', { id: ids.outcome, name: 'outcome' },
      h('option', { value: '' }, 'Any'),
      h('option', { value: 'success' }, 'Success'),
      h('option', { value: 'failure' }, 'Failure'),
      h('option', { value: 'denied' }, 'Denied'),
    );
    const actor = h('input', { id: ids.actor, name: 'actor', type: 'text', autocomplete: 'off', spellcheck: 'false', placeholder: 'uuid, system or anonymous' });
    const formError = h('p', { class: 'form-error', role: 'alert' });
    formError.hidden = true;
    const form = h('form', { class: 'filters', 'aria-label': 'Audit filters' },
      h('div', { class: 'field' }, h('label', { for: ids.action }, 'Action'), action),
      h('div', { class: 'field' }, h('label', { for: ids.outcome }, 'Outcome'), outcome),
      h('div', { class: 'field' }, h('label', { for: ids.actor }, 'Actor'), actor),
      h('div', { class: 'field field-buttons' },
        h('button', { type: 'submit', class: 'btn btn-primary' }, 'Apply filters'),
        h('button', { type: 'reset', class: 'btn' }, 'Clear'),
      ),
    );
    const listHost = h('div');
    const more = h('button', { type: 'button', class: 'btn', 'data-focus-key': 'audit-more' }, 'Load more');
    const moreHost = h('div', { class: 'more' });
    root.append(form, formError, h('section', { 'aria-labelledby': 'audit-h' }, h('h2', { id: 'audit-h' }, 'Audit log'), listHost, moreHost));

    function showError(message: string | null): void {
      formError.textContent = message ?? '';
      formError.hidden = message === null;
    }

    function render(): void {
      swap(
        listHost,
        items.length
          ? table('Audit log entries', [
              { label: 'Time', cell: (i) => timeEl(i.occurred_at, dateTime(i.occurred_at)) },
              { label: 'Actor', cell: (i) => h('code', null, i.actor) },
              { label: 'Action', cell: (i) => h('code', null, i.action) },
              { label: 'Target', cell: (i) => (i.target_type || i.target_id ? h('code', null, `${i.target_type ?? '?'}:${i.target_id ?? '?'}`) : '—') },
              { label: 'Outcome', cell: (i) => badge(i.outcome, outcomeTone(i.outcome)) },
              { label: 'IP', cell: (i) => h('code', null, i.ip ?? '—') },
              { label: 'Request ID', cell: (i) => h('code', null, i.request_id ?? '—') },
              { label: 'Details', className: 'wrap', cell: (i) => h('code', { class: 'json' }, compactJson(i.details)) },
            ], items)
          : empty(filters.action || filters.outcome || filters.actor ? 'No audit entries match the filters' : 'No audit entries yet'),
      );
      if (nextCursor) swap(moreHost, more);
      else moreHost.replaceChildren();
    }

    async function load(reset: boolean, f: Filters = filters): Promise<void> {
      const page = await get<AuditPage>(query(f, reset ? null : nextCursor));
      showError(null);
      filters = f;
      if (reset) {
        items = page.items;
        pages = 1;
      } else {
        const known = new Set(items.map((i) => i.id));
        items = items.concat(page.items.filter((i) => !known.has(i.id)));
        pages += 1;
      }
      nextCursor = page.next_cursor;
      render();
    }

    async function apply(): Promise<void> {
      try {
        await load(true, { action: action.value.trim(), outcome: outcome.value, actor: actor.value.trim() });
      } catch (err) {
        report(err);
      }
    }

    function report(err: unknown): void {
      if (err instanceof SessionEnded) return;
      if (err instanceof ApiError && err.status === 400) showError(messageOf(err));
      else ctx.fail(err);
    }

    form.addEventListener('submit', (e) => {
      e.preventDefault();
      void apply();
    });
    form.addEventListener('reset', () => {
      // after the browser has cleared the fields
      setTimeout(() => void apply(), 0);
    });
    more.addEventListener('click', async () => {
      more.disabled = true;
      try {
        await load(false);
      } catch (err) {
        report(err);
      } finally {
        more.disabled = false;
      }
    });

    return {
      async refresh() {
        if (pages <= 1) {
          await load(true);
          return;
        }
        // Several pages loaded: add entries newer than the first one shown, keep the rest.
        const first = await get<AuditPage>(query(filters, null));
        const known = new Set(items.map((i) => i.id));
        const fresh = first.items.filter((i) => !known.has(i.id));
        if (fresh.length) {
          items = fresh.concat(items);
          render();
        }
      },
    };
  },
};
