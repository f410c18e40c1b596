// How values look in the table: the reference system's number rules, units, complex
// numbers, and the text used for images/trendlines/errors in exports.

import type { CellInfo, Value } from "./table";

/**
 * A number as the reference table shows it: integers as they are, other values with 4
 * decimals, and scientific notation (4 decimals) when very small or very large.
 */
export function formatNumber(value: number): string {
  if (Number.isNaN(value)) {
    return "NaN";
  }
  if (!Number.isFinite(value)) {
    return value > 0 ? "∞" : "-∞";
  }
  // JSON cannot tell 3.0 from 3: whole numbers are shown whole, as integers are.
  if (Number.isInteger(value) && Math.abs(value) < 1e15) {
    return String(value);
  }
  const magnitude = Math.abs(value);
  if (magnitude !== 0 && (magnitude < 1e-4 || magnitude >= 1e4)) {
    return value.toExponential(4);
  }
  return value.toFixed(4);
}

/** `re ± im j`, each part formatted as a number. */
export function formatComplex(re: number, im: number): string {
  const sign = im < 0 || Object.is(im, -0) ? "-" : "+";
  return `${formatNumber(re)}${sign}${formatNumber(Math.abs(im))}j`;
}

/** The text of one cell (without units); "" for empty cells and pictures. */
export function formatValue(value: Value | undefined, cell: CellInfo | undefined): string {
  if (cell !== undefined) {
    switch (cell.kind) {
      case "complex":
        if (typeof cell.re === "number" && typeof cell.im === "number") {
          return formatComplex(cell.re, cell.im);
        }
        break;
      case "error":
        return cell.error_cls ?? "error";
      case "skip":
        return "skipped";
      case "image":
      case "trendline":
        return "";
      default:
        break;
    }
  }
  if (value === null || value === undefined) {
    return "";
  }
  if (typeof value === "number") {
    return formatNumber(value);
  }
  if (typeof value === "boolean") {
    return value ? "true" : "false";
  }
  return value;
}

/** Cell text with units, as shown in the grid. */
export function displayText(
  value: Value | undefined,
  cell: CellInfo | undefined,
  columnUnits: string | null,
): string {
  const text = formatValue(value, cell);
  const units = cell?.units ?? columnUnits;
  if (text === "" || units === null || units === undefined || units === "") {
    return text;
  }
  if (cell?.kind === "error" || cell?.kind === "skip" || typeof value === "string") {
    return text;
  }
  return `${text} ${units}`;
}

/**
 * Placeholder text for exports: the words of the read API and `runtable export`
 * (`runtable.store.table.PLACEHOLDERS`), so that a file reads the same whichever wrote it.
 */
export function exportText(value: Value | undefined, cell: CellInfo | undefined): string {
  if (cell?.kind === "image") {
    return "<thumbnail>";
  }
  if (cell?.kind === "trendline") {
    return "<sparkline>";
  }
  if (cell?.kind === "error" || cell?.kind === "skip") {
    return "";
  }
  return formatValue(value, cell);
}

/**
 * Black or white, whichever reads better on `background` ("#rrggbb"); null when the
 * colour cannot be read. Uses WCAG relative luminance.
 */
export function readableTextColour(background: string): string | null {
  const match = /^#?([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(background.trim());
  if (match === null) {
    return null;
  }
  const channel = (hex: string): number => {
    const c = Number.parseInt(hex, 16) / 255;
    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  };
  const [r, g, b] = [match[1], match[2], match[3]].map((h) => channel(h ?? "00")) as [
    number,
    number,
    number,
  ];
  const luminance = 0.2126 * r + 0.7152 * g + 0.0722 * b;
  // Contrast with black (L+0.05)/0.05 vs with white 1.05/(L+0.05): equal at L≈0.179.
  return luminance > 0.179 ? "#000000" : "#ffffff";
}

/** A safe CSS colour from a "#rrggbb" string, or null. */
export function cssColour(background: string | undefined): string | null {
  if (background === undefined) {
    return null;
  }
  return /^#[0-9a-f]{6}$/i.test(background.trim()) ? background.trim() : null;
}
