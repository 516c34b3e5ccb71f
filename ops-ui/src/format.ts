// Formatting of figures and dates. Dates are local time, YYYY-MM-DD HH:MM:SS.

const pad = (n: number): string => String(n).padStart(2, '0');

function toDate(value: string | number | Date): Date | null {
  const d = value instanceof Date ? value : new Date(value);
  return Number.isNaN(d.getTime()) ? null : d;
}

export function dateTime(value: string | number | Date | null | undefined): string {
  if (value === null || value === undefined || value === '') return '—';
  const d = toDate(value);
  if (!d) return String(value);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${clock(d)}`;
}

export function clock(d: Date): string {
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function num(value: number | null | undefined, digits = 0): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return '—';
  return value.toLocaleString('en', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

export function mb(bytes: number | null | undefined): string {
  if (bytes === null || bytes === undefined) return '—';
  return `${num(bytes / 1048576, 1)} MB`;
}

export function ms(value: number | null | undefined, digits = 1): string {
  if (value === null || value === undefined) return '—';
  return `${num(value, digits)} ms`;
}

export function pct(value: number | null | undefined, digits = 1): string {
  if (value === null || value === undefined) return '—';
  return `${num(value, digits)} %`;
}

/** 45 s, 3 min 20 s, 2 h 3 min, 4 d 5 h */
export function duration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '—';
  const s = Math.floor(seconds);
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (d > 0) return `${d} d ${h} h`;
  if (h > 0) return `${h} h ${m} min`;
  if (m > 0) return `${m} min ${s % 60} s`;
  return `${s} s`;
}

/** Compact JSON for a details object, or — */
export function compactJson(value: unknown): string {
  if (value === null || value === undefined) return '—';
  try {
    const text = JSON.stringify(value);
    return text === '{}' ? '—' : text;
  } catch {
    return String(value);
  }
}

/** A value from a details object as text. */
export function plain(value: unknown): string {
  if (value === null || value === undefined) return '—';
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return compactJson(value);
}
