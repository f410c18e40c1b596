// The run table's data, kept the way the server sends it: one array per column.
//
// `GET /api/table` (docs/dev/table-protocol.md) answers with columns, not rows. We keep
// them as they are and give the grid tiny row objects `{run, slot}`; each column reads
// `values[slot]`. At 20,000 runs x 500 variables this avoids building ten million
// object properties, and a delta (a few cells) updates arrays in place.
//
// The full table comes in the binary form (`?format=binary`): numeric columns are
// `Float64Array` views on the answer's bytes (NaN = no value), so ten million numbers
// cost neither text decoding nor JSON parsing. Such a column stays typed until a
// value that is not a number lands in it. The first answer holds the data of the first
// columns only; the others come by name when needed (columnloader.ts), and cells an
// event set meanwhile are kept when their column arrives with older data.

import { ApiError, apiFetch } from "./api";
import type { JobProgress } from "./progress";
import { readFrame } from "./celldata";

export type Value = number | string | boolean | null;

/** `cells[row]` of the protocol: everything a cell needs beyond its value. */
export interface CellInfo {
  kind?: "image" | "trendline" | "array" | "complex" | "error" | "skip";
  /** A trendline's points; a `Float32Array` (NaN: none) from the binary form. */
  points?: (number | null)[] | Float32Array;
  re?: number;
  im?: number;
  message?: string;
  error_cls?: string;
  bold?: boolean;
  background?: string;
  units?: string;
  max_diff?: boolean;
  provenance?: string;
  /** The value is from an earlier processing: the latest job for it died. */
  failed?: { message: string; error_cls: string };
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
  /** One value per row; a `Float64Array` (NaN: none) for numeric columns of the binary form. */
  values: Value[] | Float64Array;
  cells?: Record<string, CellInfo>;
}

/** A column as the store keeps it. Typed columns may be longer than the table (spare room). */
type ColumnValues = Value[] | Float64Array;

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

/** A standalone note (`GET /api/time-comments`). */
export interface TimeComment {
  id: number;
  /** null: the stored time is not a valid time (written by another program). */
  timestamp: number | null;
  text: string;
}

/** A row as the grid holds it: which run, and where its values are in the arrays. */
export interface RunRow {
  run: number;
  slot: number;
  /** Set on a note shown among the runs (grid.ts `setNotes`), which is no run: its
   * `run` is NaN and `slot` -1, so it has no values. */
  note?: TimeComment;
}

/** Whether a grid row is a note among the runs rather than a run. */
export function isNote(row: RunRow | undefined): boolean {
  return row?.note !== undefined;
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
  /** The latest progress of a running job of each run (job_progress events). */
  readonly progress = new Map<number, JobProgress>();
  /** Runs with a running job flagged possibly stuck (job_stuck events): its last sign of life. */
  readonly stuck = new Map<number, number>();
  private values = new Map<string, ColumnValues>();
  private cells = new Map<string, Map<number, CellInfo>>();
  /** Columns whose data is in. */
  private readonly loaded = new Set<string>();
  /** Cells set (by events) before their column's data was in: name → slot → what, as of which seq. */
  private readonly early = new Map<string, Map<number, { seq: number; value: Value; info: CellInfo | undefined }>>();

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
    this.loaded.clear();
    this.early.clear();
    for (const variable of this.variables) {
      const column = snapshot.columns[variable.name];
      if (column !== undefined) this.loaded.add(variable.name);
      let values: ColumnValues = column?.values ?? [];
      // Columns missing from the answer (or still coming, see mergeColumns), or short,
      // are empty for those rows: holes, which read as null.
      if (values.length < this.rows.length) {
        const plain = values instanceof Float64Array ? toPlain(values, values.length) : values;
        plain.length = this.rows.length;
        values = plain;
      }
      this.values.set(variable.name, values);
      this.cells.set(variable.name, cellMap(column?.cells, (index) => index));
    }
    this.jobs.clear();
    this.progress.clear();
    this.stuck.clear();
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
      const cells = this.cells.get(name);
      if (!this.values.has(name) || cells === undefined) {
        continue; // a column we don't show yet: variables_changed brings it
      }
      partSlots.forEach((slot, index) => {
        this.write(name, slot, valueAt(column.values, index));
        cells.delete(slot);
      });
      for (const [index, info] of Object.entries(column.cells ?? {})) {
        const slot = partSlots[Number(index)];
        if (slot !== undefined) {
          cells.set(slot, info);
        }
      }
      if (!this.loaded.has(name)) {
        partSlots.forEach((slot) => this.keepEarly(name, slot, part.seq));
      }
    }
    // `jobs` of a partial answer is not used: job_state events keep the marks current.
    return touched;
  }

  /**
   * Take the columns of a later part of the full table (`?format=binary&skip=N`):
   * they replace what the store has for those columns. Rows are matched by run; runs
   * the store does not know yet are added.
   */
  mergeColumns(part: Snapshot): string[] {
    const same = part.runs.length === this.rows.length && part.runs.every((run, i) => this.rows[i]?.run === run);
    const slots = same ? null : part.runs.map((run) => (this.rowOf(run) ?? this.addRun(run)).slot);
    const merged: string[] = [];
    for (const [name, column] of Object.entries(part.columns)) {
      if (!this.values.has(name)) {
        continue; // not a column of the loaded snapshot: variables_changed brings it
      }
      if (slots === null) {
        this.values.set(name, column.values);
        this.cells.set(name, cellMap(column.cells, (index) => index));
      } else {
        slots.forEach((slot, index) => this.write(name, slot, valueAt(column.values, index)));
        this.cells.set(name, cellMap(column.cells, (index) => slots[index]));
      }
      // Cells an event set after the moment this part reflects stay as the event left them.
      for (const [slot, kept] of this.early.get(name) ?? []) {
        if (kept.seq > part.seq) {
          this.write(name, slot, kept.value);
          if (kept.info === undefined) this.cells.get(name)?.delete(slot);
          else this.cells.get(name)?.set(slot, kept.info);
        }
      }
      this.early.delete(name);
      this.loaded.add(name);
      merged.push(name);
    }
    return merged;
  }

  /** Whether the data of column `name` is in (else its cells are empty until it comes). */
  isLoaded(name: string): boolean {
    return this.loaded.has(name);
  }

  private keepEarly(name: string, slot: number, seq: number): void {
    let kept = this.early.get(name);
    if (kept === undefined) {
      kept = new Map();
      this.early.set(name, kept);
    }
    kept.set(slot, { seq, value: this.value({ run: 0, slot }, name), info: this.cells.get(name)?.get(slot) });
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
    for (const [name, values] of this.values) {
      if (!(values instanceof Float64Array)) {
        values.push(null);
      } else if (slot < values.length) {
        values[slot] = NaN;
      } else {
        // Doubling: following a growing table must not copy every column per new run.
        const grown = new Float64Array(Math.max(2 * values.length, slot + 1, 64)).fill(NaN);
        grown.set(values);
        this.values.set(name, grown);
      }
    }
    return row;
  }

  value(row: RunRow, name: string): Value {
    const values = this.values.get(name);
    return values === undefined ? null : valueAt(values, row.slot);
  }

  /** Store one value; a typed column turns into a plain one for a value that is not a number. */
  private write(name: string, slot: number, value: Value): void {
    const values = this.values.get(name);
    if (values === undefined) {
      return;
    }
    if (!(values instanceof Float64Array)) {
      values[slot] = value;
    } else if (value === null || typeof value === "number") {
      values[slot] = value ?? NaN;
    } else {
      const plain = toPlain(values, this.rows.length);
      plain[slot] = value;
      this.values.set(name, plain);
    }
  }

  cell(row: RunRow, name: string): CellInfo | undefined {
    return this.cells.get(name)?.get(row.slot);
  }

  /**
   * A whole column at once, for scanning it fast (colstats.ts): values by slot (NaN or
   * a hole: none; typed columns may be longer than the table) and the cells' details.
   */
  columnData(name: string): { values: ArrayLike<Value>; cells: ReadonlyMap<number, CellInfo> } | undefined {
    const values = this.values.get(name);
    const cells = this.cells.get(name);
    return values === undefined || cells === undefined ? undefined : { values, cells };
  }

  /**
   * Set one value (from an event or an edit), dropping what the cell had before; `seq`:
   * the event's, so that the column's data arriving later with an older state keeps it.
   */
  setValue(row: RunRow, name: string, value: Value, info?: CellInfo, seq?: number): void {
    if (!this.values.has(name)) {
      return;
    }
    this.write(name, row.slot, value);
    if (info === undefined) {
      this.cells.get(name)?.delete(row.slot);
    } else {
      this.cells.get(name)?.set(row.slot, info);
    }
    if (!this.loaded.has(name)) this.keepEarly(name, row.slot, seq ?? Number.MAX_SAFE_INTEGER);
  }

  /** All values of a column (for filters): one per slot. */
  columnValues(name: string): readonly Value[] {
    const values = this.values.get(name);
    return values === undefined ? [] : this.rows.map((row) => valueAt(values, row.slot));
  }
}

/** `values[index]` with NaN (no value in a typed column) and holes as null. */
function valueAt(values: ColumnValues, index: number): Value {
  const value = values[index];
  if (value === undefined || (typeof value === "number" && Number.isNaN(value))) {
    return null;
  }
  return value;
}

function toPlain(values: Float64Array, length: number): Value[] {
  const plain: Value[] = new Array<Value>(length);
  for (let i = 0; i < length; i++) {
    plain[i] = valueAt(values, i);
  }
  return plain;
}

const BINARY_MAGIC = "RTB1";

/**
 * Read the binary form of `GET /api/table` (docs/dev/table-protocol.md): an `RTB1`
 * frame (`readFrame`) whose JSON is the snapshot, then float64 blocks.
 */
export function decodeBinary(buffer: ArrayBuffer): Snapshot {
  const frame = readFrame(buffer, BINARY_MAGIC, "table");
  const snapshot = frame.header as Snapshot;
  const blocks = frame.body;
  const n = snapshot.runs.length;
  type BinaryColumn = ColumnData & { f64?: number; pts?: number };
  const columns = Object.values(snapshot.columns) as BinaryColumn[];
  // Trendline points (float32) follow the float64 blocks.
  const points = blocks + columns.filter((c) => typeof c.f64 === "number").length * n * 8;
  for (const column of columns) {
    if (typeof column.f64 === "number") {
      // A view, not a copy: the answer's buffer holds the numbers.
      column.values = new Float64Array(buffer, blocks + column.f64 * n * 8, n);
      delete column.f64;
    }
    const base = column.pts;
    if (typeof base === "number") {
      for (const info of Object.values(column.cells ?? {}) as (CellInfo & { pts?: [number, number] })[]) {
        if (info.pts !== undefined) {
          info.points = new Float32Array(buffer, points + (base + info.pts[0]) * 4, info.pts[1]);
          delete info.pts;
        }
      }
      delete column.pts;
    }
  }
  return snapshot;
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
  columns?: { first?: number; skip?: number },
): Promise<Snapshot> {
  const query = new URLSearchParams();
  if (runs !== undefined) {
    query.set("runs", runs.join(","));
  }
  if (names !== undefined) {
    query.set("names", names.join(","));
  }
  // Every row (the whole table, or whole columns): the binary form.
  const binary = runs === undefined;
  if (binary) {
    query.set("format", "binary");
    if (columns?.first !== undefined) query.set("first", String(columns.first));
    if (columns?.skip !== undefined) query.set("skip", String(columns.skip));
  }
  const t0 = performance.now();
  const response = await apiFetch(`api/table?${query.toString()}`);
  let snapshot: Snapshot;
  let t1: number;
  if (binary) {
    const buffer = await response.arrayBuffer();
    t1 = performance.now();
    snapshot = decodeBinary(buffer);
    lastFetch.bytes = buffer.byteLength;
  } else {
    const text = await response.text();
    t1 = performance.now();
    snapshot = JSON.parse(text) as Snapshot;
    lastFetch.bytes = text.length;
  }
  lastFetch.download_ms = t1 - t0;
  lastFetch.parse_ms = performance.now() - t1;
  return snapshot;
}

/** Timings of the last `fetchSnapshot` (for the benchmark and for curious people). */
export const lastFetch = { download_ms: 0, parse_ms: 0, bytes: 0 };

/**
 * Columns whose data comes with the first part of a full load: about a screen's
 * worth, so that rows show soon over a slow network; the others come by name
 * (columnloader.ts), those on screen first.
 */
export const FIRST_COLUMNS = 16;

/** How long to wait before asking again while the server reads the table the first time. */
const PROGRESS_POLL_MS = 700;

/**
 * The full snapshot, with the data of the first `FIRST_COLUMNS` columns only (every
 * column is in `variables`); a server without the table route gives an empty table and
 * why. While the server reads a folder for the first time, `progress` is told how far.
 */
export async function loadSnapshot(
  progress: (done: number, total: number) => void = () => undefined,
): Promise<{ snapshot: Snapshot; message?: string }> {
  for (;;) {
    try {
      return { snapshot: await fetchSnapshot(undefined, undefined, { first: FIRST_COLUMNS }) };
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) {
        return { snapshot: emptySnapshot(), message: "this server has no run table" };
      }
      const got = error instanceof ApiError && error.status === 503 ? readProgress(error.body) : null;
      if (got === null) throw error;
      progress(got.done, got.total);
      await new Promise((resolve) => window.setTimeout(resolve, PROGRESS_POLL_MS));
    }
  }
}

function readProgress(body: unknown): { done: number; total: number } | null {
  if (typeof body !== "object" || body === null || !("progress" in body)) return null;
  const progress = (body as { progress: unknown }).progress;
  if (typeof progress !== "object" || progress === null) return null;
  const { done, total } = progress as { done?: unknown; total?: unknown };
  return typeof done === "number" && typeof total === "number" ? { done, total } : null;
}
