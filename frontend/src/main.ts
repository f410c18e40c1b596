// Start-up and the page around the grid: token, theme, the table with live updates,
// toolbar (jump, follow, columns, new variable, notes, export), filter bar and toasts.

import "./style.css";

import { ApiError, getJson, initToken, sendJson } from "./api";
import type { AppContext } from "./appcontext";
import { copySelectedAsMarkdown, install as installCopy } from "./copy";
import { install as installEditor } from "./editor/editor";
import { install as installHistory } from "./history/history";
import { install as installPlots } from "./plot/plots";
import { install as installPreview } from "./preview/preview";
import { install as installProcessing } from "./processing/processing";
import { onTabsChanged, openTabs, restoreTabs, setupTabs, showTabs } from "./tabs";
import { chooseVersion } from "./conflict";
import { ColumnsPanel } from "./columns";
import { download, toCsv, toMarkdown, toXlsx, type ExportTable } from "./export";
import { RunGrid } from "./grid";
import { formatTimestamp, setTimeZone, timestampWithOffset } from "./format";
import type { LiveEvent } from "./generated/events";
import { LiveUpdates } from "./live";
import { EDIT_NOTE_EVENT } from "./notes/rows";
import { NotesPanel } from "./notes/panel";
import { progressOf } from "./progress";
import { ColumnLoader } from "./columnloader";
import { TableStore, fetchSnapshot, lastFetch, loadSnapshot, type RunRow, type TimeComment, type Value, type VariableInfo } from "./table";
import { setupThemeToggle } from "./theme";
import { databaseKey, loadFlag, saveFlag } from "./view";
import { VariableDialog } from "./variables";
import { errorText, plural } from "./text";
import { button, byId } from "./dom";
import { UrlSync, readUrlView, type UrlView } from "./viewurl";
import { ask as askWhere } from "./where";

let toastTimer: number | undefined;

/** Show a short message (errors stay longer); text only. */
export function toast(message: string, kind: "info" | "error" = "info"): void {
  const box = byId("toast", HTMLDivElement);
  box.textContent = message;
  box.dataset.kind = kind;
  box.hidden = false;
  window.clearTimeout(toastTimer);
  toastTimer = window.setTimeout(() => (box.hidden = true), kind === "error" ? 12_000 : 4_000);
}

/** The folder's display settings (the time zone), before the table is drawn with them. */
async function loadDisplay(): Promise<void> {
  try {
    const display = await getJson<{ timezone: string }>("api/display");
    if (!setTimeZone(display.timezone)) {
      toast(`This browser does not know the time zone ${display.timezone}: times are shown in ${Intl.DateTimeFormat().resolvedOptions().timeZone}`, "error");
    }
  } catch (error) {
    console.warn("display settings not read; times in the browser's zone", error);
  }
}

class App {
  readonly store = new TableStore();
  readonly grid: RunGrid;
  private readonly status = byId("status", HTMLParagraphElement);
  private readonly live: LiveUpdates;
  private readonly columns: ColumnsPanel;
  private readonly notes: NotesPanel;
  private readonly dialog: VariableDialog;
  private readonly loader: ColumnLoader;
  private emptyMessage = "No runs yet";
  private follow = loadFlag("follow", true);
  private notesAmongRuns = loadFlag("notes-among-runs", false);
  private notesLoads = 0;
  /** Coalesced `values_merged`: run → names (null: all). */
  private pending = new Map<number, Set<string>>();
  private fetching = false;
  /** Active jobs seen in events since the last reload: job id → run and state. */
  private readonly activeJobs = new Map<string, { run: number; state: "queued" | "running" }>();
  private readonly dataListeners: ((runs: number[] | null) => void)[] = [];
  private readonly eventListeners: ((event: LiveEvent) => void)[] = [];
  /** The view in the page URL (viewurl.ts). */
  private readonly urlSync: UrlSync;
  /** The view the page was opened with (its URL), applied after the first load. */
  private openedWith: UrlView | null | undefined = readUrlView();
  /** Where the last full load spent its time (read by the benchmark). */
  timings: Record<string, number> = {};
  /** The same for the last partial update (values_merged). */
  updateTimings: Record<string, number> = {};

  constructor() {
    this.grid = new RunGrid(byId("run-table", HTMLElement), this.store, {
      editComment: (row, text, previous, base) => void this.editComment(row, text, previous, base),
      editValue: (row, variable, text, previous, base) => void this.editValue(row, variable, text, previous, base),
      viewChanged: () => this.viewChanged(),
      needColumns: (names) => this.loader.need(names),
      filterFailed: (expression, error) => toast(`Filter “${expression}” not applied: ${errorText(error)}`, "error"),
    });
    this.loader = new ColumnLoader(
      this.store,
      (names) => this.columnsLoaded(names),
      (error) => toast(`Could not load some columns: ${errorText(error)}`, "error"),
      () => this.allColumnsLoaded(),
    );
    this.columns = new ColumnsPanel(this.grid, this.store);
    this.notes = new NotesPanel(toast);
    this.dialog = new VariableDialog(this.store, (info) => {
      toast(`Column “${info.title}” created`);
    });
    this.live = new LiveUpdates({
      reload: () => this.reload(),
      event: (event) => this.onEvent(event),
      connection: (state) => this.connection(state),
    });
    this.urlSync = new UrlSync(() => this.urlView(), (view) => this.applyUrlView(view));
    onTabsChanged(() => this.urlSync.changed());
    this.setupToolbar();
  }

  /** The view as the page URL gives it. */
  private urlView(): UrlView {
    return { ...this.grid.urlView(), where: this.grid.whereExpression(), tabs: openTabs() };
  }

  /** Show a view from the page URL (opened with it, or Back/Forward). */
  private async applyUrlView(view: UrlView): Promise<void> {
    this.grid.applyUrlView(view);
    showTabs(view.tabs ?? { tabs: [], active: -1 });
    if (view.where === this.grid.whereExpression()) return;
    if (view.where === "") this.grid.clearFilter(null);
    else await this.applyWhere(view.where);
  }

  start(): void {
    this.live.start();
  }

  /** What the feature modules see of the page (appcontext.ts). */
  context(): AppContext {
    return {
      store: this.store,
      grid: this.grid,
      toast,
      onData: (listener) => this.dataListeners.push(listener),
      onEvent: (listener) => this.eventListeners.push(listener),
      selectedRuns: () => this.grid.selectedRows().map((row) => row.run),
      tableOf: (rows, colIds) => this.exportTable(rows, colIds),
      reload: async () => {
        await this.live.reload();
      },
      ensureColumns: (names) => this.loader.need(names),
    };
  }

  private dataChanged(runs: number[] | null): void {
    // The filters' runs may change with the data (the server evaluates them).
    this.grid.refilter();
    for (const listener of this.dataListeners) {
      try {
        listener(runs);
      } catch (error) {
        console.error("a data listener failed", error);
      }
    }
  }

  private connection(state: "connecting" | "live" | "offline"): void {
    const dot = byId("connection", HTMLSpanElement);
    dot.dataset.state = state;
    dot.title = {
      connecting: "Live updates: connecting…",
      live: "Live updates: connected",
      offline: "Live updates: disconnected, retrying (the table may be out of date)",
    }[state];
  }

  /**
   * Load the whole table (first load, or after any doubt about the event stream): the
   * rows and the first columns' data; the other columns then come by name (those on
   * screen first), while events already apply.
   */
  async reload(): Promise<{ seq: number; bus: string }> {
    // The first load shows the newest runs; later ones (new columns, a reconnect) move
    // the view only if it was following anyway.
    const follow = this.follow && (this.store.rows.length === 0 || this.grid.canFollow());
    try {
      const [{ snapshot, message }] = await Promise.all([
        loadSnapshot((done, total) => {
          const share = total > 0 ? ` ${Math.floor((100 * done) / total)}% (${done.toLocaleString()} of ${plural(total, "run")})` : "";
          this.status.textContent = `Reading the table for the first time:${share}…`;
          this.status.dataset.progress = String(total > 0 ? done / total : 0);
        }),
        loadDisplay(),
      ]);
      delete this.status.dataset.progress;
      const t0 = performance.now();
      this.store.load(snapshot);
      this.activeJobs.clear();
      const t1 = performance.now();
      this.emptyMessage = message ?? "No runs yet";
      this.grid.setTable(this.emptyMessage);
      this.timings = { ...lastFetch, store_ms: t1 - t0, grid_ms: performance.now() - t1, shown_at: performance.now() };
      this.columns.refresh();
      if (follow) this.grid.scrollToLast();
      this.loader.reset(this.store.variables.map((v) => v.name));
      void this.loader.need(this.grid.columnsInView());
      this.updateStatus(message);
      this.dataChanged(null);
      // The view of the page URL (a link someone sent), else the tabs open before the
      // last reload of this page (once, tabs.ts).
      const opened = this.openedWith;
      this.openedWith = undefined;
      if (opened !== undefined && opened !== null) {
        restoreTabs(databaseKey(this.store), opened.tabs ?? { tabs: [], active: -1 });
        const view = { ...opened, tabs: openTabs() };
        void this.urlSync.during(() => this.applyUrlView(view));
      } else {
        restoreTabs(databaseKey(this.store));
      }
      return { seq: snapshot.seq, bus: snapshot.bus };
    } catch (error) {
      const message = `Could not load the table: ${errorText(error)}`;
      this.status.textContent = message;
      this.grid.api.setGridOption("loading", false);
      toast(message, "error");
      throw error;
    }
  }

  /** Data of columns came: show it, and sort or filter again by them. */
  private columnsLoaded(names: string[]): void {
    if (names.length === 0) return;
    this.grid.columnsLoaded(names);
    this.updateStatus();
  }

  private allColumnsLoaded(): void {
    if (this.timings.complete_at === undefined) this.timings.complete_at = performance.now();
    this.updateStatus();
  }

  /** Show the notes among the runs (or none, when switched off), as they are now. */
  private async loadNotesAmongRuns(): Promise<void> {
    const ticket = ++this.notesLoads;
    let notes: TimeComment[] = [];
    if (this.notesAmongRuns) {
      try {
        notes = await getJson<TimeComment[]>("api/time-comments");
      } catch (error) {
        toast(`Could not load the notes: ${errorText(error)}`, "error");
        return;
      }
    }
    // (Loads overlap when notes change in a burst: the latest one wins.)
    if (ticket !== this.notesLoads) return;
    this.grid.setNotes(notes);
    this.updateStatus();
  }

  private updateStatus(message?: string): void {
    const shown = this.grid.displayedRunCount();
    const total = this.store.rows.length;
    const runs = shown === total ? plural(total, "run") : `${shown} of ${plural(total, "run")}`;
    const running = [...this.store.jobs.values()].filter((s) => s === "running").length;
    const queued = this.store.jobs.size - running;
    const busy = [running > 0 ? `processing ${running}` : "", queued > 0 ? `${queued} queued` : ""];
    const jobs = busy.filter((s) => s !== "").map((s) => ` · ${s}`).join("");
    const left = this.loader.remaining;
    const loading = left > 0 ? ` · loading ${plural(left, "column")}…` : "";
    this.status.textContent = message ?? `${runs} · ${plural(this.store.variables.length, "variable")}${jobs}${loading}`;
  }

  private onEvent(event: LiveEvent): void {
    this.applyEvent(event);
    for (const listener of this.eventListeners) {
      try {
        listener(event);
      } catch (error) {
        console.error("an event listener failed", error);
      }
    }
  }

  private applyEvent(event: LiveEvent): void {
    switch (event.kind) {
      case "run_added": {
        const run = event.run;
        if (this.store.rowOf(run) !== undefined) return;
        const follow = this.follow && this.grid.canFollow();
        this.grid.addRows([this.store.addRun(run)]);
        this.grid.refilter();
        // Its start time and any values arrive with the next fetch.
        this.queueFetch(run, null);
        if (follow) this.grid.scrollToLast();
        this.updateStatus();
        return;
      }
      case "values_merged":
        this.queueFetch(event.run, event.names);
        return;
      case "comment_set": {
        const row = this.store.rowOf(event.run);
        if (row === undefined) return;
        this.store.comment[row.slot] = event.text;
        this.grid.refreshRows([row], ["comment"]);
        return;
      }
      case "user_value_set": {
        const row = this.store.rowOf(event.run);
        const name = event.name;
        if (row === undefined) return;
        const value = event.value as Value;
        this.store.setValue(row, name, value ?? null, value === null ? undefined : { provenance: "user" }, event.seq);
        this.grid.refreshRows([row], [name]);
        this.dataChanged([row.run]);
        return;
      }
      case "variables_changed":
        // New or changed columns: the snapshot is the one source of their order.
        void this.live.reload().catch(() => undefined);
        return;
      case "job_state": {
        const { run, state } = event;
        const id = String(event.job_id);
        if (state === "queued" || state === "running") this.activeJobs.set(id, { run, state });
        else this.activeJobs.delete(id);
        // A run can have several jobs (raw and proc, or local and Slurm parts): it
        // shows the busiest state of those still active.
        const states = [...this.activeJobs.values()].filter((job) => job.run === run).map((job) => job.state);
        if (states.includes("running")) this.store.jobs.set(run, "running");
        else if (states.includes("queued")) this.store.jobs.set(run, "queued");
        else this.store.jobs.delete(run);
        if (!states.includes("running")) {
          this.store.progress.delete(run);
          this.store.stuck.delete(run);
        }
        const row = this.store.rowOf(run);
        if (row !== undefined) this.grid.refreshRunCells([row]);
        this.updateStatus();
        return;
      }
      case "job_progress": {
        const run = event.run;
        const row = this.store.rowOf(run);
        if (this.store.jobs.get(run) !== "running") return;
        this.store.progress.set(run, progressOf(event));
        if (row !== undefined) this.grid.refreshRunCells([row]);
        return;
      }
      case "job_stuck": {
        const run = event.run;
        const row = this.store.rowOf(run);
        if (event.stuck) this.store.stuck.set(run, event.last_activity);
        else this.store.stuck.delete(run);
        if (row !== undefined) this.grid.refreshRunCells([row]);
        return;
      }
      case "time_comment":
        this.notes.changed();
        void this.loadNotesAmongRuns();
        return;
      default:
        return;
    }
  }

  /** Fetch changed cells; requests made while one is running are merged into one. */
  private queueFetch(run: number, names: string[] | null): void {
    const known = this.pending.get(run);
    if (names === null) {
      this.pending.set(run, new Set(["*"]));
    } else if (known === undefined) {
      this.pending.set(run, new Set(names));
    } else if (!known.has("*")) {
      for (const name of names) known.add(name);
    }
    if (!this.fetching) void this.flushFetches();
  }

  private async flushFetches(): Promise<void> {
    this.fetching = true;
    try {
      while (this.pending.size > 0) {
        const batch = this.pending;
        this.pending = new Map();
        const runs = [...batch.keys()];
        const all = [...batch.values()].some((names) => names.has("*"));
        const names = all ? undefined : [...new Set([...batch.values()].flatMap((s) => [...s]))];
        try {
          const t0 = performance.now();
          const part = await fetchSnapshot(runs, names);
          const t1 = performance.now();
          const fresh = part.runs.filter((run) => this.store.rowOf(run) === undefined);
          const follow = fresh.length > 0 && this.follow && this.grid.canFollow();
          const rows = this.store.mergePartial(part);
          this.grid.addRows(rows.filter((row) => fresh.includes(row.run)));
          this.grid.refreshRows(rows, names, true);
          if (follow) this.grid.scrollToLast();
          this.updateTimings = { fetch_ms: t1 - t0, apply_ms: performance.now() - t1 };
          this.updateStatus();
          this.dataChanged(rows.map((row) => row.run));
        } catch (error) {
          toast(`Could not update runs ${runs.join(", ")}: ${errorText(error)}`, "error");
        }
      }
    } finally {
      this.fetching = false;
    }
  }

  private async editComment(row: RunRow, text: string, previous: string | null, base: string | null): Promise<void> {
    try {
      const stored = await this.sendEdit<{ text: string | null }>(`api/runs/${row.run}/comment`, { text }, base,
        `The comment of run ${row.run}`, text, (current) => {
          this.store.comment[row.slot] = typeof current === "string" ? current : null;
        });
      if (stored === null) {
        this.grid.refreshRows([row], ["comment"]);
        return;
      }
      this.store.comment[row.slot] = stored.text ?? (text || null);
    } catch (error) {
      this.store.comment[row.slot] = previous;
      this.grid.refreshRows([row], ["comment"]);
      // Keep what was typed where the person can copy it: it never just disappears.
      toast(`Comment on run ${row.run} not saved (${errorText(error)}). Your text: ${text}`, "error");
    }
  }

  private async editValue(row: RunRow, variable: VariableInfo, text: string, previous: Value, base: Value): Promise<void> {
    const value = text === "" ? null : text;
    // Show what was typed at once; the server's answer (or event) replaces it.
    this.store.setValue(row, variable.name, value, { provenance: "user" });
    try {
      const stored = await this.sendEdit<{ value: Value }>(`api/runs/${row.run}/values/${encodeURIComponent(variable.name)}`,
        { value }, base, `${variable.title}, run ${row.run}`, text, (current) => {
          this.store.setValue(row, variable.name, current, current === null ? undefined : { provenance: "user" });
        });
      if (stored !== null) {
        this.store.setValue(row, variable.name, stored.value ?? null, stored.value == null ? undefined : { provenance: "user" });
      }
    } catch (error) {
      this.store.setValue(row, variable.name, previous, previous === null ? undefined : { provenance: "user" });
      // The server's refusal names the cell and quotes the value already; anything else
      // gets both here. What was typed stays readable (and copyable) either way.
      const why = error instanceof ApiError && error.status === 422 ? error.message : `${variable.title}, run ${row.run}: ${errorText(error)}`;
      toast(why.includes(text) ? why : `${why.replace(/\.$/, "")}. You typed: ${text}`, "error");
    }
    this.grid.refreshRows([row], [variable.name]);
  }

  /**
   * PUT an edit made on `base`. When someone else changed the cell meanwhile (409), the
   * person chooses: their edit is sent again on the value stored now, or the stored
   * value stays (`keep` shows it; the answer is then null).
   */
  private async sendEdit<T>(path: string, body: Record<string, unknown>, base: Value, what: string,
    typed: string, keep: (current: Value) => void): Promise<T | null> {
    try {
      return await sendJson<T>("PUT", path, { ...body, base });
    } catch (error) {
      if (!(error instanceof ApiError) || error.status !== 409) throw error;
      const current = (error.body as { current?: Value } | null)?.current ?? null;
      const choice = await chooseVersion({ what, mine: typed, theirs: current === null ? "" : String(current) });
      if (choice === "mine") return sendJson<T>("PUT", path, { ...body, base: current });
      keep(current);
      return null;
    }
  }

  private viewChanged(): void {
    this.urlSync.changed();
    this.updateFilterBar();
    this.updateStatus();
    this.columns.refreshList();
  }

  /** The filters as chips, in the filter language; the whole expression in the box. */
  private updateFilterBar(): void {
    const filters = this.grid.activeFilters();
    const bar = byId("filter-bar", HTMLDivElement);
    const chips = byId("filter-chips", HTMLSpanElement);
    bar.hidden = filters.length === 0;
    chips.replaceChildren(
      ...filters.map((filter) => {
        const chip = button(`${filter.text} ✕`, () => {
          if (filter.colId === null) this.grid.clearTyped(filter.index);
          else this.grid.clearFilter(filter.colId);
        }, { className: "chip", title: "Remove this filter" });
        if (filter.colId !== null) chip.dataset.colId = filter.colId;
        return chip;
      }),
    );
    const input = byId("where-input", HTMLInputElement);
    if (document.activeElement !== input) {
      input.value = this.grid.whereExpression();
      input.removeAttribute("aria-invalid");
    }
  }

  /** Filter by an expression typed in the filter language (it replaces the filters). */
  async applyWhere(text: string): Promise<boolean> {
    const input = byId("where-input", HTMLInputElement);
    try {
      const answer = await askWhere(text);
      input.removeAttribute("aria-invalid");
      await this.grid.setWhere(answer.parts);
      return true;
    } catch (error) {
      // What was typed stays in the box, to be corrected.
      input.setAttribute("aria-invalid", "true");
      toast(errorText(error), "error");
      return false;
    }
  }

  private setupToolbar(): void {
    const jump = byId("jump", HTMLFormElement);
    const jumpInput = byId("jump-run", HTMLInputElement);
    jump.addEventListener("submit", (event) => {
      event.preventDefault();
      const run = Number.parseInt(jumpInput.value, 10);
      if (!Number.isFinite(run)) return;
      if (this.store.rowOf(run) === undefined) {
        toast(`There is no run ${run} in this table`, "error");
      } else if (!this.grid.jumpTo(run)) {
        toast(`Run ${run} is hidden by the filters`, "error");
      }
    });

    const follow = byId("follow", HTMLInputElement);
    follow.checked = this.follow;
    follow.addEventListener("change", () => {
      this.follow = follow.checked;
      saveFlag("follow", this.follow);
      if (this.follow) this.grid.scrollToLast();
    });
    const notesAmong = byId("notes-among", HTMLInputElement);
    notesAmong.checked = this.notesAmongRuns;
    notesAmong.addEventListener("change", () => {
      this.notesAmongRuns = notesAmong.checked;
      saveFlag("notes-among-runs", this.notesAmongRuns);
      void this.loadNotesAmongRuns();
    });
    void this.loadNotesAmongRuns();

    this.panelToggle("columns-button", "columns-panel", () => this.columns.refresh());
    this.panelToggle("notes-button", "notes-panel", () => this.notes.open());
    document.addEventListener(EDIT_NOTE_EVENT, (event) => {
      const id = (event as CustomEvent<number>).detail;
      this.showPanel("notes-panel");
      void this.notes.editNote(id);
    });
    for (const close of document.querySelectorAll<HTMLButtonElement>("[data-close]")) {
      close.addEventListener("click", () => this.showPanel(null));
    }

    byId("add-variable", HTMLButtonElement).addEventListener("click", () => this.dialog.open());
    byId("clear-filters", HTMLButtonElement).addEventListener("click", () => this.grid.clearFilter(null));
    byId("copy-link", HTMLButtonElement).addEventListener("click", () => {
      const link = this.urlSync.link();
      navigator.clipboard.writeText(link).then(
        () => toast("Link to this view copied (the access token is not in it)"),
        () => toast(`Copy this link: ${link}`),
      );
    });
    const where = byId("where-input", HTMLInputElement);
    byId("where-form", HTMLFormElement).addEventListener("submit", (event) => {
      event.preventDefault();
      void this.applyWhere(where.value).then((ok) => ok && where.blur());
    });
    where.addEventListener("keydown", (event) => {
      if (event.key === "Escape") {
        where.value = this.grid.whereExpression();
        where.removeAttribute("aria-invalid");
        where.blur();
      }
    });

    const exportButton = byId("export-button", HTMLButtonElement);
    const menu = byId("export-menu", HTMLDivElement);
    const setMenu = (open: boolean): void => {
      menu.hidden = !open;
      exportButton.setAttribute("aria-expanded", String(open));
    };
    exportButton.addEventListener("click", (event) => {
      event.stopPropagation();
      setMenu(menu.hidden !== false);
    });
    document.addEventListener("click", () => setMenu(false));
    document.addEventListener("keydown", (event) => {
      if (event.key === "Escape") setMenu(false);
    });
    for (const item of menu.querySelectorAll<HTMLButtonElement>("[data-export]")) {
      item.addEventListener("click", () => {
        setMenu(false);
        void this.export(item.dataset.export ?? "");
      });
    }
  }

  private panelToggle(buttonId: string, panelId: string, onOpen: () => void): void {
    byId(buttonId, HTMLButtonElement).addEventListener("click", () => {
      const panel = byId(panelId, HTMLElement);
      if (panel.hidden) {
        this.showPanel(panelId);
        onOpen();
      } else {
        this.showPanel(null);
      }
    });
  }

  private showPanel(id: string | null): void {
    for (const [panelId, buttonId] of [
      ["columns-panel", "columns-button"],
      ["notes-panel", "notes-button"],
    ] as const) {
      byId(panelId, HTMLElement).hidden = panelId !== id;
      byId(buttonId, HTMLButtonElement).setAttribute("aria-expanded", String(panelId === id));
    }
  }

  /** The visible table (or the selected rows; or some columns) for export. */
  private exportTable(rows: RunRow[], colIds?: string[]): ExportTable {
    const columns = this.grid.displayedColumns().filter((c) => colIds === undefined || colIds.includes(c.colId));
    // Like pandas: microseconds for every time when one has them.
    const fraction = rows.some((row) => !Number.isInteger(this.store.startTime[row.slot] ?? 0));
    return {
      headers: columns.map((c) => c.header),
      rows: rows.map((row) =>
        columns.map((column) => {
          if (column.colId === "run") return { value: row.run };
          if (column.colId === "timestamp") {
            const time = this.store.startTime[row.slot];
            // Files get the offset: a time means the same wherever it is opened.
            return { value: timestampWithOffset(time, fraction), text: formatTimestamp(time) };
          }
          if (column.colId === "comment") return { value: this.store.comment[row.slot] ?? null };
          const name = column.name ?? "";
          // The shown text (with units) for Markdown; the raw value for files.
          return { value: this.store.value(row, name), info: this.store.cell(row, name), text: this.grid.cellText(row, name) };
        }),
      ),
    };
  }

  private baseName(): string {
    const who = this.store.proposal === null ? "runs" : `p${this.store.proposal}_runs`;
    return `${who}_${new Date().toISOString().slice(0, 16).replace(/[-:T]/g, "")}`;
  }

  private async export(kind: string): Promise<void> {
    if (kind === "copy") {
      await copySelectedAsMarkdown(this.context());
      return;
    }
    // Columns whose data is not in yet: fetched first.
    await this.loader.need(this.grid.displayedColumns().flatMap((c) => (c.name === null ? [] : [c.name])));
    const table = this.exportTable(this.grid.displayedRows());
    if (kind === "csv") download(`${this.baseName()}.csv`, toCsv(table), "text/csv;charset=utf-8");
    else if (kind === "md") download(`${this.baseName()}.md`, toMarkdown(table), "text/markdown;charset=utf-8");
    else if (kind === "xlsx") {
      const data = toXlsx(table);
      download(`${this.baseName()}.xlsx`, data.slice().buffer, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet");
    }
  }
}

function main(): void {
  initToken();
  setupThemeToggle(byId("theme-toggle", HTMLButtonElement));
  setupTabs();
  const app = new App();
  const context = app.context();
  for (const install of [installPreview, installCopy, installPlots, installEditor, installProcessing, installHistory]) {
    install(context);
  }
  // For the browser tests and benchmarks: the live state, read-only by convention.
  (window as unknown as { runtable: App }).runtable = app;
  app.start();
}

main();
