// Nest Egg operator console: sign-in, layout, hash routing and the 5 s auto-refresh.
import 'uplot/dist/uPlot.min.css';
import './style.css';
import { getSession, messageOf, onUnauthorized, SessionEnded, setAutoRefreshing, setCsrfToken, signIn, signOut, ApiError } from './api.ts';
import { h, uid } from './dom.ts';
import { clock } from './format.ts';
import type { Session } from './types.ts';
import type { PageDef, PageInstance } from './pages/page.ts';
import { overviewPage } from './pages/overview.ts';
import { rateLimitsPage } from './pages/rateLimits.ts';
import { jobsPage } from './pages/jobs.ts';
import { errorsPage } from './pages/errors.ts';
import { auditPage } from './pages/audit.ts';

const PRODUCT = 'Nest Egg';
const REFRESH_SECONDS = 5;
const PAGES: PageDef[] = [overviewPage, rateLimitsPage, jobsPage, errorsPage, auditPage];

const appRoot = document.getElementById('app') ?? document.body.appendChild(h('div', { id: 'app' }));

function routeOf(hash: string): PageDef {
  const path = hash.replace(/^#\/?/, '').split(/[?/]/)[0] ?? '';
  return PAGES.find((p) => p.path === path) ?? overviewPage;
}

// ---------------------------------------------------------------- sign-in

function showSignIn(message: { text: string; tone: 'info' | 'bad' } | null = null): void {
  stopApp();
  document.title = `Sign in — ${PRODUCT} operator console`;
  const emailId = uid('in');
  const passwordId = uid('in');
  const email = h('input', { id: emailId, name: 'email', type: 'email', autocomplete: 'username', required: true, spellcheck: 'false' });
  const password = h('input', { id: passwordId, name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary' }, 'Sign in');
  const note = h('p', { class: 'signin-note', role: 'alert' });
  const show = (text: string, tone: 'info' | 'bad'): void => {
    note.textContent = text;
    note.className = `signin-note signin-${tone}`;
  };
  if (message) show(message.text, message.tone);

  const form = h(
    'form',
    { class: 'signin-form', method: 'post' },
    h('div', { class: 'field' }, h('label', { for: emailId }, 'Email'), email),
    h('div', { class: 'field' }, h('label', { for: passwordId }, 'Password'), password),
    submit,
  );
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    submit.disabled = true;
    show('Signing in…', 'info');
    try {
      const session = await signIn(email.value.trim(), password.value);
      startApp(session, true);
    } catch (err) {
      let text = messageOf(err);
      if (err instanceof ApiError && err.status === 429 && err.retryAfterSeconds !== null) {
        text += ` Try again in ${err.retryAfterSeconds} s.`;
      }
      show(text, 'bad');
      submit.disabled = false;
      password.select();
    }
  });

  appRoot.replaceChildren(
    h(
      'main',
      { class: 'signin' },
      h('h1', null, PRODUCT, h('span', { class: 'subtitle' }, 'operator console')),
      h('p', { class: 'muted' }, 'Sign in with a platform administrator account.'),
      note,
      form,
    ),
  );
  email.focus();
}

// ---------------------------------------------------------------- app

interface Running {
  session: Session;
  def: PageDef;
  page: PageInstance;
  container: HTMLElement;
  busy: boolean;
  again: boolean;
}

let running: Running | null = null;
let paused = false;
let timer: number | undefined;
let lastUpdated: HTMLElement | null = null;
let pageError: HTMLElement | null = null;
let announcer: HTMLElement | null = null;
let mainEl: HTMLElement | null = null;
let navLinks: HTMLAnchorElement[] = [];
let ended = false;

function stopApp(): void {
  if (timer !== undefined) window.clearInterval(timer);
  timer = undefined;
  running?.page.destroy?.();
  running = null;
  window.removeEventListener('hashchange', onHashChange);
  document.removeEventListener('visibilitychange', onVisibility);
}

function announce(text: string, tone: 'ok' | 'bad' = 'ok'): void {
  if (!announcer) return;
  announcer.className = `announcer announcer-${tone}`;
  announcer.textContent = text;
}

function setPageError(text: string | null): void {
  if (!pageError) return;
  if ((pageError.textContent || null) === text) return;
  pageError.textContent = text ?? '';
  pageError.hidden = text === null;
}

function fail(err: unknown): void {
  if (err instanceof SessionEnded) return;
  setPageError(`${messageOf(err)}. Retrying every ${REFRESH_SECONDS} s.`);
}

async function refresh(r: Running, auto = false): Promise<void> {
  if (r.busy) {
    r.again = true;
    return;
  }
  r.busy = true;
  try {
    setAutoRefreshing(auto);
    await r.page.refresh();
    if (running === r) {
      setPageError(null);
      if (lastUpdated) lastUpdated.textContent = `Last updated ${clock(new Date())}`;
    }
  } catch (err) {
    if (running === r) fail(err);
  } finally {
    setAutoRefreshing(false);
    r.busy = false;
    if (r.again && running === r) {
      r.again = false;
      void refresh(r);
    }
  }
}

function tick(): void {
  if (running && !paused && document.visibilityState === 'visible') void refresh(running, true);
}

function onVisibility(): void {
  if (document.visibilityState === 'visible') tick();
}

function onHashChange(): void {
  if (running) mountPage(running.session, routeOf(location.hash), true);
}

function mountPage(session: Session, def: PageDef, moveFocus: boolean): void {
  // A message about the last page's action does not follow the operator to the next page.
  if (announcer) {
    announcer.className = 'announcer';
    announcer.textContent = '';
  }
  if (!mainEl) return;
  // An empty or unknown route shows the overview: say so in the address bar (no new history entry).
  if (location.hash !== `#/${def.path}`) history.replaceState(null, '', `#/${def.path}`);
  running?.page.destroy?.();
  const heading = h('h1', { tabindex: -1, class: 'page-title' }, def.label);
  const container = h('div', { class: `page page-${def.path}` });
  mainEl.replaceChildren(heading, container);
  setPageError(null);
  for (const a of navLinks) {
    if (a.dataset.path === def.path) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  document.title = `${def.label} — ${PRODUCT} operator console`;
  const r: Running = {
    session,
    def,
    container,
    busy: false,
    again: false,
    page: { refresh: async () => {} },
  };
  r.page = def.mount(container, {
    session,
    announce,
    fail,
    refreshNow: () => {
      if (running === r) void refresh(r);
    },
  });
  running = r;
  if (moveFocus) heading.focus();
  void refresh(r);
}

function startApp(session: Session, moveFocus: boolean): void {
  stopApp();
  ended = false;
  setCsrfToken(session.csrf_token);

  navLinks = PAGES.map((p) => h('a', { href: `#/${p.path}`, 'data-path': p.path }, p.label));
  const pause = h('button', { type: 'button', class: 'btn btn-small', 'aria-pressed': String(paused) }, paused ? 'Resume' : 'Pause');
  pause.addEventListener('click', () => {
    paused = !paused;
    pause.textContent = paused ? 'Resume' : 'Pause';
    pause.setAttribute('aria-pressed', String(paused));
    if (!paused) tick();
  });
  const signOutButton = h('button', { type: 'button', class: 'btn btn-small' }, 'Sign out');
  signOutButton.addEventListener('click', async () => {
    signOutButton.disabled = true;
    try {
      await signOut();
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 401)) {
        announce(`Could not sign out: ${messageOf(err)}`, 'bad');
        signOutButton.disabled = false;
        return;
      }
    }
    setCsrfToken('');
    showSignIn({ text: 'You have signed out.', tone: 'info' });
  });

  lastUpdated = h('span', { class: 'updated' }, 'Not updated yet');
  announcer = h('p', { class: 'announcer', role: 'status', 'aria-live': 'polite' });
  pageError = h('p', { class: 'page-error', role: 'alert' });
  pageError.hidden = true;
  mainEl = h('main', { id: 'main', class: 'content' });

  appRoot.replaceChildren(
    h('a', { href: '#main', class: 'skip-link' }, 'Skip to content'),
    h(
      'header',
      { class: 'topbar' },
      h('div', { class: 'brand' }, h('span', { class: 'brand-name' }, PRODUCT), h('span', { class: 'subtitle' }, 'operator console')),
      h(
        'div',
        { class: 'where' },
        h('span', { class: 'pill' }, `replica ${session.replica.id}`),
        h('span', { class: 'pill' }, session.mode),
        h('span', { class: 'pill pill-muted' }, `v${session.version}`),
      ),
      h('div', { class: 'who' }, h('span', { class: 'email' }, session.user.email), signOutButton),
    ),
    h(
      'div',
      { class: 'bar' },
      h('nav', { 'aria-label': 'Console pages' }, h('ul', null, navLinks.map((a) => h('li', null, a)))),
      h(
        'div',
        { class: 'refresh', role: 'group', 'aria-label': 'Auto-refresh' },
        h('span', null, `Auto-refresh every ${REFRESH_SECONDS} s`),
        pause,
        lastUpdated,
      ),
    ),
    h('div', { class: 'messages' }, announcer, pageError),
    mainEl,
  );
  // The skip link targets #main without changing the route hash.
  appRoot.querySelector<HTMLAnchorElement>('.skip-link')?.addEventListener('click', (e) => {
    e.preventDefault();
    mainEl?.querySelector<HTMLElement>('h1')?.focus();
  });

  window.addEventListener('hashchange', onHashChange);
  document.addEventListener('visibilitychange', onVisibility);
  timer = window.setInterval(tick, REFRESH_SECONDS * 1000);
  mountPage(session, routeOf(location.hash), moveFocus);
}

onUnauthorized(() => {
  if (ended || !running) return;
  ended = true;
  setCsrfToken('');
  showSignIn({ text: 'Your session has ended; sign in again', tone: 'bad' });
});

async function boot(): Promise<void> {
  try {
    const session = await getSession();
    if (session) startApp(session, false);
    else showSignIn();
  } catch (err) {
    appRoot.replaceChildren(
      h(
        'main',
        { class: 'signin' },
        h('h1', null, PRODUCT, h('span', { class: 'subtitle' }, 'operator console')),
        h('p', { class: 'page-error', role: 'alert' }, `The console could not start: ${messageOf(err)}`),
        h('p', null, h('button', { type: 'button', class: 'btn', onclick: () => location.reload() }, 'Reload')),
      ),
    );
  }
}

void boot();
