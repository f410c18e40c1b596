// One plot in its own tab: the plotly graph, a line of notes, "Save PNG", and the
// redrawing every plot needs (the tab shown again, the window or the split resized,
// the theme switched). The kinds of plot (plots.ts) say what to draw.

import type { Config, Data, Layout, LayoutAxis, PlotlyHTMLElement } from "plotly.js-dist-min";

import { button } from "../dom";
import { loadPlotly, needsFullBundle, type PlotlyModule } from "./plotly";
import { openTab, type Tab } from "../tabs";
import { errorText } from "../text";

let counter = 0;

const CONFIG: Partial<Config> = {
  displaylogo: false,
  // We size the graph ourselves (ResizeObserver): plotly's own `responsive` only
  // follows the window, not the tab's box when the side-by-side split changes.
  responsive: false,
  modeBarButtonsToRemove: ["toImage", "select2d", "lasso2d"],
};

/** plotly's default colours after the first (the page's accent takes its place). */
const COLOURS = ["#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];

/** Text for plotly labels: plotly reads a few HTML-like tags in them, we want none. */
export function plotText(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

function cssVar(style: CSSStyleDeclaration, name: string, fallback: string): string {
  return style.getPropertyValue(name).trim() || fallback;
}

/** `layout` with the page's colours (style.css variables), so both themes are readable. */
function themed(layout: Partial<Layout>): Partial<Layout> {
  const style = getComputedStyle(document.documentElement);
  const fg = cssVar(style, "--fg", "#1d232b");
  const bg = cssVar(style, "--panel-bg", "#ffffff");
  const lines = cssVar(style, "--bar-border", "#dde1e6");
  const muted = cssVar(style, "--muted", "#5f6b7a");
  const axis = (own: Partial<LayoutAxis> | undefined): Partial<LayoutAxis> => ({
    gridcolor: lines,
    zerolinecolor: muted,
    linecolor: muted,
    tickcolor: muted,
    automargin: true,
    ...own,
  });
  const accent = cssVar(style, "--accent", "#2f6fdf");
  return {
    ...layout,
    // The page's accent first (a single trace is drawn in it), then plotly's own.
    colorway: [accent, ...COLOURS],
    paper_bgcolor: bg,
    plot_bgcolor: bg,
    font: { color: fg, family: getComputedStyle(document.body).fontFamily, size: 12 },
    // Room at the top for plotly's toolbar, so that it never lies over the legend.
    margin: { l: 60, r: 20, t: 36, b: 50 },
    hoverlabel: { bgcolor: bg, bordercolor: lines, font: { color: fg } },
    modebar: { bgcolor: "rgba(0,0,0,0)", color: muted, activecolor: fg },
    legend: { bgcolor: "rgba(0,0,0,0)", ...layout.legend },
    xaxis: axis(layout.xaxis),
    yaxis: axis(layout.yaxis),
    // The same revision on every redraw: plotly keeps the person's zoom and pan.
    uirevision: "keep",
  };
}

/** A plot tab; subclasses compute the figure and call `draw`. */
export abstract class PlotView {
  readonly tab: Tab;
  /** The plotly graph div (tests read `.data` from it). */
  protected readonly graph: HTMLDivElement;
  /** Controls of the kind of plot (e.g. the bins), before "Save PNG". */
  protected readonly controls: HTMLElement;
  private readonly note: HTMLParagraphElement;
  private readonly observer: ResizeObserver;
  private plotly: PlotlyModule | null = null;
  private figure: { data: Data[]; layout: Partial<Layout> } | null = null;
  private queue: Promise<void> = Promise.resolve();
  private drawn = false;
  private closed = false;
  private resizeFrame = 0;

  protected constructor(kind: string, title: string, private readonly fileName: string, onClosed: () => void) {
    this.tab = openTab(`plot:${++counter}`, title, {
      onClose: () => {
        this.dispose();
        onClosed();
      },
      onShow: () => this.resize(),
    }).tab;
    const body = this.tab.body;
    body.classList.add("rt-plot-tab");
    body.dataset.plotKind = kind;

    const bar = document.createElement("div");
    bar.className = "rt-plot-bar";
    this.note = document.createElement("p");
    this.note.className = "rt-plot-note";
    this.note.setAttribute("role", "status");
    this.controls = document.createElement("span");
    this.controls.className = "rt-plot-controls";
    const save = button("Save PNG", () => void this.savePng(), { className: "rt-button small", title: "Download the plot as a PNG image" });
    bar.append(this.note, this.controls, save);

    this.graph = document.createElement("div");
    this.graph.className = "rt-plot-graph";
    body.append(bar, this.graph);
    this.observer = new ResizeObserver(() => this.resize());
    this.observer.observe(this.graph);
  }

  /** The text above the graph: what is plotted, what was left out and why. */
  protected setNote(text: string, error = false): void {
    this.note.textContent = text;
    this.note.classList.toggle("rt-plot-error", error);
  }

  /** Show this figure (coalesced: a burst of updates draws once, with the latest). */
  protected draw(data: Data[], layout: Partial<Layout>): void {
    this.figure = { data, layout };
    this.queue = this.queue.then(() => this.render()).catch((error: unknown) => {
      this.setNote(`Could not draw the plot: ${errorText(error)}`, true);
    });
  }

  /** Draw again with the current theme's colours. */
  restyle(): void {
    if (this.figure !== null) this.draw(this.figure.data, this.figure.layout);
  }

  private async render(): Promise<void> {
    const figure = this.figure;
    if (figure === null || this.closed) return;
    const plotly = await loadPlotly(needsFullBundle(figure.data));
    if (this.closed || figure !== this.figure) return; // a newer figure is queued
    if (this.plotly !== plotly) {
      // Another bundle (e.g. a summary plot grew past scattergl's threshold): a graph is
      // only handled by the bundle that drew it, so start it afresh.
      if (this.plotly !== null) this.plotly.purge(this.graph);
      this.plotly = plotly;
      this.drawn = false;
    }
    const graph = (await this.plotly.react(this.graph, figure.data, themed(figure.layout), CONFIG)) as PlotlyHTMLElement;
    if (!this.drawn) {
      this.drawn = true;
      this.bind(graph);
    }
  }

  /** Hook for plotly events, once the graph exists. */
  protected bind(graph: PlotlyHTMLElement): void {
    void graph;
  }

  private resize(): void {
    if (!this.drawn || this.closed) return;
    cancelAnimationFrame(this.resizeFrame);
    this.resizeFrame = requestAnimationFrame(() => {
      // A hidden tab has no size: it is resized when shown (onShow).
      if (this.plotly !== null && this.graph.offsetParent !== null && this.graph.clientWidth > 0) {
        void this.plotly.Plots.resize(this.graph);
      }
    });
  }

  private async savePng(): Promise<void> {
    if (!this.drawn || this.plotly === null) return;
    await this.plotly.downloadImage(this.graph, {
      format: "png",
      filename: this.fileName.replace(/[^A-Za-z0-9_.-]+/g, "_"),
      width: Math.max(this.graph.clientWidth, 400),
      height: Math.max(this.graph.clientHeight, 300),
    });
  }

  protected get isClosed(): boolean {
    return this.closed;
  }

  private dispose(): void {
    this.closed = true;
    this.observer.disconnect();
    cancelAnimationFrame(this.resizeFrame);
    if (this.plotly !== null) this.plotly.purge(this.graph);
  }
}
