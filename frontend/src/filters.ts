// One filter for every column, in the column's menu: "has value / empty / error", then
// by what the column holds — a numeric range, a checklist of choices (few distinct
// strings), or text. AG Grid Community has no set filter; this replaces it and keeps
// error cells filterable, which the built-in filters cannot see. The form only edits
// a model: the model is written in the filter language (where.ts) and the server
// says which runs pass, as for every other filter.

import type { IFilterComp, IFilterParams } from "ag-grid-community";

import type { CellInfo, RunRow, Value } from "./table";
import { button } from "./dom";
import { modelExpression } from "./where";

export interface ValueFilterModel {
  presence?: "value" | "empty" | "error";
  min?: number;
  max?: number;
  text?: string;
  choices?: string[];
  /** With a range or choices: also keep cells without a number (empty, NaN). */
  keepEmpty?: boolean;
  /** The choices are numbers (written as such in the filter language). */
  numbers?: boolean;
}

export interface ValueFilterParams extends IFilterParams<RunRow> {
  valueOf: (row: RunRow) => Value;
  cellOf: (row: RunRow) => CellInfo | undefined;
  /** The text shown in the cell: what "contains" matches. */
  textOf: (row: RunRow) => string;
  /** All rows (for the choices and the range hint). */
  allRows: () => readonly RunRow[];
  /** Resolves once the column's data is in (it may come after the table). */
  ready?: () => Promise<void>;
}

/** At most this many distinct values make a checklist; more strings get a text box. */
const MAX_CHOICES = 40;
const SVG_NS = "http://www.w3.org/2000/svg";

let nextId = 0;

function isError(cell: CellInfo | undefined): boolean {
  return cell?.kind === "error" || cell?.kind === "skip";
}

/**
 * The key of a cell in the list of choices: its value, or for complex numbers (sent as
 * full-precision text) the text the cell shows. Booleans are keyed `true`/`false`, the
 * filter language's words (the list shows them as the column does, ✓/✗).
 */
function choiceKey(value: Value, cell: CellInfo | undefined, text: string): string {
  if (cell?.kind === "complex") return text;
  return value === null ? "" : String(value);
}

function isActive(model: ValueFilterModel): boolean {
  // keepEmpty alone filters nothing: it only widens a range or choices.
  return (
    model.presence !== undefined ||
    model.min !== undefined ||
    model.max !== undefined ||
    model.choices !== undefined ||
    (model.text !== undefined && model.text !== "")
  );
}

export class ValueFilter implements IFilterComp<RunRow> {
  private params!: ValueFilterParams;
  private model: ValueFilterModel = {};
  private gui!: HTMLElement;
  private readonly id = `rt-filter-${nextId++}`;

  init(params: ValueFilterParams): void {
    this.params = params;
    this.gui = document.createElement("form");
    this.gui.className = "rt-filter";
    this.gui.addEventListener("submit", (event) => event.preventDefault());
  }

  getGui(): HTMLElement {
    return this.gui;
  }

  afterGuiAttached(): void {
    const ready = this.params.ready?.();
    this.build();
    this.gui.querySelector<HTMLElement>("select, input")?.focus();
    // A column whose data was not in yet: its choices and range once it is.
    void ready?.then(() => {
      if (this.gui.isConnected) this.build();
    });
  }

  /** Build the form for what the column holds now (values change while it is open). */
  private build(): void {
    const rows = this.params.allRows();
    let numbers = 0;
    let strings = 0;
    let min = Infinity;
    let max = -Infinity;
    // Each distinct value: how many cells have it, and how the cell shows it.
    const distinct = new Map<string, { count: number; label: string }>();
    const count = (key: string, row: RunRow): void => {
      const known = distinct.get(key);
      if (known !== undefined) known.count += 1;
      else if (distinct.size <= MAX_CHOICES) distinct.set(key, { count: 1, label: this.params.textOf(row) || key });
    };
    const values: number[] = [];
    for (const row of rows) {
      const value = this.params.valueOf(row);
      if (typeof value === "number") {
        if (!Number.isFinite(value) || isError(this.params.cellOf(row))) continue;
        numbers += 1;
        values.push(value);
        if (value < min) min = value;
        if (value > max) max = value;
        count(String(value), row);
      } else if (typeof value === "string" || typeof value === "boolean") {
        strings += 1;
        count(choiceKey(value, this.params.cellOf(row), this.params.textOf(row)), row);
      }
    }
    const numeric = numbers > 0 && numbers >= strings;
    const categorical = !numeric && strings > 0 && distinct.size <= MAX_CHOICES;

    this.gui.replaceChildren();
    const presence = document.createElement("select");
    presence.name = "presence";
    presence.setAttribute("aria-label", "Which cells");
    for (const [value, label] of [
      ["", "All cells"],
      ["value", "Has a value"],
      ["empty", "Empty"],
      ["error", "Error or skipped"],
    ] as const) {
      presence.append(new Option(label, value, false, (this.model.presence ?? "") === value));
    }
    presence.addEventListener("change", () => {
      const v = presence.value;
      this.update({ presence: v === "value" || v === "empty" || v === "error" ? v : undefined });
    });
    this.gui.append(presence);

    if (numeric) {
      this.gui.append(this.rangeSection(values, min, max));
    }
    if (numeric || categorical) {
      const keep = document.createElement("label");
      keep.className = "rt-filter-keep";
      const box = document.createElement("input");
      box.type = "checkbox";
      box.name = "keepEmpty";
      box.checked = this.model.keepEmpty === true;
      box.addEventListener("change", () => this.update({ keepEmpty: box.checked ? true : undefined }));
      const words = document.createElement("span");
      words.textContent = numeric ? "Also runs without a number (empty, NaN)" : "Also empty runs";
      keep.append(box, words);
      this.gui.append(keep);
    }
    if ((numeric && distinct.size <= MAX_CHOICES && distinct.size > 1) || categorical) {
      const list = document.createElement("fieldset");
      list.className = "rt-filter-choices";
      const legend = document.createElement("legend");
      legend.textContent = "Values";
      list.append(legend);
      const keys = numeric
        ? [...distinct.keys()].sort((a, b) => Number(a) - Number(b))
        : [...distinct.keys()].sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));
      keys.forEach((key, index) => {
        const label = document.createElement("label");
        const box = document.createElement("input");
        box.type = "checkbox";
        box.id = `${this.id}-c${index}`;
        box.value = key;
        box.checked = this.model.choices === undefined || this.model.choices.includes(key);
        box.addEventListener("change", () => {
          const checked = [...list.querySelectorAll<HTMLInputElement>("input:checked")].map((b) => b.value);
          const all = checked.length === keys.length;
          this.update({ choices: all ? undefined : checked, numbers: all || !numeric ? undefined : true });
        });
        const text = document.createElement("span");
        const { count: n = 0, label: shown = key } = distinct.get(key) ?? {};
        text.textContent = `${shown} (${n})`;
        label.append(box, text);
        list.append(label);
      });
      this.gui.append(list);
    }
    const text = document.createElement("input");
    text.type = "search";
    text.name = "text";
    text.placeholder = "Contains…";
    text.setAttribute("aria-label", "Contains text");
    text.value = this.model.text ?? "";
    text.addEventListener("input", () => this.update({ text: text.value === "" ? undefined : text.value }));
    this.gui.append(text);

    const clear = button("Clear filter", () => {
      this.model = {};
      this.params.filterChangedCallback();
      this.build();
    });
    this.gui.append(clear);
  }

  /**
   * The numeric range: a histogram of the column's values with a two-handled slider
   * under it, and boxes for exact bounds. Bars outside the range are dimmed.
   */
  private rangeSection(values: number[], min: number, max: number): HTMLElement {
    const section = document.createElement("div");
    section.className = "rt-filter-numeric";
    const span = max - min;
    const bins = Math.max(1, Math.min(30, new Set(values).size));
    const counts = new Array<number>(bins).fill(0);
    for (const v of values) {
      const i = span === 0 ? 0 : Math.min(bins - 1, Math.floor(((v - min) / span) * bins));
      counts[i] = (counts[i] ?? 0) + 1;
    }
    const tallest = Math.max(1, ...counts);
    const svg = document.createElementNS(SVG_NS, "svg");
    svg.setAttribute("class", "rt-filter-hist");
    svg.setAttribute("viewBox", `0 0 ${bins} 40`);
    svg.setAttribute("preserveAspectRatio", "none");
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", `distribution of ${values.length} values from ${min} to ${max}`);
    const bars = counts.map((count, i) => {
      const bar = document.createElementNS(SVG_NS, "rect");
      bar.setAttribute("x", String(i + 0.08));
      bar.setAttribute("width", "0.84");
      const h = count === 0 ? 0 : Math.max(1.5, (count / tallest) * 40);
      bar.setAttribute("y", String(40 - h));
      bar.setAttribute("height", String(h));
      const title = document.createElementNS(SVG_NS, "title");
      const from = min + (span * i) / bins;
      title.textContent = `${count} from ${from.toPrecision(4)}`;
      bar.append(title);
      svg.append(bar);
      return { bar, from, to: min + (span * (i + 1)) / bins };
    });

    const sliders = document.createElement("div");
    sliders.className = "rt-filter-sliders";
    const low = this.slider("min", "Minimum (slider)", min, max, this.model.min ?? min);
    const high = this.slider("max", "Maximum (slider)", min, max, this.model.max ?? max);
    sliders.append(low, high);

    const boxes = document.createElement("div");
    boxes.className = "rt-filter-range";
    const lowBox = this.numberInput("min", "Minimum", this.model.min, String(min));
    const highBox = this.numberInput("max", "Maximum", this.model.max, String(max));
    const to = document.createElement("span");
    to.textContent = "to";
    boxes.append(lowBox, to, highBox);

    const shade = (): void => {
      const a = this.model.min ?? -Infinity;
      const b = this.model.max ?? Infinity;
      for (const { bar, from, to: end } of bars) bar.classList.toggle("out", end < a || from > b);
    };
    const fromSlider = (input: HTMLInputElement, box: HTMLInputElement, key: "min" | "max"): void => {
      const value = Number(input.value);
      const atEnd = key === "min" ? value <= min : value >= max;
      box.value = atEnd ? "" : String(value);
      this.update({ [key]: atEnd ? undefined : value });
      shade();
    };
    low.addEventListener("input", () => {
      if (Number(low.value) > Number(high.value)) low.value = high.value;
      fromSlider(low, lowBox, "min");
    });
    high.addEventListener("input", () => {
      if (Number(high.value) < Number(low.value)) high.value = low.value;
      fromSlider(high, highBox, "max");
    });
    for (const [box, input, end] of [[lowBox, low, min], [highBox, high, max]] as const) {
      box.addEventListener("input", () => {
        input.value = box.value.trim() === "" ? String(end) : box.value;
        shade();
      });
    }
    shade();
    section.append(svg, sliders, boxes);
    return section;
  }

  private slider(key: "min" | "max", label: string, min: number, max: number, value: number): HTMLInputElement {
    const input = document.createElement("input");
    input.type = "range";
    input.name = `${key}-slider`;
    input.min = String(min);
    input.max = String(max);
    input.step = "any";
    input.value = String(value);
    input.setAttribute("aria-label", label);
    return input;
  }

  private numberInput(key: "min" | "max", label: string, value: number | undefined, placeholder: string): HTMLInputElement {
    const input = document.createElement("input");
    input.type = "number";
    input.step = "any";
    input.name = key;
    input.placeholder = placeholder;
    input.title = `${label}; the column's values go from ${placeholder}`;
    input.setAttribute("aria-label", label);
    input.value = value === undefined ? "" : String(value);
    input.addEventListener("input", () => {
      const parsed = input.value.trim() === "" ? undefined : Number(input.value);
      this.update({ [key]: parsed !== undefined && Number.isFinite(parsed) ? parsed : undefined });
    });
    return input;
  }

  private update(change: { [K in keyof ValueFilterModel]?: ValueFilterModel[K] | undefined }): void {
    const next: ValueFilterModel = { ...this.model };
    for (const [key, value] of Object.entries(change) as [keyof ValueFilterModel, unknown][]) {
      if (value === undefined) {
        delete next[key];
      } else {
        (next as Record<string, unknown>)[key] = value;
      }
    }
    this.model = next;
    this.params.filterChangedCallback();
  }

  isFilterActive(): boolean {
    return isActive(this.model);
  }

  doesFilterPass(): boolean {
    // Which runs pass is the server's answer to the whole expression (grid.ts).
    return true;
  }

  getModel(): ValueFilterModel | null {
    return isActive(this.model) ? { ...this.model } : null;
  }

  setModel(model: ValueFilterModel | null): void {
    this.model = model === null ? {} : { ...model };
    if (this.gui.isConnected) {
      this.build();
    }
  }

  getModelAsString(model: ValueFilterModel | null): string {
    return model === null ? "" : modelExpression(this.params.column.getColId(), model);
  }
}
