import { describe, expect, it } from "vitest";

import { axisNumber, axisTitle, coordRangeToIndex, eventRange, formatCoord } from "./axes";

describe("axisNumber", () => {
  it("keeps numbers and reads numeric text", () => {
    expect(axisNumber(2.5, false)).toBe(2.5);
    expect(axisNumber("2.5", false)).toBe(2.5);
  });

  it("reads plotly's date text as UTC epoch milliseconds, fractions of seconds included", () => {
    expect(axisNumber("2026-01-02 03:04:05.25", true)).toBe(Date.UTC(2026, 0, 2, 3, 4, 5) + 250);
    expect(axisNumber("2026-01-02", true)).toBe(Date.UTC(2026, 0, 2));
  });

  it("gives NaN for what is not a value", () => {
    expect(axisNumber("", false)).toBeNaN();
    expect(axisNumber(null, true)).toBeNaN();
  });
});

describe("eventRange", () => {
  it("reads a relayout event's range in either of plotly's two forms, lowest first", () => {
    expect(eventRange({ "xaxis.range[0]": 5, "xaxis.range[1]": 2 }, "xaxis", false)).toEqual([2, 5]);
    expect(eventRange({ "yaxis.range": [1, 3] }, "yaxis", false)).toEqual([1, 3]);
  });

  it("gives null when the event does not change that axis", () => {
    expect(eventRange({ "xaxis.autorange": true }, "xaxis", false)).toBeNull();
  });
});

describe("coordRangeToIndex", () => {
  const axis = { name: "x", start: 0, step: 1, size: 10 };

  it("maps a coordinate range onto the indices under it, one past the end", () => {
    const coords = [0, 10, 20, 30, 40, 50, 60, 70, 80, 90];
    expect(coordRangeToIndex(20, 40, coords, axis, false, 10)).toEqual([2, 5]);
  });

  it("works for decreasing coordinates and reversed bounds alike", () => {
    const coords = [90, 80, 70, 60, 50, 40, 30, 20, 10, 0];
    expect(coordRangeToIndex(40, 20, coords, axis, false, 10)).toEqual([5, 8]);
  });

  it("finds the data indices inside one downsampled pixel", () => {
    // Every 4th index drawn (pixels stand for indices 0, 4, 8, ...): zoom between two.
    const strided = { name: "x", start: 0, step: 4, size: 3 };
    expect(coordRangeToIndex(1, 2, [0, 4, 8], strided, false, 12)).toEqual([1, 3]);
  });

  it("stays within the data", () => {
    expect(coordRangeToIndex(-100, 1000, [0, 1, 2], { name: null, start: 0, step: 1, size: 3 }, false, 3)).toEqual([0, 3]);
  });

  it("gives one pixel's indices when the axis has one coordinate", () => {
    expect(coordRangeToIndex(0, 1, [5], { name: null, start: 8, step: 4, size: 1 }, true, 10)).toEqual([8, 10]);
  });
});

describe("axis labels", () => {
  it("writes dates as UTC text without needless zeros, and numbers as they are", () => {
    expect(formatCoord(Date.UTC(2026, 0, 2, 3, 4, 5), true)).toBe("2026-01-02 03:04:05");
    expect(formatCoord(Number.NaN, true)).toBe("NaT");
    expect(formatCoord(1.5, false)).toBe("1.5");
  });

  it("names an axis with its units, or says it is drawn in indices", () => {
    expect(axisTitle({ name: "delay", units: "ps" }, "index")).toBe("delay (ps)");
    expect(axisTitle({ name: "delay", note: "not monotonic" }, "index")).toBe("delay (index)");
    expect(axisTitle(undefined, "index")).toBe("index");
  });
});
