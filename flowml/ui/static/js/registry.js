// Registry: models list; model page with versions, stages, aliases, tags, descriptions, transitions with a
// reason (and the promotion gate's report when refused), stage/alias history and deployments.
import { ApiError, get, patch, post } from "./api.js";
import { clear, errorBox, h, timeEl, toast } from "./format.js";

const STAGES = ["None", "Staging", "Production", "Archived"];

export async function modelsPage(view, _args, query) {
  const state = { q: query.get("q") || "", token: null, rows: [] };
  const msg = h("div"), tbody = h("tbody");
  const more = h("button", { class: "hidden", onclick: () => load(true) }, "Load more");
  const search = h("input", { type: "search", placeholder: "Search models by name", value: state.q, "aria-label": "Search models" });
  let timer;
  search.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(() => { state.q = search.value; load(false); }, 250); });
  async function load(append) {
    clear(msg);
    if (!append) { state.rows = []; state.token = null; }
    const q = state.q.trim().replace(/'/g, "''");
    try {
      const res = await get("registered-models/search", { max_results: 100, filter: q ? `name ILIKE '%${q}%'` : "", page_token: append ? state.token : "", order_by: "name ASC" });
      state.rows.push(...(res.registered_models || []));
      state.token = res.next_page_token || null;
      more.classList.toggle("hidden", !state.token);
      clear(tbody, state.rows.length ? state.rows.map((m) => h("tr", {},
        h("td", {}, h("a", { href: `#/models/${encodeURIComponent(m.name)}` }, m.name)),
        h("td", {}, (m.latest_versions || []).map((v) => h("span", { class: `badge stage-${(v.current_stage || "none").toLowerCase()}` }, `v${v.version} ${v.current_stage}`))),
        h("td", {}, (m.aliases || []).map((a) => h("span", { class: "badge alias" }, `@${a.alias} → v${a.version}`))),
        h("td", {}, timeEl(m.last_updated_timestamp)),
        h("td", { class: "muted" }, (m.description || "").slice(0, 80))))
        : h("tr", {}, h("td", { colspan: 5, class: "muted" }, "No registered models.")));
    } catch (err) { clear(msg, errorBox(err)); }
  }
  clear(view, h("div", { class: "toolbar" }, h("h1", {}, "Registered models")), h("div", { class: "toolbar" }, search), msg,
    h("table", { class: "grid", id: "models" }, h("thead", {}, h("tr", {}, ["Name", "Latest versions", "Aliases", "Updated", "Description"].map((t) => h("th", {}, t)))), tbody), more);
  await load(false);
}

function gateReport(report) {
  const results = report.rules || report.results || [];
  return h("div", { class: "gate-report", id: "gate-report" },
    h("h3", {}, `Promotion gate for v${report.version} → ${report.target}`, report.champion_version ? ` (champion v${report.champion_version})` : ""),
    h("table", { class: "grid small" }, h("thead", {}, h("tr", {}, h("th", {}, "rule"), h("th", {}, "result"), h("th", {}, "detail"))),
      h("tbody", {}, results.map((r) => h("tr", { class: r.passed ? "pass" : "fail" },
        h("td", { class: "mono" }, JSON.stringify(r.rule)), h("td", {}, r.passed ? "✔ passed" : "✘ failed"), h("td", {}, r.message || ""))))));
}

function editable(text, onSave, placeholder) {
  const box = h("div", { class: "editable" });
  const show = (t) => clear(box, h("p", { class: t ? "" : "muted" }, t || placeholder), h("button", { class: "link", onclick: edit }, "Edit"));
  function edit() {
    const ta = h("textarea", { rows: 3 }); ta.value = text || "";
    clear(box, h("form", { onsubmit: async (e) => { e.preventDefault(); try { await onSave(ta.value); text = ta.value; show(text); toast("Saved"); } catch (err) { box.append(errorBox(err)); } } },
      ta, h("div", {}, h("button", { type: "submit" }, "Save"), h("button", { type: "button", onclick: () => show(text) }, "Cancel"))));
  }
  show(text);
  return box;
}

async function deploymentsPanel(name) {
  const panel = h("section", { class: "card", id: "deployments" }, h("h2", {}, "Deployments"));
  let res;
  try { res = await get("/api/flowml/deployments", { name }); } catch (err) {
    if (err instanceof ApiError && (err.status === 404 || err.status === 405)) { panel.append(h("p", { class: "muted" }, "No deployments: this server has no deployments endpoint yet.")); return panel; }
    panel.append(errorBox(err)); return panel;
  }
  const deps = (res.deployments || []).filter((d) => !d.name || d.name === name || d.model_name === name);
  if (!deps.length) { panel.append(h("p", { class: "muted" }, "No deployments of this model.")); return panel; }
  const msg = h("div");
  const link = (u) => (u && /^https?:\/\//.test(u) ? h("a", { href: u, target: "_blank", rel: "noopener noreferrer" }, u) : u || "—");
  panel.append(msg, h("table", { class: "grid small" },
    h("thead", {}, h("tr", {}, ["version", "status", "endpoint", "bento", "lineage", "since", ""].map((t) => h("th", {}, t)))),
    h("tbody", {}, deps.map((d) => h("tr", {},
      h("td", {}, `v${d.version ?? d.model_version ?? "?"}`),
      h("td", {}, h("span", { class: `status ${String(d.status || "").toLowerCase()}` }, d.status || "—")),
      h("td", {}, link(d.endpoint_url || d.endpoint)),
      h("td", { class: "mono" }, d.bento_tag || "—"),
      h("td", { class: "small" }, [`v${d.version ?? d.model_version ?? "?"}`, d.event_id ? `event ${d.event_id}` : null,
        d.flow_run_url ? h("a", { href: d.flow_run_url, target: "_blank", rel: "noopener noreferrer" }, "flow run") : d.flow_run_id ? `flow run ${String(d.flow_run_id).slice(0, 8)}` : null,
        d.bento_tag || null, d.endpoint_url || d.endpoint || null].filter(Boolean).flatMap((x, j) => (j ? [" → ", x] : [x]))),
      h("td", {}, timeEl(d.serving_since || d.created_time || d.updated_time)),
      h("td", {}, h("button", { onclick: async () => {
        if (!confirm(`Roll back ${name} to the previous deployment?`)) return;
        try { await post("/api/flowml/deployments/rollback", { name }); toast("Rollback requested"); } catch (err) {
          if (err.status === 404 || err.status === 405) clear(msg, h("p", { class: "error-box" }, `This server has no rollback endpoint yet: run “flowml deploy rollback ${name}”.`));
          else clear(msg, errorBox(err));
        }
      } }, "Roll back")))))));
  return panel;
}

export async function modelPage(view, [name]) {
  const model = (await get("registered-models/get", { name })).registered_model;
  const versions = [];
  let token = "";
  do { // versions of one model: a few pages at most
    const res = await get("model-versions/search", { filter: `name='${name.replace(/'/g, "''")}'`, max_results: 1000, page_token: token, order_by: "version_number DESC" });
    versions.push(...(res.model_versions || []));
    token = res.next_page_token || "";
  } while (token && versions.length < 5000);
  versions.sort((a, b) => Number(b.version) - Number(a.version));
  const aliasOf = {};
  for (const a of model.aliases || []) (aliasOf[a.version] = aliasOf[a.version] || []).push(a.alias);

  const actionMsg = h("div", { id: "action-result" });
  const verSel = () => h("select", { name: "version", "aria-label": "version" }, versions.map((v) => h("option", { value: v.version }, `v${v.version}`)));
  const tVersion = verSel(), tStage = h("select", { name: "stage", "aria-label": "stage" }, STAGES.map((s) => h("option", { value: s }, s)));
  const tReason = h("input", { name: "reason", placeholder: "Reason (recorded in the history)", class: "wide" });
  const tArchive = h("input", { type: "checkbox", name: "archive" });
  const transition = h("form", { class: "inline", id: "transition", onsubmit: async (e) => {
    e.preventDefault(); clear(actionMsg);
    try {
      await post("model-versions/transition-stage", { name, version: tVersion.value, stage: tStage.value, archive_existing_versions: tArchive.checked, reason: tReason.value });
      toast(`v${tVersion.value} → ${tStage.value}`); location.reload();
    } catch (err) { clear(actionMsg, errorBox(err), err.body && err.body.report ? gateReport(err.body.report) : null); }
  } }, "Move ", tVersion, " to ", tStage, tReason, h("label", { class: "check" }, tArchive, "archive others in that stage"), h("button", { type: "submit", class: "primary" }, "Transition"));
  const aName = h("input", { name: "alias", placeholder: "alias, e.g. champion" }), aVersion = verSel();
  const aReason = h("input", { name: "alias-reason", placeholder: "Reason", class: "wide" });
  const alias = h("form", { class: "inline", id: "alias", onsubmit: async (e) => {
    e.preventDefault(); clear(actionMsg);
    try { await post("registered-models/alias", { name, alias: aName.value.trim(), version: aVersion.value, reason: aReason.value }); toast(`@${aName.value} → v${aVersion.value}`); location.reload(); }
    catch (err) { clear(actionMsg, errorBox(err), err.body && err.body.report ? gateReport(err.body.report) : null); }
  } }, "Point @", aName, " at ", aVersion, aReason, h("button", { type: "submit", class: "primary" }, "Move alias"));

  const versionRows = versions.map((v) => h("tr", { dataset: { version: v.version } },
    h("td", {}, `v${v.version}`),
    h("td", {}, h("span", { class: `badge stage-${(v.current_stage || "none").toLowerCase()}` }, v.current_stage || "None")),
    h("td", {}, (aliasOf[v.version] || v.aliases || []).map((a) => h("span", { class: "badge alias" }, `@${a}`))),
    h("td", {}, timeEl(v.creation_timestamp)),
    h("td", {}, v.run_id ? h("a", { href: `#/runs/${v.run_id}` }, v.run_id.slice(0, 8)) : "—"),
    h("td", { class: "mono small" }, v.source || ""),
    h("td", {}, Object.entries(Object.fromEntries((v.tags || []).map((t) => [t.key, t.value]))).map(([k, val]) => h("span", { class: "badge" }, `${k}=${val}`))),
    h("td", {}, editable(v.description, (d) => patch("model-versions/update", { name, version: v.version, description: d }), "—"))));

  let hist = [];
  const histBox = h("div");
  try { hist = (await get("/api/flowml/registry/history", { name })).history || []; } catch (err) { histBox.append(errorBox(err)); }
  hist.sort((a, b) => b.timestamp - a.timestamp || b.id - a.id);
  const what = (e) => e.kind === "alias" ? `@${e.alias}: ${e.from_value ? "v" + e.from_value : "—"} → ${e.to_value ? "v" + e.to_value : "unset"}`
    : e.kind === "stage" ? `v${e.version}: ${e.from_value} → ${e.to_value}`
    : e.kind === "promotion_refused" ? `v${e.version} → ${e.to_value}: refused by the promotion gate`
    : `v${e.version ?? ""} ${e.kind}${e.to_value ? " (" + e.to_value + ")" : ""}`;
  histBox.append(h("table", { class: "grid small", id: "history" }, h("thead", {}, h("tr", {}, ["when", "change", "by", "reason"].map((t) => h("th", {}, t)))),
    h("tbody", {}, hist.length ? hist.map((e) => h("tr", { class: e.kind === "promotion_refused" ? "fail" : "" },
      h("td", {}, timeEl(e.timestamp)), h("td", {}, what(e)), h("td", {}, e.user_id || "—"), h("td", {}, e.reason || ""))) : h("tr", {}, h("td", { colspan: 4, class: "muted" }, "No history yet.")))));

  const tags = (model.tags || []).map((t) => h("span", { class: "badge" }, `${t.key}=${t.value}`));
  clear(view,
    h("div", { class: "crumbs" }, h("a", { href: "#/models" }, "Models"), " / ", name),
    h("div", { class: "toolbar" }, h("h1", {}, name), (model.aliases || []).map((a) => h("span", { class: "badge alias" }, `@${a.alias} → v${a.version}`))),
    h("section", { class: "card" }, h("h2", {}, "Description"), editable(model.description, (d) => patch("registered-models/update", { name, description: d }), "No description."), tags.length ? h("div", {}, tags) : null),
    h("section", { class: "card" }, h("h2", {}, "Change stage or alias"), versions.length ? [transition, alias] : h("p", { class: "muted" }, "No versions yet."), actionMsg),
    h("section", { class: "card" }, h("h2", {}, `Versions (${versions.length})`), h("div", { class: "table-wrap" }, h("table", { class: "grid", id: "versions" },
      h("thead", {}, h("tr", {}, ["version", "stage", "aliases", "created", "run", "source", "tags", "description"].map((t) => h("th", {}, t)))), h("tbody", {}, versionRows)))),
    h("section", { class: "card" }, h("h2", {}, "Stage and alias history"), histBox),
    await deploymentsPanel(name));
}
