// Which runs the summary plots include: the table's "Plot" checkbox column (DAMNIT's
// "Status" column). Kept per database in this browser's localStorage as the set of
// *excluded* runs, so that a new run is included without anyone ticking it.

import {
  _stopPropagationForAgGrid,
  type ColDef,
  type ICellRendererComp,
  type ICellRendererParams,
} from "ag-grid-community";

import type { RunRow, TableStore } from "../table";

const PREFIX = "runtable.plot-excluded.";

class PlotInclusion {
  private store: TableStore | null = null;
  private key: string | null = null;
  private excluded = new Set<number>();
  private readonly listeners: ((runs: number[]) => void)[] = [];

  bind(store: TableStore): void {
    this.store = store;
  }

  /** The set for the database the table shows now (read again when that changes). */
  private current(): Set<number> {
    const store = this.store;
    // The same key as the table's own view settings (grid.ts), so one database's
    // choices never apply to another's runs.
    const key = store === null ? "default" : (store.dbId ?? (store.proposal === null ? "default" : `p${store.proposal}`));
    if (key !== this.key) {
      this.key = key;
      this.excluded = load(key);
    }
    return this.excluded;
  }

  isIncluded(run: number): boolean {
    return !this.current().has(run);
  }

  /** Include or exclude runs (saved at once); listeners hear which runs changed. */
  set(runs: readonly number[], included: boolean): void {
    const excluded = this.current();
    const changed = runs.filter((run) => excluded.has(run) === included);
    if (changed.length === 0) return;
    for (const run of changed) {
      if (included) excluded.delete(run);
      else excluded.add(run);
    }
    save(this.key ?? "default", excluded);
    for (const listener of this.listeners) {
      try {
        listener(changed);
      } catch (error) {
        console.error("a plot-inclusion listener failed", error);
      }
    }
  }

  onChange(listener: (runs: number[]) => void): void {
    this.listeners.push(listener);
  }
}

function load(key: string): Set<number> {
  try {
    const raw = window.localStorage.getItem(PREFIX + key);
    const parsed: unknown = raw === null ? [] : JSON.parse(raw);
    return new Set(Array.isArray(parsed) ? parsed.filter((run): run is number => Number.isInteger(run)) : []);
  } catch {
    // Unreadable storage or a damaged entry: every run is included, the table still opens.
    return new Set();
  }
}

function save(key: string, excluded: Set<number>): void {
  try {
    window.localStorage.setItem(PREFIX + key, JSON.stringify([...excluded].sort((a, b) => a - b)));
  } catch {
    // storage full or disabled: the choice lasts until the page is closed
  }
}

/** The one inclusion state of the page (the grid's column and the plots share it). */
export const plotInclusion = new PlotInclusion();

/** The checkbox of one row. */
class IncludeRenderer implements ICellRendererComp<RunRow> {
  private box = document.createElement("input");
  private run = 0;

  init(params: ICellRendererParams<RunRow>): void {
    this.box.type = "checkbox";
    this.box.className = "rt-plot-include";
    this.update(params);
    // A click on the box toggles it; it does not also change the row selection.
    this.box.addEventListener("click", (event) => _stopPropagationForAgGrid(event));
    this.box.addEventListener("change", () => plotInclusion.set([this.run], this.box.checked));
  }

  private update(params: ICellRendererParams<RunRow>): void {
    this.run = params.data?.run ?? 0;
    this.box.checked = params.data !== undefined && plotInclusion.isIncluded(params.data.run);
    this.box.setAttribute("aria-label", `Include run ${this.run} in summary plots`);
  }

  getGui(): HTMLElement {
    return this.box;
  }

  refresh(params: ICellRendererParams<RunRow>): boolean {
    this.update(params);
    return true;
  }
}

/** The "Plot" column of the table (grid.ts puts it after Run). */
export function plotColumn(store: TableStore): ColDef<RunRow> {
  plotInclusion.bind(store);
  return {
    colId: "plot",
    headerName: "Plot",
    headerTooltip: "Include the run in summary plots and histograms (kept in this browser for this database)",
    valueGetter: (p) => (p.data === undefined ? null : plotInclusion.isIncluded(p.data.run)),
    cellRenderer: IncludeRenderer,
    cellClass: "rt-plot-cell",
    pinned: "left",
    width: 62,
    minWidth: 50,
    resizable: false,
    sortable: true,
    filter: false,
  };
}
