// Copying from the table: Ctrl+C (or the cell menu) puts the selected rows on the
// clipboard tab-separated, for a spreadsheet, or as Markdown with the text the table
// shows (units included), for a logbook. With one row selected, Ctrl+C copies the
// cell that has the focus.

import type { AppContext } from "./appcontext";
import { addCellAction, type CellTarget } from "./cellmenu";
import { toMarkdown, toTsv, type ExportTable } from "./export";
import { booleanText } from "./format";
import { plural } from "./text";

type Form = "tsv" | "markdown" | "cell";

/** Put `text` on the clipboard; also where the page is not a "secure context". */
async function writeClipboard(text: string): Promise<boolean> {
  try {
    if (navigator.clipboard !== undefined) {
      await navigator.clipboard.writeText(text);
      return true;
    }
  } catch {
    // refused (no permission): try the copy command below
  }
  let done = false;
  const put = (event: ClipboardEvent): void => {
    event.clipboardData?.setData("text/plain", text);
    event.preventDefault();
    done = true;
  };
  document.addEventListener("copy", put, { once: true });
  try {
    document.execCommand("copy");
  } finally {
    document.removeEventListener("copy", put);
  }
  return done;
}

/** The text of `table` in `form` ("cell": its one value, as shown). */
function render(table: ExportTable, form: Form): string {
  if (form === "markdown") return toMarkdown(table);
  if (form === "tsv") return toTsv(table);
  const only = table.rows[0]?.[0];
  if (only === undefined) return "";
  if (typeof only.value === "boolean") return booleanText(only.value);
  return only.text ?? (only.value === null ? "" : String(only.value));
}

function what(rows: number, form: Form): string {
  if (form === "cell") return "Copied the cell";
  return `Copied ${plural(rows, "row")}${form === "markdown" ? " as Markdown" : " (tab-separated)"}`;
}

/** The variables whose cells a copy of `colId` (default: every shown column) holds. */
function copiedNames(app: AppContext, colId?: string): string[] {
  const columns = app.grid.displayedColumns().filter((c) => colId === undefined || c.colId === colId);
  return columns.flatMap((c) => (c.name === null ? [] : [c.name]));
}

/** Copy the rows of `runs` (all shown columns), or one cell. */
async function copy(app: AppContext, runs: number[], form: Form, colId?: string): Promise<void> {
  const rows = runs.map((run) => app.store.rowOf(run)).filter((row) => row !== undefined);
  if (rows.length === 0) {
    app.toast("Select rows first (click, Ctrl/Shift-click), then copy them", "error");
    return;
  }
  // Columns whose data is not in yet (fetched lazily): fetched first.
  await app.ensureColumns(copiedNames(app, colId));
  const table = app.tableOf(rows, colId === undefined ? undefined : [colId]);
  if (await writeClipboard(render(table, form))) app.toast(what(rows.length, form));
  else app.toast("The browser refused the clipboard: use Export instead", "error");
}

/** Copy the selected rows as Markdown (the Export menu's entry). */
export function copySelectedAsMarkdown(app: AppContext): Promise<void> {
  return copy(app, app.selectedRuns(), "markdown");
}

/** Set up this feature (main.ts calls it once at start-up). */
export function install(app: AppContext): void {
  const grid = document.getElementById("run-table");
  // Ctrl+C fires "copy" on the focused cell: answer it with the selection.
  grid?.addEventListener("copy", (event) => {
    if (app.grid.api.getEditingCells().length > 0) return; // the editor's own text
    if (window.getSelection()?.toString()) return; // text selected in a cell
    const focused = app.grid.api.getFocusedCell();
    const runs = app.selectedRuns();
    const focusedRow = focused === null ? undefined : app.grid.api.getDisplayedRowAtIndex(focused.rowIndex)?.data;
    const cellRun = focusedRow?.note === undefined ? focusedRow?.run : undefined; // (a note is no run)
    const one = runs.length <= 1 && cellRun !== undefined && focused !== null;
    if (copiedNames(app, one ? focused.column.getColId() : undefined).some((n) => !app.store.isLoaded(n))) {
      // Some of the data is still to come: copied once it is in, through the clipboard API.
      event.preventDefault();
      void (one ? copy(app, [cellRun], "cell", focused.column.getColId()) : copy(app, runs, "tsv"));
      return;
    }
    const table = one
      ? app.tableOf([app.store.rowOf(cellRun)!], [focused.column.getColId()])
      : app.tableOf(runs.map((run) => app.store.rowOf(run)).filter((row) => row !== undefined));
    if (table.rows.length === 0) return;
    event.clipboardData?.setData("text/plain", render(table, one ? "cell" : "tsv"));
    event.preventDefault();
    app.toast(what(table.rows.length, one ? "cell" : "tsv"));
  });

  const rows = (t: CellTarget): string => (t.runs.length > 1 ? `${t.runs.length} rows` : "row");
  addCellAction({ group: "copy", label: "Copy cell", run: (t) => void copy(app, [t.run], "cell", t.colId) });
  addCellAction({ group: "copy", label: (t) => `Copy ${rows(t)} for a spreadsheet (tab-separated)`, run: (t) => void copy(app, t.runs, "tsv") });
  addCellAction({ group: "copy", label: (t) => `Copy ${rows(t)} as Markdown`, run: (t) => void copy(app, t.runs, "markdown") });
}
