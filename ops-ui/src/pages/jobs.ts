import { get, messageOf, post, SessionEnded } from '../api.ts';
import { dl, empty, h, swap, table, timeEl } from '../dom.ts';
import { dateTime, num } from '../format.ts';
import type { JobFailure, Jobs } from '../types.ts';
import type { PageDef } from './page.ts';
import { countsList, queueFacts } from './overview.ts';

export const jobsPage: PageDef = {
  path: 'jobs',
  label: 'Jobs',
  mount(root, ctx) {
    const summary = h('div');
    const schedulesHost = h('div');
    const failuresHost = h('div');
    root.append(
      summary,
      h('section', { 'aria-labelledby': 'jobs-sched' }, h('h2', { id: 'jobs-sched' }, 'Schedules'), schedulesHost),
      h('section', { 'aria-labelledby': 'jobs-fail' }, h('h2', { id: 'jobs-fail' }, 'Recent failures'), failuresHost),
    );

    async function act(job: JobFailure, action: 'retry' | 'discard', button: HTMLButtonElement): Promise<void> {
      if (action === 'discard' && !window.confirm(`Discard job ${job.id} (${job.task_name})? It will not run again.`)) return;
      button.disabled = true;
      try {
        await post(`/ops/api/jobs/${encodeURIComponent(job.id)}/${action}`);
        ctx.announce(action === 'retry' ? `Job ${job.id} queued again` : `Job ${job.id} discarded`, 'ok');
        ctx.refreshNow();
      } catch (err) {
        if (err instanceof SessionEnded) return;
        ctx.announce(`Could not ${action} job ${job.id}: ${messageOf(err)}`, 'bad');
        button.disabled = false;
      }
    }

    function actionButton(job: JobFailure, action: 'retry' | 'discard'): HTMLButtonElement {
      const label = action === 'retry' ? 'Retry' : 'Discard';
      const button = h('button', {
        type: 'button',
        class: action === 'retry' ? 'btn btn-small' : 'btn btn-small btn-danger',
        'aria-label': `${label} job ${job.id}`,
        'data-focus-key': `${action}:${job.id}`,
      }, label);
      button.addEventListener('click', () => void act(job, action, button));
      return button;
    }

    function render(d: Jobs): void {
      swap(
        summary,
        h('section', { 'aria-labelledby': 'jobs-q' },
          h('h2', { id: 'jobs-q' }, 'Queue'),
          h('div', { class: 'cards' },
            h('section', { class: 'card' }, h('h3', null, 'Backend'), dl(queueFacts(d))),
            h('section', { class: 'card' }, h('h3', null, 'Jobs per state'), countsList(d.counts)),
          ),
        ),
      );
      swap(
        schedulesHost,
        d.schedules.length
          ? table('Schedules', [
              { label: 'ID', cell: (s) => h('code', null, s.id) },
              { label: 'Task', cell: (s) => s.task },
              { label: 'Every', cell: (s) => s.every },
              { label: 'Next run', cell: (s) => timeEl(s.next_run_at, dateTime(s.next_run_at)) },
            ], d.schedules)
          : empty('No scheduled tasks'),
      );
      swap(
        failuresHost,
        d.recent_failures.length
          ? table('Recent failures', [
              { label: 'ID', cell: (j) => h('code', null, j.id) },
              { label: 'Task', cell: (j) => j.task_name },
              { label: 'Error', className: 'wrap', cell: (j) => j.failed_reason || '—' },
              { label: 'Attempts', className: 'num', cell: (j) => num(j.attempts_made) },
              { label: 'Failed at', cell: (j) => timeEl(j.failed_at, dateTime(j.failed_at)) },
              { label: 'Actions', cell: (j) => h('span', { class: 'actions' }, actionButton(j, 'retry'), actionButton(j, 'discard')) },
            ], d.recent_failures)
          : empty('No failed jobs'),
      );
    }

    return {
      async refresh() {
        render(await get<Jobs>('/ops/api/jobs'));
      },
    };
  },
};
