// plotly.js, loaded on first use: it is large (several MB), and the table's first load
// must not wait for it. Every module that draws with plotly goes through here, so the
// library is fetched and evaluated once.

export type PlotlyModule = typeof import("plotly.js-dist-min");

let loading: Promise<PlotlyModule> | null = null;

/** plotly.js (fetched the first time this is called). */
export async function loadPlotly(): Promise<PlotlyModule> {
  loading ??= import("plotly.js-dist-min").then((module) => {
    // The bundle is CommonJS: the library is its default export.
    const wrapped = module as unknown as { default?: PlotlyModule };
    return wrapped.default ?? module;
  });
  try {
    return await loading;
  } catch (error) {
    loading = null; // e.g. the server restarted with a new build: try again next time
    throw error;
  }
}
