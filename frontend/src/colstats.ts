// What each column of the table holds, for how it is drawn: one number style per
// column (format.ts), whether "varied within the run" carries a signal there, and a
// starting width that fits the column's content instead of one width for all.
//
// Stats are gathered lazily (a column is scanned the first time it is drawn) and grow
// with each update; a full reload starts them afresh.

import { NumberStats, displayText, type NumberStyle } from "./format";
import type { CellInfo, RunRow, TableStore, Value, VariableInfo } from "./table";

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
/** Enough rows to see what a column holds without reading all 20,000 (of 500 columns). */
const SAMPLE_ROWS = 120;

let canvas: CanvasRenderingContext2D | null = null;
/** Width of each character met, per font: summing them is far cheaper than measureText. */
const charWidths = new Map<string, Map<string, number>>();

/** Width of `text` in `font` (a CSS font shorthand), ignoring kerning. */
export function textWidth(text: string, font: string): number {
  canvas ??= document.createElement("canvas").getContext("2d");
  if (canvas === null) return text.length * 7.5;
  let widths = charWidths.get(font);
  if (widths === undefined) {
    widths = new Map();
    charWidths.set(font, widths);
  }
  let total = 0;
  for (const char of text) {
    let width = widths.get(char);
    if (width === undefined) {
      canvas.font = font;
      width = canvas.measureText(char).width;
      widths.set(char, width);
    }
    total += width;
  }
  return total;
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
      const column = this.store.columnData(name);
      if (column !== undefined) this.scan(stats, column.values, column.cells, this.store.rows.length);
    }
    return stats;
  }

  /** The whole column in one pass over its arrays (20,000 rows: a millisecond or two). */
  private scan(stats: ColumnStats, values: ArrayLike<Value>, cells: ReadonlyMap<number, CellInfo>, rows: number): void {
    for (let slot = 0; slot < rows; slot++) {
      const value = values[slot];
      if (value === null || value === undefined) continue;
      if (typeof value === "number" && Number.isNaN(value)) continue;
      stats.cells += 1;
      if (typeof value === "number") stats.numbers.add(value);
    }
    for (const [slot, cell] of cells) {
      if (slot >= rows) continue;
      const value = values[slot];
      const shown = value !== null && value !== undefined && !(typeof value === "number" && Number.isNaN(value));
      if (!shown) stats.cells += 1;
      if (cell.kind === "image") stats.images += 1;
      else if (cell.kind === "trendline") stats.trendlines += 1;
      if (cell.max_diff === true && typeof value === "number" && Number.isFinite(value)) stats.varied += 1;
    }
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

  /**
   * A width that fits the column's header (on up to two lines) and its cells, from a
   * sample of its rows (every column gets one when the table loads: it must be cheap).
   */
  width(variable: VariableInfo, font: string): number {
    const rows = this.store.rows;
    const step = Math.max(1, Math.floor(rows.length / SAMPLE_ROWS));
    const sample = new ColumnStats();
    const sampled: RunRow[] = [];
    for (let i = rows.length - 1; i >= 0; i -= step) {
      const row = rows[i] as RunRow;
      sampled.push(row);
      this.add(sample, row, variable.name);
    }
    const header = headerWidth(variable.title.split("/").pop()?.trim() ?? variable.title, font);
    let content = 0;
    if (sample.images > sample.cells / 2) {
      content = 56; // the thumbnail (cells.ts)
    } else if (sample.trendlines > sample.cells / 2) {
      content = 90;
    } else {
      const style = this.stats.get(variable.name)?.numbers.style() ?? sample.numbers.style();
      for (const row of sampled) {
        const text = displayText(this.store.value(row, variable.name), this.store.cell(row, variable.name), variable.units, style);
        content = Math.max(content, textWidth(text, font));
      }
      if (sample.varied > 0) content *= 1.08; // bold cells are wider
    }
    return Math.round(Math.min(MAX_WIDTH, Math.max(MIN_WIDTH, header, content + CELL_PADDING)));
  }

  /** Width of a fixed column whose cells are `texts` (e.g. comments; capped; sampled). */
  static fitting(header: string, texts: readonly string[], font: string, max = MAX_WIDTH): number {
    let content = 0;
    const step = Math.max(1, Math.floor(texts.length / SAMPLE_ROWS));
    for (let i = texts.length - 1; i >= 0; i -= step) content = Math.max(content, textWidth(texts[i] ?? "", font));
    return Math.round(Math.min(max, Math.max(MIN_WIDTH, headerWidth(header, font), content + CELL_PADDING)));
  }
}
