// Standalone notes shown among the runs, by time, as rows across the whole table
// ("changed the sample" between the runs before and after), as the reference shows its
// time-stamped comments. A note row is no run: it has no values, cannot be selected,
// passes every column filter, and is left out of exports, copies, plots and the run
// count (grid.ts `displayedRows`). It has a place only in an order by time: the table
// sorted by run or by timestamp (either way), or not sorted; sorted by anything else,
// the notes are hidden.

import type { ICellRendererComp, ICellRendererParams, IRowNode } from "ag-grid-community";

import { el } from "../dom";
import { describeTimestamp, formatTimestamp } from "../format";
import { isNote, type RunRow, type TimeComment } from "../table";

/** Grid rows for `notes` (those with a valid time: the others have no place). */
export function noteRows(notes: readonly TimeComment[]): RunRow[] {
  return notes.filter((note) => note.timestamp !== null).map((note) => ({ run: Number.NaN, slot: -1, note }));
}

/** The grid's id of a row: the run number, or `note:<id>`. */
export function rowId(row: RunRow): string {
  return row.note === undefined ? String(row.run) : `note:${row.note.id}`;
}

/**
 * Put the note rows among the sorted run rows by time, in place: each note before the
 * first run that started after it (`direction` "asc"; "desc": before the first run
 * that started before it). Runs without a start time don't move a note.
 */
export function placeNotes(
  nodes: IRowNode<RunRow>[],
  startTime: (row: RunRow) => number | null,
  direction: "asc" | "desc",
): void {
  const notes = nodes.filter((node) => isNote(node.data));
  if (notes.length === 0) return;
  const time = (node: IRowNode<RunRow>): number => node.data?.note?.timestamp ?? 0;
  const sign = direction === "asc" ? 1 : -1;
  notes.sort((a, b) => sign * (time(a) - time(b)) || (a.data?.note?.id ?? 0) - (b.data?.note?.id ?? 0));
  const merged: IRowNode<RunRow>[] = [];
  let next = 0;
  for (const node of nodes) {
    if (node.data === undefined || isNote(node.data)) continue;
    const started = startTime(node.data);
    if (started !== null) {
      while (next < notes.length && sign * (time(notes[next]!) - started) < 0) merged.push(notes[next++]!);
    }
    merged.push(node);
  }
  merged.push(...notes.slice(next));
  nodes.splice(0, nodes.length, ...merged);
}

/** The event a double-click on a note row sends (detail: the note's id); main.ts opens
 * the note in the Notes panel's editor. */
export const EDIT_NOTE_EVENT = "rt-edit-note";

/** A note row: its time and text (always as text, never HTML). */
export class NoteRowRenderer implements ICellRendererComp<RunRow> {
  private readonly gui = document.createElement("div");
  private id: number | null = null;

  init(params: ICellRendererParams<RunRow>): void {
    this.gui.className = "rt-note-row";
    this.gui.addEventListener("dblclick", () => {
      if (this.id !== null) document.dispatchEvent(new CustomEvent(EDIT_NOTE_EVENT, { detail: this.id }));
    });
    this.refresh(params);
  }

  getGui(): HTMLElement {
    return this.gui;
  }

  refresh(params: ICellRendererParams<RunRow>): boolean {
    const note = params.data?.note;
    this.gui.replaceChildren();
    this.id = note?.id ?? null;
    if (note === undefined) return true;
    this.gui.append(
      el("span", { className: "rt-note-label", text: "Note" }),
      noteTime(note),
      el("span", {
        className: "rt-note-text",
        text: note.text.split("\n").join(" · "),
        title: `${note.text}\n\n(Double-click to edit it in the Notes panel)`,
      }),
    );
    return true;
  }
}

/** A note's time as a `<time>` element (a note without a valid time says so). */
export function noteTime(note: TimeComment): HTMLTimeElement {
  const time = document.createElement("time");
  if (note.timestamp === null) {
    time.textContent = "(no valid time: edit to set one)";
    return time;
  }
  time.dateTime = new Date(note.timestamp * 1000).toISOString();
  time.textContent = formatTimestamp(note.timestamp, "minutes");
  time.title = describeTimestamp(note.timestamp);
  return time;
}
