// Live updates over the `/api/events` WebSocket (docs/dev/table-protocol.md).
//
// Order of start-up: connect, read `hello` (the bus id and the last seq), then load
// the snapshot; events that arrive meanwhile are kept and replayed when newer than the
// snapshot. Any doubt — a gap in seq, another bus id (the service restarted), close
// code 4000 (we fell behind), a closed connection — ends in reloading the snapshot,
// which is always correct.

import { webSocketUrl } from "./api";
import type { LiveEvent } from "./generated/events";

/** The first message after connecting: the bus's id and last seq (not an event). */
interface Hello {
  kind: "hello";
  seq: number;
  bus: string;
  version: string;
}

export interface LiveHandlers {
  /** Load the full snapshot; resolves with its seq and bus. */
  reload(): Promise<{ seq: number; bus: string }>;
  event(event: LiveEvent): void;
  connection(state: "connecting" | "live" | "offline"): void;
}

const RETRY_MIN_MS = 500;
const RETRY_MAX_MS = 10_000;

export class LiveUpdates {
  private socket: WebSocket | null = null;
  private lastSeq = -1;
  private bus = "";
  private loading: Promise<void> | null = null;
  private buffered: LiveEvent[] = [];
  private retryMs = RETRY_MIN_MS;
  private stopped = false;
  private loadedOnce = false;
  private readonly handlers: LiveHandlers;

  constructor(handlers: LiveHandlers) {
    this.handlers = handlers;
  }

  start(): void {
    this.stopped = false;
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    this.socket?.close();
  }

  private connect(): void {
    this.handlers.connection("connecting");
    const socket = new WebSocket(webSocketUrl("api/events"));
    this.socket = socket;
    socket.addEventListener("message", (message) => {
      if (typeof message.data === "string") {
        this.receive(message.data);
      }
    });
    socket.addEventListener("close", () => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.handlers.connection("offline");
      // No live updates (yet): still show the table as it is now.
      if (!this.loadedOnce) void this.reload().catch(() => undefined);
      if (!this.stopped) {
        window.setTimeout(() => this.connect(), this.retryMs);
        this.retryMs = Math.min(this.retryMs * 2, RETRY_MAX_MS);
      }
    });
  }

  private receive(text: string): void {
    let event: LiveEvent | Hello;
    try {
      event = JSON.parse(text) as LiveEvent | Hello;
    } catch {
      return; // not ours to understand; the next seq check catches anything lost
    }
    if (event.kind === "hello") {
      this.retryMs = RETRY_MIN_MS;
      this.bus = String(event.bus ?? "");
      this.lastSeq = Number(event.seq);
      this.handlers.connection("live");
      // Always reload after (re)connecting: events may have passed while we were away.
      void this.reload().catch(() => undefined);
      return;
    }
    if (typeof event.seq !== "number") return;
    if (this.lastSeq >= 0 && event.seq !== this.lastSeq + 1) {
      this.lastSeq = event.seq;
      void this.reload().catch(() => undefined);
      return;
    }
    this.lastSeq = event.seq;
    if (this.loading !== null) {
      this.buffered.push(event);
      return;
    }
    this.handlers.event(event);
  }

  /** Load the snapshot, then replay buffered events newer than it. */
  reload(): Promise<void> {
    if (this.loading !== null) {
      // One more load after the running one: it may have started before the change.
      return this.loading.then(() => this.reload());
    }
    this.loading = (async () => {
      try {
        const { seq, bus } = await this.handlers.reload();
        this.loadedOnce = true;
        const events = this.buffered;
        this.buffered = [];
        this.loading = null;
        if (bus !== "" && this.bus !== "" && bus !== this.bus) {
          // The snapshot is from another service than the socket: reconnect and reload.
          this.socket?.close();
          return;
        }
        for (const event of events) {
          if (event.seq > seq) this.handlers.event(event);
        }
      } catch (error) {
        this.loading = null;
        this.buffered = [];
        throw error;
      }
    })();
    return this.loading;
  }
}
