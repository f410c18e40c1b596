// The run table's data as the frontend sees it, and loading it from the server.

import { ApiError, getJson } from "./api";

/** One column per variable of the context file (or user-editable variable). */
export interface VariableColumn {
  /** Variable name: the key of the value in each row. */
  name: string;
  /** Column header; `/` in a title will later build hierarchical headers. */
  title: string;
  description?: string;
}

/** One run: the fixed fields plus one value per variable name. */
export interface RunRow {
  proposal?: number;
  run: number;
  /** Seconds since the epoch (UTC) when the run started. */
  timestamp: number | null;
  comment: string | null;
  [variable: string]: unknown;
}

export interface TableData {
  columns: VariableColumn[];
  rows: RunRow[];
  /** Shown instead of rows when there are none, e.g. why the table is empty. */
  message?: string;
}

/**
 * Load the whole table from `GET /api/table`.
 *
 * Provisional: the answer is `{columns, rows}` as JSON until the server's compact,
 * columnar transport exists. A server without the endpoint yet gives an empty table.
 */
export async function loadTable(): Promise<TableData> {
  try {
    const table = await getJson<TableData>("api/table");
    return { columns: table.columns ?? [], rows: table.rows ?? [] };
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) {
      return { columns: [], rows: [], message: "no table endpoint yet" };
    }
    throw error;
  }
}
