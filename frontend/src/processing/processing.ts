// Processing control: reprocess runs, the jobs panel, processing logs, cancelling,
// deleting a variable, and empty rows made ahead so comments can be written early.
//
// Server side: `/api/reprocess`, `/api/jobs`, `/api/runs/{run}/log`,
// `/api/variables/{name}` and `/api/runs` (docs/server.md, "Processing control"). The
// jobs panel starts from `GET /api/jobs` and then follows `job_state`, `job_progress` and
// `job_stuck` events; the log viewer polls the log while its tab is open, from the byte
// offset it reached.

import "./processing.css";

import { getJson, sendJson } from "../api";
import type { AppContext } from "../appcontext";
import { addCellAction, type CellTarget } from "../cellmenu";
import { button, el } from "../dom";
import { formatTimestamp } from "../format";
import type { LiveEvent } from "../generated/events";
import { progressFraction, progressOf, progressText, type JobProgress } from "../progress";
import { compressRuns } from "../runranges";
import { onRestore, openTab, type Tab } from "../tabs";
import type { VariableInfo } from "../table";
import { errorText } from "../text";

/** A job as `GET /api/jobs` sends it. */
export interface JobInfo {
  id: number;
  proposal: number;
  run: number;
  data: string;
  /** null: all variables (also those added later). */
  variables: string[] | null;
  state: "queued" | "running" | "done" | "failed" | "cancelled";
  executor: string;
  submitted_at: number;
  started_at: number | null;
  finished_at: number | null;
  message: string | null;
  /** The latest progress of a running job. */
  progress?: JobProgress | null;
  /** A running job possibly stuck (silent for `stuck_after_s`): its last sign of life. */
  stuck_since?: number | null;
}

interface LogPiece {
  exists: boolean;
  file: string;
  text: string;
  offset: number;
  next_offset: number;
  size: number;
  restarted: boolean;
  more: boolean;
}

/** How often an open log is asked for what is new. */
const LOG_POLL_MS = 1000;
/** Text kept in a log view; older lines are dropped (the file keeps them). */
const LOG_KEEP_CHARS = 2_000_000;
/** Most rows the "Add empty rows" dialog creates at once (the server's limit). */
const MAX_NEW_ROWS = 1000;

// -- small helpers --------------------------------------------------------------------

function clock(epoch: number | null): string {
  if (epoch === null) return "";
  return formatTimestamp(epoch, "clock");
}

/** `"41 s"`, `"3 min 5 s"`. */
function seconds(span: number): string {
  const s = Math.max(0, Math.round(span));
  return s < 60 ? `${s} s` : `${Math.floor(s / 60)} min ${s % 60} s`;
}

function duration(job: JobInfo): string {
  if (job.started_at === null) return "";
  return seconds((job.finished_at ?? Date.now() / 1000) - job.started_at);
}

/** A running job's progress: its words and a bar of the whole job. */
function progressBar(progress: JobProgress): HTMLElement {
  const bar = el("progress", { className: "proc-progress-bar" });
  bar.max = 1;
  bar.value = progressFraction(progress);
  const text = progressText(progress);
  return el("div", { className: "proc-progress", title: text }, el("span", { text }), bar);
}

/** A running job's progress, and a warning that opens its log when it may be stuck. */
function progressCell(job: JobInfo, openLog: (run: number) => void): Node | string {
  const parts: Node[] = [];
  if (job.stuck_since) {
    const silent = seconds(Date.now() / 1000 - job.stuck_since);
    const title = `Nothing printed and no progress since ${clock(job.stuck_since)}: show the last lines of run ${job.run}'s log`;
    parts.push(button(`possibly stuck: silent for ${silent}`, () => openLog(job.run), { className: "proc-stuck", title }));
  }
  if (job.progress) parts.push(progressBar(job.progress));
  return parts.length === 0 ? "" : el("div", { className: "proc-progress-cell" }, ...parts);
}

const ACTIVE = new Set(["queued", "running"]);

/** A column of the jobs table: its heading, its cells' class, and what a job's cell shows
 * (`openLog` opens a run's log). `titled`: the text is also the tooltip, for long texts
 * the column cuts. */
interface JobColumn {
  title: string;
  cls: string;
  cell: (job: JobInfo, openLog: (run: number) => void) => Node | string;
  titled?: boolean;
}

const JOB_COLUMNS: JobColumn[] = [
  { title: "Job", cls: "id", cell: (job) => String(job.id) },
  { title: "Run", cls: "run", cell: (job) => String(job.run) },
  { title: "Data", cls: "data", cell: (job) => job.data },
  { title: "Variables", cls: "vars", cell: (job) => (job.variables === null ? "all" : job.variables.join(", ")), titled: true },
  { title: "State", cls: "state", cell: (job) => el("span", { className: `proc-state proc-state-${job.state}`, text: job.state }) },
  { title: "Progress", cls: "progress", cell: progressCell },
  { title: "Where", cls: "where", cell: (job) => job.executor },
  { title: "Queued", cls: "queued", cell: (job) => clock(job.submitted_at) },
  { title: "Started", cls: "started", cell: (job) => clock(job.started_at) },
  { title: "Took", cls: "took", cell: (job) => duration(job) },
  { title: "Message", cls: "message", cell: (job) => job.message ?? "", titled: true },
];

// -- jobs: the list the panel shows, kept live ----------------------------------------

/** A job's states only move forward: queued → running → an end. */
function stage(state: JobInfo["state"]): number {
  return state === "queued" ? 0 : state === "running" ? 1 : 2;
}

class Jobs {
  readonly byId = new Map<number, JobInfo>();
  /** The furthest state each job's events announced. A `GET /api/jobs` or reprocess
   * answer may have been read before an event that arrived ahead of it; this keeps
   * the answer from setting a finished job back to running. */
  private readonly announced = new Map<number, JobInfo["state"]>();
  /** The last `job_stuck` of each running job (its last sign of life, or null): it may
   * come before the list that shows the job, which is then older than the event. */
  private readonly stuckSince = new Map<number, number | null>();
  private readonly listeners: (() => void)[] = [];
  private refreshTimer: number | null = null;
  private loaded = false;

  onChange(listener: () => void): void {
    this.listeners.push(listener);
  }

  private changed(): void {
    for (const listener of this.listeners) listener();
  }

  /** Merge jobs the server told about (from `GET /api/jobs` or a reprocess answer). */
  add(jobs: JobInfo[]): void {
    for (const job of jobs) {
      const announced = this.announced.get(job.id);
      if (announced !== undefined && stage(announced) > stage(job.state)) {
        this.apply(job, announced);
      }
      const stuckSince = this.stuckSince.get(job.id);
      if (stuckSince !== undefined && job.state === "running") job.stuck_since = stuckSince;
      this.byId.set(job.id, job);
    }
    this.changed();
  }

  async refresh(): Promise<void> {
    const answer = await getJson<{ jobs: JobInfo[] }>("api/jobs");
    const now = Date.now() / 1000;
    for (const job of answer.jobs) if (job.progress) job.progress.received = now;
    this.byId.clear();
    this.loaded = true;
    this.add(answer.jobs);
  }

  /** Refresh soon, once, however many events ask for it meanwhile. */
  refreshSoon(): void {
    if (this.refreshTimer !== null) return;
    this.refreshTimer = window.setTimeout(() => {
      this.refreshTimer = null;
      this.refresh().catch(() => undefined);
    }, 300);
  }

  event(event: LiveEvent): void {
    if (event.kind === "job_progress") {
      const job = this.byId.get(Number(event.job_id));
      if (job === undefined || job.state !== "running") return;
      job.progress = progressOf(event);
      this.changed();
      return;
    }
    if (event.kind === "job_stuck") {
      const id = Number(event.job_id);
      const stuckSince = event.stuck ? event.last_activity : null;
      this.stuckSince.set(id, stuckSince);
      const job = this.byId.get(id);
      if (job === undefined || job.state !== "running") return;
      job.stuck_since = stuckSince;
      this.changed();
      return;
    }
    if (event.kind !== "job_state") return;
    const id = Number(event.job_id);
    const job = this.byId.get(id);
    const state = event.state as JobInfo["state"];
    this.announced.set(id, state);
    if (job === undefined) {
      // A job we have not seen (queued by the watcher, another browser): its details
      // (data, variables, executor) come with the list.
      if (this.loaded) this.refreshSoon();
      return;
    }
    this.apply(job, state);
    if (event.message !== "") job.message = event.message;
    this.changed();
  }

  private apply(job: JobInfo, state: JobInfo["state"]): void {
    const now = Date.now() / 1000;
    job.state = state;
    if (state !== "running") {
      job.progress = null;
      job.stuck_since = null;
      this.stuckSince.delete(job.id);
    }
    if (state === "running" && job.started_at === null) job.started_at = now;
    if (!ACTIVE.has(state) && job.finished_at === null) job.finished_at = now;
  }

  activeFor(runs: number[]): JobInfo[] {
    const wanted = new Set(runs);
    return [...this.byId.values()].filter((j) => wanted.has(j.run) && ACTIVE.has(j.state));
  }
}

// -- the feature ----------------------------------------------------------------------

class Processing {
  private readonly app: AppContext;
  private readonly jobs = new Jobs();
  private readonly dialog: ReprocessDialog;
  private jobsTab: Tab | null = null;

  constructor(app: AppContext) {
    this.app = app;
    this.dialog = new ReprocessDialog(app, (queued) => this.jobs.add(queued), () => this.openJobs());
    app.onEvent((event) => this.jobs.event(event));
  }

  install(): void {
    const bar = document.getElementById("toolbar-features");
    if (bar !== null) {
      const reprocess = button("Reprocess…", () => this.dialog.open(this.app.selectedRuns()));
      reprocess.id = "proc-reprocess-button";
      reprocess.title = "Process runs again (the selected ones are prefilled)";
      const jobs = button("Jobs", () => this.openJobs());
      jobs.id = "proc-jobs-button";
      jobs.title = "Processing jobs: queued, running, recently finished";
      const rows = button("+ Rows", () => void this.addRows());
      rows.id = "proc-rows-button";
      rows.title = "Create empty rows for runs not taken yet, to write comments ahead";
      bar.append(reprocess, jobs, rows);
    }
    addCellAction({
      label: (t) => (t.runs.length > 1 ? `Reprocess ${t.runs.length} runs…` : `Reprocess run ${t.run}…`),
      run: (t) => this.dialog.open(t.runs),
    });
    addCellAction({
      label: (t) => `Show processing log of run ${t.run}`,
      run: (t) => this.openLog(t.run),
    });
    addCellAction({
      label: (t) => {
        const n = t.runs.filter((run) => this.app.store.jobs.has(run)).length;
        return n > 1 ? `Cancel processing of ${n} runs` : "Cancel processing";
      },
      when: (t) => t.runs.some((run) => this.app.store.jobs.has(run)),
      run: (t) => void this.cancelRuns(t.runs),
    });
    addCellAction({
      group: "danger",
      label: (t) => `Delete variable “${t.variable?.title ?? t.name}”…`,
      when: (t) => t.name !== null && t.variable !== null,
      run: (t) => void this.deleteVariable(t),
    });
  }

  // -- jobs panel -------------------------------------------------------------------

  openJobs(): void {
    if (this.jobsTab !== null) {
      this.jobsTab.show();
      this.jobs.refresh().catch((error: unknown) => this.app.toast(`Could not list the jobs: ${errorText(error)}`, "error"));
      return;
    }
    let timer = 0;
    const { tab } = openTab("processing:jobs", "Jobs", {
      onClose: () => {
        this.jobsTab = null;
        window.clearInterval(timer);
      },
    });
    this.jobsTab = tab;
    tab.remember("jobs");
    const body = el("div", { className: "proc-pane" });
    const status = el("p", { className: "proc-note" });
    const table = el("table", { className: "proc-jobs" });
    const head = el("thead");
    const headRow = el("tr");
    // (The last column holds each job's actions.)
    for (const title of [...JOB_COLUMNS.map((c) => c.title), ""]) headRow.append(el("th", { text: title }));
    head.append(headRow);
    const rows = el("tbody");
    table.append(head, rows);
    const refresh = button("Refresh", () => void load(), { className: "rt-button small" });
    body.append(el("div", { className: "proc-head" }, el("h2", { text: "Processing jobs" }), status, refresh), el("div", { className: "proc-scroll" }, table));
    tab.body.append(body);

    const render = (): void => {
      const jobs = [...this.jobs.byId.values()].sort((a, b) => b.id - a.id);
      const active = jobs.filter((j) => ACTIVE.has(j.state)).length;
      status.textContent = `${active} active · ${jobs.length - active} finished recently`;
      rows.replaceChildren(...jobs.map((job) => this.jobRow(job)));
      if (jobs.length === 0) {
        const empty = el("td", { className: "proc-empty", text: "No jobs yet: reprocess runs, or wait for new ones" });
        empty.colSpan = JOB_COLUMNS.length + 1;
        rows.append(el("tr", {}, empty));
      }
    };
    const load = async (): Promise<void> => {
      try {
        await this.jobs.refresh();
      } catch (error) {
        status.textContent = `Could not list the jobs: ${errorText(error)}`;
        status.classList.add("proc-error");
      }
    };
    this.jobs.onChange(() => {
      if (this.jobsTab === tab) render();
    });
    // Running times tick while the tab is open.
    timer = window.setInterval(() => {
      if (this.jobsTab === tab && [...this.jobs.byId.values()].some((j) => j.state === "running")) render();
    }, 1000);
    render();
    void load();
  }

  private jobRow(job: JobInfo): HTMLTableRowElement {
    const row = el("tr");
    row.dataset.jobId = String(job.id);
    row.dataset.state = job.state;
    const openLog = (run: number): void => this.openLog(run);
    for (const column of JOB_COLUMNS) {
      const content = column.cell(job, openLog);
      const td = el("td", { className: column.cls }, content);
      if (column.titled) td.title = typeof content === "string" ? content : "";
      row.append(td);
    }
    const actions = el("div", { className: "proc-actions" });
    actions.append(button("log", () => this.openLog(job.run), { className: "proc-link", title: `Show the processing log of run ${job.run}` }));
    if (ACTIVE.has(job.state)) {
      actions.append(
        button("Cancel", () => void this.cancel(job), { className: "rt-button small proc-cancel", title: `Cancel job ${job.id} (run ${job.run})` }),
      );
    }
    row.append(el("td", { className: "actions" }, actions));
    return row;
  }

  private async cancel(job: JobInfo): Promise<void> {
    try {
      const answer = await sendJson<JobInfo>("DELETE", `api/jobs/${job.id}`);
      this.jobs.add([answer]);
      this.app.toast(answer.state === "cancelled" ? `Job ${job.id} (run ${job.run}) cancelled` : `Stopping job ${job.id} (run ${job.run})…`);
    } catch (error) {
      this.app.toast(`Could not cancel job ${job.id}: ${errorText(error)}`, "error");
      this.jobs.refreshSoon();
    }
  }

  private async cancelRuns(runs: number[]): Promise<void> {
    try {
      await this.jobs.refresh();
    } catch (error) {
      this.app.toast(`Could not list the jobs: ${errorText(error)}`, "error");
      return;
    }
    const active = this.jobs.activeFor(runs);
    if (active.length === 0) {
      this.app.toast(`Nothing to cancel: run ${compressRuns(runs)} has no queued or running job`);
      return;
    }
    for (const job of active) await this.cancel(job);
  }

  // -- log viewer -------------------------------------------------------------------

  openLog(run: number): void {
    let timer: number | null = null;
    let closed = false;
    const { tab, created } = openTab(`processing:log:${run}`, `Log r${run}`, {
      onClose: () => {
        closed = true;
        if (timer !== null) window.clearTimeout(timer);
      },
    });
    if (!created) return;
    tab.remember("log", { run });
    const info = el("p", { className: "proc-note", text: "Loading…" });
    const follow = el("label", { className: "check", title: "Keep the newest lines in view" });
    const followBox = el("input");
    followBox.type = "checkbox";
    followBox.checked = true;
    follow.append(followBox, " Follow");
    const pre = el("pre", { className: "proc-log" });
    pre.dataset.run = String(run);
    pre.tabIndex = 0;
    const head = el("div", { className: "proc-head" }, el("h2", { text: `Processing log of run ${run}` }), info, follow);
    tab.body.append(el("div", { className: "proc-pane proc-log-pane" }, head, pre));

    // Scrolling up stops following; scrolling back to the end starts it again.
    pre.addEventListener("scroll", () => {
      followBox.checked = pre.scrollHeight - pre.scrollTop - pre.clientHeight < 24;
    });
    followBox.addEventListener("change", () => {
      if (followBox.checked) pre.scrollTop = pre.scrollHeight;
    });

    let offset: number | null = null;
    const poll = async (): Promise<void> => {
      let again = LOG_POLL_MS;
      try {
        const query = offset === null ? "" : `?offset=${offset}`;
        const piece = await getJson<LogPiece>(`api/runs/${run}/log${query}`);
        if (closed) return;
        if (piece.restarted) {
          pre.append(el("span", { className: "proc-log-note", text: "\n--- the log file was replaced or truncated: showing it again from its start ---\n" }));
        }
        if (offset === null && piece.offset > 0) {
          pre.append(el("span", { className: "proc-log-note", text: `--- the first ${Math.round(piece.offset / 1024)} KiB are not shown (see ${piece.file}) ---\n` }));
        }
        if (piece.text !== "") {
          pre.append(piece.text);
          if ((pre.textContent ?? "").length > LOG_KEEP_CHARS) {
            pre.textContent = (pre.textContent ?? "").slice(-LOG_KEEP_CHARS / 2);
          }
          if (followBox.checked) pre.scrollTop = pre.scrollHeight;
        }
        offset = piece.next_offset;
        info.textContent = piece.exists
          ? `${piece.file} · ${(piece.size / 1024).toFixed(1)} KiB · updated ${clock(Date.now() / 1000)}`
          : `${piece.file} does not exist yet: waiting for the run to be processed`;
        info.classList.remove("proc-error");
        if (piece.more) again = 0;
      } catch (error) {
        if (closed) return;
        info.textContent = `Could not read the log: ${errorText(error)} (retrying)`;
        info.classList.add("proc-error");
        again = LOG_POLL_MS * 3;
      }
      timer = window.setTimeout(() => void poll(), again);
    };
    void poll();
  }

  // -- delete a variable ------------------------------------------------------------

  private async deleteVariable(target: CellTarget): Promise<void> {
    const variable = target.variable;
    if (variable === null) return;
    const runs = this.app.store.rows.length;
    const ok = await confirmDialog({
      title: `Delete the variable “${variable.title}”?`,
      lines: [
        `This deletes the column “${variable.title}” (${variable.name}): its values in all ${runs} runs of the table, and its data in every run's HDF5 file.`,
        variable.user_editable
          ? "Values people typed in this column are lost. There is no undo."
          : "There is no undo. If the context file still defines it, it comes back when runs are processed again.",
      ],
      confirm: "Delete variable",
    });
    if (!ok) return;
    try {
      const answer = await sendJson<{ name: string; warning: string | null }>("DELETE", `api/variables/${encodeURIComponent(variable.name)}`);
      this.app.toast(answer.warning ?? `Deleted the variable “${variable.title}”`, answer.warning ? "error" : "info");
      await this.app.reload();
    } catch (error) {
      this.app.toast(`Could not delete “${variable.title}”: ${errorText(error)}`, "error");
    }
  }

  // -- empty rows -------------------------------------------------------------------

  private async addRows(): Promise<void> {
    const runs = this.app.store.rows.map((r) => r.run);
    const last = runs.length === 0 ? 0 : Math.max(...runs);
    const count = await numberDialog({
      title: "Add empty rows",
      text: `Rows for runs not taken yet, so their comments can be written ahead. They follow the last run (${last}).`,
      label: "Number of rows",
      max: MAX_NEW_ROWS,
      confirm: "Add rows",
      preview: (n) => (n === 1 ? `Creates run ${last + 1}` : `Creates runs ${last + 1}-${last + n}`),
    });
    if (count === null) return;
    try {
      const answer = await sendJson<{ added: number[]; existing: number[] }>("POST", "api/runs", { count });
      this.app.toast(answer.added.length === 0 ? "No rows added: those runs exist already" : `Added ${answer.added.length === 1 ? "run" : "runs"} ${compressRuns(answer.added)}`);
    } catch (error) {
      this.app.toast(`Could not add rows: ${errorText(error)}`, "error");
    }
  }
}

// -- the reprocess dialog ---------------------------------------------------------------

class ReprocessDialog {
  private readonly app: AppContext;
  private readonly queued: (jobs: JobInfo[]) => void;
  private readonly showJobs: () => void;
  private readonly dialog = el("dialog", { className: "dialog proc-dialog" });
  private readonly form = el("form");
  private readonly runs = el("input");
  private readonly search = el("input");
  private readonly list = el("ul", { className: "proc-vars" });
  private readonly allNote = el("p", { className: "proc-note" });
  private readonly error = el("p", { className: "form-error" });
  private readonly result = el("div", { className: "proc-result" });
  private readonly submit = el("button", { className: "rt-button primary", text: "Reprocess" });
  private readonly checks = new Map<string, HTMLInputElement>();
  private dataChoice: HTMLInputElement[] = [];

  constructor(app: AppContext, queued: (jobs: JobInfo[]) => void, showJobs: () => void) {
    this.app = app;
    this.queued = queued;
    this.showJobs = showJobs;
    this.dialog.id = "proc-dialog";
    this.dialog.setAttribute("aria-label", "Reprocess runs");
    this.runs.id = "proc-runs";
    this.runs.placeholder = "e.g. 17, 20-32 or all";
    this.runs.required = true;
    this.runs.autocomplete = "off";
    this.search.type = "search";
    this.search.id = "proc-search";
    this.search.placeholder = "Search variables…";
    this.search.setAttribute("aria-label", "Search variables");
    this.search.addEventListener("input", () => this.filter());
    this.submit.type = "submit";
    this.submit.id = "proc-submit";

    const data = el("div", { className: "proc-data", title: "Which variables: those computed from raw data, from proc (calibrated) data, or both" });
    data.append(el("span", { text: "Data:" }));
    for (const [value, text] of [["all", "all"], ["raw", "raw"], ["proc", "proc"]] as const) {
      const input = el("input");
      input.type = "radio";
      input.name = "proc-data";
      input.value = value;
      input.checked = value === "all";
      this.dataChoice.push(input);
      data.append(el("label", { className: "check" }, input, ` ${text}`));
    }
    const all = button("Select all", () => this.setAll(true), { className: "rt-button small" });
    all.id = "proc-all";
    const none = button("Select none", () => this.setAll(false), { className: "rt-button small" });
    none.id = "proc-none";
    const cancel = button("Close", () => this.dialog.close());
    const runsLabel = el("label", { text: "Runs " });
    runsLabel.append(this.runs);

    this.form.append(
      el("h2", { text: "Reprocess runs" }),
      runsLabel,
      data,
      el("div", { className: "proc-var-tools" }, this.search, all, none),
      this.list,
      this.allNote,
      this.error,
      this.result,
      el("div", { className: "dialog-buttons" }, cancel, this.submit),
    );
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      void this.send();
    });
    this.dialog.append(this.form);
    document.body.append(this.dialog);
  }

  open(runs: number[]): void {
    this.runs.value = compressRuns(runs);
    this.error.textContent = "";
    this.result.replaceChildren();
    this.search.value = "";
    this.fillVariables();
    this.dialog.showModal();
    this.runs.focus();
  }

  private fillVariables(): void {
    // Only the context file's variables: user-editable columns are not computed.
    const variables = this.app.store.variables.filter((v: VariableInfo) => !v.user_editable);
    this.checks.clear();
    this.list.replaceChildren(
      ...variables.map((v) => {
        const box = el("input");
        box.type = "checkbox";
        box.checked = true;
        box.value = v.name;
        box.addEventListener("change", () => this.updateNote());
        this.checks.set(v.name, box);
        const label = el("label", { className: "check", title: v.description ?? v.name }, box, ` ${v.title}`);
        if (v.title !== v.name) label.append(el("span", { className: "proc-name", text: ` ${v.name}` }));
        const item = el("li", {}, label);
        item.dataset.name = v.name;
        item.dataset.search = `${v.title} ${v.name}`.toLowerCase();
        return item;
      }),
    );
    this.updateNote();
  }

  private filter(): void {
    const words = this.search.value.toLowerCase().split(/\s+/).filter((w) => w !== "");
    for (const item of this.list.children) {
      if (!(item instanceof HTMLElement)) continue;
      const text = item.dataset.search ?? "";
      item.hidden = !words.every((w) => text.includes(w));
    }
  }

  /** Select all / none of the variables shown (all of them when nothing is searched). */
  private setAll(on: boolean): void {
    for (const item of this.list.children) {
      if (!(item instanceof HTMLElement) || item.hidden) continue;
      const box = this.checks.get(item.dataset.name ?? "");
      if (box !== undefined) box.checked = on;
    }
    this.updateNote();
  }

  private chosen(): string[] | null {
    const boxes = [...this.checks.values()];
    const names = boxes.filter((b) => b.checked).map((b) => b.value);
    return names.length === boxes.length ? null : names;
  }

  private updateNote(): void {
    const chosen = this.chosen();
    this.allNote.textContent =
      chosen === null
        ? "All variables: also those added to the context file before the jobs run."
        : `${chosen.length} of ${this.checks.size} variables (and what they depend on).`;
  }

  private async send(): Promise<void> {
    this.error.textContent = "";
    this.result.replaceChildren();
    const variables = this.chosen();
    if (variables !== null && variables.length === 0) {
      this.error.textContent = "No variables ticked: tick at least one, or Select all.";
      return;
    }
    const data = this.dataChoice.find((i) => i.checked)?.value ?? "all";
    this.submit.disabled = true;
    try {
      const answer = await sendJson<{ jobs: JobInfo[] }>("POST", "api/reprocess", { runs: this.runs.value, variables, data });
      const runs = compressRuns(answer.jobs.map((j) => j.run));
      const list = el("ul", { className: "proc-queued" });
      for (const job of answer.jobs.slice(0, 50)) {
        const item = el("li", { text: `job ${job.id} · run ${job.run} · ${job.data} · ${job.executor} · ${job.state}` });
        item.dataset.jobId = String(job.id);
        list.append(item);
      }
      if (answer.jobs.length > 50) list.append(el("li", { text: `… and ${answer.jobs.length - 50} more` }));
      const show = button("Show jobs", () => {
        this.dialog.close();
        this.showJobs();
      }, { className: "rt-button small" });
      show.id = "proc-show-jobs";
      this.result.append(
        el("p", { text: `Queued ${answer.jobs.length} job${answer.jobs.length === 1 ? "" : "s"} for run${runs.includes(",") || runs.includes("-") ? "s" : ""} ${runs}.` }),
        list,
        show,
      );
      this.queued(answer.jobs);
      this.app.toast(`Reprocessing run${answer.jobs.length === 1 ? "" : "s"} ${runs}`);
    } catch (error) {
      this.error.textContent = errorText(error);
    } finally {
      this.submit.disabled = false;
    }
  }
}

// -- small modal dialogs ----------------------------------------------------------------

function confirmDialog(options: { title: string; lines: string[]; confirm: string }): Promise<boolean> {
  return new Promise((resolve) => {
    const dialog = el("dialog", { className: "dialog proc-confirm" });
    dialog.id = "proc-confirm";
    const no = button("Cancel", () => dialog.close("no"));
    const yes = button(options.confirm, () => dialog.close("yes"), { className: "rt-button proc-danger" });
    dialog.append(
      el("h2", { text: options.title }),
      ...options.lines.map((line) => el("p", { text: line })),
      el("div", { className: "dialog-buttons" }, no, yes),
    );
    dialog.addEventListener("close", () => {
      resolve(dialog.returnValue === "yes");
      dialog.remove();
    });
    document.body.append(dialog);
    dialog.showModal();
    no.focus();
  });
}

function numberDialog(options: {
  title: string;
  text: string;
  label: string;
  max: number;
  confirm: string;
  preview: (n: number) => string;
}): Promise<number | null> {
  return new Promise((resolve) => {
    const dialog = el("dialog", { className: "dialog" });
    dialog.id = "proc-rows-dialog";
    const form = el("form");
    const input = el("input");
    input.type = "number";
    input.min = "1";
    input.max = String(options.max);
    input.step = "1";
    input.value = "1";
    input.required = true;
    input.id = "proc-rows-count";
    const preview = el("p", { className: "proc-note" });
    const update = (): void => {
      const n = Number.parseInt(input.value, 10);
      preview.textContent = Number.isInteger(n) && n >= 1 && n <= options.max ? options.preview(n) : `Between 1 and ${options.max}`;
    };
    input.addEventListener("input", update);
    update();
    const yes = el("button", { className: "rt-button primary", text: options.confirm });
    yes.type = "submit";
    const label = el("label", { text: `${options.label} ` }, input);
    form.append(el("h2", { text: options.title }), el("p", { text: options.text }), label, preview,
      el("div", { className: "dialog-buttons" }, button("Cancel", () => dialog.close()), yes));
    let result: number | null = null;
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const n = Number.parseInt(input.value, 10);
      if (!(Number.isInteger(n) && n >= 1 && n <= options.max)) return;
      result = n;
      dialog.close();
    });
    dialog.addEventListener("close", () => {
      resolve(result);
      dialog.remove();
    });
    dialog.append(form);
    document.body.append(dialog);
    dialog.showModal();
    input.select();
  });
}

/** Set up this feature (main.ts calls it once at start-up). */
export function install(app: AppContext): void {
  const processing = new Processing(app);
  processing.install();
  onRestore("jobs", () => processing.openJobs());
  onRestore("log", (state) => {
    const run = (state as { run?: unknown } | null)?.run;
    if (typeof run === "number") processing.openLog(run);
  });
}
