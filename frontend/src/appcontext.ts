// What the page gives each of its feature modules (previews, plots, the context
// editor, processing control). Each module exports `install(app: AppContext)`, which
// main.ts calls once at start-up; a module adds its own DOM, dialogs and menu actions
// and never reaches into another module.

import type { ExportTable } from "./export";
import type { LiveEvent } from "./generated/events";
import type { RunGrid } from "./grid";
import type { RunRow, TableStore } from "./table";

export interface AppContext {
  /** The table's data: variables, rows, values (see table.ts). Read-only by convention. */
  readonly store: TableStore;
  readonly grid: RunGrid;
  /** Show a short message (errors stay longer). */
  toast(message: string, kind?: "info" | "error"): void;
  /**
   * Call `listener` whenever table data changed: with the runs whose values changed,
   * or null after a full reload (anything may have changed, columns included).
   */
  onData(listener: (runs: number[] | null) => void): void;
  /** Call `listener` for every live event (after the table has applied it). */
  onEvent(listener: (event: LiveEvent) => void): void;
  /** Run numbers of the selected rows, in table order. */
  selectedRuns(): number[];
  /**
   * `rows` in the shown columns (or only `colIds`), as exports and copies see them:
   * raw values, and the text the table shows.
   */
  tableOf(rows: RunRow[], colIds?: string[]): ExportTable;
  /** Reload the whole table now (e.g. after the columns changed). */
  reload(): Promise<void>;
  /**
   * Resolves once the data of these columns is in the store: a full load brings the
   * first columns, the others come when needed (or a moment later, in the background).
   */
  ensureColumns(names: readonly string[]): Promise<void>;
}
