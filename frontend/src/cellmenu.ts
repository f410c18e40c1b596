// Right-click menu on table cells, and the "open" action of a double-click (or Enter)
// on a cell that is not editable. Feature modules register actions here; the grid
// only reports which cell was clicked.

import type { VariableInfo } from "./table";

/** The cell a menu or double-click is about. */
export interface CellTarget {
  run: number;
  /** AG Grid column id: "run", "timestamp", "comment" or `var:<name>`. */
  colId: string;
  /** The variable's name, or null for the run, timestamp and comment columns. */
  name: string | null;
  variable: VariableInfo | null;
  /** Selected runs when the clicked row is among them, else just this run; in table order. */
  runs: number[];
}

/** Menu sections, in this order, with a line between them. */
const GROUPS = ["view", "copy", "plots", "processing", "danger"] as const;

export interface CellAction {
  /** Menu text; a function to say e.g. "Reprocess 3 runs…". */
  label: string | ((target: CellTarget) => string);
  /** The menu's section (default "processing"); "danger" is last, set apart. */
  group?: (typeof GROUPS)[number];
  /** Shown only when this says so (default: always). */
  when?: (target: CellTarget) => boolean;
  run: (target: CellTarget) => void;
}

const actions: CellAction[] = [];
let openAction: ((target: CellTarget) => boolean) | null = null;
let menu: HTMLElement | null = null;

/** Add an entry to the cell menu (in the order added). */
export function addCellAction(action: CellAction): void {
  actions.push(action);
}

/**
 * What a double-click on a non-editable cell does (previews register this). Return
 * false when there is nothing to open for that cell.
 */
export function setOpenAction(action: (target: CellTarget) => boolean): void {
  openAction = action;
}

/** Run the open action for `target`; false when none applies. */
export function openCell(target: CellTarget): boolean {
  return openAction !== null && openAction(target);
}

/** Close the menu if it is open. */
export function closeCellMenu(): void {
  menu?.remove();
  menu = null;
}

/** Show the menu for `target` at the mouse position of `event`. */
export function showCellMenu(target: CellTarget, event: MouseEvent): void {
  closeCellMenu();
  const rank = (action: CellAction): number => GROUPS.indexOf(action.group ?? "processing");
  const items = actions
    .filter((action) => action.when === undefined || action.when(target))
    .sort((a, b) => rank(a) - rank(b));
  if (items.length === 0) return;
  const list = document.createElement("div");
  list.className = "menu-list cell-menu";
  list.setAttribute("role", "menu");
  let group = items[0]?.group ?? "processing";
  for (const action of items) {
    if ((action.group ?? "processing") !== group) {
      group = action.group ?? "processing";
      const line = document.createElement("hr");
      line.setAttribute("role", "separator");
      list.append(line);
    }
    const item = document.createElement("button");
    item.type = "button";
    item.setAttribute("role", "menuitem");
    item.textContent = typeof action.label === "string" ? action.label : action.label(target);
    item.addEventListener("click", () => {
      closeCellMenu();
      action.run(target);
    });
    list.append(item);
  }
  document.body.append(list);
  // Keep it on screen.
  const { innerWidth, innerHeight } = window;
  const box = list.getBoundingClientRect();
  list.style.left = `${Math.min(event.clientX, innerWidth - box.width - 4)}px`;
  list.style.top = `${Math.min(event.clientY, innerHeight - box.height - 4)}px`;
  menu = list;
  list.querySelector<HTMLButtonElement>("button")?.focus();
}

document.addEventListener("click", (event) => {
  if (menu !== null && !menu.contains(event.target as Node)) closeCellMenu();
});
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape") closeCellMenu();
});
window.addEventListener("blur", closeCellMenu);
