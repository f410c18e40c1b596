import { describe, expect, it } from "vitest";

import { progressFraction, progressText, type JobProgress } from "./progress";

const base: JobProgress = { variable: "agipd_mean", done: 2, total: 14, step: 0, steps: null, variable_s: 41 };

describe("progressText", () => {
  it("says which variable of how many is being computed, and for how long", () => {
    expect(progressText(base)).toBe("agipd_mean, 3 of 14, 41 s");
  });

  it("adds the variable's own steps, counted or of a known number", () => {
    expect(progressText({ ...base, step: 1200, steps: 10000 })).toBe("agipd_mean, 3 of 14, 41 s (1200 of 10000)");
    expect(progressText({ ...base, step: 7 })).toBe("agipd_mean, 3 of 14, 41 s (7 done)");
  });

  it("says how many are done between variables", () => {
    expect(progressText({ ...base, variable: "", done: 14 })).toBe("14 of 14 done");
  });
});

describe("progressFraction", () => {
  it("counts whole variables plus the current one's share of its steps", () => {
    expect(progressFraction({ ...base, done: 1, total: 4, step: 50, steps: 100 })).toBeCloseTo(0.375);
    expect(progressFraction({ ...base, done: 1, total: 4 })).toBe(0.25);
  });

  it("stays between 0 and 1", () => {
    expect(progressFraction({ ...base, total: 0 })).toBe(0);
    expect(progressFraction({ ...base, done: 4, total: 4, step: 9, steps: 3 })).toBe(1);
  });
});
