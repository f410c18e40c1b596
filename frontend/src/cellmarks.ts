// Marks on variable cells that feature modules add (the history module's "stale"): a
// CSS class on the cell and a sentence in its tooltip. The grid asks for them when it
// draws a cell; a module whose marks changed redraws the columns concerned.

export interface CellMark {
  /** CSS class of marked cells. */
  className: string;
  /** Whether the cell of `run` in variable `name` carries the mark. */
  applies(run: number, name: string): boolean;
  /** The tooltip's sentence for a marked cell. */
  note(run: number, name: string): string;
}

const marks: CellMark[] = [];

/** Add a kind of mark (once, at start-up). */
export function addCellMark(mark: CellMark): void {
  marks.push(mark);
}

/** CSS classes of the marks on one cell. */
export function markClasses(run: number, name: string): string[] {
  return marks.filter((m) => m.applies(run, name)).map((m) => m.className);
}

/** Tooltip sentences of the marks on one cell. */
export function markNotes(run: number, name: string): string[] {
  return marks.filter((m) => m.applies(run, name)).map((m) => m.note(run, name));
}
