// When two people edit one cell: the server refuses the edit made on an older value
// (HTTP 409, with the value stored now) and this dialog lets the person choose.

import { button } from "./dom";

/** What the person chose: keep the value stored now, or store theirs over it. */
export type ConflictChoice = "theirs" | "mine";

/**
 * Show both values of a cell someone else changed while this person edited it, and
 * resolve with their choice (Escape keeps the stored value: nothing is overwritten
 * without a click).
 */
export function chooseVersion(options: { what: string; mine: string; theirs: string }): Promise<ConflictChoice> {
  return new Promise((resolve) => {
    const dialog = document.createElement("dialog");
    dialog.className = "dialog rt-conflict";
    dialog.id = "edit-conflict";
    const title = document.createElement("h2");
    title.textContent = `${options.what} was changed meanwhile`;
    const intro = document.createElement("p");
    intro.textContent = "Someone else saved this cell while you were editing it. Which should it hold?";
    const box = (label: string, text: string, id: string): HTMLElement => {
      const figure = document.createElement("figure");
      const caption = document.createElement("figcaption");
      caption.textContent = label;
      const pre = document.createElement("pre");
      pre.id = id;
      pre.textContent = text === "" ? "(empty)" : text;
      figure.append(caption, pre);
      return figure;
    };
    const buttons = document.createElement("div");
    buttons.className = "dialog-buttons";
    const choice = (label: string, value: ConflictChoice, id: string): HTMLButtonElement => {
      const b = button(label, () => dialog.close(value), { className: value === "theirs" ? "rt-button" : "rt-button primary" });
      b.id = id;
      return b;
    };
    const keep = choice("Keep theirs", "theirs", "conflict-theirs");
    buttons.append(keep, choice("Use mine", "mine", "conflict-mine"));
    dialog.append(title, intro, box("Stored now", options.theirs, "conflict-theirs-text"),
      box("Yours", options.mine, "conflict-mine-text"), buttons);
    dialog.addEventListener("close", () => {
      resolve(dialog.returnValue === "mine" ? "mine" : "theirs");
      dialog.remove();
    });
    document.body.append(dialog);
    dialog.showModal();
    keep.focus();
  });
}
