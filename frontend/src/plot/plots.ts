// Plots across runs and within runs, each in its own tab: X vs Y of the runs' summary
// values (live), X vs Y per train for selected runs (aligned on train IDs), and
// histograms of either. The "Plot" column of the table (include.ts) says which runs
// the summary plots include.

import "./plots.css";

import type { Data, LayoutAxis, PlotlyHTMLElement, PlotMouseEvent } from "plotly.js-dist-min";

import type { AppContext } from "../appcontext";
import { addCellAction } from "../cellmenu";
import { button } from "../dom";
import { formatTimestamp } from "../format";
import { MAX_BINS, MIN_BINS, NoTrainData, binEdges, fetchTrainSeries, histogram, joinOnTrains, parseBins, type TrainSeries } from "./data";
import { plotInclusion } from "./include";
import { PlotView, plotText } from "./panel";
import { onRestore, showTable } from "../tabs";
import type { RunRow, TableStore, VariableInfo } from "../table";
import { errorText, plural } from "../text";

/** The kinds of plot the form offers. */
export type PlotKind = "summary" | "trains" | "hist-summary" | "hist-trains";

const KINDS: { kind: PlotKind; label: string }[] = [
  { kind: "summary", label: "X vs Y across runs (summary values)" },
  { kind: "trains", label: "X vs Y within runs (per train, selected runs)" },
  { kind: "hist-summary", label: "Histogram across runs (summary values)" },
  { kind: "hist-trains", label: "Histogram within runs (per train, selected runs)" },
];

// Axis choices that are not variables. Variable names are Python identifiers, so
// these can never clash with one.
const RUN = ":run";
const TIMESTAMP = ":timestamp";
const TRAIN = ":train";
const SPECIAL: Record<string, string> = { [RUN]: "Run", [TIMESTAMP]: "Timestamp", [TRAIN]: "Train ID" };

const DEFAULT_BINS = 50;

/** A variable (or Run, Timestamp, Train ID) on an axis. */
interface Axis {
  key: string;
  label: string;
}

function axisOf(store: TableStore, key: string): Axis {
  const special = SPECIAL[key];
  if (special !== undefined) return { key, label: special };
  const variable = store.byName.get(key);
  if (variable === undefined) return { key, label: key };
  const units = variable.units ?? cellUnits(store, key);
  return { key, label: units ? `${variable.title} (${units})` : variable.title };
}

/** Units the cells of a column carry (`Cell(units=...)`) when the variable declares none. */
function cellUnits(store: TableStore, key: string): string | null {
  for (let i = store.rows.length - 1; i >= 0; i--) {
    const row = store.rows[i];
    const units = row === undefined ? undefined : store.cell(row, key)?.units;
    if (units) return units;
  }
  return null;
}

/** Ticks of a histogram's value axis: whole values as integers (bins of whole width). */
function valueTicks(edges: { size: number }): Partial<LayoutAxis> {
  return Number.isInteger(edges.size) ? { tickformat: "d", ...(edges.size === 1 ? { dtick: 1, tick0: 0 } : {}) } : {};
}

/** Ticks of a count axis: whole numbers only (no "1.5 runs"). */
function countTicks(counts: readonly number[]): Partial<LayoutAxis> {
  return Math.max(0, ...counts) <= 10 ? { dtick: 1, tick0: 0, tickformat: "d" } : { tickformat: "d" };
}

/** Whole numbers that name things (train IDs, run numbers) with all their digits, never "10.01k". */
function idTicks(key: string): Partial<LayoutAxis> {
  return key === TRAIN || key === RUN ? { tickformat: "d", hoverformat: "d" } : {};
}

function runList(runs: readonly number[]): string {
  return runs.length <= 4 ? runs.join(", ") : `${runs.slice(0, 3).join(", ")}… (${runs.length})`;
}

/** The numeric summary value of `key` for a row, or null (text, errors, no value). */
function numberOf(store: TableStore, row: RunRow, key: string): number | null {
  if (key === RUN) return row.run;
  if (key === TIMESTAMP) return store.startTime[row.slot] ?? null;
  const value = store.value(row, key);
  if (typeof value !== "number" || !Number.isFinite(value)) return null;
  const kind = store.cell(row, key)?.kind;
  return kind === "error" || kind === "skip" ? null : value;
}

/** Summary values of the included runs: what they are and what was left out. */
function summaryValues(store: TableStore, keys: string[]): { runs: number[]; values: number[][]; excluded: number; missing: number } {
  const runs: number[] = [];
  const values: number[][] = keys.map(() => []);
  let excluded = 0;
  let missing = 0;
  for (const row of store.rows) {
    if (!plotInclusion.isIncluded(row.run)) {
      excluded += 1;
      continue;
    }
    const point = keys.map((key) => numberOf(store, row, key));
    if (point.some((v) => v === null)) {
      missing += 1;
      continue;
    }
    runs.push(row.run);
    point.forEach((v, i) => values[i]?.push(v as number));
  }
  return { runs, values, excluded, missing };
}

function missingVariables(store: TableStore, keys: string[]): string[] {
  return keys.filter((key) => SPECIAL[key] === undefined && !store.byName.has(key));
}

/** Plots that follow the table (summary values) implement this. */
interface LiveView {
  update(): void;
}

/**
 * Per-train plots of some runs: fetched again when those runs get new values
 * (reprocessed), a moment later so that a burst of merges fetches once.
 */
abstract class RunsView extends PlotView {
  private timer: number | undefined;
  private generation = 0;

  protected constructor(
    kind: string,
    title: string,
    fileName: string,
    protected readonly runs: number[],
    onClosed: () => void,
  ) {
    super(kind, title, fileName, onClosed);
    this.setNote(`Loading ${plural(runs.length, "run")}…`);
    // Once the subclass's constructor has run (fetch needs its fields).
    queueMicrotask(() => void this.reload());
  }

  runsChanged(runs: number[] | null): void {
    if (runs !== null && !runs.some((run) => this.runs.includes(run))) return;
    window.clearTimeout(this.timer);
    this.timer = window.setTimeout(() => void this.reload(), 500);
  }

  private async reload(): Promise<void> {
    const generation = ++this.generation;
    const got = await this.fetch();
    // Closed meanwhile, or a newer fetch started: this answer is out of date.
    if (this.isClosed || generation !== this.generation) return;
    this.loaded(got.series, got.problems);
  }

  /** Fetch what the plot shows. */
  protected abstract fetch(): Promise<{ series: Map<number, Map<string, TrainSeries>>; problems: string[] }>;

  /** Show what `fetch` got. */
  protected abstract loaded(series: Map<number, Map<string, TrainSeries>>, problems: string[]): void;
}

/** X vs Y of the included runs' summary values; live; a click shows the run in the table. */
class SummaryPlot extends PlotView implements LiveView {
  constructor(
    private readonly app: AppContext,
    private readonly xKey: string,
    private readonly yKey: string,
    onClosed: () => void,
  ) {
    const x = axisOf(app.store, xKey);
    const y = axisOf(app.store, yKey);
    super("summary", `${y.label} vs ${x.label}`, `${y.label}_vs_${x.label}`, onClosed);
    this.update();
  }

  update(): void {
    const store = this.app.store;
    if (![this.xKey, this.yKey].every((key) => store.isLoaded(key) || !store.byName.has(key))) {
      this.setNote("Loading the columns…");
      void this.app.ensureColumns([this.xKey, this.yKey]).then(() => this.update());
      return;
    }
    const gone = missingVariables(store, [this.xKey, this.yKey]);
    if (gone.length > 0) {
      this.setNote(`${gone.join(", ")} is no longer a column of the table`, true);
      return;
    }
    const x = axisOf(store, this.xKey);
    const y = axisOf(store, this.yKey);
    const { runs, values, excluded, missing } = summaryValues(store, [this.xKey, this.yKey]);
    const xs: (number | string)[] = this.xKey === TIMESTAMP ? (values[0] ?? []).map((t) => formatTimestamp(t)) : (values[0] ?? []);
    const parts = [`${plural(runs.length, "run")} plotted`];
    if (excluded > 0) parts.push(`${excluded} excluded (Plot column)`);
    if (missing > 0) parts.push(`${missing} without a number for both`);
    this.setNote(parts.join(" · "));
    const trace: Data = {
      type: runs.length > 5000 ? "scattergl" : "scatter",
      mode: "markers",
      x: xs,
      y: values[1] ?? [],
      customdata: runs,
      marker: { size: 7 },
      hovertemplate: `Run %{customdata}<br>${plotText(x.label)}: %{x}<br>${plotText(y.label)}: %{y}<extra></extra>`,
    };
    this.draw([trace], {
      xaxis: { title: { text: plotText(x.label) }, ...(this.xKey === TIMESTAMP ? { type: "date" } : idTicks(this.xKey)) },
      yaxis: { title: { text: plotText(y.label) }, ...idTicks(this.yKey) },
      hovermode: "closest",
      showlegend: false,
    });
  }

  protected override bind(graph: PlotlyHTMLElement): void {
    graph.on("plotly_click", (event: PlotMouseEvent) => {
      const run = Number(event.points[0]?.customdata);
      if (!Number.isInteger(run)) return;
      showTable();
      // After the table is laid out again, or it cannot scroll to the row.
      requestAnimationFrame(() => {
        if (!this.app.grid.jumpTo(run)) this.app.toast(`Run ${run} is hidden by the table's filters`, "error");
      });
    });
  }
}

/** A step-drawn histogram trace: one path whatever the number of bins (up to 100,000). */
function histogramTrace(counts: number[], start: number, size: number, name: string, hoverLabel: string): Data {
  const x = new Array<number>(counts.length + 1);
  const y = new Array<number>(counts.length + 1);
  const upper = new Array<number>(counts.length + 1);
  for (let k = 0; k <= counts.length; k++) {
    x[k] = start + k * size;
    upper[k] = start + (k + 1) * size;
    y[k] = counts[Math.min(k, counts.length - 1)] ?? 0;
  }
  return {
    type: "scatter",
    mode: "lines",
    line: { shape: "hv", width: 1.5 },
    fill: "tozeroy",
    name,
    x,
    y,
    customdata: upper,
    hovertemplate: `${plotText(hoverLabel)} [%{x:.5g}, %{customdata:.5g}): %{y}<extra>${plotText(name)}</extra>`,
  };
}

/** The bins input of a histogram tab. */
function binsInput(view: { setBins(bins: number): void; warn(message: string): void }, initial: number, parent: HTMLElement): HTMLInputElement {
  const label = document.createElement("label");
  label.className = "check";
  label.textContent = "Bins ";
  const input = document.createElement("input");
  input.type = "number";
  input.className = "rt-plot-bins";
  input.min = String(MIN_BINS);
  input.max = String(MAX_BINS);
  input.step = "1";
  input.value = String(initial);
  input.setAttribute("aria-label", "Number of bins");
  input.addEventListener("change", () => {
    const bins = parseBins(input.value);
    input.setCustomValidity(typeof bins === "string" ? bins : "");
    if (typeof bins === "string") view.warn(bins);
    else view.setBins(bins);
  });
  label.append(input);
  parent.append(label);
  return input;
}

/** Histogram of the included runs' summary values of one variable; live. */
class SummaryHistogram extends PlotView implements LiveView {
  private bins: number;

  constructor(
    private readonly app: AppContext,
    private readonly key: string,
    bins: number,
    onClosed: () => void,
  ) {
    const x = axisOf(app.store, key);
    super("hist-summary", `Histogram: ${x.label}`, `histogram_${x.label}`, onClosed);
    this.bins = bins;
    binsInput({ setBins: (b) => { this.bins = b; this.update(); }, warn: (m) => this.setNote(m, true) }, bins, this.controls);
    this.update();
  }

  update(): void {
    const store = this.app.store;
    if (store.byName.has(this.key) && !store.isLoaded(this.key)) {
      this.setNote("Loading the column…");
      void this.app.ensureColumns([this.key]).then(() => this.update());
      return;
    }
    if (missingVariables(store, [this.key]).length > 0) {
      this.setNote(`${this.key} is no longer a column of the table`, true);
      return;
    }
    const x = axisOf(store, this.key);
    const { runs, values, excluded, missing } = summaryValues(store, [this.key]);
    const data = values[0] ?? [];
    const edges = binEdges([data], this.bins) ?? { start: 0, size: 1 / this.bins, bins: this.bins };
    const parts = [`${plural(runs.length, "run")} in ${plural(edges.bins, "bin")}`];
    if (excluded > 0) parts.push(`${excluded} excluded (Plot column)`);
    if (missing > 0) parts.push(`${missing} without a number`);
    this.setNote(parts.join(" · "));
    const counts = histogram(data, edges.bins, edges.start, edges.size);
    this.draw([histogramTrace(counts, edges.start, edges.size, "runs", x.label)], {
      xaxis: { title: { text: plotText(x.label) }, ...valueTicks(edges) },
      yaxis: { title: { text: "Runs" }, rangemode: "tozero", ...countTicks(counts) },
      showlegend: false,
      hovermode: "closest",
    });
  }
}

/** Fetch per-train series of `keys` for `runs`; failures are collected per run, not fatal. */
async function fetchAll(store: TableStore, runs: number[], keys: string[]): Promise<{ series: Map<number, Map<string, TrainSeries>>; problems: string[] }> {
  const series = new Map<number, Map<string, TrainSeries>>();
  const problems: string[] = [];
  // A few at a time: each answer can be millions of numbers.
  const queue = runs.flatMap((run) => keys.filter((key) => key !== TRAIN).map((key) => ({ run, key })));
  const worker = async (): Promise<void> => {
    for (let job = queue.shift(); job !== undefined; job = queue.shift()) {
      try {
        const got = await fetchTrainSeries(job.run, job.key, axisOf(store, job.key).label);
        const perRun = series.get(job.run) ?? new Map<string, TrainSeries>();
        perRun.set(job.key, got);
        series.set(job.run, perRun);
      } catch (error) {
        problems.push(error instanceof NoTrainData ? error.message : `run ${job.run}: ${errorText(error)}`);
      }
    }
  };
  await Promise.all([worker(), worker(), worker()]);
  return { series, problems };
}

/** X vs Y per train, one trace per selected run, X and Y matched on train IDs. */
class TrainPlot extends RunsView {
  constructor(
    private readonly app: AppContext,
    runs: number[],
    private readonly xKey: string,
    private readonly yKey: string,
    onClosed: () => void,
  ) {
    const x = axisOf(app.store, xKey);
    const y = axisOf(app.store, yKey);
    super("trains", `${y.label} vs ${x.label}, run ${runList(runs)}`, `${y.label}_vs_${x.label}_runs_${runs.join("-")}`, runs, onClosed);
  }

  protected fetch(): ReturnType<typeof fetchAll> {
    return fetchAll(this.app.store, this.runs, [this.xKey, this.yKey]);
  }

  protected loaded(series: Map<number, Map<string, TrainSeries>>, problems: string[]): void {
    const store = this.app.store;
    const x = axisOf(store, this.xKey);
    const y = axisOf(store, this.yKey);
    const traces: Data[] = [];
    let points = 0;
    for (const run of this.runs) {
      const ys = series.get(run)?.get(this.yKey);
      if (ys === undefined) continue;
      let joined: { x: number[]; y: number[]; trains: number[] };
      try {
        if (this.xKey === TRAIN) {
          if (ys.coord === null) throw new NoTrainData(`${y.label} in run ${run} has no train IDs (an xarray trainId coordinate)`);
          joined = { x: Array.from(ys.x), y: Array.from(ys.y), trains: Array.from(ys.x) };
        } else {
          const xs = series.get(run)?.get(this.xKey);
          if (xs === undefined) continue;
          joined = joinOnTrains(xs, ys, x.label, y.label);
        }
      } catch (error) {
        problems.push(errorText(error));
        continue;
      }
      points += joined.x.length;
      traces.push({
        type: joined.x.length > 5000 ? "scattergl" : "scatter",
        mode: "markers",
        name: `Run ${run}`,
        x: joined.x,
        y: joined.y,
        customdata: joined.trains,
        marker: { size: 5 },
        hovertemplate: `Run ${run}, train %{customdata}<br>${plotText(x.label)}: %{x}<br>${plotText(y.label)}: %{y}<extra></extra>`,
      });
    }
    const summary = `${plural(points, "train")} from ${plural(traces.length, "run")}`;
    this.setNote(problems.length > 0 ? `${summary} · ${problems.join(" · ")}` : summary, problems.length > 0);
    this.draw(traces, {
      xaxis: { title: { text: plotText(x.label) }, ...idTicks(this.xKey) },
      yaxis: { title: { text: plotText(y.label) }, ...idTicks(this.yKey) },
      hovermode: "closest",
      showlegend: true,
    });
  }
}

/** Histogram of a variable's per-train values, one trace per selected run. */
class TrainHistogram extends RunsView {
  private bins: number;
  private data: { run: number; values: Float64Array | Float32Array }[] = [];
  private problems: string[] = [];

  constructor(
    private readonly app: AppContext,
    runs: number[],
    private readonly key: string,
    bins: number,
    onClosed: () => void,
  ) {
    const x = axisOf(app.store, key);
    super("hist-trains", `Histogram: ${x.label}, run ${runList(runs)}`, `histogram_${x.label}_runs_${runs.join("-")}`, runs, onClosed);
    this.bins = bins;
    binsInput({ setBins: (b) => { this.bins = b; this.show(); }, warn: (m) => this.setNote(m, true) }, bins, this.controls);
  }

  protected fetch(): ReturnType<typeof fetchAll> {
    return fetchAll(this.app.store, this.runs, [this.key]);
  }

  protected loaded(series: Map<number, Map<string, TrainSeries>>, problems: string[]): void {
    this.problems = problems;
    this.data = this.runs.flatMap((run) => {
      const got = series.get(run)?.get(this.key);
      return got === undefined ? [] : [{ run, values: got.y }];
    });
    this.show();
  }

  private show(): void {
    const x = axisOf(this.app.store, this.key);
    const edges = binEdges(this.data.map((d) => d.values), this.bins) ?? { start: 0, size: 1 / this.bins, bins: this.bins };
    const counts = this.data.map((d) => histogram(d.values, edges.bins, edges.start, edges.size));
    const traces = this.data.map((d, i) => histogramTrace(counts[i] ?? [], edges.start, edges.size, `Run ${d.run}`, x.label));
    const total = this.data.reduce((n, d) => n + d.values.length, 0);
    const summary = `${plural(total, "value")} from ${plural(this.data.length, "run")} in ${plural(edges.bins, "bin")}`;
    this.setNote(this.problems.length > 0 ? `${summary} · ${this.problems.join(" · ")}` : summary, this.problems.length > 0);
    this.draw(traces, {
      xaxis: { title: { text: plotText(x.label) }, ...valueTicks(edges) },
      yaxis: { title: { text: "Trains" }, rangemode: "tozero", ...countTicks(counts.flat()) },
      showlegend: this.data.length > 1,
      hovermode: "closest",
    });
  }
}

/** The "Plot" form: kind, X, Y (searchable), swap, bins. */
class PlotForm {
  private readonly dialog = document.createElement("dialog");
  private readonly kind = document.createElement("select");
  private readonly x = document.createElement("input");
  private readonly y = document.createElement("input");
  private readonly xList = document.createElement("datalist");
  private readonly yList = document.createElement("datalist");
  private readonly yRow = document.createElement("label");
  private readonly binsRow = document.createElement("label");
  private readonly bins = document.createElement("input");
  private readonly swap = document.createElement("button");
  private readonly hint = document.createElement("p");
  private readonly error = document.createElement("p");

  constructor(
    private readonly app: AppContext,
    private readonly create: (kind: PlotKind, x: string, y: string, bins: number) => void,
  ) {
    const d = this.dialog;
    d.className = "dialog rt-plot-dialog";
    d.id = "plot-dialog";
    const form = document.createElement("form");
    form.method = "dialog";
    // Our own checks say what is wrong in a sentence (the browser's would block silently).
    form.noValidate = true;
    const heading = document.createElement("h2");
    heading.textContent = "New plot";

    const kindRow = document.createElement("label");
    kindRow.textContent = "Kind ";
    this.kind.id = "plot-kind";
    for (const { kind, label } of KINDS) this.kind.append(new Option(label, kind));
    kindRow.append(this.kind);

    this.xList.id = "plot-x-list";
    this.yList.id = "plot-y-list";
    const xRow = document.createElement("label");
    xRow.textContent = "X ";
    this.setupPicker(this.x, "plot-x", this.xList);
    xRow.append(this.x, this.xList);
    this.yRow.textContent = "Y ";
    this.setupPicker(this.y, "plot-y", this.yList);
    this.yRow.append(this.y, this.yList);

    this.swap.type = "button";
    this.swap.id = "plot-swap";
    this.swap.className = "rt-button small";
    this.swap.textContent = "⇅ Swap X and Y";
    this.swap.addEventListener("click", () => {
      [this.x.value, this.y.value] = [this.y.value, this.x.value];
    });

    this.binsRow.textContent = "Bins ";
    this.bins.id = "plot-bins";
    this.bins.type = "number";
    this.bins.min = String(MIN_BINS);
    this.bins.max = String(MAX_BINS);
    this.bins.step = "1";
    this.bins.value = String(DEFAULT_BINS);
    this.binsRow.append(this.bins);

    this.hint.className = "rt-plot-hint";
    this.error.className = "form-error";
    this.error.setAttribute("role", "alert");

    const buttons = document.createElement("div");
    buttons.className = "dialog-buttons";
    const cancel = button("Cancel", () => d.close());
    const submit = document.createElement("button");
    submit.type = "submit";
    submit.className = "rt-button primary";
    submit.id = "plot-submit";
    submit.textContent = "Plot";
    buttons.append(cancel, submit);

    form.append(heading, kindRow, xRow, this.swap, this.yRow, this.binsRow, this.hint, this.error, buttons);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit();
    });
    this.kind.addEventListener("change", () => this.kindChanged());
    d.append(form);
    document.body.append(d);
  }

  private setupPicker(input: HTMLInputElement, id: string, list: HTMLDataListElement): void {
    input.id = id;
    input.type = "text";
    input.autocomplete = "off";
    input.spellcheck = false;
    input.placeholder = "Type to search the variables…";
    input.setAttribute("list", list.id);
    // Clicking a filled picker shows the whole list again, not only the current match.
    input.addEventListener("focus", () => input.select());
  }

  open(): void {
    this.error.textContent = "";
    this.kindChanged();
    this.dialog.showModal();
    this.x.focus();
  }

  private get kindValue(): PlotKind {
    return this.kind.value as PlotKind;
  }

  private kindChanged(): void {
    this.error.textContent = "";
    const kind = this.kindValue;
    const histogramKind = kind === "hist-summary" || kind === "hist-trains";
    const perTrain = kind === "trains" || kind === "hist-trains";
    this.yRow.hidden = histogramKind;
    this.swap.hidden = histogramKind;
    this.binsRow.hidden = !histogramKind;
    const specials = kind === "summary" ? [RUN, TIMESTAMP] : kind === "trains" ? [TRAIN] : [];
    this.fillList(this.xList, specials, perTrain);
    this.fillList(this.yList, [], perTrain);
    if (perTrain) {
      const runs = this.app.selectedRuns();
      this.hint.textContent =
        runs.length === 0
          ? "Select the runs to plot in the table first (click, Ctrl/Shift-click)."
          : `For the selected ${runs.length === 1 ? "run" : "runs"}: ${runList(runs)}.`;
    } else {
      this.hint.textContent = "Runs unticked in the table's Plot column are left out.";
    }
  }

  /** Variables that can be plotted: a number in some run (per train: or an array). */
  private plottable(perTrain: boolean): VariableInfo[] {
    const store = this.app.store;
    return store.variables.filter((variable) =>
      store.rows.some((row) => {
        const kind = store.cell(row, variable.name)?.kind;
        if (perTrain && (kind === "trendline" || kind === "array")) return true;
        return numberOf(store, row, variable.name) !== null;
      }),
    );
  }

  private fillList(list: HTMLDataListElement, specials: string[], perTrain: boolean): void {
    const options = specials.map((key) => new Option(SPECIAL[key] ?? key, SPECIAL[key] ?? key));
    for (const variable of this.plottable(perTrain)) {
      // The title is what people know; the name is shown beside it and is accepted too.
      const option = new Option(variable.name, variable.title);
      options.push(option);
    }
    list.replaceChildren(...options);
  }

  /**
   * The axis key for what was typed: a special axis, a title or a name, else the one
   * title or name containing it ("pulse" for "XGM/Pulse energy"); a string saying why
   * not when none or several do.
   */
  private resolve(text: string, specials: string[]): string | { problem: string } {
    const wanted = text.trim().toLowerCase();
    if (wanted === "") return { problem: "empty" };
    for (const key of specials) {
      if (SPECIAL[key]?.toLowerCase() === wanted) return key;
    }
    const variables = this.app.store.variables;
    const exact = variables.find((v) => v.title.toLowerCase() === wanted || v.name.toLowerCase() === wanted);
    if (exact !== undefined) return exact.name;
    const partial = variables.filter((v) => v.title.toLowerCase().includes(wanted) || v.name.toLowerCase().includes(wanted));
    if (partial.length === 1 && partial[0] !== undefined) return partial[0].name;
    if (partial.length > 1) {
      const some = partial.slice(0, 4).map((v) => `“${v.title}”`).join(", ");
      return { problem: `“${text.trim()}” matches ${partial.length} columns (${some}${partial.length > 4 ? ", …" : ""}): pick one from the list` };
    }
    return { problem: `No column “${text.trim()}”` };
  }

  private submit(): void {
    const kind = this.kindValue;
    const histogramKind = kind === "hist-summary" || kind === "hist-trains";
    const perTrain = kind === "trains" || kind === "hist-trains";
    const specials = kind === "summary" ? [RUN, TIMESTAMP] : kind === "trains" ? [TRAIN] : [];
    const fail = (message: string): void => {
      this.error.textContent = message;
    };
    const explain = (axis: "X" | "Y", found: { problem: string }): string =>
      found.problem === "empty"
        ? `Choose ${axis}: type part of a column title and pick from the list`
        : found.problem.startsWith("No column")
          ? `${found.problem}: pick ${axis} from the list`
          : `${axis}: ${found.problem}`;
    const x = this.resolve(this.x.value, specials);
    if (typeof x !== "string") {
      fail(explain("X", x));
      return;
    }
    let y = "";
    if (!histogramKind) {
      const found = this.resolve(this.y.value, []);
      if (typeof found !== "string") {
        fail(explain("Y", found));
        return;
      }
      y = found;
    }
    let bins = DEFAULT_BINS;
    if (histogramKind) {
      const parsed = parseBins(this.bins.value);
      if (typeof parsed === "string") {
        fail(parsed);
        return;
      }
      bins = parsed;
    }
    if (perTrain && this.app.selectedRuns().length === 0) {
      fail("Select the runs to plot in the table first (click, Ctrl/Shift-click), then open this form again");
      return;
    }
    this.dialog.close();
    this.create(kind, x, y, bins);
  }
}

/** Set up this feature (main.ts calls it once at start-up). */
export function install(app: AppContext): void {
  const live = new Set<LiveView>();
  const views = new Set<PlotView>();
  const perRun = new Set<RunsView>();

  const create = (kind: PlotKind, x: string, y: string, bins: number, runs: number[] = app.selectedRuns()): void => {
    let view: PlotView & Partial<LiveView>;
    const closed = (): void => {
      views.delete(view);
      live.delete(view as LiveView);
      perRun.delete(view as RunsView);
    };
    switch (kind) {
      case "summary":
        view = new SummaryPlot(app, x, y, closed);
        break;
      case "hist-summary":
        view = new SummaryHistogram(app, x, bins, closed);
        break;
      case "trains":
        view = new TrainPlot(app, runs, x, y, closed);
        break;
      case "hist-trains":
        view = new TrainHistogram(app, runs, x, bins, closed);
        break;
    }
    view.tab.remember("plot", { kind, x, y, bins, runs: kind === "trains" || kind === "hist-trains" ? runs : [] });
    views.add(view);
    if (view.update !== undefined) live.add(view as LiveView);
    if (view instanceof RunsView) perRun.add(view);
  };

  const form = new PlotForm(app, create);
  onRestore("plot", (state) => {
    const s = (state ?? {}) as { kind?: unknown; x?: unknown; y?: unknown; bins?: unknown; runs?: unknown };
    if (!KINDS.some((k) => k.kind === s.kind) || typeof s.x !== "string" || typeof s.y !== "string") return;
    const runs = Array.isArray(s.runs) ? s.runs.filter((r): r is number => typeof r === "number") : [];
    create(s.kind as PlotKind, s.x, s.y, typeof s.bins === "number" ? s.bins : DEFAULT_BINS, runs);
  });
  const plotButton = button("Plot", () => form.open(), {
    title: "Plot variables against each other, across runs or per train, or as histograms",
  });
  plotButton.id = "plot-button";
  document.getElementById("toolbar-features")?.append(plotButton);

  // Live: a burst of merged runs redraws once.
  let timer: number | undefined;
  const updateLive = (): void => {
    window.clearTimeout(timer);
    timer = window.setTimeout(() => {
      for (const view of live) view.update();
    }, 50);
  };
  app.onData((runs) => {
    if (live.size > 0) updateLive();
    for (const view of perRun) view.runsChanged(runs);
  });
  plotInclusion.onChange((runs) => {
    // The checkbox cells of these runs (changed from the menu, or in this very cell).
    const nodes = runs.map((run) => app.grid.api.getRowNode(String(run))).filter((node) => node !== undefined);
    app.grid.api.refreshCells({ rowNodes: nodes, columns: ["plot"], force: true });
    updateLive();
  });

  addCellAction({
    group: "plots",
    label: (target) => `Exclude ${target.runs.length === 1 ? `run ${target.run}` : `${target.runs.length} runs`} from summary plots`,
    when: (target) => target.runs.some((run) => plotInclusion.isIncluded(run)),
    run: (target) => plotInclusion.set(target.runs, false),
  });
  addCellAction({
    group: "plots",
    label: (target) => `Include ${target.runs.length === 1 ? `run ${target.run}` : `${target.runs.length} runs`} in summary plots`,
    when: (target) => target.runs.some((run) => !plotInclusion.isIncluded(run)),
    run: (target) => plotInclusion.set(target.runs, true),
  });

  // The theme switch (theme.ts) sets data-theme on <html>: redraw in its colours.
  new MutationObserver(() => {
    for (const view of views) view.restyle();
  }).observe(document.documentElement, { attributes: true, attributeFilter: ["data-theme"] });
}
