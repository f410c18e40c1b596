// The binary answers of the API: a frame (4-byte magic, JSON header, aligned blocks)
// read by `readFrame`, and the cell data protocol (docs/dev/cell-data.md) on top of it,
// `RTCD`: one cell's arrays for previews and plots. The table's `RTB1` frame
// (docs/dev/table-protocol.md) is read by `table.ts` with the same `readFrame`.

import { apiFetch } from "./api";

/** A binary frame's JSON header and where the bytes after it start (8-byte aligned). */
export interface Frame {
  header: unknown;
  body: number;
}

/**
 * Read a frame's start: `magic` (4 ASCII bytes), the header's length `N` (uint32 LE),
 * `N` bytes of UTF-8 JSON; the body starts at the next multiple of 8. `what` names the
 * answer in the error thrown when the bytes are not such a frame.
 */
export function readFrame(buffer: ArrayBuffer, magic: string, what: string): Frame {
  const bytes = new Uint8Array(buffer);
  if (buffer.byteLength < 8 || String.fromCharCode(...bytes.subarray(0, 4)) !== magic) {
    throw new Error(`the server's ${what} answer is not in the expected binary form`);
  }
  const length = new DataView(buffer).getUint32(4, true);
  const header: unknown = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + length)));
  return { header, body: 8 + length + ((8 - ((8 + length) % 8)) % 8) };
}

const CELL_MAGIC = "RTCD";

export type FloatArray = Float32Array | Float64Array;

export interface ArraySpec {
  name: string;
  dtype: "float32" | "float64";
  shape: number[];
  offset: number;
  nbytes: number;
}

/** An image axis (docs/dev/cell-data.md): which data indices its pixels cover. */
export interface Axis {
  name: string | null;
  start: number;
  step: number;
  size: number;
}

/** How an axis is labelled: by a coordinate (`coord`), perhaps of dates (epoch ms). */
export interface AxisLabel {
  name: string | null;
  units?: string | null;
  coord?: boolean;
  date?: boolean;
  /** Why a coordinate of this dimension is not used (drawn in index units instead). */
  note?: string | null;
}

export interface Member {
  name: string;
  dims: (string | null)[];
  shape: number[];
  dtype: string;
  units: string | null;
}

/** The answer's header (docs/dev/cell-data.md); fields depend on `kind`. */
export interface CellHeader {
  run: number;
  name: string;
  path: string | null;
  kind: "scalar" | "text" | "line" | "image" | "rgb" | "plotly" | "picture" | "dataset" | "error";
  has_preview?: boolean;
  shape?: number[];
  ndim?: number;
  dtype?: string;
  dims?: (string | null)[];
  units?: string | null;
  slice?: string | null;
  complex?: string;
  region?: number[];
  downsample?: { method: string; factor: number };
  percentiles?: [number, number] | null;
  range?: [number, number] | null;
  x?: Axis & AxisLabel;
  y?: Axis & AxisLabel;
  value?: unknown;
  values?: string[];
  truncated?: boolean;
  text?: string;
  png?: string;
  figure?: { data?: unknown[]; layout?: Record<string, unknown>; frames?: unknown[] };
  members?: Member[];
  message?: string;
  error_cls?: string;
  arrays: ArraySpec[];
}

export interface CellAnswer {
  header: CellHeader;
  arrays: Record<string, FloatArray>;
  bytes: number;
}

/** Split a binary answer into its header and typed arrays (views, not copies). */
export function decodeCellData(buffer: ArrayBuffer): CellAnswer {
  const header = readFrame(buffer, CELL_MAGIC, "cell data").header as CellHeader;
  const arrays: Record<string, FloatArray> = {};
  for (const spec of header.arrays) {
    const Type = spec.dtype === "float32" ? Float32Array : Float64Array;
    arrays[spec.name] = new Type(buffer, spec.offset, spec.nbytes / Type.BYTES_PER_ELEMENT);
  }
  return { header, arrays, bytes: buffer.byteLength };
}

export interface CellQuery {
  path?: string | null;
  slice?: string | null;
  region?: number[] | null;
  maxPoints?: number;
  maxPixels?: number | undefined;
  preview?: boolean;
}

/** Fetch one cell's data in the binary form. */
export async function fetchCellData(run: number, name: string, query: CellQuery = {}): Promise<CellAnswer> {
  const params = new URLSearchParams({ format: "binary" });
  if (query.path != null) params.set("path", query.path);
  if (query.slice != null) params.set("slice", query.slice);
  if (query.region != null) params.set("region", query.region.map((v) => String(v)).join(","));
  if (query.maxPoints !== undefined) params.set("max_points", String(query.maxPoints));
  if (query.maxPixels !== undefined) params.set("max_pixels", String(query.maxPixels));
  if (query.preview === true) params.set("preview", "true");
  const response = await apiFetch(`api/cell/${run}/${encodeURIComponent(name)}/data?${params.toString()}`);
  return decodeCellData(await response.arrayBuffer());
}
