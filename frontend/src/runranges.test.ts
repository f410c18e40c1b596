import { describe, expect, it } from "vitest";

import { compressRuns } from "./runranges";

describe("compressRuns", () => {
  it("writes consecutive runs as one range and the others one by one", () => {
    expect(compressRuns([17, 20, 21, 22])).toBe("17, 20-22");
  });

  it("sorts the runs and drops repeated ones first", () => {
    expect(compressRuns([5, 3, 4, 4, 9, 3])).toBe("3-5, 9");
  });

  it("gives one run alone and no text for no runs", () => {
    expect(compressRuns([42])).toBe("42");
    expect(compressRuns([])).toBe("");
  });

  it("does not change the order of the list it was given", () => {
    const runs = [3, 1, 2];
    compressRuns(runs);
    expect(runs).toEqual([3, 1, 2]);
  });
});
