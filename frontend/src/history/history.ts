// Where a value came from and what it was before: a cell's menu → "History" opens a
// tab with every value the cell had (when, from which job, where it ran, which context
// version), and the difference of the context file between two versions. Cells whose
// value was computed by code that has changed since carry the "stale" mark.
//
// Server side: `GET /api/runs/{run}/history/{name}`, `/api/history/stale` and
// `/api/context/diff` (docs/server.md, "History"; docs/history.md). The marks are asked
// for again after merges and context changes, and every few seconds: a context file
// edited on disk sends no event of its own.

import "./history.css";

import { getJson } from "../api";
import type { AppContext } from "../appcontext";
import { addCellMark } from "../cellmarks";
import { addCellAction } from "../cellmenu";
import { el, parts } from "../dom";
import { describeTimestamp, formatNumber, formatTimestamp } from "../format";
import { varColId } from "../grid";
import type { LiveEvent } from "../generated/events";
import { onRestore, openTab, type Tab } from "../tabs";
import { errorText, plural } from "../text";

/** One version of a cell, as `GET /api/runs/{run}/history/{name}` sends it. */
export interface HistoryEntry {
  kind: "value" | "error" | "cleared";
  value?: unknown;
  /** What a value that is no number or text is: "<image>", "<trendline>", "<array …>". */
  text?: string;
  png?: string;
  points?: (number | null)[];
  error_cls: string | null;
  error: string | null;
  written_at: number | null;
  replaced_at: number | null;
  current: boolean;
  origin: string;
  context_sha256: string | null;
  code_hash: string | null;
  job: string;
  host: string | null;
  runtable: string | null;
  /** Computed by code that differs from the context file now (null: unknown). */
  stale: boolean | null;
}

interface HistoryAnswer {
  run: number;
  name: string;
  context: { sha256: string | null; code_hash: string | null; problems: string | null };
  entries: HistoryEntry[];
}

interface StaleAnswer {
  context: string | null;
  problems: string | null;
  stale: Record<string, number[]>;
}

interface DiffAnswer {
  diff: string[];
  added: number;
  removed: number;
  same: boolean;
}

/** The file as it is now, in the diff's choices. */
const CURRENT = "current";
const STALE_POLL_MS = 15_000;
const STALE_NOTE = "Stale: the code of this variable (or of one it uses) changed in the context file since this value was computed. Reprocess the run to compute it again (right-click → History… shows what changed).";

/** Which cells hold stale values, kept up to date for the marks. */
class StaleCells {
  private byName = new Map<string, Set<number>>();
  private timer: number | undefined;
  private busy = false;
  private again = false;

  constructor(private readonly app: AppContext) {}

  has(run: number, name: string): boolean {
    return this.byName.get(name)?.has(run) ?? false;
  }

  /** Ask again soon (several events in a row make one request). */
  schedule(delay = 300): void {
    window.clearTimeout(this.timer);
    this.timer = window.setTimeout(() => void this.refresh(), delay);
  }

  async refresh(): Promise<void> {
    if (this.busy) {
      this.again = true;
      return;
    }
    this.busy = true;
    try {
      const answer = await getJson<StaleAnswer>("api/history/stale");
      const next = new Map(Object.entries(answer.stale).map(([name, runs]) => [name, new Set(runs)]));
      const changed = [...new Set([...next.keys(), ...this.byName.keys()])].filter((name) => !sameSet(next.get(name), this.byName.get(name)));
      this.byName = next;
      if (changed.length > 0) {
        this.app.grid.api.refreshCells({ columns: changed.map(varColId), force: true });
      }
    } catch (error) {
      // The marks stay as they were; the next round tries again.
      console.warn("stale marks not updated", error);
    } finally {
      this.busy = false;
      if (this.again) {
        this.again = false;
        this.schedule();
      }
    }
  }
}

function sameSet(a: Set<number> | undefined, b: Set<number> | undefined): boolean {
  if (a === undefined || b === undefined) return (a?.size ?? 0) === (b?.size ?? 0);
  return a.size === b.size && [...a].every((run) => b.has(run));
}

/** An entry's value as text (numbers as the table writes them). */
function valueText(entry: HistoryEntry): string {
  if (entry.kind === "cleared") return "(cleared)";
  if (entry.kind === "error") return `${entry.error_cls ?? "Error"}: ${entry.error ?? ""}`;
  if (entry.text !== undefined) {
    if (entry.points !== undefined) {
      const finite = entry.points.filter((p): p is number => typeof p === "number");
      return finite.length === 0 ? entry.text : `${entry.text} ${plural(entry.points.length, "point")}, ${formatNumber(Math.min(...finite))} to ${formatNumber(Math.max(...finite))}`;
    }
    return entry.text;
  }
  const value = entry.value;
  if (typeof value === "number") return formatNumber(value);
  if (value === null || value === undefined) return "";
  return String(value);
}

function shortSha(sha: string): string {
  return sha.slice(0, 12);
}

/** One cell's history in a tab. */
class HistoryView {
  private readonly tab: Tab;
  private readonly ui = parts("hist", { status: "p", stale: "p", entries: "table", from: "select", to: "select", diffNote: "p", diff: "pre" });
  private entries: HistoryEntry[] = [];
  private loading = false;
  /** The person chose the versions to compare: new versions keep their choice. */
  private chosen = false;

  constructor(
    readonly run: number,
    readonly name: string,
    title: string,
    onClose: () => void,
  ) {
    const opened = openTab(`history:${run}:${name}`, `History r${run} · ${title}`, { onClose });
    this.tab = opened.tab;
    this.tab.remember("history", { run, name });
    this.ui.status.textContent = "Loading…";
    this.ui.stale.hidden = true;
    this.ui.stale.setAttribute("role", "status");
    const heading = el("h2", { className: "hist-title", text: `Run ${run} · ${title}` });
    if (title !== name) heading.append(" ", el("code", { text: name }));
    const compare = el(
      "section",
      { className: "hist-compare" },
      el("h3", { text: "Context file" }),
      el("label", {}, "from ", this.ui.from),
      el("label", {}, " to ", this.ui.to),
      this.ui.diffNote,
      this.ui.diff,
    );
    this.ui.stale.setAttribute("aria-live", "polite");
    for (const select of [this.ui.from, this.ui.to]) {
      select.addEventListener("change", () => {
        this.chosen = true;
        void this.showDiff();
      });
    }
    this.tab.body.replaceChildren(el("div", { className: "hist-pane" }, heading, this.ui.stale, this.ui.status, this.ui.entries, compare));
  }

  show(): void {
    this.tab.show();
  }

  async load(): Promise<void> {
    if (this.loading) return;
    this.loading = true;
    try {
      const answer = await getJson<HistoryAnswer>(`api/runs/${this.run}/history/${encodeURIComponent(this.name)}`);
      this.render(answer);
    } catch (error) {
      this.ui.status.textContent = `Could not load the history: ${errorText(error)}`;
    } finally {
      this.loading = false;
    }
  }

  private render(answer: HistoryAnswer): void {
    this.entries = answer.entries;
    const current = answer.entries.find((e) => e.current);
    this.ui.stale.hidden = current?.stale !== true;
    this.ui.stale.textContent = STALE_NOTE.replace("the run", `run ${this.run}`);
    if (answer.entries.length === 0) {
      this.ui.status.textContent = "No value was ever recorded for this cell.";
    } else {
      const computed = answer.entries.filter((e) => e.context_sha256 !== null).length;
      this.ui.status.textContent = `${plural(answer.entries.length, "version")}, newest first` +
        (computed > 0 ? "" : " (none records the context file that computed it: written before runtable kept history, typed, or written by another program)");
    }
    if (answer.context.problems !== null) {
      this.ui.status.textContent += ". The context file does not load now, so stale values cannot be told.";
    }
    this.renderTable();
    this.renderChoices(current);
    void this.showDiff();
  }

  private renderTable(): void {
    const head = el("thead", {}, el("tr", {}, ...["When", "Value", "From", "Job", "Context", "runtable"].map((h) => el("th", { text: h }))));
    const body = el("tbody");
    for (const entry of [...this.entries].reverse()) {
      const row = el("tr", { className: `hist-${entry.kind}${entry.current ? " hist-current" : ""}` });
      const when = el("td", { text: formatTimestamp(entry.written_at), title: describeTimestamp(entry.written_at) });
      if (entry.current) when.append(" ", el("span", { className: "hist-badge", text: "now" }));
      const value = el("td", { className: "hist-value" });
      if (entry.png !== undefined) {
        const img = el("img");
        img.src = `data:image/png;base64,${entry.png}`;
        img.alt = `value of ${this.name} then`;
        value.append(img);
      } else {
        value.textContent = valueText(entry);
      }
      const context = el("td");
      if (entry.context_sha256 !== null) {
        context.append(el("code", { text: shortSha(entry.context_sha256), title: entry.context_sha256 }));
        if (entry.stale === true) {
          context.append(" ", el("span", { className: "hist-badge hist-changed", text: "code changed since", title: "The variable's code (or a dependency's) in the context file now differs from this version's" }));
        }
      }
      row.append(
        when,
        value,
        el("td", { text: entry.origin }),
        el("td", { text: entry.job }),
        context,
        el("td", { text: entry.runtable ?? "" }),
      );
      body.append(row);
    }
    this.ui.entries.replaceChildren(head, body);
  }

  /** Distinct context versions of the history (oldest first), and the file now. */
  private renderChoices(current: HistoryEntry | undefined): void {
    const firstUse = new Map<string, number | null>();
    for (const entry of this.entries) {
      if (entry.context_sha256 !== null && !firstUse.has(entry.context_sha256)) firstUse.set(entry.context_sha256, entry.written_at);
    }
    const shas = [...firstUse.keys()];
    const options = (): HTMLOptionElement[] => [
      ...shas.map((sha) => new Option(`${shortSha(sha)} (first computed ${formatTimestamp(firstUse.get(sha), "minutes")})`, sha)),
      new Option("context.py now", CURRENT),
    ];
    const keep = [this.ui.from.value, this.ui.to.value];
    this.ui.from.replaceChildren(...options());
    this.ui.to.replaceChildren(...options());
    if (this.chosen && [...this.ui.from.options].some((o) => o.value === keep[0])) {
      [this.ui.from.value, this.ui.to.value] = keep as [string, string];
      return;
    }
    // The change that matters: the last two versions that computed the cell, or the
    // version of the value shown against the file now when that is stale.
    const newest = current?.context_sha256 ?? shas[shas.length - 1] ?? CURRENT;
    if (current?.stale === true || shas.length < 2) {
      this.ui.from.value = newest;
      this.ui.to.value = CURRENT;
    } else {
      this.ui.from.value = shas[shas.length - 2] ?? newest;
      this.ui.to.value = shas[shas.length - 1] ?? CURRENT;
    }
  }

  private async showDiff(): Promise<void> {
    const a = this.ui.from.value;
    const b = this.ui.to.value;
    if (a === "" || b === "") return;
    if (a === b) {
      this.ui.diffNote.textContent = "Choose two different versions to compare.";
      this.ui.diff.replaceChildren();
      return;
    }
    try {
      const answer = await getJson<DiffAnswer>(`api/context/diff?a=${encodeURIComponent(a)}&b=${encodeURIComponent(b)}`);
      if (this.ui.from.value !== a || this.ui.to.value !== b) return; // changed meanwhile
      this.ui.diffNote.textContent = answer.same ? "The two texts are the same." : `${plural(answer.added, "line")} added, ${plural(answer.removed, "line")} removed`;
      this.ui.diff.replaceChildren(...answer.diff.map((line) => {
        const kind = line.startsWith("@@") ? "hunk" : line.startsWith("+++") || line.startsWith("---") ? "file" : line.startsWith("+") ? "add" : line.startsWith("-") ? "del" : "same";
        return el("span", { className: `hist-line hist-${kind}`, text: line });
      }));
    } catch (error) {
      this.ui.diffNote.textContent = `No diff: ${errorText(error)}`;
      this.ui.diff.replaceChildren();
    }
  }

  /** Whether a live event may have changed this cell. */
  concerns(event: LiveEvent): boolean {
    if (!("run" in event) || event.run !== this.run) return false;
    if (event.kind === "values_merged") return event.names.includes(this.name);
    if (event.kind === "comment_set") return this.name === "comment";
    if (event.kind === "user_value_set") return event.name === this.name;
    return false;
  }
}

export function install(app: AppContext): void {
  const stale = new StaleCells(app);
  addCellMark({ className: "rt-stale", applies: (run, name) => stale.has(run, name), note: () => STALE_NOTE });
  const views = new Map<string, HistoryView>();

  const open = (run: number, name: string): void => {
    const key = `${run}:${name}`;
    const known = views.get(key);
    if (known !== undefined) {
      known.show();
      void known.load();
      return;
    }
    const title = name === "comment" ? "Comment" : (app.store.byName.get(name)?.title ?? name);
    const view = new HistoryView(run, name, title, () => views.delete(key));
    views.set(key, view);
    void view.load();
  };

  addCellAction({
    group: "view",
    label: "History…",
    when: (t) => t.name !== null || t.colId === "comment",
    run: (t) => open(t.run, t.name ?? "comment"),
  });
  onRestore("history", (state) => {
    const s = state as { run?: unknown; name?: unknown } | null;
    if (typeof s?.run === "number" && typeof s.name === "string") open(s.run, s.name);
  });

  app.onData(() => stale.schedule());
  app.onEvent((event) => {
    if (["values_merged", "variables_changed", "context_saved", "context_status"].includes(event.kind)) stale.schedule();
    for (const view of views.values()) {
      if (view.concerns(event)) void view.load();
    }
  });
  window.setInterval(() => {
    if (document.visibilityState === "visible") void stale.refresh();
  }, STALE_POLL_MS);
}
