// Tabs beside the table: previews, plots, the context editor and logs open in tabs; the
// table is always the first. "Side by side" shows the open tab next to the table
// instead of in its place (kept in this browser). Tabs that say how to reopen them
// (`Tab.remember`) are opened again after a reload, per database.

import { byId } from "./dom";
import { loadFlag, saveFlag } from "./view";

export interface TabOptions {
  /** Asked before the tab closes (e.g. unsaved edits); false keeps it open. */
  canClose?: () => boolean;
  /** Called once when the tab is closed (stop timers, close sockets). */
  onClose?: () => void;
  /** Called each time the tab is shown (e.g. to resize a plot to its new box). */
  onShow?: () => void;
}

/** An open tab. `body` is the element to fill. */
export interface Tab {
  readonly id: string;
  readonly body: HTMLElement;
  setTitle(title: string): void;
  show(): void;
  close(): void;
  /**
   * Reopen this tab after a reload: `onRestore(kind, …)` is given `state` (plain JSON)
   * then. Tabs without it close with the page.
   */
  remember(kind: string, state?: unknown): void;
}

interface TabEntry extends Tab {
  button: HTMLElement;
  options: TabOptions;
  restore?: { kind: string; state: unknown };
}

/** Reopeners of remembered tabs, by kind. */
const restorers = new Map<string, (state: unknown) => void>();
/** Told when the remembered tabs or the tab shown change (the page URL follows). */
const changeListeners: (() => void)[] = [];

/** The remembered tabs (how to reopen each) and which of them is shown (-1: the table). */
export interface OpenTabs {
  tabs: { kind: string; state: unknown }[];
  active: number;
}
const STORAGE = "runtable.tabs.";

const TABLE = "table";

class Tabs {
  private readonly strip: HTMLElement;
  private readonly panels: HTMLElement;
  private readonly workspace: HTMLElement;
  private readonly tabs = new Map<string, TabEntry>();
  private active = TABLE;
  private split = loadFlag("split", false);
  /** Where the open tabs are kept (per database); null until the table is loaded. */
  private key: string | null = null;
  private restoring = false;

  constructor() {
    this.strip = byId("tab-list", HTMLElement);
    this.panels = byId("tab-panels", HTMLElement);
    this.workspace = byId("workspace", HTMLElement);
    byId("tab-table", HTMLElement).addEventListener("click", () => this.activate(TABLE));
    const split = byId("tab-split", HTMLInputElement);
    split.checked = this.split;
    split.addEventListener("change", () => {
      this.split = split.checked;
      saveFlag("split", this.split);
      this.layout();
    });
    this.layout();
  }

  open(id: string, title: string, options: TabOptions = {}): { tab: Tab; created: boolean } {
    const known = this.tabs.get(id);
    if (known !== undefined) {
      this.activate(id);
      return { tab: known, created: false };
    }
    const button = document.createElement("div");
    button.className = "tab";
    button.setAttribute("role", "tab");
    button.dataset.tab = id;
    const label = document.createElement("button");
    label.type = "button";
    label.className = "tab-label";
    label.textContent = title;
    label.title = title;
    const close = document.createElement("button");
    close.type = "button";
    close.className = "tab-close";
    close.textContent = "✕";
    close.setAttribute("aria-label", `Close ${title}`);
    button.append(label, close);
    const body = document.createElement("section");
    body.className = "tab-panel";
    body.dataset.tab = id;
    body.setAttribute("role", "tabpanel");
    body.hidden = true;
    this.panels.append(body);
    this.strip.append(button);
    const entry: TabEntry = {
      id,
      body,
      button,
      options,
      setTitle: (text: string) => {
        label.textContent = text;
        label.title = text;
        close.setAttribute("aria-label", `Close ${text}`);
      },
      show: () => this.activate(id),
      close: () => this.close(id),
      remember: (kind: string, state: unknown = null) => {
        entry.restore = { kind, state };
        this.save();
      },
    };
    label.addEventListener("click", () => this.activate(id));
    close.addEventListener("click", () => this.close(id));
    // Middle click closes, as in a browser's own tabs; right click offers more.
    button.addEventListener("auxclick", (event) => {
      if (event.button === 1) this.close(id);
    });
    button.addEventListener("contextmenu", (event) => {
      event.preventDefault();
      this.menu(id, event);
    });
    this.tabs.set(id, entry);
    this.activate(id);
    return { tab: entry, created: true };
  }

  activate(id: string): void {
    if (id !== TABLE && !this.tabs.has(id)) return;
    this.active = id;
    byId("tab-table", HTMLElement).setAttribute("aria-selected", String(id === TABLE));
    for (const tab of this.tabs.values()) {
      const on = tab.id === id;
      tab.button.setAttribute("aria-selected", String(on));
      tab.body.hidden = !on;
      // Many tabs scroll sideways: the one shown is scrolled to.
      if (on) tab.button.scrollIntoView({ block: "nearest", inline: "nearest" });
    }
    this.layout();
    this.save();
    this.tabs.get(id)?.options.onShow?.();
  }

  /** The remembered tabs and which one is shown. */
  openTabs(): OpenTabs {
    const kept = [...this.tabs.values()].filter((tab) => tab.restore !== undefined);
    return {
      tabs: kept.map((tab) => tab.restore as { kind: string; state: unknown }),
      active: kept.findIndex((tab) => tab.id === this.active),
    };
  }

  /** Keep the remembered tabs and which one is shown, for the next page load. */
  private save(): void {
    if (this.key === null || this.restoring) return;
    try {
      window.localStorage.setItem(STORAGE + this.key, JSON.stringify(this.openTabs()));
    } catch {
      // storage full or disabled: tabs close with the page, as before
    }
    for (const listener of changeListeners) listener();
  }

  /**
   * Reopen the tabs remembered for database `key` (once, after the table loaded), or
   * those of `given` (a view from the page URL) instead.
   */
  restore(key: string, given?: unknown): void {
    if (this.key !== null) return;
    let saved: unknown = given;
    if (saved === undefined) {
      try {
        saved = JSON.parse(window.localStorage.getItem(STORAGE + key) ?? "{}");
      } catch {
        saved = {}; // a damaged entry must not stop the page
      }
    }
    this.key = key;
    this.show(saved);
  }

  /**
   * Make the remembered tabs those of `saved` (`OpenTabs` as JSON): tabs it lacks are
   * closed, tabs it has are opened (in its order), and its active one is shown.
   */
  show(saved: unknown): void {
    const wanted = typeof saved === "object" && saved !== null ? (saved as { tabs?: unknown; active?: unknown }) : {};
    const list = (Array.isArray(wanted.tabs) ? wanted.tabs : []) as { kind?: unknown; state?: unknown }[];
    const keys = list.map((entry) => JSON.stringify({ kind: entry.kind, state: entry.state ?? null }));
    const reopened: (string | undefined)[] = [];
    this.restoring = true;
    try {
      for (const tab of [...this.tabs.values()]) {
        if (tab.restore !== undefined && !keys.includes(JSON.stringify({ kind: tab.restore.kind, state: tab.restore.state ?? null }))) {
          this.close(tab.id);
        }
      }
      list.forEach(({ kind, state }, index) => {
        const known = [...this.tabs.values()].find(
          (tab) => tab.restore !== undefined && JSON.stringify({ kind: tab.restore.kind, state: tab.restore.state ?? null }) === keys[index],
        );
        if (known !== undefined) {
          reopened.push(known.id);
          return;
        }
        const reopen = typeof kind === "string" ? restorers.get(kind) : undefined;
        const before = new Set(this.tabs.keys());
        try {
          reopen?.(state);
        } catch (error) {
          console.warn(`could not reopen a ${String(kind)} tab`, error);
        }
        reopened.push([...this.tabs.keys()].find((id) => !before.has(id)));
      });
    } finally {
      this.restoring = false;
    }
    const active = typeof wanted.active === "number" ? reopened[wanted.active] : undefined;
    this.activate(active ?? TABLE);
  }

  close(id: string): void {
    const tab = this.tabs.get(id);
    if (tab === undefined || tab.options.canClose?.() === false) return;
    this.tabs.delete(id);
    this.save();
    tab.button.remove();
    tab.body.remove();
    try {
      tab.options.onClose?.();
    } finally {
      if (this.active === id) {
        const rest = [...this.tabs.keys()];
        this.activate(rest.at(-1) ?? TABLE);
      }
    }
  }

  /** Close every tab but `keep` (none: all of them). */
  closeOthers(keep: string | null): void {
    for (const id of [...this.tabs.keys()]) {
      if (id !== keep) this.close(id);
    }
  }

  /** The right-click menu of a tab: close it, the others, or all. */
  private menu(id: string, event: MouseEvent): void {
    document.querySelector(".tab-menu")?.remove();
    const list = document.createElement("div");
    list.className = "menu-list cell-menu tab-menu";
    list.setAttribute("role", "menu");
    const entries: [string, () => void][] = [
      ["Close", () => this.close(id)],
      ["Close all others", () => this.closeOthers(id)],
      ["Close all", () => this.closeOthers(null)],
    ];
    for (const [label, run] of entries) {
      const item = document.createElement("button");
      item.type = "button";
      item.setAttribute("role", "menuitem");
      item.textContent = label;
      item.addEventListener("click", () => {
        list.remove();
        run();
      });
      list.append(item);
    }
    document.body.append(list);
    const box = list.getBoundingClientRect();
    list.style.left = `${Math.min(event.clientX, window.innerWidth - box.width - 4)}px`;
    list.style.top = `${Math.min(event.clientY, window.innerHeight - box.height - 4)}px`;
    const dismiss = (e: Event): void => {
      if (e instanceof KeyboardEvent && e.key !== "Escape") return;
      if (e.type === "click" && list.contains(e.target as Node)) return;
      list.remove();
      document.removeEventListener("click", dismiss, true);
      document.removeEventListener("keydown", dismiss, true);
    };
    document.addEventListener("click", dismiss, true);
    document.addEventListener("keydown", dismiss, true);
    list.querySelector("button")?.focus();
  }

  private layout(): void {
    const other = this.active !== TABLE;
    // data-view: "table" (table only), "tab" (the tab instead of the table) or "split".
    this.workspace.dataset.view = !other ? "table" : this.split ? "split" : "tab";
    this.panels.hidden = !other;
    window.dispatchEvent(new Event("resize"));
  }
}

let tabs: Tabs | null = null;

function instance(): Tabs {
  tabs ??= new Tabs();
  return tabs;
}

/** Set up the tab strip (main.ts calls this once). */
export function setupTabs(): void {
  instance();
}

/**
 * Open the tab `id` (a stable key such as `preview:5:image`), or show it when it is open
 * already; `created` says whether the caller should fill `tab.body`.
 */
export function openTab(id: string, title: string, options: TabOptions = {}): { tab: Tab; created: boolean } {
  return instance().open(id, title, options);
}

/** How to reopen remembered tabs of `kind` after a reload (feature modules call this). */
export function onRestore(kind: string, reopen: (state: unknown) => void): void {
  restorers.set(kind, reopen);
}

/**
 * Reopen the tabs remembered for this database (main.ts, after the first load), or
 * those of a view given in the page URL.
 */
export function restoreTabs(key: string, given?: unknown): void {
  instance().restore(key, given);
}

/** The remembered tabs and which one is shown (for the page URL). */
export function openTabs(): OpenTabs {
  return instance().openTabs();
}

/** Open and close tabs to match `saved` (a view from the page URL, e.g. on Back). */
export function showTabs(saved: unknown): void {
  instance().show(saved);
}

/** Call `listener` when tabs are opened, closed or shown. */
export function onTabsChanged(listener: () => void): void {
  changeListeners.push(listener);
}

/** Show the table (in its place, or beside the open tab when side by side). */
export function showTable(): void {
  instance().activate(TABLE);
}
