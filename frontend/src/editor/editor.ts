// The context-file editor, in a tab: edit, check (in the experiment's Python, on the
// server), save with conflict detection, history and rollback. CodeMirror lives in
// codemirror.ts and is loaded on first use.
//
// The text someone typed is never lost silently: a save that fails keeps it in the
// editor, a file changed on disk while there are unsaved edits opens a comparison
// (reload / overwrite / cancel), and closing the tab or the page with unsaved edits asks.

import "./editor.css";

import { ApiError, getJson, sendJson } from "../api";
import type { AppContext } from "../appcontext";
import type { CodeEditor, Marker } from "./codemirror";
import { button, el, parts } from "../dom";
import { formatTimestamp } from "../format";
import type { LiveEvent } from "../generated/events";
import { onRestore, openTab, type Tab } from "../tabs";
import { errorText, plural } from "../text";

const TAB_ID = "context-editor";
const TITLE = "Context file";
/** How often an open editor asks whether the file changed on disk (the service's
 * `context_status` and other editors' `context_saved` events usually tell sooner). */
const POLL_MS = 15_000;

export interface Issue {
  message: string;
  line: number | null;
  column: number | null;
  kind: string;
  path: string;
  traceback: string;
}

export interface CheckResult {
  ok: boolean;
  errors: Issue[];
  warnings: Issue[];
  variables: { name: string; title: string }[];
}

interface ContextFile {
  path: string;
  exists: boolean;
  text: string;
  version: string;
  modified: number | null;
  status: CheckResult | null;
}

interface SaveAnswer {
  version: string;
  changed: boolean;
  history_id: string | null;
  check: CheckResult;
}

interface HistoryEntry {
  id: string;
  time: number;
  kind: "saved" | "before";
  size: number;
  by: string;
  summary: string;
  first_changed_line: number | null;
}

/** The part of a version that names the content (the rest is the modification time). */
function contentOf(version: string): string {
  return version.split("-", 1)[0] ?? version;
}

function when(seconds: number): string {
  return formatTimestamp(seconds);
}

/** One open editor tab. */
class ContextEditor {
  private editor: CodeEditor | null = null;
  /** The version the text in the editor started from. */
  private baseVersion = "";
  /** The text of `baseVersion`: the editor is dirty when its text differs. */
  private baseText = "";
  private dirty = false;
  private busy = false;
  private timer: number | undefined;
  /** A disk version already offered in a conflict, so polling does not nag about it. */
  private offered = "";
  private readonly ui = parts("ed", { status: "div", service: "div", problems: "div", banner: "div", history: "div", host: "div" });
  private readonly buttons: HTMLButtonElement[] = [];
  /** The variables of the last check or save (for completion). */
  private lastVariables: { name: string; title: string }[] = [];
  /** How many variables the file on disk has, when its check is known. */
  private diskVariables: number | null = null;
  private readonly unload = (event: BeforeUnloadEvent): void => {
    if (!this.dirty) return;
    event.preventDefault();
    event.returnValue = "";
  };
  /** Closing the tab with unsaved edits asks first (tabs.ts calls this). */
  readonly canClose = (): boolean =>
    !this.dirty || window.confirm("The context file has unsaved edits. Close the editor and lose them?");

  constructor(
    private readonly app: AppContext,
    private readonly tab: Tab,
  ) {
    const body = tab.body;
    body.classList.add("ed-tab");
    const bar = el("div", { className: "ed-bar" });
    const check = button("Check", () => void this.check(), {
      className: "rt-button ed-check",
      title: "Load the text in the experiment's Python without saving it",
    });
    const save = button("Save", () => void this.save(), { className: "rt-button primary ed-save", title: "Check, then save (Ctrl-S)" });
    const reload = button("Reload", () => void this.reloadFromDisk(), {
      className: "rt-button ed-reload",
      title: "Load the file as it is on disk now",
    });
    this.buttons.push(check, save, button("History", () => void this.toggleHistory(), { className: "rt-button ed-history-button" }), reload);
    bar.append(...this.buttons, this.ui.status, this.ui.service);
    this.ui.banner.hidden = true;
    this.ui.history.hidden = true;
    const main = el("div", { className: "ed-main" });
    main.append(this.ui.host, this.ui.history);
    this.ui.problems.hidden = true;
    body.append(bar, this.ui.banner, main, this.ui.problems);
    window.addEventListener("beforeunload", this.unload);
    // Ctrl-S anywhere in the tab (the editor has its own binding too).
    body.addEventListener("keydown", (event) => {
      if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "s") {
        event.preventDefault();
        void this.save();
      }
    });
  }

  async start(): Promise<void> {
    this.setStatus("Loading…");
    try {
      const [cm, file] = await Promise.all([import("./codemirror"), getJson<ContextFile>("api/context")]);
      this.editor = cm.createEditor(this.ui.host, file.text, {
        changed: () => this.textChanged(),
        save: () => void this.save(),
        variableNames: () => this.variableNames(),
      });
      this.adopt(file.text, file.version);
      this.setStatus(file.exists ? "Saved" : "No context file yet: saving creates it");
      this.timer = window.setInterval(() => void this.pollDisk(), POLL_MS);
      void this.checkOpened(file);
    } catch (error) {
      this.setStatus(`Could not open the context file: ${errorText(error)}`, true);
      this.app.toast(`Could not open the context file: ${errorText(error)}`, "error");
    }
  }

  /** Variables of the text being edited (as typed), of its last check and of the table. */
  private variableNames(): string[] {
    const names = new Set<string>();
    const text = this.editor?.text() ?? "";
    for (const match of text.matchAll(/^[ \t]*@Variable\b[^]*?^[ \t]*def[ \t]+(\w+)/gm)) {
      if (match[1] !== undefined) names.add(match[1]);
    }
    for (const v of this.lastVariables) names.add(v.name);
    for (const v of this.app.store.variables) if (!v.user_editable) names.add(v.name);
    return [...names].sort();
  }

  close(): void {
    window.clearInterval(this.timer);
    window.removeEventListener("beforeunload", this.unload);
    this.editor?.destroy();
    this.editor = null;
  }

  shown(): void {
    this.editor?.view.focus();
    void this.pollDisk();
  }

  /** A live event: the service reloaded the file, or another editor saved it. */
  event(event: LiveEvent): void {
    if (event.kind === "context_status") {
      const { ok, problems } = event;
      const count = this.diskVariables === null ? "" : `, ${plural(this.diskVariables, "variable")}`;
      this.ui.service.textContent = ok ? `Service: file loads${count}` : `Service: file does not load — ${problems[0] ?? ""}`;
      this.ui.service.dataset.ok = String(ok);
      this.ui.service.title = problems.join("\n");
      void this.pollDisk();
    } else if (event.kind === "variables_changed") {
      // The service reloaded a changed file whose variables differ: from here or not?
      void this.pollDisk();
    } else if (event.kind === "context_saved") {
      if (contentOf(event.version) !== contentOf(this.baseVersion)) void this.pollDisk();
    }
  }

  // -- state ------------------------------------------------------------------------------

  private adopt(text: string, version: string): void {
    this.baseText = text;
    this.baseVersion = version;
    this.offered = "";
    this.ui.banner.hidden = true;
    if (this.editor !== null && this.editor.text() !== text) this.editor.setText(text);
    this.textChanged();
  }

  private textChanged(render = false): void {
    const dirty = this.editor !== null && this.editor.text() !== this.baseText;
    if (dirty === this.dirty && !render) return;
    this.dirty = dirty;
    this.tab.setTitle(dirty ? `${TITLE} •` : TITLE);
    this.tab.body.dataset.dirty = String(dirty);
    this.setStatus(dirty ? "Unsaved changes" : "Saved");
  }

  private setStatus(text: string, error = false): void {
    this.ui.status.textContent = text;
    this.ui.status.dataset.kind = error ? "error" : "info";
  }

  private setBusy(busy: boolean): void {
    this.busy = busy;
    for (const b of this.buttons) b.disabled = busy;
  }

  // -- checking ---------------------------------------------------------------------------

  async check(): Promise<CheckResult | null> {
    if (this.editor === null || this.busy) return null;
    this.setBusy(true);
    this.setStatus("Checking…");
    try {
      const result = await sendJson<CheckResult>("POST", "api/context/check", { text: this.editor.text() });
      this.showResult(result, "check");
      this.setStatus(result.ok ? `Check passed: ${plural(result.variables.length, "variable")}` : `Check found ${plural(result.errors.length, "error")}`, !result.ok);
      return result;
    } catch (error) {
      this.setStatus(`Could not check: ${errorText(error)}`, true);
      return null;
    } finally {
      this.setBusy(false);
      this.textChanged();
    }
  }

  /** Check the file as opened, so its problems show at once (without blocking edits). */
  private async checkOpened(file: ContextFile): Promise<void> {
    let result = file.status;
    if (result === null) {
      try {
        result = await sendJson<CheckResult>("POST", "api/context/check", { text: file.text });
      } catch {
        return; // Check and Save report problems when asked
      }
    }
    if (this.editor === null || this.editor.text() !== file.text || this.busy) return;
    this.showResult(result, "check");
    this.showDisk(result);
  }

  /** The line at the right of the bar: does the file on disk load, with how many variables. */
  private showDisk(result: CheckResult): void {
    this.diskVariables = result.ok ? result.variables.length : null;
    this.ui.service.textContent = result.ok
      ? `On disk: loads, ${plural(result.variables.length, "variable")}`
      : `On disk: does not load (${plural(result.errors.length, "error")})`;
    this.ui.service.dataset.ok = String(result.ok);
    this.ui.service.title = "";
  }

  /** Show errors and warnings: markers at their lines plus a list that jumps there. */
  private showResult(result: CheckResult, what: "check" | "save"): void {
    if (this.editor === null) return;
    if (result.ok) this.lastVariables = result.variables;
    const here = (issue: Issue): boolean => issue.path === "";
    const markers: Marker[] = [
      ...result.errors.filter(here).map((e) => ({ severity: "error" as const, line: e.line, column: e.column, message: e.message })),
      ...result.warnings.filter(here).map((w) => ({ severity: "warning" as const, line: w.line, column: w.column, message: w.message })),
    ];
    this.editor.mark(markers);
    this.ui.problems.replaceChildren();
    const total = result.errors.length + result.warnings.length;
    this.ui.problems.hidden = total === 0;
    if (total === 0) return;
    const head = el("div", { className: "ed-problems-head" });
    const verdict = result.ok
      ? `${what === "save" ? "Saved" : "No errors"}; ${plural(result.warnings.length, "warning")} (warnings don't stop a save)`
      : `${plural(result.errors.length, "error")}${what === "save" ? ": not saved" : ""}` +
        (result.warnings.length > 0 ? `, ${plural(result.warnings.length, "warning")}` : "");
    head.textContent = verdict;
    const list = document.createElement("ul");
    for (const [severity, issues] of [["error", result.errors], ["warning", result.warnings]] as const) {
      for (const issue of issues) list.append(this.problemItem(severity, issue));
    }
    this.ui.problems.append(head, list);
  }

  private problemItem(severity: "error" | "warning", issue: Issue): HTMLLIElement {
    const li = el("li", { className: `ed-problem ed-${severity}` });
    const row = el(
      "button",
      { className: "ed-problem-row" },
      el("span", { className: "ed-badge", text: severity }),
      el("span", {
        className: "ed-where",
        text: issue.path !== "" ? `${issue.path}${issue.line !== null ? `:${issue.line}` : ""}` : issue.line !== null ? `line ${issue.line}` : "file",
      }),
      el("span", { className: "ed-message", text: issue.message }),
    );
    row.type = "button";
    if (issue.line !== null && issue.path === "") {
      const line = issue.line;
      row.title = `Go to line ${line}`;
      row.addEventListener("click", () => this.editor?.goTo(line, issue.column));
    } else {
      row.disabled = true;
    }
    li.append(row);
    if (issue.traceback !== "") {
      const details = document.createElement("details");
      const summary = document.createElement("summary");
      summary.textContent = "Traceback";
      const pre = document.createElement("pre");
      pre.textContent = issue.traceback;
      details.append(summary, pre);
      li.append(details);
    }
    return li;
  }

  // -- saving -----------------------------------------------------------------------------

  async save(force = false, base?: string): Promise<void> {
    if (this.editor === null || this.busy) return;
    const text = this.editor.text();
    this.setBusy(true);
    this.setStatus("Checking and saving…");
    try {
      const answer = await sendJson<SaveAnswer>("PUT", "api/context", {
        text,
        base_version: base ?? this.baseVersion,
        force,
      });
      // Edits typed while the request ran stay unsaved (baseText is what was sent).
      this.baseText = text;
      this.baseVersion = answer.version;
      this.offered = "";
      this.ui.banner.hidden = true;
      this.textChanged(true);
      this.showResult(answer.check, "save");
      this.showDisk(answer.check);
      if (!this.ui.history.hidden) void this.loadHistory();
      const warnings = answer.check.warnings.length;
      if (!this.dirty) this.setStatus(answer.changed ? "Saved" : "Saved (no change)");
      this.app.toast(
        answer.changed
          ? `Context file saved${warnings > 0 ? ` with ${plural(warnings, "warning")}` : ""}; the table updates when the service has reloaded it`
          : "The context file already has this text",
      );
    } catch (error) {
      if (error instanceof ApiError && error.status === 409) {
        const disk = error.body as { text?: unknown; version?: unknown } | null;
        this.setStatus("Not saved: the file changed on disk", true);
        if (typeof disk?.text === "string" && typeof disk.version === "string") {
          void this.compare(disk.text, disk.version, "The context file changed on disk since you opened it");
        }
      } else if (error instanceof ApiError && error.status === 422 && isCheck(error.body)) {
        this.showResult(error.body, "save");
        // The list under the editor says why; a toast would only cover it.
        this.setStatus(`Not saved: ${plural(error.body.errors.length, "error")}`, true);
      } else {
        this.setStatus(`Not saved: ${errorText(error)}`, true);
        this.app.toast(`Context file not saved (${errorText(error)}); your text is still in the editor`, "error");
      }
    } finally {
      this.setBusy(false);
    }
  }

  // -- the file on disk -------------------------------------------------------------------

  /** Did the file change on disk? Take it when there are no edits, else offer a choice. */
  private async pollDisk(): Promise<void> {
    if (this.editor === null || this.busy) return;
    let file: ContextFile;
    try {
      file = await getJson<ContextFile>("api/context");
    } catch {
      return; // offline for a moment: the next poll or event tries again
    }
    if (this.editor === null || this.busy || contentOf(file.version) === contentOf(this.baseVersion)) return;
    if (!this.dirty) {
      this.adopt(file.text, file.version);
      this.app.toast("The context file changed on disk; the editor shows the new text");
      void this.checkOpened(file);
      return;
    }
    if (file.version === this.offered) return;
    this.offered = file.version;
    this.ui.banner.replaceChildren(
      el("div", { className: "ed-banner-text", text: "The context file changed on disk while you have unsaved edits." }),
      button("Compare…", () => void this.compare(file.text, file.version, "The context file changed on disk while you were editing"), { className: "rt-button small" }),
    );
    this.ui.banner.hidden = false;
  }

  private async reloadFromDisk(): Promise<void> {
    if (this.editor === null || this.busy) return;
    let file: ContextFile;
    try {
      file = await getJson<ContextFile>("api/context");
    } catch (error) {
      this.app.toast(`Could not read the context file: ${errorText(error)}`, "error");
      return;
    }
    if (!this.dirty || this.editor.text() === file.text) {
      this.adopt(file.text, file.version);
      this.setStatus("Reloaded from disk");
      void this.checkOpened(file);
      return;
    }
    await this.compare(file.text, file.version, "Reload: your unsaved edits and the file on disk");
  }

  /** The conflict dialog: my text vs the disk's, reload / overwrite / cancel. */
  private async compare(diskText: string, diskVersion: string, title: string): Promise<void> {
    if (this.editor === null) return;
    await comparisonDialog("ed-conflict", title, ["Your text (unsaved)", "On disk now"], this.editor.text(), diskText, (finish) => [
      button("Reload from disk (lose my edits)", () => {
        finish();
        this.adopt(diskText, diskVersion);
        this.setStatus("Reloaded from disk");
      }, { className: "rt-button ed-take-disk" }),
      button("Overwrite", () => {
        finish();
        void this.save(false, diskVersion);
      }, { className: "rt-button ed-overwrite" }),
      button("Cancel", () => {
        finish();
        this.setStatus("Unsaved changes (the file on disk differs)", true);
      }, { className: "rt-button ed-cancel" }),
    ]);
  }

  // -- history ----------------------------------------------------------------------------

  private async toggleHistory(): Promise<void> {
    if (!this.ui.history.hidden) {
      this.ui.history.hidden = true;
      return;
    }
    this.ui.history.hidden = false;
    this.ui.history.replaceChildren(el("div", { className: "ed-history-head", text: "History: loading…" }));
    await this.loadHistory();
  }

  private async loadHistory(): Promise<void> {
    let entries: HistoryEntry[];
    try {
      entries = await getJson<HistoryEntry[]>("api/context/history");
    } catch (error) {
      this.ui.history.replaceChildren(el("div", { className: "ed-history-head", text: `Could not read the history: ${errorText(error)}` }));
      return;
    }
    const head = el("div", { className: "ed-history-head" });
    head.append(el("div", { text: `History (${entries.length})` }), button("✕", () => (this.ui.history.hidden = true), { className: "rt-button small" }));
    const list = document.createElement("ul");
    if (entries.length === 0) list.append(el("div", { className: "ed-muted", text: "Nothing saved from this editor yet." }));
    for (const entry of entries) {
      const li = el("li");
      const row = el("button", { className: "ed-history-row" });
      row.type = "button";
      row.dataset.id = entry.id;
      const top = el("div", { className: "ed-history-time", text: when(entry.time) });
      const kind = el("div", { className: "ed-history-kind", text: entry.kind === "saved" ? "saved" : "on disk before a save" });
      const summary = el("div", { className: "ed-muted", text: [entry.summary, entry.first_changed_line !== null ? `from line ${entry.first_changed_line}` : "", entry.by].filter((s) => s !== "").join(" · ") });
      row.append(top, kind, summary);
      row.addEventListener("click", () => void this.viewVersion(entry));
      li.append(row);
      list.append(li);
    }
    this.ui.history.replaceChildren(head, list);
  }

  /** One kept version beside the editor's text, with "Restore this version". */
  private async viewVersion(entry: HistoryEntry): Promise<void> {
    let text: string;
    try {
      text = (await getJson<{ text: string }>(`api/context/history/${encodeURIComponent(entry.id)}`)).text;
    } catch (error) {
      this.app.toast(`Could not read that version: ${errorText(error)}`, "error");
      return;
    }
    if (this.editor === null) return;
    const kind = entry.kind === "saved" ? "saved" : "on disk before a save";
    await comparisonDialog("ed-version", `Version of ${when(entry.time)}`, [`This version (${kind})`, "The editor now"], text, this.editor.text(), (finish) => [
      button("Restore this version", () => {
        finish();
        // One undoable step; the person checks and saves it like any edit.
        this.editor?.setText(text);
        this.setStatus(`Version of ${when(entry.time)} restored in the editor: Save to make it current`);
        this.app.toast("Old version loaded into the editor; Save to make it the context file");
      }, { className: "rt-button primary ed-restore" }),
      button("Close", finish, { className: "rt-button ed-cancel" }),
    ]);
  }
}

/**
 * A modal dialog showing `left` and `right` side by side (CodeMirror's merge view),
 * with the buttons `buttonsFor(finish)` makes; `finish` closes the dialog.
 */
async function comparisonDialog(
  className: string,
  title: string,
  [leftLabel, rightLabel]: [string, string],
  left: string,
  right: string,
  buttonsFor: (finish: () => void) => HTMLElement[],
): Promise<void> {
  const dialog = el("dialog", { className: `dialog ed-dialog ${className}` });
  const heading = el("h2", { text: title });
  const labels = el("div", { className: "ed-compare-labels" });
  labels.append(el("div", { text: leftLabel }), el("div", { text: rightLabel }));
  const host = el("div", { className: "ed-compare" });
  const buttons = el("div", { className: "dialog-buttons" });
  let comparison: { destroy(): void } | null = null;
  const finish = (): void => {
    comparison?.destroy();
    dialog.close();
    dialog.remove();
  };
  buttons.append(...buttonsFor(finish));
  dialog.addEventListener("cancel", () => finish());
  dialog.append(heading, labels, host, buttons);
  document.body.append(dialog);
  dialog.showModal();
  const cm = await import("./codemirror");
  comparison = cm.createComparison(host, left, right);
}

function isCheck(body: unknown): body is CheckResult {
  return typeof body === "object" && body !== null && Array.isArray((body as CheckResult).errors) && Array.isArray((body as CheckResult).warnings);
}

let current: ContextEditor | null = null;

function open(app: AppContext): void {
  const { tab, created } = openTab(TAB_ID, TITLE, {
    canClose: () => current?.canClose() ?? true,
    onClose: () => {
      current?.close();
      current = null;
    },
    onShow: () => current?.shown(),
  });
  if (!created) return;
  tab.remember("editor");
  current = new ContextEditor(app, tab);
  void current.start();
}

/** Set up this feature (main.ts calls it once at start-up). */
export function install(app: AppContext): void {
  const toolbar = document.getElementById("toolbar-features");
  if (toolbar === null) return;
  const b = button("Context file", () => open(app), { className: "rt-button ed-open" });
  b.title = "Edit the context file (the variables computed for each run)";
  toolbar.append(b);
  app.onEvent((event) => current?.event(event));
  onRestore("editor", () => open(app));
}
