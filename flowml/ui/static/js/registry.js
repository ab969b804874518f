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

const SERVED = new Set(["SERVING", "SUPERSEDED", "STOPPED"]);

/** Versions an earlier deployment served with a Bento (what a rollback can serve again), newest first. */
export function rollbackChoices(deps) {
  const current = deps.find((d) => d.status === "SERVING");
  const seen = new Set(), out = [];
  for (const d of deps) {
    if (!SERVED.has(d.status) || !d.bento_tag || (current && d.version === current.version) || seen.has(d.version)) continue;
    seen.add(d.version); out.push(d);
  }
  return { current, choices: out };
}

function lineage(d, runOf) {
  const link = (href, text) => h("a", { href, target: href.startsWith("#") ? null : "_blank", rel: "noopener noreferrer" }, text);
  const details = d.details || {};
  const run = runOf[d.version];
  const flowUrl = details.flow_run_url || d.flow_run_url;
  const endpoint = d.endpoint_url;
  const steps = [
    run ? link(`#/runs/${run}`, `v${d.version}`) : `v${d.version}`,
    d.event_id ? `event ${d.event_id}` : null,
    d.flow_run_id ? (flowUrl && /^https?:\/\//.test(flowUrl) ? link(flowUrl, `flow run ${String(d.flow_run_id).slice(0, 8)}`) : `flow run ${String(d.flow_run_id).slice(0, 8)}`) : null,
    d.bento_tag ? h("span", { class: "mono" }, d.bento_tag) : null,
    endpoint ? (/^https?:\/\//.test(endpoint) ? link(endpoint, endpoint) : endpoint) : null,
  ].filter(Boolean);
  return steps.flatMap((x, j) => (j ? [" → ", x] : [x]));
}

async function deploymentsPanel(name, runOf) {
  const panel = h("section", { class: "card", id: "deployments" });
  const msg = h("div", { id: "rollback-result" });
  async function render(note) {
    let res;
    try { res = await get("/api/flowml/deployments", { name, max_results: 200 }); } catch (err) {
      if (err instanceof ApiError && (err.status === 404 || err.status === 405)) { clear(panel, h("h2", {}, "Deployments"), h("p", { class: "muted" }, "No deployments: this server has no deployments endpoint.")); return; }
      clear(panel, h("h2", {}, "Deployments"), errorBox(err)); return;
    }
    const deps = (res.deployments || []).filter((d) => d.name === name);
    if (!deps.length) { clear(panel, h("h2", {}, "Deployments"), h("p", { class: "muted" }, "No deployments of this model.")); return; }
    const target = (deps.find((d) => d.status === "SERVING") || deps[0]).target; // newest first
    const { current, choices } = rollbackChoices(deps.filter((d) => d.target === target));
    const buttons = [];
    async function rollback(to) {
      const what = to ? `v${to}` : `the previous version (v${choices[0].version})`;
      if (!confirm(`Roll back ${name} to ${what}?\n\nIts Bento is served again (no rebuild) and the stage/alias moves back, recorded with reason "rollback".`)) return;
      buttons.forEach((b) => { b.disabled = true; });
      clear(msg, h("p", { class: "muted", role: "status" }, `Rolling back to ${what}: starting its Bento…`));
      try {
        const body = { name, target };
        if (to) body.to_version = to;
        const out = (await post("/api/flowml/deployments/rollback", body)).deployment;
        toast(`${name}: v${out.version} serving again`);
        await render(h("div", { class: "ok-box", role: "status" }, `Rolled back: v${out.version} serves at `,
          out.endpoint_url ? h("a", { href: out.endpoint_url, target: "_blank", rel: "noopener noreferrer" }, out.endpoint_url) : "its endpoint",
          ` (deployment ${out.id}, Bento ${out.bento_tag}).`));
      } catch (err) {
        await render(errorBox(err));
      }
    }
    const rowButton = (d) => {
      if (!choices.some((c) => c.id === d.id)) return null;
      const b = h("button", { class: "rollback", dataset: { version: d.version }, onclick: () => rollback(d.version) }, `Roll back to v${d.version}`);
      buttons.push(b); return b;
    };
    const top = choices.length && current
      ? h("button", { id: "rollback", class: "danger", onclick: () => rollback(null) }, `Roll back to v${choices[0].version}`)
      : null;
    if (top) buttons.push(top);
    clear(msg, note || null);
    clear(panel,
      h("div", { class: "toolbar" }, h("h2", {}, "Deployments"), h("span", { class: "spacer" }),
        current ? h("span", { class: "muted" }, `v${current.version} serving`) : h("span", { class: "muted" }, "nothing serving"), top,
        !choices.length ? h("span", { class: "muted small" }, "Nothing to roll back to (no earlier deployment with a Bento).") : null),
      msg,
      h("div", { class: "table-wrap" }, h("table", { class: "grid small", id: "deployments-table" },
        h("thead", {}, h("tr", {}, ["version", "status", "endpoint", "bento", "lineage (version → event → flow run → bento → endpoint)", "since", "by", ""].map((t) => h("th", {}, t)))),
        h("tbody", {}, deps.map((d) => h("tr", { dataset: { deployment: d.id, version: d.version } },
          h("td", {}, `v${d.version}`),
          h("td", {}, h("span", { class: `status ${String(d.status || "").toLowerCase()}`, title: d.error || "" }, d.status || "—")),
          h("td", {}, d.endpoint_url && /^https?:\/\//.test(d.endpoint_url) ? h("a", { href: d.endpoint_url, target: "_blank", rel: "noopener noreferrer" }, d.endpoint_url) : d.endpoint_url || "—"),
          h("td", { class: "mono" }, d.bento_tag || "—"),
          h("td", { class: "small lineage" }, lineage(d, runOf)),
          h("td", {}, timeEl(d.serving_since || d.created_time)),
          h("td", {}, d.actor || "—"),
          h("td", {}, rowButton(d))))))));
  }
  await render(null);
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
    await deploymentsPanel(name, Object.fromEntries(versions.map((v) => [v.version, v.run_id]))));
}
