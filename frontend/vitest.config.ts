// Unit tests of the GUI's pure helpers (`src/**/*.test.ts`), in Node: no browser, no DOM.
// The page as a whole is tested in Chromium by tests/browser/.
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["src/**/*.test.ts"],
    environment: "node",
  },
});
