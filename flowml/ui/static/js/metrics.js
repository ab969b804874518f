// Metric history fetched downsampled from the server (≤ max_points per key, cached per page).
import { get } from "./api.js";
import { h } from "./format.js";

const cache = new Map();

export function history(runId, key, xAxis = "step", maxPoints = 1000) {
  const k = `${runId}|${key}|${xAxis}|${maxPoints}`;
  if (!cache.has(k)) {
    const p = get("/api/flowml/metrics/history-downsampled", { run_id: runId, key, x_axis: xAxis, max_points: maxPoints });
    p.catch(() => cache.delete(k));
    cache.set(k, p);
  }
  return cache.get(k);
}

export function toSeries(res, name, xAxis) {
  return { name, xs: xAxis === "time" ? res.timestamps : res.steps, ys: res.values.map(Number), total: res.total_points };
}

/** Chart controls: x axis, log scale, smoothing. Calls onchange(opts). */
export function chartControls(opts, onchange) {
  const x = h("select", { "aria-label": "x axis", onchange: () => { opts.xMode = x.value; onchange(); } },
    h("option", { value: "step" }, "x: step"), h("option", { value: "time", selected: opts.xMode === "time" }, "x: wall time"));
  const log = h("label", { class: "check" }, h("input", { type: "checkbox", checked: opts.logY, onchange: (e) => { opts.logY = e.target.checked; onchange(); } }), "log scale");
  const out = h("output", {}, String(opts.smoothing));
  const sm = h("input", { type: "range", min: 0, max: 0.99, step: 0.01, value: opts.smoothing, "aria-label": "smoothing",
    oninput: () => { opts.smoothing = Number(sm.value); out.textContent = sm.value; onchange(); } });
  return h("div", { class: "toolbar chart-controls" }, x, log, h("label", { class: "check" }, "smoothing ", sm, out));
}
