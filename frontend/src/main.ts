// Start-up: token, theme, then the run table.

import "./style.css";

import { initToken } from "./api";
import { RunGrid } from "./grid";
import { loadTable } from "./table";
import { setupThemeToggle } from "./theme";

function element<T extends HTMLElement>(id: string, type: new () => T): T {
  const found = document.getElementById(id);
  if (!(found instanceof type)) {
    throw new Error(`index.html has no <${type.name}> with id "${id}"`);
  }
  return found;
}

function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? "" : "s"}`;
}

async function main(): Promise<void> {
  initToken();
  setupThemeToggle(element("theme-toggle", HTMLButtonElement));
  const status = element("status", HTMLParagraphElement);
  const grid = new RunGrid(element("run-table", HTMLElement));

  try {
    const table = await loadTable();
    grid.setTable(table);
    status.textContent =
      table.message ?? `${plural(table.rows.length, "run")} · ${plural(table.columns.length, "variable")}`;
  } catch (error) {
    const message = `could not load the table: ${error instanceof Error ? error.message : String(error)}`;
    grid.showMessage(message);
    status.textContent = message;
  }
}

void main();
