// Processing control: reprocess, jobs, logs, cancel, delete variable, pre-created rows.

import type { AppContext } from "./appcontext";

/** Set up this feature (main.ts calls it once at start-up). */
export function install(app: AppContext): void {
  void app;
}
