// Plots across runs and within runs, in tabs.

import type { AppContext } from "./appcontext";

/** Set up this feature (main.ts calls it once at start-up). */
export function install(app: AppContext): void {
  void app;
}
