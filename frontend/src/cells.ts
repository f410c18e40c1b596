// Cell renderers for the two kinds of cell that are pictures: PNG thumbnails (fetched
// lazily: AG Grid only creates renderers for cells on screen) and trendline sparklines
// (inline SVG from the points in the snapshot; no chart library), which read out the
// value under the pointer.

import type { ICellRendererComp, ICellRendererParams } from "ag-grid-community";

import { formatNumber } from "./format";
import type { CellInfo, RunRow } from "./table";

export interface PictureParams extends ICellRendererParams<RunRow> {
  name: string;
  cellOf: (row: RunRow) => CellInfo | undefined;
  /** Bumped when a row's values change, so a new thumbnail is not taken from cache. */
  revisionOf: (row: RunRow) => number;
}

const SVG_NS = "http://www.w3.org/2000/svg";

/** URL of a cell's thumbnail (relative: works behind a path prefix). */
export function thumbnailUrl(run: number, name: string, revision: number): string {
  return `api/cell/${run}/${encodeURIComponent(name)}/thumbnail.png?r=${revision}`;
}

let preview: HTMLElement | null = null;

function showPreview(src: string, alt: string, event: MouseEvent): void {
  hidePreview();
  preview = document.createElement("div");
  preview.className = "rt-preview";
  const img = document.createElement("img");
  img.src = src;
  img.alt = alt;
  preview.append(img);
  document.body.append(preview);
  movePreview(event);
}

function movePreview(event: MouseEvent): void {
  if (preview === null) {
    return;
  }
  // Keep the picture on screen: to the right of the pointer, or left when near the edge.
  const x = event.clientX + 16;
  const y = event.clientY + 16;
  const right = x + 420 > window.innerWidth;
  const below = y + 320 > window.innerHeight;
  preview.style.left = right ? "" : `${x}px`;
  preview.style.right = right ? `${window.innerWidth - event.clientX + 16}px` : "";
  preview.style.top = below ? "" : `${y}px`;
  preview.style.bottom = below ? `${window.innerHeight - event.clientY + 16}px` : "";
}

function hidePreview(): void {
  preview?.remove();
  preview = null;
}

/** A sparkline's read-out: the value under the pointer, and the line's range. */
function showReadout(text: string, summary: string, event: MouseEvent): void {
  if (preview === null || !preview.classList.contains("rt-spark-readout")) {
    hidePreview();
    preview = document.createElement("div");
    preview.className = "rt-preview rt-spark-readout";
    preview.append(document.createElement("strong"), document.createElement("span"));
    document.body.append(preview);
  }
  const [value, range] = preview.children;
  if (value !== undefined) value.textContent = text;
  if (range !== undefined) range.textContent = summary;
  movePreview(event);
}

/** A PNG thumbnail; hovering shows it larger. */
export class ThumbnailRenderer implements ICellRendererComp<RunRow> {
  private gui!: HTMLElement;

  init(params: PictureParams): void {
    this.gui = document.createElement("span");
    this.gui.className = "rt-thumb";
    this.render(params);
  }

  private render(params: PictureParams): void {
    this.gui.replaceChildren();
    const row = params.data;
    if (row === undefined) {
      return;
    }
    const src = thumbnailUrl(row.run, params.name, params.revisionOf(row));
    const img = document.createElement("img");
    img.loading = "lazy";
    img.decoding = "async";
    img.alt = `${params.colDef?.headerName ?? params.name}, run ${row.run}`;
    img.src = src;
    img.addEventListener("mouseenter", (event) => showPreview(src, img.alt, event));
    img.addEventListener("mousemove", movePreview);
    img.addEventListener("mouseleave", hidePreview);
    this.gui.append(img);
  }

  getGui(): HTMLElement {
    return this.gui;
  }

  refresh(params: PictureParams): boolean {
    this.render(params);
    return true;
  }

  destroy(): void {
    hidePreview();
  }
}

/** A sparkline of the trendline's points, with min/max in the tooltip. */
export class SparklineRenderer implements ICellRendererComp<RunRow> {
  private gui!: HTMLElement;

  init(params: PictureParams): void {
    this.gui = document.createElement("span");
    this.gui.className = "rt-spark";
    this.render(params);
  }

  private render(params: PictureParams): void {
    this.gui.replaceChildren();
    const row = params.data;
    const raw = row === undefined ? undefined : params.cellOf(row)?.points;
    // Typed (binary form, NaN for gaps) or a list (JSON, null for gaps).
    const points = raw === undefined ? undefined : Array.from(raw, (p) => p ?? NaN);
    if (points === undefined || points.length === 0) {
      return;
    }
    const finite = points.filter((p) => Number.isFinite(p));
    const min = Math.min(...finite);
    const max = Math.max(...finite);
    const span = max - min || 1;
    const width = 100;
    const height = 28;
    const step = points.length > 1 ? width / (points.length - 1) : 0;
    const coords: string[] = [];
    points.forEach((p, i) => {
      if (Number.isFinite(p)) {
        const y = height - 2 - ((p - min) / span) * (height - 4);
        coords.push(`${(i * step).toFixed(2)},${y.toFixed(2)}`);
      }
    });
    const svg = document.createElementNS(SVG_NS, "svg");
    svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
    svg.setAttribute("preserveAspectRatio", "none");
    svg.setAttribute("role", "img");
    const line = document.createElementNS(SVG_NS, "polyline");
    line.setAttribute("points", coords.join(" "));
    line.setAttribute("vector-effect", "non-scaling-stroke");
    svg.append(line);
    const summary = `${points.length} points, min ${formatNumber(min)}, max ${formatNumber(max)}`;
    svg.setAttribute("aria-label", `trendline: ${summary}`);
    // The value under the pointer: a dot on the line and a read-out beside it.
    const dot = document.createElementNS(SVG_NS, "circle");
    dot.setAttribute("r", "2.2");
    dot.setAttribute("class", "rt-spark-dot");
    dot.setAttribute("visibility", "hidden");
    svg.append(dot);
    svg.addEventListener("mousemove", (event) => {
      const box = svg.getBoundingClientRect();
      const i = Math.round(((event.clientX - box.left) / Math.max(box.width, 1)) * (points.length - 1));
      const index = Math.min(points.length - 1, Math.max(0, i));
      const value = points[index] ?? NaN;
      if (Number.isFinite(value)) {
        dot.setAttribute("cx", String(index * step));
        dot.setAttribute("cy", String(height - 2 - ((value - min) / span) * (height - 4)));
        dot.setAttribute("visibility", "visible");
      } else {
        dot.setAttribute("visibility", "hidden");
      }
      showReadout(`point ${index + 1} of ${points.length}: ${Number.isFinite(value) ? formatNumber(value) : "no value"}`, summary, event);
    });
    svg.addEventListener("mouseleave", () => {
      dot.setAttribute("visibility", "hidden");
      hidePreview();
    });
    this.gui.append(svg);
  }

  getGui(): HTMLElement {
    return this.gui;
  }

  refresh(params: PictureParams): boolean {
    this.render(params);
    return true;
  }

  destroy(): void {
    hidePreview();
  }
}
