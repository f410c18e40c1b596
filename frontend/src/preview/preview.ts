// Previews: a cell's full data in a tab. A double-click on a variable's cell
// (cellmenu.setOpenAction) or "Show data" in the cell menu opens it. The data comes
// from GET api/cell/{run}/{name}/data in its binary form (`celldata.ts`),
// already downsampled by the server; zooming in fetches the zoomed part again, at full
// resolution when it fits.

import "./preview.css";

import { ApiError } from "../api";
import type { AppContext } from "../appcontext";
import { addCellAction, setOpenAction, type CellTarget } from "../cellmenu";
import type { ValuesMerged } from "../generated/events";
import { loadPlotly, needsFullBundle, type PlotlyModule } from "../plot/plotly";
import { onRestore, openTab, type Tab } from "../tabs";
import { errorText } from "../text";
import { button, el, parts } from "../dom";
import { fetchCellData, type Axis, type AxisLabel, type CellAnswer, type CellHeader, type FloatArray, type Member } from "../celldata";
import { axisTitle, coordRangeToIndex, eventRange, formatCoord } from "./axes";

// -- the view -----------------------------------------------------------------------
const open = new Map<string, PreviewView>();
/** Rows drawn by "as lines" at most: more lines would be unreadable (and slow). */
const MAX_LINES = 64;

function describe(h: CellHeader): string {
  const parts: string[] = [];
  if (h.shape !== undefined && h.shape.length > 0) parts.push(`${h.dtype ?? ""} (${h.shape.join(" × ")})`);
  const dims = (h.dims ?? []).filter((d) => d !== null);
  if (dims.length > 0) parts.push(`dims: ${(h.dims ?? []).map((d) => d ?? "–").join(", ")}`);
  if (h.units) parts.push(`units: ${h.units}`);
  if (h.complex === "abs") parts.push("complex: magnitude shown");
  const ds = h.downsample;
  if (ds !== undefined && ds.factor > 1) {
    const how = ds.method === "minmax" ? "min/max of every" : ds.method === "mean" ? "mean of every" : "every";
    const unit = h.kind === "image" ? `${ds.factor}×${ds.factor} pixels` : `${ds.factor} points`;
    parts.push(`downsampled: ${how === "every" ? `every ${ds.factor}th pixel` : `${how} ${unit}`} (zoom in for more detail)`);
  } else if (ds !== undefined) {
    parts.push("full resolution");
  }
  for (const axis of [h.x, h.y]) if (axis?.note) parts.push(axis.note);
  return parts.join(" · ");
}

class PreviewView {
  readonly root = el("div", { className: "preview" });
  private readonly ui = parts("preview", { info: "p", tools: "div", sliceBar: "div", members: "ul", main: "div", content: "div" });
  private plotDiv: HTMLDivElement | null = null;
  private plotly: PlotlyModule | null = null;
  private answer: CellAnswer | null = null;
  private path: string | null = null;
  private slice: string | null = null;
  private region: number[] | null = null;
  private usePreview = false;
  private equalAspect = true;
  private asLines = false;
  private request = 0;
  private sliceTimer: number | undefined;

  constructor(
    readonly tab: Tab,
    readonly run: number,
    readonly name: string,
    readonly title: string,
    private readonly app: AppContext,
  ) {
    const head = el("div", { className: "preview-head" });
    head.append(el("h2", { className: "preview-title", text: `${title} · run ${run}` }), this.ui.tools);
    this.ui.members.hidden = true;
    this.ui.sliceBar.hidden = true;
    this.ui.main.append(this.ui.sliceBar, this.ui.content);
    const body = el("div", { className: "preview-body" });
    body.append(this.ui.members, this.ui.main);
    this.root.append(head, this.ui.info, body);
    tab.body.append(this.root);
    void this.load();
  }

  /**
   * How many pixels of an image are worth sending: about as many as the plot area has
   * (device pixels); more would cost transfer and drawing time without being seen. The
   * server's default when the area is not laid out yet.
   */
  private pixelBudget(): number | undefined {
    const { clientWidth: width, clientHeight: height } = this.ui.content;
    if (width === 0 || height === 0) return undefined;
    const dpr = window.devicePixelRatio || 1;
    return Math.max(256 * 256, Math.round(width * dpr) * Math.round(height * dpr));
  }

  /** Fetch what the current path/slice/region/preview say and draw it. */
  async load(): Promise<void> {
    const request = ++this.request;
    this.root.dataset.state = "loading";
    const started = performance.now();
    let answer: CellAnswer;
    try {
      answer = await fetchCellData(this.run, this.name, { path: this.path, slice: this.slice, region: this.region, preview: this.usePreview, maxPixels: this.pixelBudget() });
    } catch (error) {
      if (request !== this.request) return;
      this.showError(error instanceof ApiError && error.status === 404 ? "Nothing to show" : "Could not load the data", errorText(error));
      return;
    }
    if (request !== this.request) return; // a newer request (zoom, slice) overtook this one
    this.root.dataset.fetchMs = String(performance.now() - started);
    this.root.dataset.bytes = String(answer.bytes);
    this.answer = answer;
    const fetched = performance.now();
    try {
      await this.render(answer);
      this.root.dataset.renderMs = String(performance.now() - fetched);
    } catch (error) {
      this.showError("Could not draw the data", errorText(error));
    }
  }

  private showError(title: string, message: string, cls?: string): void {
    this.purgePlot();
    this.ui.tools.replaceChildren();
    const box = el("div", { className: "preview-error" });
    box.append(el("strong", { text: cls !== undefined ? `${title} (${cls})` : title }), el("pre", { text: message }));
    this.ui.content.replaceChildren(box);
    this.root.dataset.state = "error";
  }

  private async render(answer: CellAnswer): Promise<void> {
    const h = answer.header;
    this.ui.info.textContent = describe(h);
    this.ui.tools.replaceChildren();
    if (h.has_preview === true || this.usePreview) {
      this.ui.tools.append(button(this.usePreview ? "Show data" : "Show Cell preview", () => {
        this.usePreview = !this.usePreview;
        this.slice = null;
        this.region = null;
        void this.load();
      }, { title: "Switch between the data and the preview object the context file gave" }));
    }
    if (h.kind === "dataset") {
      this.showMembers(h.members ?? []);
      return;
    }
    this.renderSlice(h);
    switch (h.kind) {
      case "line":
        await this.drawLine(answer);
        break;
      case "image":
        await this.drawImage(answer);
        break;
      case "plotly":
        await this.drawFigure(h);
        break;
      case "rgb":
      case "picture": {
        this.purgePlot();
        const img = el("img", { className: "preview-picture" });
        img.alt = `${this.title}, run ${this.run}`;
        img.src = `data:image/png;base64,${h.png ?? ""}`;
        this.ui.content.replaceChildren(img);
        this.drawn();
        break;
      }
      case "error":
        this.showError(h.error_cls === "Skip" ? "Skipped" : "This variable failed", h.message ?? "", h.error_cls === "Skip" ? undefined : h.error_cls);
        break;
      case "scalar":
      case "text": {
        this.purgePlot();
        let text: string;
        if (h.kind === "scalar") text = `${h.text ?? String(h.value)}${h.units ? ` ${h.units}` : ""}`;
        else if (h.values !== undefined) text = h.values.join("\n") + (h.truncated === true ? "\n…" : "");
        else text = String(h.value ?? "");
        this.ui.content.replaceChildren(el("pre", { className: `preview-text preview-${h.kind}`, text }));
        this.drawn();
        break;
      }
    }
  }

  private drawn(): void {
    this.root.dataset.state = "drawn";
    this.root.dataset.kind = this.answer?.header.kind ?? "";
    this.root.dataset.drawnAt = String(performance.now());
  }

  // -- datasets --------------------------------------------------------------------------
  private showMembers(members: Member[]): void {
    this.ui.members.hidden = false;
    this.ui.members.replaceChildren(
      ...members.map((m) => {
        const item = el("li");
        const b = el("button", { className: "preview-member" });
        b.type = "button";
        b.dataset.member = m.name;
        b.append(el("span", { className: "preview-member-name", text: m.name }), el("span", { className: "preview-member-shape", text: `${m.dtype} (${m.shape.join(" × ")})` }));
        b.setAttribute("aria-pressed", String(m.name === this.path));
        b.addEventListener("click", () => {
          this.path = m.name;
          this.slice = null;
          this.region = null;
          for (const other of this.ui.members.querySelectorAll("button")) other.setAttribute("aria-pressed", String(other === b));
          void this.load();
        });
        item.append(b);
        return item;
      }),
    );
    if (this.path === null) {
      this.purgePlot();
      this.ui.sliceBar.hidden = true;
      this.ui.content.replaceChildren(el("p", { className: "preview-hint", text: members.length > 0 ? "This Dataset holds the arrays on the left: pick one to see it." : "This Dataset holds no arrays." }));
      this.drawn();
    }
  }

  // -- slices of >2D arrays ----------------------------------------------------------
  private renderSlice(h: CellHeader): void {
    if (h.slice == null || h.shape === undefined) {
      this.ui.sliceBar.hidden = true;
      return;
    }
    this.ui.sliceBar.hidden = false;
    const parts = h.slice.split(",");
    const shape = h.shape;
    const text = el("input", { className: "preview-slice-text" });
    text.type = "text";
    text.value = h.slice;
    text.title = "Indices of the axes; ':' for the 1 or 2 axes shown (e.g. 3,:,:)";
    text.setAttribute("aria-label", "Slice");
    text.addEventListener("change", () => this.setSlice(text.value.trim()));
    const controls: HTMLElement[] = [el("span", { className: "preview-slice-label", text: "Slice" }), text];
    parts.forEach((part, axis) => {
      if (part === ":") return;
      const size = shape[axis] ?? 1;
      const label = el("label", { className: "preview-slice-axis" });
      const name = h.dims?.[axis] ?? `axis ${axis}`;
      const range = el("input");
      range.type = "range";
      range.min = "0";
      range.max = String(size - 1);
      range.value = part;
      range.dataset.axis = String(axis);
      const number = el("input", { className: "preview-slice-index" });
      number.type = "number";
      number.min = "0";
      number.max = String(size - 1);
      number.value = part;
      number.dataset.axis = String(axis);
      const apply = (value: string, delay: number): void => {
        range.value = value;
        number.value = value;
        const next = [...parts];
        next[axis] = value;
        window.clearTimeout(this.sliceTimer);
        this.sliceTimer = window.setTimeout(() => this.setSlice(next.join(",")), delay);
      };
      range.addEventListener("input", () => apply(range.value, 120));
      number.addEventListener("change", () => apply(number.value, 0));
      label.append(el("span", { text: `${name} (0–${size - 1})` }), range, number);
      controls.push(label);
    });
    this.ui.sliceBar.replaceChildren(...controls);
  }

  private setSlice(slice: string): void {
    if (slice === this.slice) return;
    this.slice = slice;
    this.region = null;
    void this.load();
  }

  // -- plots -------------------------------------------------------------------------------
  private async plotTarget(full: boolean): Promise<{ Plotly: PlotlyModule; div: HTMLDivElement }> {
    const Plotly = await loadPlotly(full);
    if (this.plotly !== Plotly) {
      // A graph is only ever handled by the bundle that drew it.
      this.purgePlot();
      this.plotly = Plotly;
    }
    if (this.plotDiv === null || !this.ui.content.contains(this.plotDiv)) {
      this.plotDiv = el("div", { className: "preview-plot" });
      this.ui.content.replaceChildren(this.plotDiv);
    }
    return { Plotly, div: this.plotDiv };
  }

  private purgePlot(): void {
    if (this.plotDiv !== null && this.plotly !== null) this.plotly.purge(this.plotDiv);
    this.plotDiv = null;
  }

  private saveButton(): HTMLButtonElement {
    return button("Save PNG", () => {
      if (this.plotDiv === null || this.plotly === null) return;
      const file = `${this.name}${this.path !== null ? `-${this.path}` : ""}-r${this.run}`.replace(/[^\w.-]+/g, "_");
      void this.plotly.downloadImage(this.plotDiv, { format: "png", filename: file, width: this.plotDiv.clientWidth, height: this.plotDiv.clientHeight });
    }, { title: "Download this plot as a PNG image" });
  }

  private baseLayout(): Record<string, unknown> {
    const style = getComputedStyle(document.documentElement);
    const fg = style.getPropertyValue("--fg").trim() || "#1d232b";
    const grid = style.getPropertyValue("--bar-border").trim() || "#dde1e6";
    return {
      paper_bgcolor: "rgba(0,0,0,0)",
      plot_bgcolor: "rgba(0,0,0,0)",
      font: { color: fg },
      margin: { l: 60, r: 20, t: 20, b: 50 },
      // Kept across redraws with new data, so a zoom stays where the person put it.
      uirevision: `${this.path ?? ""}|${this.slice ?? ""}|${this.usePreview}`,
      xaxis: { gridcolor: grid, zerolinecolor: grid },
      yaxis: { gridcolor: grid, zerolinecolor: grid },
    };
  }

  private async react(data: unknown[], layout: Record<string, unknown>, onZoom?: (event: Record<string, unknown>) => void): Promise<void> {
    const { Plotly, div } = await this.plotTarget(needsFullBundle(data));
    const fresh = div.dataset.wired !== "1";
    await Plotly.react(div, data as Parameters<PlotlyModule["react"]>[1], layout as Parameters<PlotlyModule["react"]>[2], { responsive: true, displaylogo: false });
    if (fresh) {
      div.dataset.wired = "1";
      (div as unknown as { on(event: string, cb: (e: Record<string, unknown>) => void): void }).on("plotly_relayout", (event) => this.zoomHandler?.(event));
    }
    this.zoomHandler = onZoom ?? null;
    this.drawn();
  }

  private zoomHandler: ((event: Record<string, unknown>) => void) | null = null;

  private async drawLine(answer: CellAnswer): Promise<void> {
    const h = answer.header;
    const x = answer.arrays.x ?? new Float64Array();
    const y = answer.arrays.y ?? new Float64Array();
    this.ui.tools.append(this.saveButton());
    const layout = this.baseLayout();
    const date = h.x?.date === true;
    layout.xaxis = { ...(layout.xaxis as object), title: { text: axisTitle(h.x, "index") }, ...(date ? { type: "date" } : {}) };
    layout.yaxis = { ...(layout.yaxis as object), title: { text: h.units ?? "" } };
    const trace = { type: y.length > 20_000 ? "scattergl" : "scatter", mode: y.length > 200 ? "lines" : "lines+markers", x, y, line: { width: 1.2 }, hovertemplate: `${h.x?.name ?? "index"} %{x}<br>%{y}<extra></extra>` };
    await this.react([trace], layout, (event) => this.lineZoom(event));
  }

  /** Index range of the data behind x values [lo, hi] of the current answer. */
  private lineIndexRange(lo: number, hi: number): [number, number] | null {
    const a = this.answer;
    if (a === null) return null;
    const x = a.arrays.x;
    const idx = a.arrays.i;
    const start = a.header.region?.[0] ?? 0;
    const factor = a.header.downsample?.factor ?? 1;
    if (x === undefined) return null;
    let first = Infinity;
    let last = -Infinity;
    for (let k = 0; k < x.length; k++) {
      const v = x[k] as number;
      if (v >= lo && v <= hi) {
        const i = idx !== undefined ? (idx[k] as number) : start + k;
        first = Math.min(first, i);
        last = Math.max(last, i);
      }
    }
    if (!Number.isFinite(first)) return null;
    // Points between the ones we have: widen by a bucket on each side.
    return [Math.max(0, first - factor), last + factor + 1];
  }

  private lineZoom(event: Record<string, unknown>): void {
    const h = this.answer?.header;
    if (h === undefined || h.kind !== "line") return;
    const full = h.shape?.[0] ?? 0;
    if (event["xaxis.autorange"] === true) {
      if (this.region !== null) {
        this.region = null;
        void this.load();
      }
      return;
    }
    const xs = eventRange(event, "xaxis", h.x?.date === true);
    if (xs === null) return;
    const range = this.lineIndexRange(xs[0], xs[1]);
    if (range === null) return;
    const [r0, r1] = h.region ?? [0, full];
    const inside = range[0] >= (r0 ?? 0) && range[1] <= (r1 ?? full);
    // Already at full resolution there: nothing to fetch.
    if (inside && (h.downsample?.factor ?? 1) === 1) return;
    this.region = range;
    void this.load();
  }

  private async drawImage(answer: CellAnswer): Promise<void> {
    const h = answer.header;
    const z = answer.arrays.z ?? new Float32Array();
    const xa = h.x ?? { name: null, start: 0, step: 1, size: 0 };
    const ya = h.y ?? { name: null, start: 0, step: 1, size: 0 };
    const rows: FloatArray[] = [];
    for (let r = 0; r < ya.size; r++) rows.push(z.subarray(r * xa.size, (r + 1) * xa.size));
    // Pixel j covers indices [start + j*step, start + (j+1)*step): its centre is below.
    const x0 = xa.start + (xa.step - 1) / 2;
    const y0 = ya.start + (ya.step - 1) / 2;
    // With a coordinate, each pixel's coordinate value (sent by the server) instead.
    const xs = answer.arrays.x !== undefined && xa.coord === true ? Array.from(answer.arrays.x) : Array.from({ length: xa.size }, (_, j) => x0 + j * xa.step);
    const ys = answer.arrays.y !== undefined && ya.coord === true ? Array.from(answer.arrays.y) : Array.from({ length: ya.size }, (_, r) => y0 + r * ya.step);
    const xDate = xa.coord === true && xa.date === true;
    const yDate = ya.coord === true && ya.date === true;
    // Square pixels only make sense when both axes are in the same units.
    const squarable = (xa.coord !== true && ya.coord !== true) || (xa.coord === true && ya.coord === true && !xDate && !yDate && (xa.units ?? null) === (ya.units ?? null));
    const aspect = button(this.equalAspect ? "Aspect: equal" : "Aspect: free", () => {
      this.equalAspect = !this.equalAspect;
      void this.render(answer);
    }, { title: "Square pixels, or fill the space" });
    aspect.setAttribute("aria-pressed", String(this.equalAspect));
    const lines = button(this.asLines ? "As image" : "As lines", () => {
      this.asLines = !this.asLines;
      void this.render(answer);
    }, { title: "Draw each row as a line" });
    this.ui.tools.append(aspect, lines, this.saveButton());
    aspect.hidden = this.asLines || !squarable;
    const layout = this.baseLayout();
    if (this.asLines) {
      const every = Math.max(1, Math.ceil(rows.length / MAX_LINES));
      const traces = [];
      for (let r = 0; r < rows.length; r += every) {
        traces.push({ type: "scatter", mode: "lines", x: xs, y: rows[r], name: `${ya.name ?? "row"} ${formatCoord(ys[r] as number, yDate)}`, line: { width: 1 } });
      }
      if (every > 1) this.ui.info.textContent += ` · every ${every}th row drawn`;
      layout.xaxis = { ...(layout.xaxis as object), title: { text: axisTitle(xa, "column") }, ...(xDate ? { type: "date" } : {}) };
      layout.showlegend = traces.length <= 16;
      layout.uirevision = `${String(layout.uirevision)}|lines`;
      await this.react(traces, layout);
      return;
    }
    const [p1, p99] = h.percentiles ?? [undefined, undefined];
    const trace: Record<string, unknown> = {
      type: "heatmap",
      z: rows,
      x: xs,
      y: ys,
      colorscale: "Viridis",
      colorbar: { title: { text: h.units ?? "" }, outlinewidth: 0 },
      hovertemplate: `${xa.name ?? "x"} %{x}<br>${ya.name ?? "y"} %{y}<br>%{z}<extra></extra>`,
    };
    if (p1 !== undefined && p99 !== undefined && p99 > p1) {
      trace.zmin = p1;
      trace.zmax = p99;
    }
    layout.xaxis = { ...(layout.xaxis as object), title: { text: axisTitle(xa, "") }, constrain: "domain", showgrid: false, zeroline: false, ...(xDate ? { type: "date" } : {}) };
    layout.yaxis = {
      ...(layout.yaxis as object),
      title: { text: axisTitle(ya, "") },
      // Row 0 on top like a camera picture; a coordinate grows upwards like a graph.
      ...(ya.coord === true ? {} : { autorange: "reversed" }),
      showgrid: false,
      zeroline: false,
      ...(yDate ? { type: "date" } : {}),
      ...(this.equalAspect && squarable ? { scaleanchor: "x", scaleratio: 1, constrain: "domain" } : {}),
    };
    layout.uirevision = `${String(layout.uirevision)}|${this.equalAspect}`;
    await this.react([trace], layout, (event) => this.imageZoom(event));
  }

  private imageZoom(event: Record<string, unknown>): void {
    const h = this.answer?.header;
    if (h === undefined || h.kind !== "image" || this.asLines) return;
    if (event["xaxis.autorange"] === true || event["yaxis.autorange"] === true) {
      if (this.region !== null) {
        this.region = null;
        void this.load();
      }
      return;
    }
    const xa = h.x ?? { name: null, start: 0, step: 1, size: 0 };
    const ya = h.y ?? { name: null, start: 0, step: 1, size: 0 };
    const xs = eventRange(event, "xaxis", xa.coord === true && xa.date === true);
    const ys = eventRange(event, "yaxis", ya.coord === true && ya.date === true);
    if (xs === null || ys === null) return;
    const width = h.shape?.at(-1) ?? 0;
    const height = h.shape?.at(-2) ?? 0;
    const blockMeans = h.downsample?.method === "mean";
    const toIndex = (range: [number, number], axis: Axis & AxisLabel, values: FloatArray | undefined, size: number): [number, number] =>
      axis.coord === true && values !== undefined
        ? coordRangeToIndex(range[0], range[1], values, axis, blockMeans, size)
        : [Math.max(0, Math.floor(range[0])), Math.min(size, Math.ceil(range[1]) + 1)];
    const region = [...toIndex(xs, xa, this.answer?.arrays.x, width), ...toIndex(ys, ya, this.answer?.arrays.y, height)];
    if (region[1]! <= region[0]! || region[3]! <= region[2]!) return;
    const current = h.region ?? [0, width, 0, height];
    const inside = region[0]! >= current[0]! && region[1]! <= current[1]! && region[2]! >= current[2]! && region[3]! <= current[3]!;
    if (inside && (h.downsample?.factor ?? 1) === 1) return;
    this.region = region;
    void this.load();
  }

  private async drawFigure(h: CellHeader): Promise<void> {
    this.ui.tools.append(this.saveButton());
    const figure = h.figure ?? {};
    const base = this.baseLayout();
    // The figure's own title and axes need plotly's default margins, not our tight ones.
    delete base.margin;
    const layout = { ...base, ...(figure.layout ?? {}) };
    await this.react(figure.data ?? [], layout);
  }

  /** Draw again with the page's current colours (the theme changed). */
  restyle(): void {
    if (this.answer !== null && this.plotDiv !== null) void this.render(this.answer);
  }

  shown(): void {
    if (this.plotDiv !== null && this.plotly !== null) this.plotly.Plots.resize(this.plotDiv);
  }

  closed(): void {
    window.clearTimeout(this.sliceTimer);
    this.request++;
    this.purgePlot();
  }

  /** New values for this run were merged: show the new data if ours changed. */
  changed(event: ValuesMerged): void {
    if (!event.names.includes(this.name)) return;
    this.app.toast(`${this.title}, run ${this.run}: new data`);
    void this.load();
  }
}

/** Open (or show) the preview tab of one cell. */
export function openPreview(app: AppContext, run: number, name: string, title: string): void {
  const id = `preview:${run}:${name}`;
  let view: PreviewView | undefined;
  const { tab, created } = openTab(id, `${title} · r${run}`, {
    onClose: () => {
      view?.closed();
      open.delete(id);
    },
    onShow: () => view?.shown(),
  });
  if (!created) return;
  tab.remember("preview", { run, name, title });
  view = new PreviewView(tab, run, name, title, app);
  open.set(id, view);
}

function previewable(target: CellTarget): boolean {
  return target.name !== null && target.variable !== null && !target.variable.user_editable;
}

/** Set up this feature (main.ts calls it once at start-up). */
export function install(app: AppContext): void {
  const show = (target: CellTarget): void => {
    if (target.name === null) return;
    openPreview(app, target.run, target.name, target.variable?.title ?? target.name);
  };
  setOpenAction((target) => {
    if (!previewable(target)) return false;
    show(target);
    return true;
  });
  addCellAction({ group: "view", label: "Show data", when: previewable, run: show });
  onRestore("preview", (state) => {
    const { run, name, title } = (state ?? {}) as { run?: unknown; name?: unknown; title?: unknown };
    if (typeof run === "number" && typeof name === "string" && app.store.byName.has(name)) {
      openPreview(app, run, name, typeof title === "string" ? title : name);
    }
  });
  // Plot axes and text take the theme's colours when drawn: draw again when it changes.
  new MutationObserver(() => {
    for (const view of open.values()) view.restyle();
  }).observe(document.documentElement, { attributes: true, attributeFilter: ["data-theme"] });
  app.onEvent((event) => {
    if (event.kind !== "values_merged") return;
    for (const view of open.values()) {
      if (view.run === event.run) view.changed(event);
    }
  });
}
