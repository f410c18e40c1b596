// The Columns panel: show/hide columns (searchable list), the tag filter, and the
// hierarchical-headers switch. Order and widths are changed in the grid's header.

import type { RunGrid } from "./grid";
import { varColId } from "./grid";
import type { TableStore } from "./table";
import { byId } from "./dom";

export class ColumnsPanel {
  private readonly grid: RunGrid;
  private readonly store: TableStore;
  private readonly search = byId("column-search", HTMLInputElement);
  private readonly list = byId("column-list", HTMLUListElement);
  private readonly tags = byId("tag-filter", HTMLDivElement);
  private readonly hierarchical = byId("hierarchical", HTMLInputElement);

  constructor(grid: RunGrid, store: TableStore) {
    this.grid = grid;
    this.store = store;
    this.search.addEventListener("input", () => this.refreshList());
    this.hierarchical.addEventListener("change", () => this.grid.setHierarchical(this.hierarchical.checked));
    byId("show-matching", HTMLButtonElement).addEventListener("click", () => this.grid.setHidden(this.matching(), false));
    byId("hide-matching", HTMLButtonElement).addEventListener("click", () => this.grid.setHidden(this.matching(), true));
  }

  private panelOpen(): boolean {
    return !byId("columns-panel", HTMLElement).hidden;
  }

  /** Rebuild everything (after a snapshot or when opened). */
  refresh(): void {
    this.hierarchical.checked = this.grid.viewState.hierarchical;
    this.refreshTags();
    this.refreshList();
  }

  private refreshTags(): void {
    const all = [...new Set(this.store.variables.flatMap((v) => v.tags))].sort();
    const selected = new Set(this.grid.viewState.tags);
    this.tags.replaceChildren();
    if (all.length === 0) {
      return;
    }
    const label = document.createElement("span");
    label.className = "tag-label";
    label.textContent = "Tags:";
    this.tags.append(label);
    for (const tag of all) {
      const chip = document.createElement("label");
      chip.className = "tag";
      const box = document.createElement("input");
      box.type = "checkbox";
      box.value = tag;
      box.checked = selected.has(tag);
      box.addEventListener("change", () => {
        const chosen = [...this.tags.querySelectorAll<HTMLInputElement>("input:checked")].map((b) => b.value);
        this.grid.setTags(chosen);
      });
      const text = document.createElement("span");
      text.textContent = tag;
      chip.append(box, text);
      this.tags.append(chip);
    }
  }

  /** Column ids the search matches (the ones listed). */
  private matching(): string[] {
    const query = this.search.value.trim().toLowerCase();
    const ids = this.grid.orderedColumnIds().filter((id) => id !== "run");
    if (query === "") return ids;
    return ids.filter((id) => {
      const name = id.startsWith("var:") ? id.slice(4) : id;
      return this.grid.fullTitle(id).toLowerCase().includes(query) || name.toLowerCase().includes(query);
    });
  }

  refreshList(): void {
    if (!this.panelOpen()) return;
    const hidden = new Set(this.grid.viewState.hidden);
    const tags = new Set(this.grid.viewState.tags);
    const items = this.matching().map((id) => {
      const item = document.createElement("li");
      const label = document.createElement("label");
      const box = document.createElement("input");
      box.type = "checkbox";
      box.checked = !hidden.has(id);
      box.dataset.colId = id;
      box.addEventListener("change", () => this.grid.setHidden([id], !box.checked));
      const text = document.createElement("span");
      text.textContent = this.grid.fullTitle(id);
      label.append(box, text);
      const variable = id.startsWith("var:") ? this.store.byName.get(id.slice(4)) : undefined;
      if (variable !== undefined && tags.size > 0 && !variable.tags.some((t) => tags.has(t))) {
        item.classList.add("tag-hidden");
        label.title = "Hidden by the tag filter";
      } else if (variable?.description) {
        label.title = variable.description;
      }
      item.append(label);
      return item;
    });
    this.list.replaceChildren(...items);
  }
}

export { varColId };
