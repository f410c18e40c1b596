// The Notes panel: standalone time-stamped comments (not tied to a run), e.g. "changed
// the sample at 14:05". Everyone's notes, newest first; added, edited and deleted here
// and updated live from the `time_comment` events of other browsers.

import { getJson, sendJson } from "../api";
import type { TimeComment } from "../table";
import { button, byId } from "../dom";
import { errorText } from "../text";
import { noteTime } from "./rows";

/** The note being edited in this page. Its DOM survives reloads of the list, so live
 * updates from other browsers never throw away what is being typed. */
interface Editing {
  note: TimeComment;
  item: HTMLLIElement;
  box: HTMLTextAreaElement;
  error: HTMLElement;
}

export class NotesPanel {
  private readonly list = byId("note-list", HTMLUListElement);
  private readonly form = byId("note-form", HTMLFormElement);
  private readonly text = byId("note-text", HTMLTextAreaElement);
  private readonly notify: (message: string, kind: "info" | "error") => void;
  private editing: Editing | null = null;
  // Loads overlap when events arrive in a burst; only the latest may fill the list.
  private loads = 0;
  /** The notes listed now, by id. */
  private shown = new Map<number, TimeComment>();

  constructor(notify: (message: string, kind: "info" | "error") => void) {
    this.notify = notify;
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      void this.add();
    });
    this.text.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        void this.add();
      }
    });
  }

  private isOpen(): boolean {
    return !byId("notes-panel", HTMLElement).hidden;
  }

  open(): void {
    void this.load();
    this.text.focus();
  }

  /** Open note `id` in its editor (the panel is shown already). */
  async editNote(id: number): Promise<void> {
    await this.load();
    const item = this.list.querySelector<HTMLLIElement>(`li[data-id="${id}"]`);
    const note = this.shown.get(id);
    if (item !== null && note !== undefined && this.editing?.note.id !== id) this.edit(note, item);
  }

  /** A `time_comment` event: reload when shown. */
  changed(): void {
    if (this.isOpen()) void this.load();
  }

  private async add(): Promise<void> {
    const text = this.text.value.trim();
    if (text === "") return;
    try {
      await sendJson("POST", "api/time-comments", { text });
      this.text.value = "";
      await this.load();
    } catch (error) {
      // The text stays in the box: nothing typed is lost.
      this.notify(`Note not saved: ${errorText(error)}`, "error");
    }
  }

  private async load(): Promise<void> {
    const ticket = ++this.loads;
    let notes: TimeComment[];
    try {
      notes = await getJson<TimeComment[]>("api/time-comments");
    } catch (error) {
      this.notify(`Could not load the notes: ${errorText(error)}`, "error");
      return;
    }
    if (ticket !== this.loads) return;
    notes.sort((a, b) => (b.timestamp ?? -Infinity) - (a.timestamp ?? -Infinity) || b.id - a.id);
    this.shown = new Map(notes.map((note) => [note.id, note]));
    const editing = this.editing;
    const items = notes.map((note) => {
      if (editing === null || note.id !== editing.note.id) return this.item(note);
      // Someone else's edit replaces what Escape goes back to, not what is typed.
      editing.note = note;
      return editing.item;
    });
    if (editing !== null && !notes.some((note) => note.id === editing.note.id)) {
      // Deleted in another browser: keep the editor (and the text) until it is closed.
      items.unshift(editing.item);
      editing.error.textContent =
        "Someone deleted this note meanwhile. Copy your text if you still need it; Escape closes.";
    }
    const hadFocus = editing !== null && document.activeElement === editing.box;
    const [start, end] = editing === null ? [0, 0] : [editing.box.selectionStart, editing.box.selectionEnd];
    this.list.replaceChildren(...items);
    if (editing !== null && hadFocus) {
      // Moving the editor in the DOM blurs it; the person was typing, so give it back.
      editing.box.focus();
      editing.box.setSelectionRange(start, end);
    }
    if (items.length === 0) {
      const empty = document.createElement("li");
      empty.className = "hint";
      empty.textContent = "No notes yet.";
      this.list.append(empty);
    }
  }

  private item(note: TimeComment): HTMLLIElement {
    const item = document.createElement("li");
    item.dataset.id = String(note.id);
    const text = document.createElement("p");
    text.textContent = note.text;
    text.title = "Double-click to edit";
    text.addEventListener("dblclick", () => this.edit(note, item));
    const edit = button("Edit", () => this.edit(note, item), { className: "rt-button small" });
    edit.className += " note-edit-button";
    const remove = button("Delete", () => {
      if (!window.confirm(`Delete this note?\n\n${note.text}`)) return;
      sendJson("DELETE", `api/time-comments/${note.id}`)
        .then(() => this.load())
        .catch((error: unknown) => this.notify(`Note not deleted: ${errorText(error)}`, "error"));
    }, { className: "rt-button small" });
    item.append(noteTime(note), text, edit, remove);
    return item;
  }

  /** Turn `item` into an editor for `note`: Enter saves, Shift+Enter is a new line,
   * Escape goes back to the saved text. */
  private edit(note: TimeComment, item: HTMLLIElement): void {
    if (this.editing !== null) {
      if (this.editing.box.value !== this.editing.note.text) {
        // One editor at a time, and never drop unsaved text to open another.
        this.editing.box.focus();
        this.notify("Save (Enter) or cancel (Escape) the note you are editing first", "error");
        return;
      }
      this.close();
    }
    const box = document.createElement("textarea");
    box.className = "note-edit";
    box.setAttribute("aria-label", "Edit note");
    box.rows = Math.min(8, Math.max(2, note.text.split("\n").length));
    box.value = note.text;
    const error = document.createElement("p");
    error.className = "note-error";
    error.setAttribute("role", "alert");
    const hint = document.createElement("span");
    hint.className = "hint";
    hint.textContent = "Enter saves · Shift+Enter new line · Escape cancels";
    const editor = document.createElement("li");
    editor.dataset.id = String(note.id);
    editor.className = "editing";
    editor.append(noteTime(note), box, error, hint);
    this.editing = { note, item: editor, box, error };
    box.addEventListener("keydown", (event) => {
      if (event.isComposing) return;
      if (event.key === "Enter" && !event.shiftKey) {
        event.preventDefault();
        void this.save();
      } else if (event.key === "Escape") {
        event.preventDefault();
        event.stopPropagation();
        this.close();
      }
    });
    item.replaceWith(editor);
    box.focus();
    box.setSelectionRange(box.value.length, box.value.length);
  }

  private async save(): Promise<void> {
    const editing = this.editing;
    if (editing === null || editing.box.readOnly) return;
    const text = editing.box.value.trim();
    if (text === editing.note.text) {
      this.close();
      return;
    }
    // Read-only while the request runs: text typed then would be lost on success.
    editing.box.readOnly = true;
    editing.error.textContent = "";
    try {
      // Empty text goes to the server too: its answer says what to do instead.
      await sendJson("PUT", `api/time-comments/${editing.note.id}`, { text });
    } catch (error) {
      // The editor stays open with the typed text, and says why.
      editing.box.readOnly = false;
      editing.error.textContent = `Not saved: ${errorText(error)}`;
      editing.box.focus();
      return;
    }
    if (this.editing === editing) this.editing = null;
    await this.load();
  }

  /** Leave the editor without saving. */
  private close(): void {
    const editing = this.editing;
    if (editing === null) return;
    this.editing = null;
    if (editing.item.isConnected) editing.item.replaceWith(this.item(editing.note));
    // Deleted meanwhile: the reload drops it.
    void this.load();
  }
}
