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

/**
 * How the numbers of one column are written, so that they read alike and their
 * decimal points line up: whole numbers as they are; others with the same number of
 * decimals (4, fewer for large values, so 454000.3 is "454000.30" and not
 * "4.5400e+5"); scientific notation for the whole column when it holds very small
 * (< 1e-4) or very large (≥ 1e12) values.
 */
export type NumberStyle = { kind: "integer" } | { kind: "fixed"; decimals: number } | { kind: "exponent" };

/** What a column's numbers are like; grows as values arrive (see `style`). */
export class NumberStats {
  count = 0;
  private fractions = false;
  private largest = 0;
  private smallest = Infinity;

  add(value: number): void {
    if (!Number.isFinite(value)) return;
    this.count += 1;
    const magnitude = Math.abs(value);
    if (!Number.isInteger(value) || magnitude >= 1e15) this.fractions = true;
    if (magnitude > this.largest) this.largest = magnitude;
    if (magnitude !== 0 && magnitude < this.smallest) this.smallest = magnitude;
  }

  style(): NumberStyle {
    if (!this.fractions) return { kind: "integer" };
    if (this.smallest < 1e-4 || this.largest >= 1e12) return { kind: "exponent" };
    const digits = this.largest < 1 ? 1 : Math.floor(Math.log10(this.largest)) + 1;
    return { kind: "fixed", decimals: Math.min(4, Math.max(0, 8 - digits)) };
  }
}

/** `value` written in a column's style; without a style, as formatNumber does. */
export function formatInStyle(value: number, style: NumberStyle | undefined): string {
  if (style === undefined || !Number.isFinite(value)) return formatNumber(value);
  if (style.kind === "exponent") return value.toExponential(4);
  if (style.kind === "fixed") return value.toFixed(style.decimals);
  return Number.isInteger(value) ? String(value) : formatNumber(value);
}

/** `re ± im j`, each part formatted as a number. */
export function formatComplex(re: number, im: number): string {
  const sign = im < 0 || Object.is(im, -0) ? "-" : "+";
  return `${formatNumber(re)}${sign}${formatNumber(Math.abs(im))}j`;
}

/** The text of one cell (without units); "" for empty cells and pictures. */
export function formatValue(value: Value | undefined, cell: CellInfo | undefined, style?: NumberStyle): string {
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
    return formatInStyle(value, style);
  }
  if (typeof value === "boolean") {
    return value ? "✓" : "✗";
  }
  return value;
}

/** A boolean in words: for tooltips and screen readers, where a tick says too little. */
export function booleanWord(value: boolean): string {
  return value ? "yes" : "no";
}

/** A boolean in files and on the clipboard, as `runtable export` and pandas write it. */
export function booleanText(value: boolean): string {
  return value ? "True" : "False";
}

/** Cell text with units, as shown in the grid. */
export function displayText(
  value: Value | undefined,
  cell: CellInfo | undefined,
  columnUnits: string | null,
  style?: NumberStyle,
): string {
  const text = formatValue(value, cell, style);
  const units = cell?.units ?? columnUnits;
  if (text === "" || units === null || units === undefined || units === "") {
    return text;
  }
  // (A yes/no has no units, whatever the variable says.)
  if (cell?.kind === "error" || cell?.kind === "skip" || typeof value === "string" || typeof value === "boolean") {
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
  if (typeof value === "boolean") {
    return booleanText(value);
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

// -- times ---------------------------------------------------------------------------

/** The zone times are shown in: the folder's `timezone` setting once the server said. */
let zone: string | undefined;
const timeFormats = new Map<string, Intl.DateTimeFormat>();

/** The parts of a time each style shows ("sv-SE" writes ISO order: 2026-01-31 14:05:09). */
const STYLES = {
  seconds: { dateStyle: "short", timeStyle: "medium" },
  minutes: { dateStyle: "short", timeStyle: "short" },
  clock: { timeStyle: "medium" },
  zone: { timeZoneName: "short" },
  offset: { timeZoneName: "longOffset" },
} as const satisfies Record<string, Intl.DateTimeFormatOptions>;

function timeFormat(style: keyof typeof STYLES): Intl.DateTimeFormat {
  let format = timeFormats.get(style);
  if (format === undefined) {
    format = new Intl.DateTimeFormat("sv-SE", { ...STYLES[style], hourCycle: "h23", ...(zone === undefined ? {} : { timeZone: zone }) });
    timeFormats.set(style, format);
  }
  return format;
}

/** Show times in the IANA zone `name` from now on; false (and no change) if this browser does not know it. */
export function setTimeZone(name: string): boolean {
  try {
    new Intl.DateTimeFormat("en", { timeZone: name });
  } catch {
    return false;
  }
  zone = name;
  timeFormats.clear();
  return true;
}

/** The IANA name of the zone times are shown in. */
export function timeZone(): string {
  return zone ?? Intl.DateTimeFormat().resolvedOptions().timeZone;
}

/**
 * Seconds since the epoch as "YYYY-MM-DD HH:MM:SS" (or without seconds, or only the
 * clock) in the folder's time zone; "" when unknown.
 */
export function formatTimestamp(value: unknown, style: "seconds" | "minutes" | "clock" = "seconds"): string {
  if (typeof value !== "number" || !Number.isFinite(value)) {
    return "";
  }
  return timeFormat(style).format(new Date(value * 1000));
}

/** The UTC offset of the zone at that time: "+01:00". */
function utcOffset(date: Date): string {
  const name = timeFormat("offset").formatToParts(date).find((p) => p.type === "timeZoneName")?.value ?? "GMT";
  const offset = name.replace(/^(GMT|UTC)/, "");
  return offset === "" ? "+00:00" : offset;
}

/**
 * A time for files: "2026-01-01 00:10:00+01:00", with microseconds when `fraction`;
 * the way pandas writes the same time (`runtable export`), so both exports agree.
 */
export function timestampWithOffset(value: unknown, fraction = false): string {
  if (typeof value !== "number" || !Number.isFinite(value)) {
    return "";
  }
  const date = new Date(Math.floor(value) * 1000);
  const micro = fraction ? `.${String(Math.round((value - Math.floor(value)) * 1e6)).padStart(6, "0")}` : "";
  return `${formatTimestamp(Math.floor(value))}${micro}${utcOffset(date)}`;
}

/** "2026-01-01 00:10:00 CET (UTC+01:00)": a time with its zone, for tooltips. */
export function describeTimestamp(value: unknown): string {
  if (typeof value !== "number" || !Number.isFinite(value)) {
    return "";
  }
  const date = new Date(value * 1000);
  const short = timeFormat("zone").formatToParts(date).find((p) => p.type === "timeZoneName")?.value ?? "";
  return `${formatTimestamp(value)} ${short} (UTC${utcOffset(date)}, ${timeZone()})`;
}
