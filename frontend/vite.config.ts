// Builds the web GUI into the Python package, where runtable.server.frontend serves it.
import { defineConfig } from "vite";

export default defineConfig({
  // Relative asset URLs: the GUI keeps working when the server sits behind a path prefix.
  base: "./",
  build: {
    outDir: "../src/runtable/server/static",
    emptyOutDir: true,
    assetsDir: "assets",
    rollupOptions: {
      output: {
        // The grid library changes rarely; its own chunk stays cached across our releases.
        manualChunks(id: string): string | undefined {
          return id.includes("node_modules/ag-grid") || id.includes("node_modules/ag-stack")
            ? "ag-grid"
            : undefined;
        },
      },
    },
    // plotly.js (1.5 MB cartesian, 4.8 MB full) are chunks of their own, loaded only when
    // a plot or preview opens.
    chunkSizeWarningLimit: 5000,
  },
});
