// Compare N runs: diff table (differences highlighted), overlaid histories, scatter, parallel coordinates.
import { get } from "./api.js";
import { PALETTE, lineChart, parallelCoords, scatterChart } from "./chart.js";
import { clear, errorBox, h, num, tagsOf } from "./format.js";
import { chartControls, history, toSeries } from "./metrics.js";

export async function comparePage(view, _args, query) {
  const ids = (query.get("runs") || "").split(",").filter(Boolean);
  if (ids.length < 2) { clear(view, errorBox(new Error("Pick at least two runs to compare (select them in a runs table).")), h("a", { href: "#/" }, "Experiments")); return; }
  const runs = await Promise.all(ids.map((id) => get("runs/get", { run_id: id }).then((r) => r.run)));
  const label = (r) => r.info.run_name || r.info.run_id.slice(0, 8);
  const maps = runs.map((r) => ({
    p: Object.fromEntries((r.data.params || []).map((x) => [x.key, x.value])),
    m: Object.fromEntries((r.data.metrics || []).map((x) => [x.key, x.value])),
    t: Object.fromEntries(Object.entries(tagsOf(r.data.tags)).filter(([k]) => !k.startsWith("mlflow."))),
  }));
  const keys = (k) => [...new Set(maps.flatMap((m) => Object.keys(m[k])))].sort();
  const onlyDiff = h("input", { type: "checkbox", id: "only-diff" });
  const table = h("table", { class: "grid", id: "diff" });

  function renderDiff() {
    const section = (k, title) => {
      const rows = keys(k).map((key) => {
        const vals = maps.map((m) => m[k][key]);
        const differ = new Set(vals.map((v) => (v === undefined ? "\0" : String(v)))).size > 1;
        if (onlyDiff.checked && !differ) return null;
        return h("tr", { class: differ ? "differs" : "" }, h("td", { class: "mono" }, key),
          vals.map((v) => h("td", { class: k === "m" ? "num" : "" }, v === undefined ? h("span", { class: "muted" }, "—") : k === "m" ? num(v) : v)));
      }).filter(Boolean);
      return rows.length ? [h("tr", { class: "section" }, h("th", { colspan: runs.length + 1 }, title)), rows] : null;
    };
    clear(table, h("thead", {}, h("tr", {}, h("th", {}, ""), runs.map((r, j) => h("th", {}, h("span", { class: "swatch", style: `background:${PALETTE[j % PALETTE.length]}` }), h("a", { href: `#/runs/${r.info.run_id}` }, label(r)))))),
      h("tbody", {}, section("p", "Parameters"), section("m", "Metrics"), section("t", "Tags")));
  }
  onlyDiff.addEventListener("change", renderDiff);
  renderDiff();

  // overlaid histories
  const metricKeys = keys("m");
  const opts = { xMode: "step", logY: false, smoothing: 0 };
  const keySel = h("select", { "aria-label": "metric", onchange: () => drawHist() }, metricKeys.map((k) => h("option", { value: k }, k)));
  const histCanvas = h("canvas", { class: "chart", id: "compare-chart" });
  const histMsg = h("div", { class: "muted small" });
  async function drawHist() {
    const key = keySel.value;
    if (!key) { lineChart(histCanvas, []); return; }
    try {
      const holders = runs.filter((r, j) => maps[j].m[key] !== undefined);
      const res = await Promise.all(holders.map((r) => history(r.info.run_id, key, opts.xMode)));
      const series = res.map((x, j) => ({ ...toSeries(x, label(holders[j]), opts.xMode), color: PALETTE[runs.indexOf(holders[j]) % PALETTE.length] }));
      lineChart(histCanvas, series, { ...opts, xLabel: opts.xMode === "time" ? "wall time" : "step" });
      histMsg.textContent = `${key} for ${series.length} runs`;
    } catch (e) { clear(histMsg, errorBox(e)); }
  }

  // scatter + parallel coordinates over numeric columns
  const numeric = [...keys("p").map((k) => `p:${k}`), ...metricKeys.map((k) => `m:${k}`)].filter((c) =>
    maps.some((m) => isFinite(parseFloat(m[c[0]][c.slice(2)]))));
  const val = (j, c) => parseFloat(maps[j][c[0]][c.slice(2)]);
  const colName = (c) => `${c[0] === "p" ? "param" : "metric"} ${c.slice(2)}`;
  const xSel = h("select", { "aria-label": "scatter x", onchange: () => drawScatter() }, numeric.map((c) => h("option", { value: c }, colName(c))));
  const ySel = h("select", { "aria-label": "scatter y", onchange: () => drawScatter() }, numeric.map((c, j) => h("option", { value: c, selected: j === 1 }, colName(c))));
  const scatter = h("canvas", { class: "chart", id: "scatter" });
  const drawScatter = () => scatterChart(scatter, runs.map((r, j) => ({ x: val(j, xSel.value), y: val(j, ySel.value), label: label(r), color: PALETTE[j % PALETTE.length] })),
    { xLabel: colName(xSel.value || ""), yLabel: colName(ySel.value || "") });
  const pc = h("canvas", { class: "chart", id: "parallel" });
  const drawPc = () => {
    const dims = numeric.slice(0, 10);
    parallelCoords(pc, dims.map(colName), runs.map((r, j) => ({ label: label(r), color: PALETTE[j % PALETTE.length], values: Object.fromEntries(dims.map((c) => [colName(c), val(j, c)])) })));
  };

  clear(view,
    h("div", { class: "crumbs" }, h("a", { href: "#/" }, "Experiments"), " / ", h("a", { href: `#/experiments/${[...new Set(runs.map((r) => r.info.experiment_id))].join(",")}` }, "Runs"), " / Compare"),
    h("h1", {}, `Comparing ${runs.length} runs`),
    h("section", { class: "card" }, h("div", { class: "toolbar" }, h("h2", {}, "Differences"), h("label", { class: "check" }, onlyDiff, "only rows that differ")), h("div", { class: "table-wrap" }, table)),
    h("section", { class: "card" }, h("h2", {}, "Metric history"), metricKeys.length ? [h("div", { class: "toolbar" }, keySel, chartControls(opts, drawHist)), histCanvas, histMsg] : h("p", { class: "muted" }, "No metrics.")),
    h("div", { class: "cols" },
      h("section", { class: "card" }, h("h2", {}, "Scatter"), h("div", { class: "toolbar" }, "x ", xSel, " y ", ySel), scatter),
      h("section", { class: "card" }, h("h2", {}, "Parallel coordinates"), pc)));
  drawScatter(); drawPc();
  await drawHist();
}
