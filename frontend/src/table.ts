// The run table's data, kept the way the server sends it: one array per column.
//
// `GET /api/table` (docs/dev/table-protocol.md) answers with columns, not rows. We keep
// them as they are and give the grid tiny row objects `{run, slot}`; each column reads
// `values[slot]`. At 20,000 runs x 500 variables this avoids building ten million
// object properties, and a delta (a few cells) updates arrays in place.

import { ApiError, apiFetch } from "./api";

export type Value = number | string | boolean | null;

/** `cells[row]` of the protocol: everything a cell needs beyond its value. */
export interface CellInfo {
  kind?: "image" | "trendline" | "array" | "complex" | "error" | "skip";
  points?: number[];
  re?: number;
  im?: number;
  message?: string;
  error_cls?: string;
  bold?: boolean;
  background?: string;
  units?: string;
  max_diff?: boolean;
  provenance?: string;
}

/** One column per variable of the context file (or user-editable variable). */
export interface VariableInfo {
  name: string;
  title: string;
  description: string | null;
  tags: string[];
  user_editable: boolean;
  /** boolean | integer | number | string for user-editable variables, else null. */
  type: string | null;
  units: string | null;
}

export interface ColumnData {
  values: Value[];
  cells?: Record<string, CellInfo>;
}

/** The answer of `GET /api/table`. */
export interface Snapshot {
  proposal: number | null;
  /** Database id, when the server sends one: keys the per-database view settings. */
  db_id?: string | null;
  seq: number;
  bus: string;
  runs: number[];
  start_time: (number | null)[];
  added_at: (number | null)[];
  comment: (string | null)[];
  variables: VariableInfo[];
  columns: Record<string, ColumnData>;
  jobs?: Record<string, string>;
}

/** A row as the grid holds it: which run, and where its values are in the arrays. */
export interface RunRow {
  run: number;
  slot: number;
}

/** Processing state of a run: queued or running (idle runs have none). */
export type JobState = "queued" | "running";

export class TableStore {
  proposal: number | null = null;
  dbId: string | null = null;
  seq = 0;
  bus = "";
  variables: VariableInfo[] = [];
  readonly byName = new Map<string, VariableInfo>();
  rows: RunRow[] = [];
  private readonly slots = new Map<number, number>();
  startTime: (number | null)[] = [];
  comment: (string | null)[] = [];
  readonly jobs = new Map<number, JobState>();
  private values = new Map<string, Value[]>();
  private cells = new Map<string, Map<number, CellInfo>>();

  /** Replace everything with a full snapshot. */
  load(snapshot: Snapshot): void {
    this.proposal = snapshot.proposal ?? null;
    this.dbId = snapshot.db_id ?? null;
    this.seq = snapshot.seq;
    this.bus = snapshot.bus;
    this.setVariables(snapshot.variables);
    this.slots.clear();
    this.rows = snapshot.runs.map((run, slot) => {
      this.slots.set(run, slot);
      return { run, slot };
    });
    this.startTime = [...snapshot.start_time];
    this.comment = [...snapshot.comment];
    this.values = new Map();
    this.cells = new Map();
    for (const variable of this.variables) {
      const column = snapshot.columns[variable.name];
      const values = column?.values ?? [];
      // Columns missing from the answer, or short, are empty for those rows.
      if (values.length < this.rows.length) {
        values.length = this.rows.length;
        values.fill(null, column?.values.length ?? 0);
      }
      this.values.set(variable.name, values);
      this.cells.set(variable.name, cellMap(column?.cells, (index) => index));
    }
    this.jobs.clear();
    for (const [run, state] of Object.entries(snapshot.jobs ?? {})) {
      if (state === "queued" || state === "running") {
        this.jobs.set(Number(run), state);
      }
    }
  }

  setVariables(variables: VariableInfo[]): void {
    this.variables = variables.map((v) => ({
      ...v,
      tags: v.tags ?? [],
      description: v.description ?? null,
      units: v.units ?? null,
      type: v.type ?? null,
    }));
    this.byName.clear();
    for (const variable of this.variables) {
      this.byName.set(variable.name, variable);
    }
  }

  /**
   * Merge a partial snapshot (`?runs=…&names=…`) into the arrays. Returns the rows it
   * touched; runs it does not know yet are added.
   */
  mergePartial(part: Snapshot): RunRow[] {
    const touched: RunRow[] = [];
    const partSlots = part.runs.map((run, index) => {
      const row = this.rowOf(run) ?? this.addRun(run);
      touched.push(row);
      this.startTime[row.slot] = part.start_time[index] ?? null;
      if (part.comment[index] !== undefined) {
        this.comment[row.slot] = part.comment[index] ?? null;
      }
      return row.slot;
    });
    for (const [name, column] of Object.entries(part.columns)) {
      const values = this.values.get(name);
      const cells = this.cells.get(name);
      if (values === undefined || cells === undefined) {
        continue; // a column we don't show yet: variables_changed brings it
      }
      partSlots.forEach((slot, index) => {
        values[slot] = column.values[index] ?? null;
        cells.delete(slot);
      });
      for (const [index, info] of Object.entries(column.cells ?? {})) {
        const slot = partSlots[Number(index)];
        if (slot !== undefined) {
          cells.set(slot, info);
        }
      }
    }
    // `jobs` of a partial answer is not used: job_state events keep the marks current.
    return touched;
  }

  rowOf(run: number): RunRow | undefined {
    const slot = this.slots.get(run);
    return slot === undefined ? undefined : this.rows[slot];
  }

  /** Add an empty row for `run` (or return the existing one). */
  addRun(run: number): RunRow {
    const existing = this.rowOf(run);
    if (existing !== undefined) {
      return existing;
    }
    const slot = this.rows.length;
    const row = { run, slot };
    this.rows.push(row);
    this.slots.set(run, slot);
    this.startTime.push(null);
    this.comment.push(null);
    for (const values of this.values.values()) {
      values.push(null);
    }
    return row;
  }

  value(row: RunRow, name: string): Value {
    return this.values.get(name)?.[row.slot] ?? null;
  }

  cell(row: RunRow, name: string): CellInfo | undefined {
    return this.cells.get(name)?.get(row.slot);
  }

  /** Set one value (from an event or an edit), dropping what the cell had before. */
  setValue(row: RunRow, name: string, value: Value, info?: CellInfo): void {
    const values = this.values.get(name);
    if (values === undefined) {
      return;
    }
    values[row.slot] = value;
    if (info === undefined) {
      this.cells.get(name)?.delete(row.slot);
    } else {
      this.cells.get(name)?.set(row.slot, info);
    }
  }

  /** All values of a column (for filters): one per slot. */
  columnValues(name: string): readonly Value[] {
    return this.values.get(name) ?? [];
  }
}

function cellMap(
  cells: Record<string, CellInfo> | undefined,
  slotOf: (index: number) => number | undefined,
): Map<number, CellInfo> {
  const map = new Map<number, CellInfo>();
  for (const [index, info] of Object.entries(cells ?? {})) {
    const slot = slotOf(Number(index));
    if (slot !== undefined) {
      map.set(slot, info);
    }
  }
  return map;
}

/** An empty table, shown with a reason when the server has no table (yet). */
export function emptySnapshot(): Snapshot {
  return {
    proposal: null,
    seq: 0,
    bus: "",
    runs: [],
    start_time: [],
    added_at: [],
    comment: [],
    variables: [],
    columns: {},
  };
}

/** `GET /api/table`, optionally only some runs and columns. */
export async function fetchSnapshot(
  runs?: readonly number[],
  names?: readonly string[],
): Promise<Snapshot> {
  const query = new URLSearchParams();
  if (runs !== undefined) {
    query.set("runs", runs.join(","));
  }
  if (names !== undefined) {
    query.set("names", names.join(","));
  }
  const suffix = query.size > 0 ? `?${query.toString()}` : "";
  const t0 = performance.now();
  const response = await apiFetch(`api/table${suffix}`);
  const text = await response.text();
  const t1 = performance.now();
  const snapshot = JSON.parse(text) as Snapshot;
  lastFetch.download_ms = t1 - t0;
  lastFetch.parse_ms = performance.now() - t1;
  lastFetch.chars = text.length;
  return snapshot;
}

/** Timings of the last `fetchSnapshot` (for the benchmark and for curious people). */
export const lastFetch = { download_ms: 0, parse_ms: 0, chars: 0 };

/** The full snapshot; a server without the table route gives an empty table and why. */
export async function loadSnapshot(): Promise<{ snapshot: Snapshot; message?: string }> {
  try {
    return { snapshot: await fetchSnapshot() };
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) {
      return { snapshot: emptySnapshot(), message: "this server has no run table" };
    }
    throw error;
  }
}
