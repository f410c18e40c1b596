// What each column of the table holds, for how it is drawn: one number style per
// column (format.ts), whether "varied within the run" carries a signal there, and a
// starting width that fits the column's content instead of one width for all.
//
// Stats are gathered lazily (a column is scanned the first time it is drawn) and grow
// with each update; a full reload starts them afresh.

import { NumberStats, displayText, type NumberStyle } from "./format";
import type { RunRow, TableStore, VariableInfo } from "./table";

/** Per column: its numbers, and how many of them varied within their run. */
class ColumnStats {
  readonly numbers = new NumberStats();
  varied = 0;
  images = 0;
  trendlines = 0;
  cells = 0;
}

/** Widths in pixels. Text is measured; cells and headers add their padding and icons. */
const CELL_PADDING = 24; // grid.ts: cellHorizontalPadding on both sides, and a little air
const HEADER_EXTRA = 46; // the same padding, the filter icon, room for a sort arrow
const MIN_WIDTH = 64;
const MAX_WIDTH = 240;
/** Enough rows to see what a column holds without reading all 20,000. */
const SAMPLE_ROWS = 400;

let canvas: CanvasRenderingContext2D | null = null;

/** Width of `text` in `font` (a CSS font shorthand). */
export function textWidth(text: string, font: string): number {
  canvas ??= document.createElement("canvas").getContext("2d");
  if (canvas === null) return text.length * 7.5;
  canvas.font = font;
  return canvas.measureText(text).width;
}

/** Width a header needs when its text may wrap onto two lines (wrapHeaderText). */
function headerWidth(text: string, cellFont: string): number {
  const font = `600 ${cellFont}`; // headers are semi-bold (grid.ts)
  const words = text.split(/\s+/).filter((w) => w !== "");
  const longest = Math.max(0, ...words.map((w) => textWidth(w, font)));
  // The best split into two lines.
  let best = textWidth(text, font);
  for (let i = 1; i < words.length; i++) {
    const first = textWidth(words.slice(0, i).join(" "), font);
    const second = textWidth(words.slice(i).join(" "), font);
    best = Math.min(best, Math.max(first, second));
  }
  return Math.max(longest, best) + HEADER_EXTRA;
}

export class ColumnLooks {
  private readonly stats = new Map<string, ColumnStats>();

  constructor(private readonly store: TableStore) {}

  /** Forget everything (a new snapshot). */
  clear(): void {
    this.stats.clear();
  }

  private of(name: string): ColumnStats {
    let stats = this.stats.get(name);
    if (stats === undefined) {
      stats = new ColumnStats();
      this.stats.set(name, stats);
      for (const row of this.store.rows) this.add(stats, row, name);
    }
    return stats;
  }

  private add(stats: ColumnStats, row: RunRow, name: string): void {
    const value = this.store.value(row, name);
    const cell = this.store.cell(row, name);
    if (cell?.kind === "image") stats.images += 1;
    else if (cell?.kind === "trendline") stats.trendlines += 1;
    if (value !== null || cell !== undefined) stats.cells += 1;
    if (typeof value === "number" && cell?.kind !== "error" && cell?.kind !== "skip") {
      stats.numbers.add(value);
      if (cell?.max_diff === true) stats.varied += 1;
    }
  }

  /**
   * New values in `rows` of the columns `names`; returns the names whose number style
   * changed (their other cells must be drawn again).
   */
  update(rows: readonly RunRow[], names: readonly string[]): string[] {
    const changed: string[] = [];
    for (const name of names) {
      const stats = this.stats.get(name);
      if (stats === undefined) continue; // not drawn yet: scanned when it is
      const before = JSON.stringify(stats.numbers.style());
      for (const row of rows) this.add(stats, row, name);
      if (JSON.stringify(stats.numbers.style()) !== before) changed.push(name);
    }
    return changed;
  }

  numberStyle(name: string): NumberStyle {
    return this.of(name).numbers.style();
  }

  /**
   * Is "varied within the run" worth showing (in bold) in this column? Not when every
   * number varied (a per-train mean always does): then bold carries no signal.
   */
  variationTells(name: string): boolean {
    const stats = this.of(name);
    return stats.varied > 0 && stats.varied < stats.numbers.count;
  }

  /** A width that fits the column's header (on up to two lines) and its cells. */
  width(variable: VariableInfo, font: string): number {
    const stats = this.of(variable.name);
    const header = headerWidth(variable.title.split("/").pop()?.trim() ?? variable.title, font);
    let content = 0;
    if (stats.images > stats.cells / 2) {
      content = 56; // the thumbnail (cells.ts)
    } else if (stats.trendlines > stats.cells / 2) {
      content = 90;
    } else {
      const rows = this.store.rows;
      const step = Math.max(1, Math.floor(rows.length / SAMPLE_ROWS));
      const style = stats.numbers.style();
      for (let i = rows.length - 1; i >= 0; i -= step) {
        const row = rows[i] as RunRow;
        const text = displayText(this.store.value(row, variable.name), this.store.cell(row, variable.name), variable.units, style);
        content = Math.max(content, textWidth(text, font));
      }
      if (stats.varied > 0) content *= 1.08; // bold cells are wider
    }
    return Math.round(Math.min(MAX_WIDTH, Math.max(MIN_WIDTH, header, content + CELL_PADDING)));
  }

  /** Width of a fixed column whose cells are `texts` (e.g. comments; capped). */
  static fitting(header: string, texts: Iterable<string>, font: string, max = MAX_WIDTH): number {
    let content = 0;
    for (const text of texts) content = Math.max(content, textWidth(text, font));
    return Math.round(Math.min(max, Math.max(MIN_WIDTH, headerWidth(header, font), content + CELL_PADDING)));
  }
}
