// The table's filters in the filter language (docs/filters.md): each column filter
// written as an expression, expressions typed by hand, and which runs they keep.
//
// The page does not evaluate the language itself: the server does, with the same
// code as `db.table(where=…)` and `runtable table --where` (runtable.store.where), so
// that a filter keeps the same runs everywhere (docs/adr/009-one-filter-language.md).

import { getJson } from "./api";
import type { ValueFilterModel } from "./filters";
import { timestampWithOffset } from "./format";

const KEYWORDS = new Set(["and", "or", "not", "in", "is", "has", "missing", "error", "value", "contains", "true", "false"]);

/** A string literal of the language. */
export function quote(text: string): string {
  return `"${text.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
}

/** How the language names column `colId` (a variable's name, or run/timestamp/comment). */
export function fieldOf(colId: string): string {
  const name = colId.startsWith("var:") ? colId.slice(4) : colId;
  return /^[A-Za-z_][\w.]*$/.test(name) && !KEYWORDS.has(name.toLowerCase()) ? name : quote(name);
}

/** A number of column `colId` as the language writes it (times as local ISO text). */
function bound(colId: string, value: number): string {
  if (colId === "timestamp") return quote(timestampWithOffset(value, !Number.isInteger(value)));
  return String(value);
}

/** A checklist choice (the filter's key: the value as text) as a literal. */
function choice(key: string, numeric: boolean): string {
  if (numeric && key !== "" && Number.isFinite(Number(key))) return key;
  if (key === "true" || key === "false") return key;
  return quote(key);
}

/** Column filter `model` of column `colId` as an expression (its parts joined by `and`). */
export function modelExpression(colId: string, model: ValueFilterModel): string {
  const f = fieldOf(colId);
  const parts: string[] = [];
  if (model.presence === "value") parts.push(`${f} has value`);
  if (model.presence === "empty") parts.push(`${f} is missing`);
  if (model.presence === "error") parts.push(`${f} has error`);
  const orEmpty = (test: string): string => (model.keepEmpty === true ? `(${test} or ${f} is missing)` : test);
  if (model.min !== undefined && model.max !== undefined) {
    parts.push(orEmpty(`${f} in ${bound(colId, model.min)}..${bound(colId, model.max)}`));
  } else if (model.min !== undefined) {
    parts.push(orEmpty(`${f} >= ${bound(colId, model.min)}`));
  } else if (model.max !== undefined) {
    parts.push(orEmpty(`${f} <= ${bound(colId, model.max)}`));
  }
  if (model.choices !== undefined) {
    parts.push(orEmpty(`${f} in [${model.choices.map((key) => choice(key, model.numbers === true)).join(", ")}]`));
  }
  if (model.text !== undefined && model.text !== "") parts.push(`${f} contains ${quote(model.text)}`);
  return parts.join(" and ");
}

/** Join filter expressions with `and` (each in parentheses when it has an `or`). */
export function joinAnd(parts: readonly string[]): string {
  const kept = parts.filter((p) => p.trim() !== "");
  if (kept.length === 1) return kept[0] ?? "";
  return kept.map((p) => (/\bor\b/i.test(p) ? `(${p})` : p)).join(" and ");
}

/** A part of a filter's top-level `and`, and the column filter that shows it (if one can). */
export interface WherePart {
  text: string;
  /** The column it tests (a variable's name, or run/timestamp/comment); null: several. */
  field: string | null;
  model: ValueFilterModel | null;
}

export interface WhereAnswer {
  runs: number[];
  expression: string;
  parts: WherePart[];
  seq: number;
}

/**
 * Which runs the current expression keeps, as the server says. A new expression (or
 * new data) asks again; only the answer to the latest question is used.
 */
export class RunFilter {
  private expression = "";
  private keep: Set<number> | null = null;
  private asked = 0;
  /** Set while an answer is awaited (for tests: the rows shown are about to change). */
  pending: Promise<void> | null = null;
  /** The expression whose runs are shown. */
  shown = "";
  /** The last expression the server refused (said once, not at each data change). */
  private refused = "";

  constructor(
    private readonly applied: () => void,
    private readonly failed: (expression: string, error: unknown) => void,
  ) {}

  get active(): boolean {
    return this.keep !== null;
  }

  get current(): string {
    return this.expression;
  }

  /** Whether run `run` passes (every run when no filter is set). */
  keeps(run: number): boolean {
    return this.keep === null || this.keep.has(run);
  }

  /** Filter by `expression` (again, when `force`: the data changed). */
  set(expression: string, force = false): Promise<void> {
    if (expression === this.expression && !force) return this.pending ?? Promise.resolve();
    this.expression = expression;
    const ticket = ++this.asked;
    if (expression.trim() === "") {
      this.keep = null;
      this.pending = null;
      this.shown = "";
      this.applied();
      return Promise.resolve();
    }
    const done = ask(expression).then(
      (answer) => {
        if (ticket !== this.asked) return;
        this.keep = new Set(answer.runs);
        this.shown = expression;
        this.refused = "";
        this.applied();
      },
      (error: unknown) => {
        if (ticket !== this.asked || expression === this.refused) return;
        this.refused = expression;
        this.failed(expression, error);
      },
    ).finally(() => {
      if (ticket === this.asked) this.pending = null;
    });
    this.pending = done;
    return done;
  }
}

/** The server's reading of `expression`: the runs it keeps and its parts. */
export function ask(expression: string): Promise<WhereAnswer> {
  return getJson<WhereAnswer>(`api/table/runs?where=${encodeURIComponent(expression)}`);
}
