import type { Session } from '../types.ts';

export interface PageContext {
  readonly session: Session;
  /** a message in the app's role="status" live region */
  announce(message: string, tone?: 'ok' | 'bad'): void;
  /** refresh the current page now (after an action) */
  refreshNow(): void;
  /** show an error of a call outside refresh() in the page's alert area */
  fail(err: unknown): void;
}

export interface PageInstance {
  /** fetch and render; rejects with the error to show */
  refresh(): Promise<void>;
  destroy?(): void;
}

export interface PageDef {
  path: string;
  label: string;
  mount(root: HTMLElement, ctx: PageContext): PageInstance;
}
