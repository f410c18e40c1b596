// The "new column" dialog: a user-editable variable (title → name, type, position,
// description). The server validates; its message is shown in the dialog, and what
// was typed stays there until it succeeds or is cancelled.

import { sendJson } from "./api";
import type { TableStore, VariableInfo } from "./table";
import { byId } from "./dom";
import { errorText } from "./text";

/** What the server will derive from a title (shown as the name's placeholder). */
export function nameFromTitle(title: string): string {
  let name = title
    .normalize("NFKD")
    .replace(/[^\x00-\x7f]/g, "")
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "_")
    .replace(/^_+|_+$/g, "");
  if (/^[0-9]/.test(name)) name = `v_${name}`;
  return name;
}

export class VariableDialog {
  private readonly dialog = byId("variable-dialog", HTMLDialogElement);
  private readonly form = byId("variable-form", HTMLFormElement);
  private readonly title = byId("var-title", HTMLInputElement);
  private readonly name = byId("var-name", HTMLInputElement);
  private readonly type = byId("var-type", HTMLSelectElement);
  private readonly after = byId("var-after", HTMLSelectElement);
  private readonly description = byId("var-description", HTMLTextAreaElement);
  private readonly error = byId("var-error", HTMLParagraphElement);
  private readonly store: TableStore;
  private readonly created: (info: VariableInfo) => void;

  constructor(store: TableStore, created: (info: VariableInfo) => void) {
    this.store = store;
    this.created = created;
    this.title.addEventListener("input", () => {
      this.name.placeholder = nameFromTitle(this.title.value) || "from the title";
    });
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      void this.submit();
    });
    byId("var-cancel", HTMLButtonElement).addEventListener("click", () => this.dialog.close());
  }

  open(): void {
    this.error.textContent = "";
    const options = [new Option("at the end", ""), new Option("first (after Comment)", "comment")];
    for (const variable of this.store.variables) {
      options.push(new Option(`after ${variable.title}`, variable.name));
    }
    const previous = this.after.value;
    this.after.replaceChildren(...options);
    this.after.value = previous;
    this.dialog.showModal();
    this.title.focus();
  }

  private async submit(): Promise<void> {
    this.error.textContent = "";
    const body: Record<string, string> = { title: this.title.value.trim(), type: this.type.value };
    if (this.name.value.trim() !== "") body.name = this.name.value.trim();
    if (this.description.value.trim() !== "") body.description = this.description.value.trim();
    if (this.after.value !== "") body.after = this.after.value;
    try {
      const info = await sendJson<VariableInfo>("POST", "api/variables", body);
      this.dialog.close();
      this.form.reset();
      this.name.placeholder = "from the title";
      this.created(info);
    } catch (error) {
      this.error.textContent = errorText(error);
    }
  }
}
