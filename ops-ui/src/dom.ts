// Tiny DOM helpers. All data goes through textContent or setAttribute: never innerHTML,
// never a style attribute (the page runs under a strict CSP).

type Child = Node | string | number | null | undefined | false;
type Attrs = Record<string, string | number | boolean | null | undefined | EventListener>;

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs | null = null,
  ...children: (Child | Child[])[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [key, value] of Object.entries(attrs)) {
      if (value === null || value === undefined || value === false) continue;
      if (key === 'style') throw new Error('style attributes are not allowed');
      if (typeof value === 'function') {
        el.addEventListener(key.slice(2).toLowerCase(), value);
      } else if (key === 'class') {
        el.className = String(value);
      } else {
        el.setAttribute(key, value === true ? '' : String(value));
      }
    }
  }
  append(el, children);
  return el;
}

export function append(el: Node, children: (Child | Child[])[]): void {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.appendChild(typeof child === 'object' ? child : document.createTextNode(String(child)));
  }
}

let idCounter = 0;
export function uid(prefix = 'id'): string {
  idCounter += 1;
  return `${prefix}-${idCounter}`;
}

/** A link for a URL from the API: only http(s) URLs become links. */
export function safeLink(url: string | null | undefined, text: string): Node {
  if (url) {
    try {
      const parsed = new URL(url, location.href);
      if (parsed.protocol === 'https:' || parsed.protocol === 'http:') {
        return h('a', { href: parsed.href, target: '_blank', rel: 'noopener noreferrer' }, text);
      }
    } catch {
      // not a URL: plain text
    }
  }
  return document.createTextNode(text);
}

export interface Column<T> {
  label: string;
  cell: (row: T) => Child | Child[];
  className?: string;
}

/** A table inside a horizontally scrolling, focusable wrapper. */
export function table<T>(caption: string, columns: Column<T>[], rows: T[], rowKey?: (row: T) => string): HTMLElement {
  const tbody = h('tbody');
  for (const row of rows) {
    const tr = h('tr', rowKey ? { 'data-key': rowKey(row) } : null);
    for (const col of columns) tr.appendChild(h('td', col.className ? { class: col.className } : null, col.cell(row)));
    tbody.appendChild(tr);
  }
  const captionId = uid('cap');
  return h(
    'div',
    { class: 'table-wrap', role: 'region', tabindex: 0, 'aria-labelledby': captionId, 'data-focus-key': `table:${caption}` },
    h(
      'table',
      null,
      h('caption', { id: captionId, class: 'visually-hidden' }, caption),
      h('thead', null, h('tr', null, columns.map((c) => h('th', { scope: 'col', class: c.className }, c.label)))),
      tbody,
    ),
  );
}

export function empty(text: string): HTMLElement {
  return h('p', { class: 'empty' }, text);
}

export function badge(text: string, tone: 'ok' | 'warn' | 'bad' | 'neutral'): HTMLElement {
  return h('span', { class: `badge badge-${tone}` }, text);
}

export function timeEl(iso: string | number | null | undefined, text: string): Node {
  if (iso === null || iso === undefined) return document.createTextNode(text);
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return document.createTextNode(text);
  return h('time', { datetime: d.toISOString() }, text);
}

export interface DescItem {
  term: string;
  value: Child | Child[];
}

export function dl(items: DescItem[], className = 'facts'): HTMLElement {
  return h(
    'dl',
    { class: className },
    items.map((i) => h('div', null, h('dt', null, i.term), h('dd', null, i.value))),
  );
}

/**
 * Replaces the children of `host`, keeping keyboard focus on the "same" control when the
 * re-rendered content has an element with the same data-focus-key.
 */
export function swap(host: HTMLElement, ...children: (Child | Child[])[]): void {
  const active = document.activeElement;
  const key = active instanceof HTMLElement && host.contains(active) ? active.dataset.focusKey : undefined;
  const frag = document.createDocumentFragment();
  append(frag, children);
  host.replaceChildren(frag);
  if (key !== undefined) {
    const again = Array.from(host.querySelectorAll<HTMLElement>('[data-focus-key]')).find((el) => el.dataset.focusKey === key);
    again?.focus();
  }
}
