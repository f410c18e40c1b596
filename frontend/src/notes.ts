// The Notes panel: standalone time-stamped comments (not tied to a run), e.g. "changed
// the sample at 14:05". Everyone's notes, newest first; updated live.

import { getJson, sendJson } from "./api";

interface TimeComment {
  id: number;
  timestamp: number;
  text: string;
}

const when = new Intl.DateTimeFormat("sv-SE", { dateStyle: "short", timeStyle: "short" });

function el<T extends HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (found === null) throw new Error(`index.html has no element with id "${id}"`);
  return found as T;
}

export class NotesPanel {
  private readonly list = el<HTMLUListElement>("note-list");
  private readonly form = el<HTMLFormElement>("note-form");
  private readonly text = el<HTMLTextAreaElement>("note-text");
  private readonly notify: (message: string, kind: "info" | "error") => void;

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
    return !el<HTMLElement>("notes-panel").hidden;
  }

  open(): void {
    void this.load();
    this.text.focus();
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
      this.notify(`Note not saved: ${error instanceof Error ? error.message : String(error)}`, "error");
    }
  }

  private async load(): Promise<void> {
    try {
      const notes = await getJson<TimeComment[]>("api/time-comments");
      notes.sort((a, b) => b.timestamp - a.timestamp || b.id - a.id);
      this.list.replaceChildren(...notes.map((note) => this.item(note)));
      if (notes.length === 0) {
        const empty = document.createElement("li");
        empty.className = "hint";
        empty.textContent = "No notes yet.";
        this.list.append(empty);
      }
    } catch (error) {
      this.notify(`Could not load the notes: ${error instanceof Error ? error.message : String(error)}`, "error");
    }
  }

  private item(note: TimeComment): HTMLLIElement {
    const item = document.createElement("li");
    item.dataset.id = String(note.id);
    const time = document.createElement("time");
    time.dateTime = new Date(note.timestamp * 1000).toISOString();
    time.textContent = when.format(new Date(note.timestamp * 1000));
    const text = document.createElement("p");
    text.textContent = note.text;
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "rt-button small";
    remove.textContent = "Delete";
    remove.addEventListener("click", () => {
      if (!window.confirm(`Delete this note?\n\n${note.text}`)) return;
      sendJson("DELETE", `api/time-comments/${note.id}`)
        .then(() => this.load())
        .catch((error: unknown) => this.notify(`Note not deleted: ${String(error)}`, "error"));
    });
    item.append(time, text, remove);
    return item;
  }
}
