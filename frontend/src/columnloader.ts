// The columns a full load left out (table.ts `FIRST_COLUMNS`), fetched by name
// (`GET /api/table?format=binary&names=…`): first those something needs now — on
// screen, sorted, filtered, plotted, exported — then the rest in the background, a few
// megabytes at a time, so that a person on a slow network sees what they look at
// within a second and the whole table follows.

import { fetchSnapshot, type TableStore } from "./table";

/** Bytes of column data per background request (8 per row and column)... */
const BATCH_BYTES = 4_000_000;
/** ...and columns: the server encodes a request's new columns under its table's lock,
 * which a request for a column just scrolled to then waits for. */
const BATCH_COLUMNS = 16;
/** Requests for needed columns at once (beside one background request). */
const URGENT_REQUESTS = 2;

interface Waiter {
  names: string[];
  resolve: () => void;
}

export class ColumnLoader {
  private queue: string[] = [];
  private readonly urgent = new Set<string>();
  private readonly inflight = new Set<string>();
  private waiters: Waiter[] = [];
  private urgentRunning = 0;
  private backgroundRunning = false;
  private generation = 0;

  constructor(
    private readonly store: TableStore,
    /** Columns whose data just came (in the store already). */
    private readonly loaded: (names: string[]) => void,
    private readonly failed: (error: unknown) => void,
    /** Everything is in. */
    private readonly done: () => void,
  ) {}

  /** After a full load: fetch every column that is not in the store, in this order. */
  reset(order: readonly string[]): void {
    this.generation += 1;
    this.queue = order.filter((name) => !this.store.isLoaded(name));
    this.urgent.clear();
    this.inflight.clear();
    this.urgentRunning = 0;
    this.backgroundRunning = false;
    this.settle();
    this.pump();
  }

  /** Columns not in yet (and not being fetched). */
  get remaining(): number {
    return this.queue.length + this.urgent.size + this.inflight.size;
  }

  /** Resolves once the data of every column in `names` is in (fetching it first). */
  need(names: readonly string[]): Promise<void> {
    const missing = names.filter((name) => this.store.byName.has(name) && !this.store.isLoaded(name));
    if (missing.length === 0) return Promise.resolve();
    for (const name of missing) {
      if (!this.inflight.has(name)) this.urgent.add(name);
    }
    const promise = new Promise<void>((resolve) => this.waiters.push({ names: missing, resolve }));
    this.pump();
    return promise;
  }

  private pump(): void {
    while (this.urgent.size > 0 && this.urgentRunning < URGENT_REQUESTS) {
      const names = [...this.urgent].slice(0, this.batchSize());
      for (const name of names) this.urgent.delete(name);
      this.urgentRunning += 1;
      void this.fetch(names, true);
    }
    if (!this.backgroundRunning && this.urgent.size === 0) {
      this.queue = this.queue.filter((name) => !this.store.isLoaded(name) && !this.inflight.has(name));
      if (this.queue.length > 0) {
        const names = this.queue.splice(0, this.batchSize());
        this.backgroundRunning = true;
        void this.fetch(names, false);
      } else if (this.inflight.size === 0) {
        this.done();
      }
    }
  }

  private batchSize(): number {
    const byBytes = Math.floor(BATCH_BYTES / (8 * Math.max(1, this.store.rows.length)));
    return Math.min(BATCH_COLUMNS, Math.max(4, byBytes));
  }

  private async fetch(names: string[], urgent: boolean): Promise<void> {
    const generation = this.generation;
    for (const name of names) this.inflight.add(name);
    try {
      const part = await fetchSnapshot(undefined, names);
      if (generation !== this.generation) return; // a full load came in between
      this.loaded(this.store.mergeColumns(part));
    } catch (error) {
      if (generation === this.generation) {
        // Needed again later, they are asked for again then.
        this.failed(error);
      }
    } finally {
      if (generation === this.generation) {
        for (const name of names) this.inflight.delete(name);
        if (urgent) this.urgentRunning -= 1;
        else this.backgroundRunning = false;
        this.settle();
        this.pump();
      }
    }
  }

  /** Resolve the waiters whose columns are in (or gone, or failed: not being fetched). */
  private settle(): void {
    this.waiters = this.waiters.filter((waiter) => {
      const pending = waiter.names.some(
        (name) => this.store.byName.has(name) && !this.store.isLoaded(name) && (this.inflight.has(name) || this.urgent.has(name)),
      );
      if (!pending) waiter.resolve();
      return pending;
    });
  }
}
