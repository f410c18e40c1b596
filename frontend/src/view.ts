// The table's view settings, kept per database in this browser's localStorage: column
// order, widths and sort, hidden columns, the tag filter, hierarchical headers.

export interface SavedColumn {
  colId: string;
  width?: number | null | undefined;
  sort?: "asc" | "desc" | null | undefined;
  sortIndex?: number | null | undefined;
}

export interface ViewState {
  columns: SavedColumn[];
  /** Column ids hidden by hand. */
  hidden: string[];
  /** Show only variables with one of these tags (empty: all). */
  tags: string[];
  hierarchical: boolean;
  /** Column ids whose width a person chose (the others fit their content). */
  resized?: string[];
}

const PREFIX = "runtable.view.";

/** What this browser's settings of a database are kept under: its id, else its proposal. */
export function databaseKey(store: { dbId: string | null; proposal: number | null }): string {
  return store.dbId ?? (store.proposal === null ? "default" : `p${store.proposal}`);
}

function defaults(): ViewState {
  return { columns: [], hidden: [], tags: [], hierarchical: true };
}

function strings(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === "string") : [];
}

/** The saved view for database `key`, or the defaults (also when storage is unreadable). */
export function loadView(key: string): ViewState {
  let raw: string | null = null;
  try {
    raw = window.localStorage.getItem(PREFIX + key);
  } catch {
    return defaults();
  }
  if (raw === null) {
    return defaults();
  }
  try {
    const parsed = JSON.parse(raw) as Partial<ViewState>;
    const columns = Array.isArray(parsed.columns)
      ? parsed.columns.filter((c): c is SavedColumn => typeof c === "object" && c !== null && typeof c.colId === "string")
      : [];
    return {
      columns,
      hidden: strings(parsed.hidden),
      tags: strings(parsed.tags),
      hierarchical: parsed.hierarchical !== false,
      resized: strings(parsed.resized),
    };
  } catch {
    // A damaged entry must not stop the table from opening.
    return defaults();
  }
}

export function saveView(key: string, view: ViewState): void {
  try {
    window.localStorage.setItem(PREFIX + key, JSON.stringify(view));
  } catch {
    // storage full or disabled: the view lasts until the page is closed
  }
}

/** A small boolean preference (e.g. following new runs), kept for every database. */
export function loadFlag(name: string, fallback: boolean): boolean {
  try {
    const value = window.localStorage.getItem(`runtable.${name}`);
    return value === null ? fallback : value === "1";
  } catch {
    return fallback;
  }
}

export function saveFlag(name: string, value: boolean): void {
  try {
    window.localStorage.setItem(`runtable.${name}`, value ? "1" : "0");
  } catch {
    // ignore: see saveView
  }
}
