// Live line charts (uPlot) that follow their container's width.
import uPlot from 'uplot';
import { h, uid } from './dom.ts';
import { clock, num } from './format.ts';

const PALETTE = ['#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c', '#0891b2', '#ca8a04', '#db2777', '#4b5563', '#65a30d'];
const HEIGHT = 220;
const WHOLE_STEPS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 100_000, 1_000_000];

export interface SeriesSpec {
  label: string;
  color?: string;
}

export interface ChartSpec {
  title: string;
  unit: string;
  digits: number;
  series: SeriesSpec[];
  /** the y scale's minimum upper bound (so a flat zero line is not centred) */
  minMax?: number;
}

export type Column = (number | null)[];

export class LiveChart {
  readonly el: HTMLElement;
  private readonly plotHost: HTMLElement;
  private readonly summary: HTMLElement;
  private plot: uPlot | null = null;
  private seriesKey = '';
  private readonly observer: ResizeObserver;
  private spec: ChartSpec;

  constructor(spec: ChartSpec) {
    this.spec = spec;
    const titleId = uid('chart');
    this.plotHost = h('div', { class: 'chart-plot' });
    this.summary = h('p', { class: 'chart-summary' });
    this.el = h(
      'section',
      { class: 'chart card', 'aria-labelledby': titleId },
      h('h3', { id: titleId }, spec.title),
      this.plotHost,
      this.summary,
    );
    this.observer = new ResizeObserver(() => this.resize());
    this.observer.observe(this.plotHost);
  }

  /** xs in epoch seconds; one column per series (null = gap). Series may change (latency routes). */
  update(xs: number[], columns: Column[], series: SeriesSpec[] = this.spec.series): void {
    const key = series.map((s) => s.label).join('\u0000');
    if (!this.plot || key !== this.seriesKey) {
      this.spec = { ...this.spec, series };
      this.seriesKey = key;
      this.plot?.destroy();
      this.plot = new uPlot(this.options(), [xs, ...columns], this.plotHost);
    } else {
      this.plot.setData([xs, ...columns]);
    }
    this.summary.textContent = this.describe(columns, series);
  }

  destroy(): void {
    this.observer.disconnect();
    this.plot?.destroy();
    this.plot = null;
  }

  private width(): number {
    return Math.max(200, Math.floor(this.plotHost.clientWidth || 320));
  }

  private resize(): void {
    if (!this.plot) return;
    const width = this.width();
    if (width !== this.plot.width) this.plot.setSize({ width, height: HEIGHT });
  }

  private format(v: number | null | undefined): string {
    return v === null || v === undefined ? '—' : `${num(v, this.spec.digits)} ${this.spec.unit}`;
  }

  private describe(columns: Column[], series: SeriesSpec[]): string {
    if (series.length === 0) return 'No route has answered in the last hour.';
    const parts = series.map((s, i) => {
      const col = columns[i] ?? [];
      let latest: number | null = null;
      let max: number | null = null;
      for (const v of col) {
        if (v === null || v === undefined) continue;
        latest = v;
        max = max === null ? v : Math.max(max, v);
      }
      return `${s.label}: latest ${this.format(latest)}, max ${this.format(max)}`;
    });
    return parts.join('; ');
  }

  private options(): uPlot.Options {
    const { digits, unit, minMax = 1 } = this.spec;
    const tick = (_u: uPlot, values: number[]): string[] => values.map((v) => num(v, v !== 0 && Math.abs(v) < 10 ? Math.min(digits, 2) : 0));
    return {
      width: this.width(),
      height: HEIGHT,
      cursor: { drag: { x: false, y: false } },
      legend: { live: true },
      scales: {
        x: { time: true },
        y: { range: (_u, _min, max) => [0, Math.max(minMax, (max ?? 0) * 1.1)] },
      },
      axes: [
        {
          stroke: '#4b5563',
          grid: { stroke: '#e5e7eb', width: 1 },
          ticks: { stroke: '#e5e7eb', width: 1 },
          // HH:MM, or HH:MM:SS while the charts span less than a quarter of an hour (a new process).
          values: (u: uPlot, splits: number[]) => {
            const span = (u.scales.x?.max ?? 0) - (u.scales.x?.min ?? 0);
            return splits.map((s) => clock(new Date(s * 1000)).slice(0, span < 900 ? 8 : 5));
          },
        },
        {
          stroke: '#4b5563',
          grid: { stroke: '#e5e7eb', width: 1 },
          ticks: { stroke: '#e5e7eb', width: 1 },
          size: 56,
          values: tick,
          label: unit,
          labelSize: 18,
          // Whole units get whole steps (no 0, 0, 1, 1 for a count of jobs).
          ...(digits === 0 ? { incrs: WHOLE_STEPS } : {}),
        },
      ],
      series: [
        { label: 'Time', value: '{YYYY}-{MM}-{DD} {HH}:{mm}:{ss}' },
        ...this.spec.series.map((s, i) => ({
          label: s.label,
          stroke: s.color ?? PALETTE[i % PALETTE.length],
          width: 1.75,
          spanGaps: false,
          points: { size: 4 },
          value: (_u: uPlot, v: number | null) => this.format(v),
        })),
      ],
    };
  }
}
