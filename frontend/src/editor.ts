// The context-file editor, in a tab.

import type { AppContext } from "./appcontext";

/** Set up this feature (main.ts calls it once at start-up). */
export function install(app: AppContext): void {
  void app;
}
