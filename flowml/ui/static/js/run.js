// Run detail: overview, params, latest metrics, editable tags, system tags with links, charts, artifacts.
import { get, post } from "./api.js";
import { artifactBrowser } from "./artifacts.js";
import { lineChart } from "./chart.js";
import { absolute, clear, duration, errorBox, h, num, tagsOf, timeEl, toast } from "./format.js";
import { chartControls, history, toSeries } from "./metrics.js";

function systemLink(key, value, tags) {
  if (key === "mlflow.parentRunId") return h("a", { href: `#/runs/${value}` }, value);
  if (/^https?:\/\//.test(value)) return h("a", { href: value, target: "_blank", rel: "noopener noreferrer" }, value);
  if (key === "mlflow.source.git.commit") {
    const repo = tags["mlflow.source.git.repoURL"] || "";
    const m = repo.match(/github\.com[:/](.+?)(\.git)?$/);
    return m ? h("a", { href: `https://github.com/${m[1]}/commit/${value}`, target: "_blank", rel: "noopener noreferrer" }, value.slice(0, 12)) : h("span", { class: "mono" }, value);
  }
  return value;
}

export async function runPage(view, [runId]) {
  const run = (await get("runs/get", { run_id: runId })).run;
  const i = run.info, tags = tagsOf(run.data.tags);
  const metrics = (run.data.metrics || []).slice().sort((a, b) => a.key.localeCompare(b.key));
  // Start the first chart's (cached) history fetch now: the server downsamples while the page renders.
  if (metrics.length) history(runId, metrics[0].key, "step").catch(() => {});
  const exp = (await get("experiments/get", { experiment_id: i.experiment_id }).catch(() => ({ experiment: { name: i.experiment_id } }))).experiment;
  const params = (run.data.params || []).slice().sort((a, b) => a.key.localeCompare(b.key));
  const isSystem = (k) => k.startsWith("mlflow.") || k.startsWith("flowml.");
  const end = i.end_time || (i.status === "RUNNING" ? Date.now() : null);

  // --- charts
  const chartOpts = { xMode: "step", logY: false, smoothing: 0 };
  const picked = new Set(metrics.slice(0, 1).map((m) => m.key));
  const canvas = h("canvas", { class: "chart", id: "metric-chart", height: 320 });
  const chartMsg = h("div", { class: "muted small", id: "chart-info" });
  let drawSeq = 0;
  async function draw() {
    const seq = ++drawSeq;
    const keys = [...picked];
    if (!keys.length) { lineChart(canvas, []); chartMsg.textContent = "Pick metrics to plot."; return; }
    const t0 = performance.now();
    try {
      const res = await Promise.all(keys.map((k) => history(runId, k, chartOpts.xMode)));
      if (seq !== drawSeq) return; // a newer redraw is under way
      const series = res.map((r, j) => toSeries(r, keys[j], chartOpts.xMode));
      const n = lineChart(canvas, series, { ...chartOpts, xLabel: chartOpts.xMode === "time" ? "wall time" : "step" });
      const total = series.reduce((a, s) => a + s.total, 0);
      chartMsg.textContent = `${n.toLocaleString()} of ${total.toLocaleString()} points drawn (downsampled on the server) · ${Math.round(performance.now() - t0)} ms`;
      canvas.dataset.drawn = "1";
      canvas.dataset.drawnAt = String(Math.round(performance.now())); // ms since navigation (benchmarks)
      canvas.dataset.state = `${chartOpts.xMode}|${chartOpts.logY ? "log" : "linear"}|${chartOpts.smoothing}|${keys.join(",")}`;
    } catch (e) { clear(chartMsg, errorBox(e)); }
  }
  const keyPicker = h("div", { class: "key-picker" }, metrics.map((m) => h("label", { class: "check" },
    h("input", { type: "checkbox", checked: picked.has(m.key), value: m.key, onchange: (e) => { e.target.checked ? picked.add(m.key) : picked.delete(m.key); draw(); } }), m.key)));

  // --- tags (editable)
  const tagMsg = h("div");
  const tagBody = h("tbody");
  function renderTags() {
    const user = Object.entries(tags).filter(([k]) => !isSystem(k)).sort();
    clear(tagBody, user.map(([k, v]) => {
      const valueCell = h("td", {}, v);
      return h("tr", {}, h("td", { class: "mono" }, k), valueCell, h("td", { class: "actions" },
        h("button", { class: "link", onclick: () => {
          const input = h("input", { value: v, "aria-label": `value of ${k}` });
          clear(valueCell, h("form", { class: "inline", onsubmit: (e) => { e.preventDefault(); setTag(k, input.value); } }, input, h("button", { type: "submit" }, "Save")));
          input.focus();
        } }, "Edit"), " ",
        h("button", { class: "link danger", onclick: async () => {
          try { await post("runs/delete-tag", { run_id: runId, key: k }); delete tags[k]; renderTags(); toast(`Deleted tag ${k}`); } catch (e) { clear(tagMsg, errorBox(e)); }
        } }, "Delete")));
    }));
  }
  async function setTag(k, v) {
    try { await post("runs/set-tag", { run_id: runId, key: k, value: v }); tags[k] = v; renderTags(); toast(`Saved tag ${k}`); }
    catch (e) { clear(tagMsg, errorBox(e)); }
  }
  const newK = h("input", { placeholder: "key", name: "tag-key" }), newV = h("input", { placeholder: "value", name: "tag-value" });
  const addTag = h("form", { class: "inline", onsubmit: (e) => { e.preventDefault(); if (newK.value.trim()) { setTag(newK.value.trim(), newV.value); newK.value = newV.value = ""; } } },
    newK, newV, h("button", { type: "submit" }, "Add tag"));
  renderTags();

  const sysTags = Object.entries(tags).filter(([k]) => isSystem(k)).sort();
  const lifecycleBtn = i.lifecycle_stage === "deleted"
    ? h("button", { onclick: async () => { await post("runs/restore", { run_id: runId }); toast("Restored"); location.reload(); } }, "Restore run")
    : h("button", { class: "danger", onclick: async () => { if (confirm("Delete this run? It can be restored.")) { await post("runs/delete", { run_id: runId }); toast("Deleted"); location.hash = `#/experiments/${i.experiment_id}`; } } }, "Delete run");

  clear(view,
    h("div", { class: "crumbs" }, h("a", { href: "#/" }, "Experiments"), " / ", h("a", { href: `#/experiments/${i.experiment_id}` }, exp.name), " / ", i.run_name || runId),
    h("div", { class: "toolbar" }, h("h1", {}, i.run_name || runId), h("span", { class: `status ${String(i.status).toLowerCase()}` }, i.status), h("span", { class: "spacer" }), lifecycleBtn),
    h("dl", { class: "overview" },
      h("dt", {}, "Run ID"), h("dd", { class: "mono" }, runId),
      h("dt", {}, "Started"), h("dd", {}, timeEl(i.start_time), h("span", { class: "muted" }, ` (${absolute(i.start_time)})`)),
      h("dt", {}, "Duration"), h("dd", {}, duration(end && i.start_time ? end - i.start_time : null)),
      h("dt", {}, "User"), h("dd", {}, i.user_id || "—"),
      tags["mlflow.parentRunId"] ? [h("dt", {}, "Parent run"), h("dd", {}, h("a", { href: `#/runs/${tags["mlflow.parentRunId"]}` }, tags["mlflow.parentRunId"]))] : null,
      tags["flowml.prefect.flow_run_url"] ? [h("dt", {}, "Prefect flow run"), h("dd", {}, systemLink("flowml.prefect.flow_run_url", tags["flowml.prefect.flow_run_url"], tags))] : null,
      tags["mlflow.source.git.commit"] ? [h("dt", {}, "Git commit"), h("dd", {}, systemLink("mlflow.source.git.commit", tags["mlflow.source.git.commit"], tags))] : null),
    h("section", { class: "card" }, h("h2", {}, "Metric charts"), metrics.length
      ? [chartControls(chartOpts, draw), keyPicker, canvas, chartMsg]
      : h("p", { class: "muted" }, "This run has no metrics.")),
    h("div", { class: "cols" },
      h("section", { class: "card" }, h("h2", {}, `Parameters (${params.length})`),
        h("table", { class: "grid small", id: "params" }, h("tbody", {}, params.map((p) => h("tr", {}, h("td", { class: "mono" }, p.key), h("td", {}, p.value)))))),
      h("section", { class: "card" }, h("h2", {}, `Metrics (${metrics.length})`),
        h("table", { class: "grid small", id: "metrics" }, h("thead", {}, h("tr", {}, h("th", {}, "key"), h("th", {}, "latest"), h("th", {}, "step"))),
          h("tbody", {}, metrics.map((m) => h("tr", {}, h("td", { class: "mono" }, m.key), h("td", { class: "num", title: String(m.value) }, num(m.value)), h("td", { class: "num" }, num(m.step)))))))),
    h("div", { class: "cols" },
      h("section", { class: "card" }, h("h2", {}, "Tags"), tagMsg, h("table", { class: "grid small", id: "tags" }, tagBody), addTag),
      h("section", { class: "card" }, h("h2", {}, "System tags"),
        h("table", { class: "grid small", id: "system-tags" }, h("tbody", {}, sysTags.map(([k, v]) => h("tr", {}, h("td", { class: "mono" }, k), h("td", {}, systemLink(k, v, tags)))))))),
    h("section", { class: "card" }, h("h2", {}, "Artifacts"), artifactBrowser(run)));
  if (metrics.length) await draw();
}
