// The numbers behind the plots: per-train arrays from the cell data endpoint
// (docs/dev/cell-data.md), joining two of them on train IDs, and histogram binning.

import { fetchCellData } from "../celldata";

/** One run's per-train values of one variable: `x` is the coordinate (train IDs). */
export interface TrainSeries {
  run: number;
  name: string;
  /** Name of the coordinate (e.g. "trainId"), or null when the data has none. */
  coord: string | null;
  x: Float64Array | Float32Array;
  y: Float64Array | Float32Array;
}

/** The data a person can act on when a variable has no per-train array for a run. */
export class NoTrainData extends Error {
  override name = "NoTrainData";
}

/**
 * Every point of `name` in `run` with its coordinate (full resolution). Throws
 * NoTrainData when the variable is not a 1D array in that run.
 */
export async function fetchTrainSeries(run: number, name: string, title: string): Promise<TrainSeries> {
  const { header, arrays } = await fetchCellData(run, name, { maxPoints: 0 });
  if (header.kind === "error") {
    const what = header.error_cls === "Skip" ? "was skipped" : "failed";
    throw new NoTrainData(`${title} ${what} in run ${run}: ${header.message ?? ""}`.trim());
  }
  if (header.kind !== "line") {
    const shape = header.shape === undefined ? "" : ` (shape ${header.shape.join("×") || "scalar"})`;
    throw new NoTrainData(`${title} has no per-train array in run ${run}${shape}: pick a variable holding one value per train`);
  }
  const x = arrays.x;
  const y = arrays.y;
  if (x === undefined || y === undefined) {
    throw new Error(`the server sent no points for ${title} in run ${run}`);
  }
  const coord = header.x?.coord === true ? (header.x.name ?? "index") : null;
  return { run, name, coord, x, y };
}

/**
 * Pairs (x, y) of the trains both series have, in the order of `ys`'s train IDs.
 * Both need the same coordinate (e.g. trainId): values are matched on it, not by
 * position, since two variables of one run may cover different trains.
 */
export function joinOnTrains(xs: TrainSeries, ys: TrainSeries, xTitle: string, yTitle: string): { x: number[]; y: number[]; trains: number[] } {
  if (xs.coord === null || ys.coord === null) {
    const missing = xs.coord === null ? xTitle : yTitle;
    throw new NoTrainData(`${missing} in run ${xs.run} has no train IDs (an xarray trainId coordinate), so it cannot be aligned`);
  }
  if (xs.coord !== ys.coord) {
    throw new NoTrainData(`${xTitle} is along ${xs.coord} but ${yTitle} along ${ys.coord}: they cannot be aligned`);
  }
  const byTrain = new Map<number, number>();
  xs.x.forEach((train, index) => byTrain.set(train, xs.y[index] as number));
  const x: number[] = [];
  const y: number[] = [];
  const trains: number[] = [];
  ys.x.forEach((train, index) => {
    const xv = byTrain.get(train);
    const yv = ys.y[index] as number;
    if (xv !== undefined && Number.isFinite(xv) && Number.isFinite(yv)) {
      x.push(xv);
      y.push(yv);
      trains.push(train);
    }
  });
  return { x, y, trains };
}

export const MIN_BINS = 5;
export const MAX_BINS = 100_000;

/**
 * Bin edges shared by several data sets: `bins` equal bins from the smallest to the
 * largest value. Whole numbers (counts, train numbers, motor steps) get bins of whole
 * width centred on them, at most `bins` of them: a bar is then a value, never a
 * fraction of one (63.6 … 64.4 around one value 64).
 */
export function binEdges(sets: readonly ArrayLike<number>[], bins: number): { start: number; size: number; bins: number } | null {
  let lo = Infinity;
  let hi = -Infinity;
  let whole = true;
  for (const values of sets) {
    for (let i = 0; i < values.length; i++) {
      const v = values[i] as number;
      if (Number.isFinite(v)) {
        if (v < lo) lo = v;
        if (v > hi) hi = v;
        if (whole && !Number.isInteger(v)) whole = false;
      }
    }
  }
  if (lo > hi) return null;
  if (whole) {
    const size = Math.max(1, Math.ceil((hi - lo + 1) / bins));
    return { start: lo - 0.5, size, bins: Math.floor((hi - lo) / size) + 1 };
  }
  if (lo === hi) {
    // One value: a unit-wide range around it, so it still shows as a bar.
    return { start: lo - 0.5, size: 1 / bins, bins };
  }
  return { start: lo, size: (hi - lo) / bins, bins };
}

/** Counts of `values` in `bins` bins; the largest value goes in the last bin. */
export function histogram(values: ArrayLike<number>, bins: number, start: number, size: number): number[] {
  const counts = new Array<number>(bins).fill(0);
  for (let i = 0; i < values.length; i++) {
    const v = values[i] as number;
    if (!Number.isFinite(v)) continue;
    const k = Math.min(bins - 1, Math.max(0, Math.floor((v - start) / size)));
    counts[k] = (counts[k] ?? 0) + 1;
  }
  return counts;
}

/** Read the bins input: a whole number from MIN_BINS to MAX_BINS, or a sentence saying why not. */
export function parseBins(text: string): number | string {
  const bins = Number(text.trim());
  if (text.trim() === "" || !Number.isInteger(bins) || bins < MIN_BINS || bins > MAX_BINS) {
    return `Bins must be a whole number from ${MIN_BINS} to ${MAX_BINS.toLocaleString("en")}`;
  }
  return bins;
}
