// The cartesian bundle has the full bundle's API (fewer trace types) and no types of its own.
declare module "plotly.js-cartesian-dist-min" {
  const Plotly: typeof import("plotly.js-dist-min");
  export default Plotly;
}
