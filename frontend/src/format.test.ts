import { describe, expect, it } from "vitest";

import {
  displayText,
  exportText,
  formatComplex,
  formatInStyle,
  formatNumber,
  formatTimestamp,
  NumberStats,
  readableTextColour,
  setTimeZone,
  timestampWithOffset,
} from "./format";

describe("formatNumber", () => {
  it("writes whole numbers whole and others with 4 decimals", () => {
    expect(formatNumber(3)).toBe("3");
    expect(formatNumber(3.14159)).toBe("3.1416");
  });

  it("writes very small and very large values in scientific notation", () => {
    expect(formatNumber(0.00001234)).toBe("1.2340e-5");
    expect(formatNumber(12345.6)).toBe("1.2346e+4");
  });

  it("names NaN and the infinities", () => {
    expect(formatNumber(Number.NaN)).toBe("NaN");
    expect(formatNumber(-Infinity)).toBe("-∞");
  });
});

describe("a column's number style", () => {
  it("lines up a column's decimals: fewer for large values, exponents for extremes", () => {
    const stats = new NumberStats();
    for (const v of [1.5, 454000.3]) stats.add(v);
    expect(stats.style()).toEqual({ kind: "fixed", decimals: 2 });
    expect(formatInStyle(454000.3, stats.style())).toBe("454000.30");
    const tiny = new NumberStats();
    tiny.add(0.00001);
    expect(tiny.style()).toEqual({ kind: "exponent" });
    const whole = new NumberStats();
    whole.add(3);
    expect(whole.style()).toEqual({ kind: "integer" });
  });
});

describe("cell text", () => {
  it("writes complex numbers with their sign", () => {
    expect(formatComplex(1, -2.5)).toBe("1-2.5000j");
    expect(formatComplex(0, 0)).toBe("0+0j");
  });

  it("adds units to numbers, not to errors, text or yes/no", () => {
    expect(displayText(2, undefined, "mJ")).toBe("2 mJ");
    expect(displayText("on", undefined, "mJ")).toBe("on");
    expect(displayText(null, { kind: "error", error_cls: "KeyError" }, "mJ")).toBe("KeyError");
    expect(displayText(true, undefined, "mJ")).toBe("✓");
  });

  it("writes exports with the read API's placeholders", () => {
    expect(exportText(null, { kind: "image" })).toBe("<thumbnail>");
    expect(exportText(null, { kind: "trendline" })).toBe("<sparkline>");
    expect(exportText(false, undefined)).toBe("False");
  });

  it("picks black or white text, whichever reads better on a background", () => {
    expect(readableTextColour("#ffff00")).toBe("#000000");
    expect(readableTextColour("#000080")).toBe("#ffffff");
    expect(readableTextColour("red")).toBeNull();
  });
});

describe("times", () => {
  it("shows times in the folder's zone, and files get the offset too", () => {
    expect(setTimeZone("Europe/Berlin")).toBe(true);
    expect(formatTimestamp(Date.UTC(2026, 0, 1, 0, 10) / 1000)).toBe("2026-01-01 01:10:00");
    expect(formatTimestamp(Date.UTC(2026, 6, 1, 0, 10) / 1000, "minutes")).toBe("2026-07-01 02:10");
    expect(timestampWithOffset(Date.UTC(2026, 0, 1, 0, 10) / 1000 + 0.25, true)).toBe("2026-01-01 01:10:00.250000+01:00");
    expect(formatTimestamp(null)).toBe("");
  });

  it("keeps the zone it has when asked for one it does not know", () => {
    expect(setTimeZone("UTC")).toBe(true);
    expect(setTimeZone("Mars/Olympus_Mons")).toBe(false);
    expect(timestampWithOffset(0)).toBe("1970-01-01 00:00:00+00:00");
  });
});
