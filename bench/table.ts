/** The one table a run prints: a row per figure, the target beside it when the issue sets one. */

export interface Row {
  case: string;
  mode: string;
  measure: string;
  /** The figure compared against (the uninstrumented server, the bare route), when there is one. */
  baseline?: string;
  result: string;
  /** The ratio or value the target applies to. */
  ratio?: string;
  target?: string;
  /** true met, false missed, undefined no target (or skipped). */
  ok?: boolean;
  note?: string;
}

const COLUMNS: { key: keyof Row; title: string; right?: boolean }[] = [
  { key: 'case', title: 'case' },
  { key: 'mode', title: 'mode' },
  { key: 'measure', title: 'measure' },
  { key: 'baseline', title: 'baseline', right: true },
  { key: 'result', title: 'result', right: true },
  { key: 'ratio', title: 'ratio', right: true },
  { key: 'target', title: 'target' },
  { key: 'ok', title: 'ok' },
  { key: 'note', title: 'note' },
];

function cell(row: Row, key: keyof Row): string {
  const v = row[key];
  if (key === 'ok') return v === true ? 'yes' : v === false ? 'NO' : '';
  return v === undefined ? '' : String(v);
}

export function renderTable(rows: Row[]): string {
  const widths = COLUMNS.map((c) => Math.max(c.title.length, ...rows.map((r) => cell(r, c.key).length)));
  const line = (values: string[]) =>
    `| ${values.map((v, i) => (COLUMNS[i]!.right ? v.padStart(widths[i]!) : v.padEnd(widths[i]!))).join(' | ')} |`;
  const out = [line(COLUMNS.map((c) => c.title)), `|${widths.map((w, i) => (COLUMNS[i]!.right ? `${'-'.repeat(w + 1)}:` : '-'.repeat(w + 2))).join('|')}|`];
  for (const r of rows) out.push(line(COLUMNS.map((c) => cell(r, c.key))));
  return out.join('\n');
}
