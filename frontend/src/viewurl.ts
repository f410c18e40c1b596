// The view in the page URL: filters (in the filter language), sort, column order,
// hidden columns, the tag filter and the open tabs, so that a link gives a colleague
// the same view and the browser's Back button steps through views. They are in the
// fragment (`#where=…&sort=…`): never sent to the server, so no length limit of a
// request line applies and nothing of the view ends up in its logs. The access token
// is never part of it (api.ts takes it out of the address bar).

export interface UrlView {
  /** The filters as one expression of the filter language. */
  where: string;
  /** Sorted columns, first key first. */
  sort: { colId: string; sort: "asc" | "desc" }[];
  /** Every column in order; null: the table's own order. */
  order: string[] | null;
  /** Columns hidden by hand. */
  hide: string[];
  /** Show only variables with one of these tags (none: all). */
  tags: string[];
  /** The open tabs (tabs.ts `OpenTabs`); null: none said. */
  tabs: unknown;
}

const KEYS = ["where", "sort", "order", "hide", "tags", "tabs"];

/** A column id as written in the URL: a variable by its name, other columns by id. */
function short(colId: string): string {
  return colId.startsWith("var:") ? colId.slice(4) : `:${colId}`;
}

function long(item: string): string {
  return item.startsWith(":") ? item.slice(1) : `var:${item}`;
}

/** A list of column ids: comma-separated (commas inside a name escaped). */
function list(ids: readonly string[]): string {
  return ids.map((id) => short(id).replace(/%/g, "%25").replace(/,/g, "%2C")).join(",");
}

function unlist(text: string | null): string[] {
  if (text === null || text === "") return [];
  return text.split(",").map((item) => long(decodeURIComponent(item)));
}

/** The view the page URL gives, or null when it gives none. */
export function readUrlView(): UrlView | null {
  const params = new URLSearchParams(window.location.hash.replace(/^#/, ""));
  if (!KEYS.some((key) => params.has(key))) return null;
  let tabs: unknown = null;
  try {
    tabs = params.has("tabs") ? JSON.parse(params.get("tabs") ?? "null") : null;
  } catch {
    tabs = null; // a damaged link still opens the table
  }
  return {
    where: params.get("where") ?? "",
    sort: unlist(params.get("sort")).map((item) => {
      const desc = item.endsWith(":desc");
      const colId = item.replace(/:(asc|desc)$/, "");
      return { colId, sort: desc ? ("desc" as const) : ("asc" as const) };
    }),
    order: params.has("order") ? unlist(params.get("order")) : null,
    hide: unlist(params.get("hide")),
    tags: (params.get("tags") ?? "").split(",").filter((t) => t !== ""),
    tabs,
  };
}

/** The fragment (`#…`) that gives `view`. */
export function urlFragment(view: UrlView): string {
  const params = new URLSearchParams();
  if (view.where !== "") params.set("where", view.where);
  params.set("sort", list(view.sort.map((s) => `${s.colId}:${s.sort}`)));
  if (view.order !== null) params.set("order", list(view.order));
  if (view.hide.length > 0) params.set("hide", list(view.hide));
  if (view.tags.length > 0) params.set("tags", view.tags.join(","));
  const tabs = view.tabs as { tabs?: unknown[] } | null;
  if (tabs !== null && Array.isArray(tabs.tabs) && tabs.tabs.length > 0) params.set("tabs", JSON.stringify(view.tabs));
  // Readable in the address bar: these need no escaping in a fragment.
  return `#${params.toString().replace(/%2C/g, ",").replace(/%3A/g, ":").replace(/%22/g, '"')}`;
}

/**
 * Keep the page URL showing the view: each change that stays for a moment is one
 * history entry (Back returns to the view before it); the steps of a change in
 * progress (a slider dragged, a name typed) replace each other in that entry.
 */
export class UrlSync {
  private timer: number | undefined;
  private applying = false;
  private inChange = false;
  private started = false;

  constructor(private readonly current: () => UrlView, private readonly apply: (view: UrlView) => Promise<void>) {
    window.addEventListener("popstate", () => {
      const view = readUrlView();
      if (view !== null) void this.during(() => this.apply(view));
    });
  }

  /** The view changed: show it in the URL. */
  changed(): void {
    if (this.applying) return;
    if (!this.started) {
      // The page's first view replaces its bare address.
      this.started = true;
      this.replace();
      return;
    }
    const fragment = urlFragment(this.current());
    if (fragment === window.location.hash) return;
    if (this.inChange) {
      this.replace();
    } else {
      const url = new URL(window.location.href);
      url.hash = fragment;
      window.history.pushState(null, "", url);
    }
    this.inChange = true;
    window.clearTimeout(this.timer);
    this.timer = window.setTimeout(() => (this.inChange = false), 700);
  }

  /** Show the view in the URL without a history entry of its own. */
  private replace(): void {
    const url = new URL(window.location.href);
    url.hash = urlFragment(this.current());
    if (url.href !== window.location.href) window.history.replaceState(window.history.state, "", url);
  }

  /** The page's address with the view as it is now (for "Copy link"). */
  link(): string {
    this.changed();
    return window.location.href;
  }

  /** Apply a view (from the URL) without writing each of its steps back. */
  async during(apply: () => Promise<void>): Promise<void> {
    this.applying = true;
    window.clearTimeout(this.timer);
    this.inChange = false;
    try {
      await apply();
    } finally {
      this.applying = false;
      this.started = true;
      // The URL in its own words (a link typed by hand names columns by title, say).
      this.replace();
    }
  }
}
