import { describe, expect, it } from "vitest";

import { MAX_BINS, MIN_BINS, NoTrainData, binEdges, histogram, joinOnTrains, parseBins, type TrainSeries } from "./data";

function series(coord: string | null, x: number[], y: number[], run = 7): TrainSeries {
  return { run, name: "v", coord, x: Float64Array.from(x), y: Float64Array.from(y) };
}

describe("binEdges", () => {
  it("splits fractional values into equal bins from the smallest to the largest", () => {
    expect(binEdges([[0.5, 1.5], [2.5]], 4)).toEqual({ start: 0.5, size: 0.5, bins: 4 });
  });

  it("centres whole-number values in bins of whole width, at most the bins asked for", () => {
    expect(binEdges([[1, 2, 3, 4]], 10)).toEqual({ start: 0.5, size: 1, bins: 4 });
    expect(binEdges([[0, 99]], 10)).toEqual({ start: -0.5, size: 10, bins: 10 });
  });

  it("gives one fractional value a unit-wide range so that it still shows", () => {
    expect(binEdges([[2.25, 2.25]], 5)).toEqual({ start: 1.75, size: 0.2, bins: 5 });
  });

  it("ignores NaN and infinities, and has no bins without a finite value", () => {
    expect(binEdges([[Number.NaN, 1.5, Infinity, 3.5]], 2)).toEqual({ start: 1.5, size: 1, bins: 2 });
    expect(binEdges([[Number.NaN], []], 10)).toBeNull();
  });
});

describe("histogram", () => {
  it("counts each value in its bin and the largest in the last bin", () => {
    expect(histogram([0, 0.1, 0.5, 0.99, 1], 2, 0, 0.5)).toEqual([2, 3]);
  });

  it("skips values that are not finite", () => {
    expect(histogram(Float32Array.from([1, Number.NaN, -Infinity, 2]), 2, 0.5, 1)).toEqual([1, 1]);
  });

  it("puts the values of whole-number bins on the bars centred on them", () => {
    const edges = binEdges([[1, 2, 2, 4]], 10);
    expect(edges).not.toBeNull();
    if (edges === null) return;
    expect(histogram([1, 2, 2, 4], edges.bins, edges.start, edges.size)).toEqual([1, 2, 0, 1]);
  });
});

describe("parseBins", () => {
  it("reads a whole number within the limits", () => {
    expect(parseBins(" 50 ")).toBe(50);
    expect(parseBins(String(MIN_BINS))).toBe(MIN_BINS);
    expect(parseBins(String(MAX_BINS))).toBe(MAX_BINS);
  });

  it("explains what is allowed for anything else", () => {
    for (const text of ["", "abc", "2.5", String(MIN_BINS - 1), String(MAX_BINS + 1)]) {
      expect(parseBins(text)).toBe("Bins must be a whole number from 5 to 100,000");
    }
  });
});

describe("joinOnTrains", () => {
  it("pairs values by train ID in the order of the second series, dropping trains one lacks", () => {
    const xs = series("trainId", [10, 11, 12, 13], [1, 2, 3, 4]);
    const ys = series("trainId", [13, 11, 14], [40, 20, 50]);
    expect(joinOnTrains(xs, ys, "X", "Y")).toEqual({ x: [4, 2], y: [40, 20], trains: [13, 11] });
  });

  it("drops pairs where either value is not finite", () => {
    const xs = series("trainId", [1, 2], [Number.NaN, 5]);
    const ys = series("trainId", [1, 2], [3, Infinity]);
    expect(joinOnTrains(xs, ys, "X", "Y")).toEqual({ x: [], y: [], trains: [] });
  });

  it("refuses series without train IDs, naming the one that lacks them", () => {
    const xs = series(null, [0, 1], [1, 2]);
    const ys = series("trainId", [0, 1], [1, 2]);
    expect(() => joinOnTrains(xs, ys, "Motor", "Intensity")).toThrow(NoTrainData);
    expect(() => joinOnTrains(xs, ys, "Motor", "Intensity")).toThrow(/^Motor in run 7 has no train IDs/);
  });

  it("refuses series along different coordinates", () => {
    const xs = series("trainId", [0], [1]);
    const ys = series("pulseId", [0], [1]);
    expect(() => joinOnTrains(xs, ys, "X", "Y")).toThrow("X is along trainId but Y along pulseId: they cannot be aligned");
  });
});
