// plotly.js, loaded on first use: it is large, and the table's first load must not wait
// for it. Two bundles of the same version: the cartesian one (scatter, heatmap,
// histogram, ...; 1.5 MB, about 0.4 s to evaluate here) draws what it can; the full one
// (every trace type, WebGL's scattergl for big point clouds included; 4.8 MB, about 1.3 s)
// the rest. Each is fetched and evaluated once.
//
// A graph must be redrawn, resized and purged by the bundle that drew it: keep the
// module you were given with the graph.

export type PlotlyModule = typeof import("plotly.js-dist-min");

const loading = new Map<boolean, Promise<PlotlyModule>>();

/** The trace types of plotly's cartesian bundle. */
const CARTESIAN = new Set(["bar", "box", "contour", "heatmap", "histogram", "histogram2d",
  "histogram2dcontour", "image", "pie", "scatter", "scatterternary", "violin"]);

/** Whether drawing `data` needs the full bundle (a trace type the cartesian one lacks). */
export function needsFullBundle(data: readonly unknown[]): boolean {
  return data.some((trace) => {
    const type = (trace as { type?: unknown } | null)?.type ?? "scatter";
    return typeof type !== "string" || !CARTESIAN.has(type);
  });
}

function unwrap(module: unknown): PlotlyModule {
  // The bundles are CommonJS: the library is their default export.
  const wrapped = module as { default?: PlotlyModule };
  return wrapped.default ?? (module as PlotlyModule);
}

/** plotly.js: the cartesian bundle, or with `full` the one with every trace type. */
export async function loadPlotly(full = false): Promise<PlotlyModule> {
  let promise = loading.get(full);
  if (promise === undefined) {
    promise = (full ? import("plotly.js-dist-min") : import("plotly.js-cartesian-dist-min")).then(unwrap);
    loading.set(full, promise);
  }
  try {
    return await promise;
  } catch (error) {
    loading.delete(full); // e.g. the server restarted with a new build: try again next time
    throw error;
  }
}
