// The run table view: an AG Grid with the fixed columns Run, Timestamp, Comment and
// one column per variable, reading its values from the TableStore. Values are shown as
// text (AG Grid sets textContent; cell renderers build DOM nodes): no string from the
// data is ever parsed as HTML.

import {
  AllCommunityModule,
  ModuleRegistry,
  colorSchemeVariable,
  createGrid,
  themeQuartz,
  type CellClassParams,
  type CellContextMenuEvent,
  type CellDoubleClickedEvent,
  type ColDef,
  type ColGroupDef,
  type ColumnState,
  type GridApi,
  type ICellRendererParams,
  type IRowNode,
  type ValueFormatterParams,
  type ValueSetterParams,
} from "ag-grid-community";

import { markClasses, markNotes } from "./cellmarks";
import { openCell, showCellMenu, type CellTarget } from "./cellmenu";
import { SparklineRenderer, ThumbnailRenderer } from "./cells";
import { ColumnLooks } from "./colstats";
import { ValueFilter, type ValueFilterModel } from "./filters";
import { booleanWord, cssColour, describeTimestamp, displayText, exportText, formatTimestamp, formatValue, readableTextColour, timeZone } from "./format";
import { NoteRowRenderer, noteRows, placeNotes, rowId } from "./notes/rows";
import { plotColumn } from "./plot/include";
import { progressFraction, progressText } from "./progress";
import { isNote, type CellInfo, type RunRow, type TableStore, type TimeComment, type Value, type VariableInfo } from "./table";
import { databaseKey, loadView, saveView, type ViewState } from "./view";
import type { UrlView } from "./viewurl";
import { RunFilter, joinAnd, modelExpression, type WherePart } from "./where";

/** Columns that are not variables, by their name in the filter language. */
const FIXED: Record<string, true> = { run: true, timestamp: true, comment: true };

ModuleRegistry.registerModules([AllCommunityModule]);

/**
 * Quartz, with light and dark modes switched by `data-ag-theme-mode` on <html>
 * (theme.ts); colours match the page chrome in style.css.
 */
const gridTheme = themeQuartz
  .withPart(colorSchemeVariable)
  .withParams({
    fontFamily: "inherit",
    fontSize: 13,
    headerFontWeight: 600,
    spacing: 6,
    // Half the theme's default: a run table is read like a spreadsheet, columns close.
    cellHorizontalPadding: 10,
    wrapperBorderRadius: 6,
    accentColor: "#2f6fdf",
    backgroundColor: "#ffffff",
    foregroundColor: "#1d232b",
    headerBackgroundColor: "#f3f5f8",
    borderColor: "#dde1e6",
    oddRowBackgroundColor: "#fafbfc",
  })
  .withParams(
    {
      accentColor: "#6f9ff5",
      backgroundColor: "#1c2027",
      foregroundColor: "#e3e7ec",
      headerBackgroundColor: "#242a32",
      borderColor: "#2d333c",
      oddRowBackgroundColor: "#1f242c",
    },
    "dark",
  );

/** Column id of a variable's column. */
export const varColId = (name: string): string => `var:${name}`;

/** What the grid asks of the page when a person edits a cell. */
export interface GridCallbacks {
  /** `base`: the comment when the person started editing (what the edit was made on). */
  editComment(row: RunRow, text: string, previous: string | null, base: string | null): void;
  editValue(row: RunRow, variable: VariableInfo, text: string, previous: Value, base: Value): void;
  /** Columns, widths, order, sort or filters changed (for the filter bar, the panel). */
  viewChanged(): void;
  /** Fetch the data of these columns now (they are on screen, sorted or filtered). */
  needColumns(names: readonly string[]): Promise<void>;
  /** The server could not apply a filter (an unknown column, say). */
  filterFailed(expression: string, error: unknown): void;
}

/**
 * Sort order of two cells: AG Grid's default (empty first, then `<`), except that
 * complex numbers (sent as text) sort by real part, then imaginary part, as numpy does,
 * and among plain numbers as numbers with no imaginary part.
 */
export function compareValues(a: Value, b: Value, cellA?: CellInfo, cellB?: CellInfo): number {
  const complexA = complexParts(a, cellA);
  const complexB = complexParts(b, cellB);
  if (complexA !== null && complexB !== null) {
    return complexA[0] - complexB[0] || complexA[1] - complexB[1];
  }
  if (a === null || a === undefined) return b === null || b === undefined ? 0 : -1;
  if (b === null || b === undefined) return 1;
  if (a === b) return 0;
  return a < b ? -1 : 1;
}

/** [re, im] of a complex cell or a plain number; null for anything else. */
function complexParts(value: Value, cell: CellInfo | undefined): [number, number] | null {
  if (cell?.kind === "complex" && typeof cell.re === "number" && typeof cell.im === "number") {
    return [cell.re, cell.im];
  }
  if (typeof value === "number" && cell?.kind !== "error" && cell?.kind !== "skip") {
    return [value, 0];
  }
  return null;
}

/** A leaf definition and the path of its title ("a/b/c" → ["a","b","c"]). */
interface Leaf {
  path: string[];
  def: ColDef<RunRow>;
}

/** Group leaves whose titles share a leading `/` part, keeping the column order. */
function groupLeaves(leaves: Leaf[], depth: number, prefix: string, counter: { n: number }): (ColDef<RunRow> | ColGroupDef<RunRow>)[] {
  const out: (ColDef<RunRow> | ColGroupDef<RunRow>)[] = [];
  let i = 0;
  while (i < leaves.length) {
    const leaf = leaves[i] as Leaf;
    if (leaf.path.length - 1 <= depth) {
      out.push({ ...leaf.def, headerName: leaf.path.slice(depth).join("/") });
      i += 1;
      continue;
    }
    const key = leaf.path[depth] as string;
    let j = i + 1;
    while (j < leaves.length && (leaves[j] as Leaf).path.length - 1 > depth && (leaves[j] as Leaf).path[depth] === key) {
      j += 1;
    }
    const id = `${prefix}/${key}#${counter.n++}`;
    out.push({
      groupId: id,
      headerName: key,
      headerClass: "rt-group",
      children: groupLeaves(leaves.slice(i, j), depth + 1, id, counter),
    });
    i = j;
  }
  return out;
}

export class RunGrid {
  readonly api: GridApi<RunRow>;
  private readonly store: TableStore;
  private readonly looks: ColumnLooks;
  private fontCache: string | undefined;
  private readonly container: HTMLElement;
  private readonly callbacks: GridCallbacks;
  private readonly revisions = new Map<number, number>();
  private view: ViewState = { columns: [], hidden: [], tags: [], hierarchical: true };
  private viewKey = "";
  private saveTimer: number | undefined;
  private restoring = false;
  /** The value of each cell being edited when its editing started (by `run/colId`). */
  private editBases = new Map<string, Value>();
  /** Filters typed in the filter language that no column filter shows. */
  private typed: string[] = [];
  /** Which runs the filters keep (the server evaluates them). */
  readonly runFilter: RunFilter;
  private refilterTimer: number | undefined;
  /** The notes shown among the runs (notes/rows.ts); none while that is switched off. */
  private notes: RunRow[] = [];
  /** What `notesPlace` last found (undefined: to be read again). */
  private notesOrder: "asc" | "desc" | null | undefined;

  constructor(container: HTMLElement, store: TableStore, callbacks: GridCallbacks) {
    this.store = store;
    this.looks = new ColumnLooks(store);
    this.container = container;
    this.callbacks = callbacks;
    this.runFilter = new RunFilter(
      () => this.api.onFilterChanged(),
      (expression, error) => callbacks.filterFailed(expression, error),
    );
    this.api = createGrid<RunRow>(container, {
      theme: gridTheme,
      columnDefs: this.staticColumns(),
      rowData: [],
      loading: true,
      getRowId: (params) => rowId(params.data),
      isFullWidthRow: (params) => isNote(params.rowNode.data),
      fullWidthCellRenderer: NoteRowRenderer,
      // Which runs pass is the server's answer to the filters (where.ts); notes are no
      // runs: they have a place among the runs only in an order by time.
      isExternalFilterPresent: () => this.runFilter.active || this.notes.length > 0,
      doesExternalFilterPass: (node) => {
        if (node.data === undefined) return true;
        if (isNote(node.data)) return this.notesPlace() !== null;
        return !this.runFilter.active || this.runFilter.keeps(node.data.run);
      },
      postSortRows: (params) => {
        const order = this.notes.length > 0 ? this.notesPlace(true) : null;
        if (order !== null) placeNotes(params.nodes, (row) => store.startTime[row.slot] ?? null, order);
      },
      defaultColDef: {
        sortable: true,
        resizable: true,
        filter: ValueFilter,
        minWidth: 56,
        // Long titles take two lines rather than a wide column.
        wrapHeaderText: true,
        autoHeaderHeight: true,
      },
      suppressFieldDotNotation: true,
      enableBrowserTooltips: true,
      tooltipShowMode: "whenTruncated",
      suppressDragLeaveHidesColumns: true,
      rowSelection: {
        mode: "multiRow",
        checkboxes: false,
        headerCheckbox: false,
        enableClickSelection: true,
        isRowSelectable: (node) => !isNote(node.data),
      },
      stopEditingWhenCellsLoseFocus: true,
      // What an edit was made on: a live event may change the cell while someone types.
      onCellEditingStarted: (e) => {
        if (e.data !== undefined) this.editBases.set(`${e.data.run}/${e.column.getColId()}`, (e.value ?? null) as Value);
      },
      animateRows: false,
      onColumnMoved: (e) => e.finished && this.viewChanged(),
      onColumnResized: (e) => {
        if (!e.finished) return;
        // Only widths a person chose are kept; the others follow the content.
        if (e.source === "uiColumnResized") {
          const ids = new Set([...(this.view.resized ?? []), ...(e.columns ?? []).map((c) => c.getColId())]);
          this.view.resized = [...ids];
        }
        this.viewChanged();
      },
      onSortChanged: () => {
        // (Whether notes have a place depends on the order.)
        this.notesOrder = undefined;
        if (this.notes.length > 0) this.api.onFilterChanged();
        this.viewChanged();
        this.needData(this.api.getColumnState().filter((c) => c.sort).map((c) => c.colId));
      },
      onFilterChanged: () => {
        void this.runFilter.set(this.whereExpression());
        this.callbacks.viewChanged();
        this.needData(Object.keys(this.api.getFilterModel()));
      },
      // Columns scrolled into view: their data, if it is not in yet.
      onVirtualColumnsChanged: () => this.needData(this.columnsInView().map(varColId)),
      onColumnVisible: () => this.callbacks.viewChanged(),
      // Our own menu (cellmenu.ts) instead of the browser's.
      preventDefaultOnContextMenu: true,
      onCellContextMenu: (e: CellContextMenuEvent<RunRow>) => {
        const target = this.targetOf(e.data, e.column.getColId());
        if (target !== null && e.event instanceof MouseEvent) showCellMenu(target, e.event);
      },
      onCellDoubleClicked: (e: CellDoubleClickedEvent<RunRow>) => {
        if (e.colDef.editable === true) return;
        const target = this.targetOf(e.data, e.column.getColId());
        if (target !== null) openCell(target);
      },
    });
    // A change made just before closing the page is not lost to the save delay.
    window.addEventListener("pagehide", () => this.saveNow());
  }

  /** Ask for the data of the variable columns `colIds` that are not in the store. */
  private needData(colIds: readonly string[]): void {
    const names = colIds.filter((id) => id.startsWith("var:")).map((id) => id.slice(4));
    if (names.some((name) => !this.store.isLoaded(name))) void this.callbacks.needColumns(names);
  }

  /** Names of the variable columns drawn now (on screen or just beside it). */
  columnsInView(): string[] {
    return this.api
      .getAllDisplayedVirtualColumns()
      .map((column) => column.getColId())
      .filter((id) => id.startsWith("var:"))
      .map((id) => id.slice(4));
  }

  /** The data of columns `names` came: draw it, and sort or filter by it again. */
  columnsLoaded(names: readonly string[]): void {
    const ids = new Set(names.map(varColId));
    this.api.refreshCells({ columns: [...ids], force: true });
    if (this.api.getColumnState().some((c) => c.sort && ids.has(c.colId))) this.api.onSortChanged();
    if (Object.keys(this.api.getFilterModel()).some((id) => ids.has(id))) this.api.onFilterChanged();
  }

  private viewChanged(): void {
    if (this.restoring) {
      return;
    }
    window.clearTimeout(this.saveTimer);
    this.saveTimer = window.setTimeout(() => this.saveNow(), 150);
    this.callbacks.viewChanged();
  }

  /** Write the view (order, widths, sort, hidden, tags) to this browser's storage now. */
  saveNow(): void {
    window.clearTimeout(this.saveTimer);
    if (this.viewKey === "") {
      return;
    }
    // Visibility is ours (hidden columns and the tag filter), not AG Grid's.
    this.view.columns = this.api.getColumnState().map(({ colId, width, sort, sortIndex }) => ({
      colId,
      width,
      sort: sort ?? null,
      sortIndex: sortIndex ?? null,
    }));
    saveView(this.viewKey, this.view);
  }

  private staticColumns(): ColDef<RunRow>[] {
    const store = this.store;
    return [
      {
        colId: "run",
        headerName: "Run",
        headerTooltip: "Run number; a spinning mark while the run is being processed",
        valueGetter: (p) => p.data?.run,
        pinned: "left",
        width: ColumnLooks.fitting("Run", ["99999"], this.font()) + 14, // + the sort arrow
        type: "rightAligned",
        sort: "asc",
        filterParams: this.filterParams((row) => row.run, (row) => String(row.run)),
        cellClassRules: {
          "rt-job-running": (p: CellClassParams<RunRow>) => p.data !== undefined && store.jobs.get(p.data.run) === "running",
          "rt-job-queued": (p: CellClassParams<RunRow>) => p.data !== undefined && store.jobs.get(p.data.run) === "queued",
          "rt-job-stuck": (p: CellClassParams<RunRow>) => p.data !== undefined && store.stuck.has(p.data.run),
        },
        // A running job's progress: a bar along the cell's foot, and its words in the tooltip.
        cellStyle: (p) => {
          const progress = p.data === undefined ? undefined : store.progress.get(p.data.run);
          return { "--rt-progress": progress === undefined ? "0" : String(progressFraction(progress)) };
        },
        tooltipValueGetter: (p) => {
          const state = p.data === undefined ? undefined : store.jobs.get(p.data.run);
          const progress = p.data === undefined ? undefined : store.progress.get(p.data.run);
          const stuck = p.data === undefined ? undefined : store.stuck.get(p.data.run);
          if (state === undefined) return null;
          return (
            `Run ${p.data?.run}: ${state}` +
            (progress === undefined ? "" : ` — ${progressText(progress)}`) +
            (stuck === undefined ? "" : `\nPossibly stuck: nothing printed and no progress since ${formatTimestamp(stuck, "clock")} (right-click → Show processing log)`)
          );
        },
      },
      plotColumn(store),
      {
        colId: "timestamp",
        // The zone in the header: a remote collaborator must not read hall times as theirs.
        headerName: `Timestamp (${timeZone()})`,
        headerTooltip: `When the run started, in ${timeZone()} time (the folder's setting \`timezone\`)`,
        valueGetter: (p) => (p.data === undefined ? null : store.startTime[p.data.slot]),
        valueFormatter: (p: ValueFormatterParams<RunRow>) => formatTimestamp(p.value),
        tooltipValueGetter: (p) => describeTimestamp(p.value) || null,
        width: ColumnLooks.fitting(`Timestamp (${timeZone()})`, ["2026-12-31 23:59:59"], this.font()),
        filterParams: this.filterParams(
          (row) => store.startTime[row.slot] ?? null,
          (row) => formatTimestamp(store.startTime[row.slot]),
        ),
      },
      {
        colId: "comment",
        headerName: "Comment",
        headerTooltip: "Your comment on the run: double-click (or press Enter) to edit",
        valueGetter: (p) => (p.data === undefined ? null : store.comment[p.data.slot]),
        valueSetter: (p: ValueSetterParams<RunRow>) => {
          const text = p.newValue === null || p.newValue === undefined ? "" : String(p.newValue);
          const previous = store.comment[p.data.slot] ?? null;
          if (text === (previous ?? "")) {
            return false;
          }
          store.comment[p.data.slot] = text;
          const base = this.takeEditBase(p.data, "comment", previous);
          this.callbacks.editComment(p.data, text, previous, typeof base === "string" ? base : null);
          return true;
        },
        editable: true,
        cellEditor: "agLargeTextCellEditor",
        cellEditorPopup: true,
        // The server's one cap for typed text (runtable.store.uservars.MAX_TEXT).
        cellEditorParams: { maxLength: 100_000, rows: 4, cols: 50 },
        // Narrow while there are no comments; as wide as they need (up to a point).
        width: ColumnLooks.fitting("Comment", store.comment.filter((c): c is string => typeof c === "string").map((c) => c.split("\n", 1)[0] ?? ""), this.font(), 300),
        tooltipValueGetter: (p) => (typeof p.value === "string" && p.value !== "" ? p.value : null),
        filterParams: this.filterParams(
          (row) => store.comment[row.slot] ?? null,
          (row) => store.comment[row.slot] ?? "",
        ),
      },
    ];
  }

  private filterParams(valueOf: (row: RunRow) => Value, textOf: (row: RunRow) => string, cellOf: (row: RunRow) => CellInfo | undefined = () => undefined) {
    return { valueOf, textOf, cellOf, allRows: () => this.store.rows };
  }

  private takeEditBase(row: RunRow, colId: string, fallback: Value): Value {
    const key = `${row.run}/${colId}`;
    const base = this.editBases.has(key) ? (this.editBases.get(key) ?? null) : fallback;
    this.editBases.delete(key);
    return base;
  }

  private variableColumn(variable: VariableInfo): ColDef<RunRow> {
    const store = this.store;
    const name = variable.name;
    const cellOf = (row: RunRow): CellInfo | undefined => store.cell(row, name);
    const looks = this.looks;
    const text = (row: RunRow): string => displayText(store.value(row, name), store.cell(row, name), variable.units, looks.numberStyle(name));
    const varied = (c: CellInfo | undefined): boolean => c?.max_diff === true && looks.variationTells(name);
    // A run that was taken (it has a start time) and has no value and no error here.
    const notComputed = (row: RunRow | undefined): boolean =>
      row !== undefined && !variable.user_editable && store.value(row, name) === null &&
      cellOf(row) === undefined && typeof store.startTime[row.slot] === "number";
    const tooltip = [variable.description, variable.tags.length > 0 ? `tags: ${variable.tags.join(", ")}` : null, `name: ${name}`]
      .filter((s) => s !== null && s !== "")
      .join("\n");
    const def: ColDef<RunRow> = {
      colId: varColId(name),
      headerName: variable.title,
      headerTooltip: tooltip,
      headerClass: variable.user_editable ? "rt-user-column" : "rt-var-column",
      valueGetter: (p) => (p.data === undefined ? null : store.value(p.data, name)),
      // No row: the select editor formatting its choices ("✓ yes", "✗ no"); "…" while
      // the column's data is not in yet.
      valueFormatter: (p: ValueFormatterParams<RunRow>) =>
        p.data === undefined || p.data === null
          ? p.value === null || p.value === undefined
            ? ""
            : typeof p.value === "boolean"
              ? `${formatValue(p.value, undefined)} ${booleanWord(p.value)}`
              : String(p.value)
          : store.isLoaded(name) || store.cell(p.data, name) !== undefined || store.value(p.data, name) !== null
            ? text(p.data)
            : "…",
      width: looks.width(variable, this.font()),
      // (Two numbers compare as numbers whatever their cells: the common case, without
      // looking the cells up, for sorting 20,000 rows quickly.)
      comparator: (a, b, nodeA, nodeB) =>
        typeof a === "number" && typeof b === "number" ? a - b : compareValues(a, b, nodeA.data && cellOf(nodeA.data), nodeB.data && cellOf(nodeB.data)),
      cellClassRules: {
        "rt-bold": (p: CellClassParams<RunRow>) => {
          const c = p.data && cellOf(p.data);
          return c?.bold === true || varied(c);
        },
        "rt-error": (p: CellClassParams<RunRow>) => p.data !== undefined && cellOf(p.data)?.kind === "error",
        "rt-skip": (p: CellClassParams<RunRow>) => p.data !== undefined && cellOf(p.data)?.kind === "skip",
        "rt-failed": (p: CellClassParams<RunRow>) => p.data !== undefined && cellOf(p.data)?.failed !== undefined,
        "rt-external": (p: CellClassParams<RunRow>) => p.data !== undefined && cellOf(p.data)?.provenance === "external",
        "rt-user-value": (p: CellClassParams<RunRow>) => p.data !== undefined && cellOf(p.data)?.provenance === "user",
        "rt-number": (p: CellClassParams<RunRow>) => typeof p.value === "number",
        "rt-boolean": (p: CellClassParams<RunRow>) => typeof p.value === "boolean",
        "rt-not-computed": (p: CellClassParams<RunRow>) => notComputed(p.data),
      },
      // Marks of feature modules (cellmarks.ts), e.g. a value computed by older code.
      cellClass: (p: CellClassParams<RunRow>) => (p.data === undefined ? [] : markClasses(p.data.run, name)),
      cellStyle: (p) => {
        const background = cssColour(p.data === undefined ? undefined : cellOf(p.data)?.background);
        if (background === null) {
          return null;
        }
        return { backgroundColor: background, color: readableTextColour(background) ?? "inherit" };
      },
      tooltipValueGetter: (p) => {
        const c = p.data === undefined ? undefined : cellOf(p.data);
        if (c?.kind === "error" || c?.kind === "skip") {
          const message = c.message ?? "";
          // A skip for failed dependencies says "Skipped due to …" itself.
          if (c.kind === "skip" && message.startsWith("Skipped")) return message;
          const what = c.kind === "skip" ? "Skipped" : (c.error_cls ?? "Error");
          return [`${what}: ${message}`, ...(p.data === undefined ? [] : markNotes(p.data.run, name))].join("\n");
        }
        if (notComputed(p.data)) {
          return `No value for run ${p.data?.run}: the variable was added after the run was processed, or it returned nothing. Reprocess the run to compute it (right-click → Reprocess run ${p.data?.run}…).`;
        }
        const notes: string[] = [];
        const shown = p.data === undefined ? "" : text(p.data);
        if (shown !== "") notes.push(shown);
        // The value itself when the column's style rounds it.
        if (typeof p.value === "number" && !shown.startsWith(String(p.value))) notes.push(`(${p.value})`);
        if (typeof p.value === "boolean") notes.push(`(${booleanWord(p.value)})`);
        if (varied(c)) notes.push("(bold: it varied within the run)");
        if (c?.provenance === "external") notes.push("(not from the context file)");
        if (c?.provenance === "user") notes.push("(typed in)");
        if (c?.failed !== undefined) {
          notes.push(`\nThe latest processing did not finish it (${c.failed.error_cls}: ${c.failed.message}); ` +
            "this value is from the processing before.");
        }
        if (p.data !== undefined) notes.push(...markNotes(p.data.run, name).map((note) => `\n${note}`));
        return notes.length > 0 ? notes.join(" ") : null;
      },
      cellRendererSelector: (p: ICellRendererParams<RunRow>) => {
        const kind = p.data === undefined ? undefined : cellOf(p.data)?.kind;
        const params = { name, cellOf, revisionOf: (row: RunRow) => this.revisions.get(row.run) ?? 0 };
        if (kind === "image") return { component: ThumbnailRenderer, params };
        if (kind === "trendline") return { component: SparklineRenderer, params };
        return undefined;
      },
      filterParams: { ...this.filterParams((row) => store.value(row, name), text, cellOf), ready: () => this.callbacks.needColumns([name]) },
    };
    if (variable.user_editable) {
      def.editable = true;
      def.valueSetter = (p: ValueSetterParams<RunRow>) => {
        const typed = p.newValue === null || p.newValue === undefined ? "" : String(p.newValue);
        const previous = store.value(p.data, name);
        if (typed === (previous === null ? "" : String(previous))) {
          return false;
        }
        this.callbacks.editValue(p.data, variable, typed, previous, this.takeEditBase(p.data, varColId(name), previous));
        return true;
      };
      if (variable.type === "boolean") {
        def.cellEditor = "agSelectCellEditor";
        // The values themselves (not their text): the editor opens on the cell's value.
        def.cellEditorParams = { values: [null, true, false] };
      }
    }
    return def;
  }

  /** Column definitions for the current variables, grouped when headers are hierarchical. */
  private columnDefs(): (ColDef<RunRow> | ColGroupDef<RunRow>)[] {
    const leaves: Leaf[] = this.store.variables.map((variable) => ({
      path: this.view.hierarchical
        ? variable.title.split("/").map((part) => part.trim()).filter((part) => part !== "")
        : [variable.title],
      def: this.variableColumn(variable),
    }));
    for (const leaf of leaves) {
      if (leaf.path.length === 0) leaf.path = [leaf.def.headerName ?? ""];
    }
    return [...this.staticColumns(), ...groupLeaves(leaves, 0, "", { n: 0 })];
  }

  /** What the cell of `row` in variable `name` shows, units included ("<thumbnail>" for pictures). */
  cellText(row: RunRow, name: string): string {
    const value = this.store.value(row, name);
    const cell = this.store.cell(row, name);
    if (cell?.kind === "image" || cell?.kind === "trendline") return exportText(value, cell);
    return displayText(value, cell, this.store.byName.get(name)?.units ?? null, this.looks.numberStyle(name));
  }

  /** The grid's font, for measuring text (colstats.ts); read once, the page's font stays. */
  private font(): string {
    this.fontCache ??= `13px ${getComputedStyle(this.container).fontFamily || "sans-serif"}`;
    return this.fontCache;
  }

  /** Every cell may have changed (more columns arrived): draw them again. */
  refreshAll(): void {
    this.looks.clear();
    this.api.refreshCells({ force: true });
    // Widths follow the content, except those a person chose.
    const resized = new Set(this.view.resized ?? []);
    this.api.setColumnWidths(
      this.store.variables
        .filter((v) => !resized.has(varColId(v.name)))
        .map((v) => ({ key: varColId(v.name), newWidth: this.looks.width(v, this.font()) })),
    );
  }

  /** Show the store's whole table (after a snapshot), with this browser's saved view. */
  setTable(emptyMessage: string): void {
    this.looks.clear();
    if (this.viewKey !== "") {
      this.saveNow();
    }
    const key = databaseKey(this.store);
    if (key !== this.viewKey) {
      this.viewKey = key;
      this.view = loadView(key);
    }
    this.rebuildColumns();
    this.api.setGridOption("overlayComponentParams", { noRows: { overlayText: emptyMessage } });
    this.api.setGridOption("rowData", [...this.store.rows, ...this.notes]);
    this.api.setGridOption("loading", false);
  }

  /** Recreate the columns (variables changed, headers toggled) and re-apply the view. */
  rebuildColumns(): void {
    this.restoring = true;
    try {
      this.api.setGridOption("columnDefs", this.columnDefs());
      if (this.view.columns.length > 0) {
        this.api.applyColumnState({
          state: this.savedOrderWithNewColumns(),
          applyOrder: true,
          defaultState: { sort: null },
        });
      }
      this.applyVisibility();
    } finally {
      this.restoring = false;
    }
  }

  /**
   * The saved column state in its saved order, with columns the saved view does not
   * know (new variables) placed after the column they follow in the definitions.
   */
  private savedOrderWithNewColumns(): ColumnState[] {
    const defined = this.api.getColumnState().map((c) => c.colId);
    const resized = new Set(this.view.resized ?? []);
    // Saved widths only where a person chose them; the others fit the content.
    const saved = new Map(this.view.columns.map((c) => [c.colId, resized.has(c.colId) ? c : { ...c, width: undefined }]));
    const order = this.view.columns.map((c) => c.colId).filter((id) => defined.includes(id));
    defined.forEach((id, index) => {
      if (saved.has(id)) return;
      const before = index === 0 ? undefined : defined[index - 1];
      const at = before === undefined ? 0 : order.indexOf(before) + 1;
      order.splice(at, 0, id);
    });
    return order.map((colId) => ({ ...(saved.get(colId) ?? {}), colId }) as ColumnState);
  }

  /** Hide columns hidden by hand or by the tag filter; show the rest. */
  applyVisibility(): void {
    const hidden = new Set(this.view.hidden);
    const tags = new Set(this.view.tags);
    const show: string[] = [];
    const hide: string[] = [];
    for (const variable of this.store.variables) {
      const id = varColId(variable.name);
      const tagged = tags.size === 0 || variable.tags.some((tag) => tags.has(tag));
      (tagged && !hidden.has(id) ? show : hide).push(id);
    }
    for (const id of ["plot", "timestamp", "comment"]) {
      (hidden.has(id) ? hide : show).push(id);
    }
    this.api.setColumnsVisible(show, true);
    this.api.setColumnsVisible(hide, false);
  }

  get viewState(): Readonly<ViewState> {
    return this.view;
  }

  /** Hide or show columns by hand (persisted). */
  setHidden(colIds: readonly string[], hidden: boolean): void {
    const set = new Set(this.view.hidden);
    for (const id of colIds) {
      if (hidden) set.add(id);
      else set.delete(id);
    }
    this.view.hidden = [...set];
    this.applyVisibility();
    this.viewChanged();
    this.saveNow();
  }

  /** Show only variables having one of `tags` (none: all). */
  setTags(tags: readonly string[]): void {
    this.view.tags = [...tags];
    this.applyVisibility();
    this.viewChanged();
    this.saveNow();
  }

  setHierarchical(on: boolean): void {
    this.saveNow();
    this.view.hierarchical = on;
    this.rebuildColumns();
    this.viewChanged();
    this.saveNow();
  }

  /** New runs: add their rows (the rows on screen stay where they are). */
  addRows(rows: RunRow[]): void {
    if (rows.length > 0) {
      this.anchored(() => this.api.applyTransaction({ add: rows }));
    }
  }

  /**
   * Make a change that may add or move rows (new runs, values that re-sort) without
   * moving the rows the person is reading: the first row wholly on screen keeps its
   * place. (AG Grid keeps the scroll offset, so a row added above would push them down.)
   */
  private anchored(change: () => void): void {
    const range = this.api.getVerticalPixelRange();
    let anchor: IRowNode<RunRow> | undefined;
    for (let i = Math.max(this.api.getFirstDisplayedRowIndex(), 0); i <= this.api.getLastDisplayedRowIndex(); i++) {
      const node = this.api.getDisplayedRowAtIndex(i);
      if (node?.rowTop != null && node.rowTop >= range.top) {
        anchor = node;
        break;
      }
    }
    const before = anchor?.rowTop;
    change();
    if (anchor === undefined || before == null || range.top === 0 && before === 0) return;
    const after = anchor.displayed ? anchor.rowTop : null;
    if (after == null || after === before) return;
    const viewport = this.container.querySelector<HTMLElement>(".ag-body-viewport, .ag-grid-viewport");
    if (viewport !== null) viewport.scrollTop += after - before;
    else this.api.ensureNodeVisible(anchor, "top");
  }

  /**
   * Where new runs appear: at the end (sorted by run, the default), at the start (by
   * run, descending), or nowhere fixed (sorted by something else).
   */
  private newRunsEdge(): "start" | "end" | null {
    const by = this.sortedBy();
    return by?.colId === "run" ? (by.sort === "asc" ? "end" : "start") : null;
  }

  /** The one column the table is sorted by (unsorted: the run, ascending); null when several. */
  private sortedBy(): { colId: string; sort: "asc" | "desc" } | null {
    const sorted = this.api.getColumnState().filter((c) => c.sort === "asc" || c.sort === "desc");
    if (sorted.length === 0) return { colId: "run", sort: "asc" };
    const only = sorted.length === 1 ? sorted[0] : undefined;
    return only?.sort ? { colId: only.colId, sort: only.sort } : null;
  }

  /**
   * May a new run move the view? Only when it is sorted by run and shows the edge where
   * new runs appear, and no cell is being edited: following must never take a row
   * from under the reader.
   */
  canFollow(): boolean {
    const edge = this.newRunsEdge();
    if (edge === null || this.api.getEditingCells().length > 0) return false;
    const count = this.api.getDisplayedRowCount();
    const range = this.api.getVerticalPixelRange();
    if (count === 0) return true;
    if (edge === "start") return range.top <= 0;
    const last = this.api.getDisplayedRowAtIndex(count - 1);
    return last?.rowTop == null || last.rowTop + (last.rowHeight ?? 0) / 2 <= range.bottom;
  }

  /**
   * Rows whose values changed: re-sort/re-filter them and redraw their cells (`names`:
   * only these columns; thumbnails get a new URL so the browser fetches them again).
   */
  refreshRows(rows: RunRow[], names?: readonly string[], flash = false): void {
    if (rows.length === 0) return;
    for (const row of rows) {
      this.revisions.set(row.run, (this.revisions.get(row.run) ?? 0) + 1);
    }
    this.anchored(() => this.api.applyTransaction({ update: rows }));
    const nodes = rows.map((row) => this.api.getRowNode(String(row.run))).filter((n): n is IRowNode<RunRow> => n !== undefined);
    const columns = names?.map((name) => (name === "comment" ? "comment" : varColId(name)));
    const params = columns === undefined ? { rowNodes: nodes, force: true } : { rowNodes: nodes, columns, force: true };
    this.api.refreshCells(params);
    // A value that changes a column's number style (a first fraction) redraws it all.
    const restyled = this.looks.update(rows, names ?? this.store.variables.map((v) => v.name));
    if (restyled.length > 0) this.api.refreshCells({ columns: restyled.map(varColId), force: true });
    if (flash && columns !== undefined) {
      this.api.flashCells({ rowNodes: nodes, columns });
    }
  }

  /** The run column of these runs (processing marks). */
  refreshRunCells(rows: RunRow[]): void {
    const nodes = rows.map((row) => this.api.getRowNode(String(row.run))).filter((n): n is IRowNode<RunRow> => n !== undefined);
    this.api.refreshCells({ rowNodes: nodes, columns: ["run"], force: true });
  }

  /** Scroll to a run and select it; false when it is not in the (filtered) table. */
  jumpTo(run: number, select = true): boolean {
    const node = this.api.getRowNode(String(run));
    if (node === undefined || !node.displayed) {
      return false;
    }
    this.api.ensureNodeVisible(node, "middle");
    if (select) {
      this.api.deselectAll();
      node.setSelected(true);
      this.api.flashCells({ rowNodes: [node], columns: ["run"] });
    }
    return true;
  }

  /** Scroll to where new runs appear: the last row, or the first when sorted by run descending. */
  scrollToLast(): void {
    const scroll = (): void => {
      const count = this.api.getDisplayedRowCount();
      if (count === 0) return;
      if (this.newRunsEdge() === "start") this.api.ensureIndexVisible(0, "top");
      else this.api.ensureIndexVisible(count - 1, "bottom");
    };
    scroll();
    // Just after rows were added the grid may not have grown its scrolling area yet
    // (it does so on the next frame), and the browser stops the scroll short of the
    // new row: once more then.
    requestAnimationFrame(() => requestAnimationFrame(scroll));
  }

  /**
   * The filters as chips: each column filter and each expression typed by hand, in
   * the filter language (`colId` null for a typed one; `index` is its place).
   */
  activeFilters(): { colId: string | null; index: number; text: string }[] {
    const model = this.api.getFilterModel() as Record<string, ValueFilterModel>;
    const columns = Object.entries(model).map(([colId, m]) => ({ colId, index: -1, text: modelExpression(colId, m) }));
    return [...columns, ...this.typed.map((text, index) => ({ colId: null, index, text }))];
  }

  /** The whole filter as one expression (empty: none). */
  whereExpression(): string {
    return joinAnd(this.activeFilters().map((filter) => filter.text));
  }

  /** Remove the filter of column `colId`, or every filter (null). */
  clearFilter(colId: string | null): void {
    if (colId === null) {
      this.typed = [];
      this.api.setFilterModel(null);
    } else {
      this.api.setColumnFilterModel(colId, null).then(() => this.api.onFilterChanged()).catch(() => undefined);
    }
  }

  /** Sort, column order (null: the table's own), hidden columns and tags, for the page URL. */
  urlView(): Pick<UrlView, "sort" | "order" | "hide" | "tags"> {
    const state = this.api.getColumnState();
    const sort = state
      .filter((c) => c.sort === "asc" || c.sort === "desc")
      .sort((a, b) => (a.sortIndex ?? 0) - (b.sortIndex ?? 0))
      .map((c) => ({ colId: c.colId, sort: c.sort as "asc" | "desc" }));
    const ids = state.map((c) => c.colId);
    const own = this.ownOrder();
    const same = ids.length === own.length && ids.every((id, i) => id === own[i]);
    return { sort, order: same ? null : ids, hide: [...this.view.hidden], tags: [...this.view.tags] };
  }

  /** Show the sort, order, hidden columns and tags of a view from the page URL. */
  applyUrlView(view: Pick<UrlView, "sort" | "order" | "hide" | "tags">): void {
    this.restoring = true;
    try {
      const known = new Set(this.api.getColumnState().map((c) => c.colId));
      const sorted = new Map(view.sort.map((s, index) => [s.colId, { sort: s.sort, sortIndex: index }]));
      const state = (view.order ?? this.ownOrder())
        .filter((colId) => known.has(colId))
        .map((colId) => ({ colId, sort: sorted.get(colId)?.sort ?? null, sortIndex: sorted.get(colId)?.sortIndex ?? null }));
      this.api.applyColumnState({ state, applyOrder: true, defaultState: { sort: null } });
      this.view.hidden = [...view.hide];
      this.view.tags = [...view.tags];
      this.applyVisibility();
    } finally {
      this.restoring = false;
    }
    this.viewChanged();
    this.needData(view.sort.map((s) => s.colId));
  }

  /** The columns in the table's own order (before any is moved). */
  private ownOrder(): string[] {
    return ["run", "plot", "timestamp", "comment", ...this.store.variables.map((v) => varColId(v.name))];
  }

  /** Remove the typed filter at `index`. */
  clearTyped(index: number): void {
    this.typed = this.typed.filter((_, i) => i !== index);
    this.api.onFilterChanged();
  }

  /**
   * Replace every filter by the parts of an expression (as the server read it): the
   * parts a column filter can show become column filters, the others typed filters.
   */
  async setWhere(parts: readonly WherePart[]): Promise<void> {
    const models: Record<string, ValueFilterModel> = {};
    const typed: string[] = [];
    for (const part of parts) {
      const colId = part.field === null ? null : part.field in FIXED ? part.field : varColId(part.field);
      const known = colId === null ? undefined : models[colId];
      const overlaps = known !== undefined && part.model !== null && Object.keys(part.model).some((k) => k in known);
      if (colId === null || part.model === null || this.api.getColumn(colId) === null || overlaps) {
        typed.push(part.text);
      } else {
        models[colId] = { ...known, ...part.model };
      }
    }
    this.typed = typed;
    await this.api.setFilterModel(Object.keys(models).length > 0 ? models : null);
    this.api.onFilterChanged();
  }

  /** The data changed: ask again which runs the filter keeps (a little later, once). */
  refilter(): void {
    if (!this.runFilter.active) return;
    window.clearTimeout(this.refilterTimer);
    this.refilterTimer = window.setTimeout(() => void this.runFilter.set(this.whereExpression(), true), 250);
  }

  /** Columns as currently displayed (visible, in order): id and header. */
  displayedColumns(): { colId: string; header: string; name: string | null }[] {
    // The Plot checkboxes (plot/include.ts) are a setting of this browser, not data.
    const columns = this.api.getAllDisplayedColumns().filter((column) => column.getColId() !== "plot");
    return columns.map((column) => {
      const colId = column.getColId();
      return {
        colId,
        header: this.fullTitle(colId),
        name: colId.startsWith("var:") ? colId.slice(4) : null,
      };
    });
  }

  /** Full title of a column ("XGM/mean" even when the header shows "mean"). */
  fullTitle(colId: string): string {
    if (colId.startsWith("var:")) {
      return this.store.byName.get(colId.slice(4))?.title ?? colId;
    }
    return { run: "Run", plot: "Plot", timestamp: "Timestamp", comment: "Comment" }[colId] ?? colId;
  }

  /** All columns in grid order (for the column panel), visible or not. */
  orderedColumnIds(): string[] {
    return this.api.getColumnState().map((state) => state.colId);
  }

  /** Runs as displayed: filtered and sorted (without the notes among them). */
  displayedRows(): RunRow[] {
    const rows: RunRow[] = [];
    this.api.forEachNodeAfterFilterAndSort((node) => {
      if (node.data !== undefined && !isNote(node.data)) rows.push(node.data);
    });
    return rows;
  }

  /** How many runs are displayed (notes among them are not counted). */
  displayedRunCount(): number {
    const notes = this.notes.filter((row) => this.api.getRowNode(rowId(row))?.displayed === true).length;
    return this.api.getDisplayedRowCount() - notes;
  }

  /** Show `notes` among the runs by time (an empty list: none). */
  setNotes(notes: readonly TimeComment[]): void {
    // (Called at each change of a note, also while none are shown: no refilter then.)
    if (notes.length === 0 && this.notes.length === 0) return;
    const rows = noteRows(notes);
    const before = new Map(this.notes.map((row) => [rowId(row), row]));
    const ids = new Set(rows.map(rowId));
    const remove = this.notes.filter((row) => !ids.has(rowId(row)));
    const add = rows.filter((row) => !before.has(rowId(row)));
    const update = rows.filter((row) => before.has(rowId(row)));
    this.notes = rows;
    this.anchored(() => this.api.applyTransaction({ remove, add, update }));
    this.api.onFilterChanged();
  }

  /**
   * The order notes take among the runs: by time, forwards or backwards; null when the
   * table is sorted by something else than the run or its timestamp. `fresh`: read the
   * sort again (a sort pass does; the filter asks for each note and reuses it).
   */
  private notesPlace(fresh = false): "asc" | "desc" | null {
    // Kept between a sort and the next, as the filter asks for each note: reading the
    // sort means reading the state of every column.
    if (fresh || this.notesOrder === undefined) {
      const by = this.sortedBy();
      this.notesOrder = by !== null && (by.colId === "run" || by.colId === "timestamp") ? by.sort : null;
    }
    return this.notesOrder;
  }

  selectedRows(): RunRow[] {
    return this.displayedRows().filter((row) => this.api.getRowNode(String(row.run))?.isSelected() === true);
  }

  /** What a menu or double-click on the cell of `row` in column `colId` is about. */
  targetOf(row: RunRow | undefined, colId: string): CellTarget | null {
    if (row === undefined || isNote(row)) return null;
    const name = colId.startsWith("var:") ? colId.slice(4) : null;
    const selected = this.selectedRows().map((r) => r.run);
    return {
      run: row.run,
      colId,
      name,
      variable: name === null ? null : (this.store.byName.get(name) ?? null),
      runs: selected.includes(row.run) ? selected : [row.run],
    };
  }
}
