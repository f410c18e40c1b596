// The run table view: an AG Grid with the fixed columns Run, Timestamp, Comment and
// one column per variable. Values are shown as text (AG Grid sets textContent); no
// string from the data is ever parsed as HTML.

import {
  AllCommunityModule,
  ModuleRegistry,
  colorSchemeVariable,
  createGrid,
  themeQuartz,
  type ColDef,
  type GridApi,
  type ValueFormatterParams,
} from "ag-grid-community";

import type { RunRow, TableData, VariableColumn } from "./table";

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

const timestampFormat = new Intl.DateTimeFormat("sv-SE", {
  dateStyle: "short",
  timeStyle: "medium",
});

/** Seconds since the epoch → local "YYYY-MM-DD HH:MM:SS". */
export function formatTimestamp(params: ValueFormatterParams<RunRow>): string {
  const value: unknown = params.value;
  if (typeof value !== "number" || !Number.isFinite(value)) {
    return "";
  }
  return timestampFormat.format(new Date(value * 1000));
}

const STATIC_COLUMNS: ColDef<RunRow>[] = [
  {
    colId: "run",
    headerName: "Run",
    field: "run",
    pinned: "left",
    width: 110,
    type: "rightAligned",
    sort: "asc",
  },
  {
    colId: "timestamp",
    headerName: "Timestamp",
    field: "timestamp",
    width: 190,
    valueFormatter: formatTimestamp,
  },
  { colId: "comment", headerName: "Comment", field: "comment", width: 320 },
];

/** Column definitions for variables; `valueGetter` so names with dots stay flat keys. */
export function variableColumnDefs(columns: readonly VariableColumn[]): ColDef<RunRow>[] {
  return columns.map((column) => {
    const def: ColDef<RunRow> = {
      colId: `var:${column.name}`,
      headerName: column.title,
      valueGetter: (params) => params.data?.[column.name],
      minWidth: 100,
    };
    if (column.description !== undefined) {
      def.headerTooltip = column.description;
    }
    return def;
  });
}

export class RunGrid {
  private readonly api: GridApi<RunRow>;

  constructor(container: HTMLElement) {
    this.api = createGrid<RunRow>(container, {
      theme: gridTheme,
      columnDefs: STATIC_COLUMNS,
      rowData: [],
      loading: true,
      getRowId: (params) => String(params.data.run),
      defaultColDef: { sortable: true, resizable: true, filter: true },
      suppressFieldDotNotation: true,
      enableBrowserTooltips: true,
    });
  }

  /** Show a whole table, replacing what was there. */
  setTable(table: TableData): void {
    this.api.setGridOption("columnDefs", [...STATIC_COLUMNS, ...variableColumnDefs(table.columns)]);
    this.api.setGridOption("overlayComponentParams", {
      noRows: { overlayText: table.message ?? "No runs yet" },
    });
    this.api.setGridOption("rowData", table.rows);
    this.api.setGridOption("loading", false);
  }

  /** Show an empty table with a message (plain text). */
  showMessage(message: string): void {
    this.setTable({ columns: [], rows: [], message });
  }
}
