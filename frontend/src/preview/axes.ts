// Axis maths of the preview's plots: plotly's axis ranges as numbers (dates included),
// a zoomed coordinate range as the data indices under it, and axis labels.

import type { Axis, AxisLabel } from "../celldata";

/**
 * A value of a plotly axis range as a number: plotly gives date axes' ranges as text
 * ("2026-01-02 03:04:05.25", in UTC like the epoch milliseconds it was given).
 */
export function axisNumber(value: unknown, date: boolean): number {
  if (typeof value === "number") return value;
  if (typeof value !== "string" || value.trim() === "") return NaN;
  if (!date) return Number(value);
  const m = /^(-?\d{1,6})-(\d{1,2})-(\d{1,2})(?:[ T](\d{1,2})(?::(\d{1,2})(?::(\d{1,2}(?:\.\d*)?))?)?)?Z?$/.exec(value.trim());
  if (m === null) return Number(value);
  const whole = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4] ?? 0), Number(m[5] ?? 0));
  return whole + Number(m[6] ?? 0) * 1000;
}

/** A range from a relayout event (`axis.range[0]`/`[1]` or `axis.range`), lowest first. */
export function eventRange(event: Record<string, unknown>, axis: string, date: boolean): [number, number] | null {
  const pair = Array.isArray(event[`${axis}.range`]) ? (event[`${axis}.range`] as unknown[]) : [event[`${axis}.range[0]`], event[`${axis}.range[1]`]];
  const a = axisNumber(pair[0], date);
  const b = axisNumber(pair[1], date);
  if (!Number.isFinite(a) || !Number.isFinite(b)) return null;
  return [Math.min(a, b), Math.max(a, b)];
}

/**
 * The data index range [lo, hi) that coordinate values [a, b] cover on an image axis.
 * `values[j]` is the coordinate of pixel j, which stands for index `centre(j)`; between
 * pixels (and beyond the ends) the index is interpolated linearly, so zooming into
 * less than one downsampled pixel still finds the indices under it.
 */
export function coordRangeToIndex(a: number, b: number, values: ArrayLike<number>, axis: Axis, blockMeans: boolean, size: number): [number, number] {
  const centre = (j: number): number => axis.start + j * axis.step + (blockMeans ? (axis.step - 1) / 2 : 0);
  const n = values.length;
  if (n < 2) return [axis.start, Math.min(size, axis.start + axis.step)];
  const v = (j: number): number => values[j] as number;
  const increasing = v(n - 1) > v(0);
  const toIndex = (c: number): number => {
    // The segment [k, k+1] holding c (values are monotonic: binary search).
    let lo = 0;
    let hi = n - 1;
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if (v(mid) <= c === increasing) lo = mid;
      else hi = mid;
    }
    const t = (c - v(lo)) / (v(hi) - v(lo));
    return centre(lo) + t * (centre(hi) - centre(lo));
  };
  const i0 = toIndex(a);
  const i1 = toIndex(b);
  return [Math.max(0, Math.floor(Math.min(i0, i1))), Math.min(size, Math.ceil(Math.max(i0, i1)) + 1)];
}

export function formatCoord(value: number, date: boolean): string {
  if (!date) return String(value);
  if (!Number.isFinite(value)) return "NaT";
  return new Date(value).toISOString().replace("T", " ").replace(/\.000Z$|Z$/, "");
}

export function axisTitle(a: AxisLabel | undefined, fallback: string): string {
  const name = a?.name ?? fallback;
  // A coordinate that could not be used: say the numbers are indices, not its values.
  if (a?.note) return `${name} (index)`;
  return a?.units ? `${name} (${a.units})` : name;
}
