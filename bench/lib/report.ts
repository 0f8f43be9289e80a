// The shape of a suite's results, the targets they are held to, and the printed table.

import { round, summarize } from './stats.ts';

export type Unit = 'ms' | 'MB' | '%' | 'msg/s' | 's' | '×' | 'count';

export interface Target {
  /** Met when value <= max (Infinity with `min` for a floor). */
  readonly max: number;
  /** Also met only when value >= min: for figures where more is better (messages per second). */
  readonly min?: number;
  /** How the target reads in the table, e.g. "≤ 30 ms". */
  readonly text: string;
}

export interface Figure {
  readonly key: string;
  readonly label: string;
  readonly unit: Unit;
  /** Median for sampled figures, the value itself otherwise. */
  readonly median: number;
  readonly p95: number | null;
  /** Number of samples (or of things counted for a single value, e.g. messages). */
  readonly n: number;
  readonly target?: Target;
  readonly met?: boolean;
  readonly note?: string;
  /** Raw samples (rounded), kept in results.json for later comparison. */
  readonly samples?: readonly number[];
}

export interface SuiteResult {
  readonly suite: string;
  readonly figures: Figure[];
  readonly notes: string[];
  readonly seconds: number;
  readonly error?: string;
}

export function sampled(key: string, label: string, unit: Unit, samples: readonly number[], target?: Target, note?: string): Figure {
  const s = summarize(samples);
  // Percentages of a core are small (a target of 0.03 %): one decimal would round them to 0.
  const digits = unit === '%' ? 3 : 1;
  return withTarget({ key, label, unit, median: round(s.median, digits), p95: round(s.p95, digits), n: s.n, samples: samples.map((x) => round(x, digits + 1)), ...(note ? { note } : {}) }, target);
}

export function single(key: string, label: string, unit: Unit, value: number, n: number, target?: Target, note?: string): Figure {
  return withTarget({ key, label, unit, median: round(value, unit === '%' ? 3 : 2), p95: null, n, ...(note ? { note } : {}) }, target);
}

function withTarget(f: Figure, target?: Target): Figure {
  if (!target) return f;
  return { ...f, target, met: Number.isFinite(f.median) && f.median <= target.max && f.median >= (target.min ?? -Infinity) };
}

function fmt(x: number | null, unit: Unit): string {
  if (x === null) return '—';
  if (!Number.isFinite(x)) return 'n/a';
  const digits = unit === '%' ? 2 : unit === '×' ? 2 : Math.abs(x) >= 100 ? 0 : 1;
  return `${x.toFixed(digits)}${unit === 'count' ? '' : ` ${unit}`}`;
}

/** The table printed at the end: one row per figure, grouped by suite. */
export function table(results: readonly SuiteResult[]): string {
  const rows: string[][] = [['figure', 'median', 'p95', 'n', 'target', '']];
  for (const r of results) {
    rows.push([`[${r.suite}]${r.error ? `  CRASHED: ${r.error.split('\n')[0]!.slice(0, 100)}` : ''}`, '', '', '', '', '']);
    for (const f of r.figures) {
      rows.push([
        `  ${f.label}`, fmt(f.median, f.unit), fmt(f.p95, f.unit), String(f.n),
        f.target?.text ?? '', f.target ? (f.met ? 'met' : 'MISSED') : '',
      ]);
    }
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.filter((r) => r[1] !== '' || r[0] === 'figure' || i === 0).map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => (r[1] === '' && r[0] !== 'figure' && r[0]!.startsWith('[')) ? r[0]! : r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd();
  const out = rows.map(line);
  out.splice(1, 0, '-'.repeat(widths.reduce((a, b) => a + b + 2, 0)));
  const notes = results.flatMap((r) => r.notes.map((n) => `  ${r.suite}: ${n}`));
  return out.join('\n') + (notes.length ? `\n\nnotes:\n${notes.join('\n')}` : '');
}
