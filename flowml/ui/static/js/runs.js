// Runs table of one or several experiments: filter grammar, server-side sort, token paging,
// column chooser, nested runs under their parent, select to compare, delete/restore, CSV export.
import { get, post } from "./api.js";
import { clear, downloadBlob, duration, errorBox, h, num, tagsOf, timeEl, toast } from "./format.js";

const PAGE = 100;
const FIXED = [
  { id: "name", label: "Run name", order: "attributes.run_name" },
  { id: "status", label: "Status", order: "attributes.status" },
  { id: "start", label: "Started", order: "attributes.start_time" },
  { id: "duration", label: "Duration" },
  { id: "user", label: "User", order: "attributes.user_id" },
];
const PREFIX = { m: "metrics", p: "params", t: "tags" };

const quoteKey = (k) => (/^[A-Za-z_][\w.]*$/.test(k) ? k : "`" + k.replace(/`/g, "") + "`");
const orderKey = (c) => `${PREFIX[c[0]]}.${quoteKey(c.slice(2))}`;

function runDuration(info) {
  if (!info.start_time) return null;
  const end = info.end_time || (info.status === "RUNNING" ? Date.now() : null);
  return end ? end - info.start_time : null;
}

function cellValue(run, col) {
  const kind = col[0], key = col.slice(2);
  if (kind === "m") { const m = (run.data.metrics || []).find((x) => x.key === key); return m ? m.value : ""; }
  const list = kind === "p" ? run.data.params : run.data.tags;
  const e = (list || []).find((x) => x.key === key);
  return e ? e.value : "";
}

export async function runsPage(view, [idsRaw], query) {
  const ids = idsRaw.split(",").filter(Boolean);
  const params = {
    filter: query.get("filter") || "",
    order: query.get("order") || "attributes.start_time DESC",
    cols: query.has("cols") ? query.get("cols").split(",").filter(Boolean) : null,
    deleted: query.get("view") === "deleted",
  };
  const exps = await Promise.all(ids.map((id) => get("experiments/get", { experiment_id: id }).then((r) => r.experiment)));
  const expName = Object.fromEntries(exps.map((e) => [e.experiment_id, e.name]));

  const state = { runs: [], token: null, keys: { m: new Set(), p: new Set(), t: new Set() }, selected: new Set(), collapsed: new Set() };
  const filterErr = h("div", { id: "filter-error" });
  const msg = h("div");
  const table = h("table", { class: "grid", id: "runs" });
  const count = h("span", { class: "muted", id: "run-count" });
  const more = h("button", { class: "hidden", id: "load-more", onclick: () => load(true) }, `Load ${PAGE} more`);

  function setHash() {
    const q = new URLSearchParams();
    if (params.filter) q.set("filter", params.filter);
    if (params.order !== "attributes.start_time DESC") q.set("order", params.order);
    if (params.cols) q.set("cols", params.cols.join(","));
    if (params.deleted) q.set("view", "deleted");
    const next = `#/experiments/${ids.join(",")}${q.toString() ? "?" + q : ""}`;
    history.replaceState(null, "", next);
  }

  const filterInput = h("input", { type: "search", id: "filter", class: "wide", value: params.filter, spellcheck: "false",
    placeholder: "metrics.rmse < 1 and params.model = 'tree' and tags.`mlflow.user` LIKE 'a%'", "aria-label": "Filter runs" });
  const filterForm = h("form", { class: "inline grow", onsubmit: (e) => { e.preventDefault(); params.filter = filterInput.value.trim(); load(false); } },
    filterInput, h("button", { type: "submit", class: "primary" }, "Search"),
    h("button", { type: "button", onclick: () => { filterInput.value = ""; params.filter = ""; load(false); } }, "Clear"));

  const chooser = h("details", { class: "chooser", id: "columns" });
  const compareBtn = h("button", { id: "compare", disabled: true, onclick: () => { location.hash = `#/compare?runs=${[...state.selected].join(",")}`; } }, "Compare");
  const delBtn = h("button", { disabled: true, class: "danger", onclick: () => lifecycle(params.deleted ? "runs/restore" : "runs/delete") }, params.deleted ? "Restore" : "Delete");
  const viewSel = h("select", { "aria-label": "Lifecycle", onchange: () => { params.deleted = viewSel.value === "deleted"; delBtn.textContent = params.deleted ? "Restore" : "Delete"; load(false); } },
    h("option", { value: "active" }, "Active runs"), h("option", { value: "deleted", selected: params.deleted }, "Deleted runs"));
  const csvBtn = h("button", { onclick: exportCsv }, "Export CSV");

  function chosen() {
    if (params.cols) return params.cols;
    const pick = (k, n) => [...state.keys[k]].sort().slice(0, n).map((x) => `${k}:${x}`);
    return [...pick("m", 4), ...pick("p", 4)];
  }

  function renderChooser() {
    const cols = new Set(chosen());
    const group = (k, label) => {
      const keys = [...state.keys[k]].sort();
      if (!keys.length) return null;
      return h("fieldset", {}, h("legend", {}, label), keys.map((key) => {
        const id = `${k}:${key}`;
        return h("label", { class: "check" }, h("input", { type: "checkbox", checked: cols.has(id), value: id, onchange: (e) => {
          const next = chosen().filter((c) => c !== id);
          if (e.target.checked) next.push(id);
          params.cols = next; setHash(); renderTable();
        } }), key);
      }));
    };
    const open = chooser.open;
    clear(chooser, h("summary", {}, "Columns"), h("div", { class: "chooser-body" },
      group("m", "Metrics"), group("p", "Parameters"), group("t", "Tags")));
    chooser.open = open;
  }

  function sortHeader(label, orderExpr) {
    if (!orderExpr) return h("th", {}, label);
    const [curKey, curDir] = params.order.split(/ (?=ASC$|DESC$)/);
    const active = curKey === orderExpr;
    const arrow = active ? (curDir === "ASC" ? " ▲" : " ▼") : "";
    return h("th", { class: "sortable" + (active ? " sorted" : ""), "aria-sort": active ? (curDir === "ASC" ? "ascending" : "descending") : "none",
      onclick: () => { params.order = `${orderExpr} ${active && curDir === "DESC" ? "ASC" : "DESC"}`; load(false); } }, label, arrow);
  }

  function ordered() {
    // Nested runs: children follow their parent when the parent is on screen.
    const byId = new Map(state.runs.map((r) => [r.info.run_id, r]));
    const kids = new Map(), top = [];
    for (const r of state.runs) {
      const parent = tagsOf(r.data.tags)["mlflow.parentRunId"];
      if (parent && byId.has(parent)) { if (!kids.has(parent)) kids.set(parent, []); kids.get(parent).push(r); } else top.push(r);
    }
    const out = [];
    const walk = (r, depth) => {
      const children = kids.get(r.info.run_id) || [];
      out.push({ run: r, depth, children: children.length });
      if (!state.collapsed.has(r.info.run_id)) children.forEach((c) => walk(c, depth + 1));
    };
    top.forEach((r) => walk(r, 0));
    return out;
  }

  function renderTable() {
    renderChooser();
    const cols = chosen();
    const multi = ids.length > 1;
    const head = h("tr", {},
      h("th", {}, h("input", { type: "checkbox", "aria-label": "select all", onchange: (e) => {
        state.runs.forEach((r) => (e.target.checked ? state.selected.add(r.info.run_id) : state.selected.delete(r.info.run_id)));
        renderTable();
      } })),
      FIXED.map((c) => sortHeader(c.label, c.order)),
      multi ? h("th", {}, "Experiment") : null,
      cols.map((c) => sortHeader(h("span", {}, h("span", { class: `kind kind-${c[0]}` }, c[0]), " ", c.slice(2)), orderKey(c))));
    const rows = ordered().map(({ run, depth, children }) => {
      const i = run.info, id = i.run_id;
      const toggle = children ? h("button", { class: "link twisty", "aria-label": "toggle children", onclick: () => {
        state.collapsed.has(id) ? state.collapsed.delete(id) : state.collapsed.add(id); renderTable();
      } }, state.collapsed.has(id) ? `▸ ${children}` : `▾ ${children}`) : null;
      return h("tr", { dataset: { runId: id }, class: depth ? "child" : "" },
        h("td", {}, h("input", { type: "checkbox", checked: state.selected.has(id), "aria-label": `select ${i.run_name || id}`, onchange: (e) => {
          e.target.checked ? state.selected.add(id) : state.selected.delete(id); updateButtons();
        } })),
        h("td", { class: "name", style: depth ? `padding-left:${depth * 18 + 6}px` : null }, depth ? "↳ " : "", h("a", { href: `#/runs/${id}` }, i.run_name || id.slice(0, 8)), " ", toggle),
        h("td", {}, h("span", { class: `status ${String(i.status).toLowerCase()}` }, i.status)),
        h("td", {}, timeEl(i.start_time)),
        h("td", { class: "num" }, duration(runDuration(i))),
        h("td", {}, i.user_id || ""),
        multi ? h("td", {}, expName[i.experiment_id] || i.experiment_id) : null,
        cols.map((c) => { const v = cellValue(run, c); return h("td", { class: c[0] === "m" ? "num" : "", title: String(v) }, c[0] === "m" ? num(v) : v); }));
    });
    clear(table, h("thead", {}, head), h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { colspan: 7 + cols.length, class: "muted" }, "No runs match."))));
    updateButtons();
  }

  function updateButtons() {
    compareBtn.disabled = state.selected.size < 2;
    compareBtn.textContent = `Compare${state.selected.size ? ` (${state.selected.size})` : ""}`;
    delBtn.disabled = !state.selected.size;
  }

  async function lifecycle(path) {
    try {
      await Promise.all([...state.selected].map((run_id) => post(path, { run_id })));
      toast(`${path.endsWith("delete") ? "Deleted" : "Restored"} ${state.selected.size} run(s)`);
      state.selected.clear();
      load(false);
    } catch (err) { clear(msg, errorBox(err)); }
  }

  function exportCsv() {
    const cols = chosen();
    const esc = (v) => { const s = v === null || v === undefined ? "" : String(v); return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s; };
    const header = ["run_id", "run_name", "experiment_id", "status", "start_time", "end_time", "duration_ms", "user", ...cols.map((c) => `${PREFIX[c[0]]}.${c.slice(2)}`)];
    const lines = [header.map(esc).join(",")];
    for (const { run } of ordered()) {
      const i = run.info;
      lines.push([i.run_id, i.run_name, i.experiment_id, i.status, i.start_time ? new Date(i.start_time).toISOString() : "",
        i.end_time ? new Date(i.end_time).toISOString() : "", runDuration(i) ?? "", i.user_id, ...cols.map((c) => cellValue(run, c))].map(esc).join(","));
    }
    downloadBlob(new Blob([lines.join("\n") + "\n"], { type: "text/csv" }), `runs-${ids.join("_")}.csv`);
  }

  async function load(append) {
    clear(filterErr); clear(msg);
    if (!append) setHash();
    const body = { experiment_ids: ids, filter: params.filter, max_results: PAGE, order_by: [params.order],
      run_view_type: params.deleted ? "DELETED_ONLY" : "ACTIVE_ONLY" };
    if (append) body.page_token = state.token;
    const t0 = performance.now();
    let res;
    try { res = await post("runs/search", body); } catch (err) {
      if (err.status === 400) { clear(filterErr, h("div", { class: "error-inline", role: "alert" }, err.message)); return; }
      clear(msg, errorBox(err)); return;
    }
    if (!append) { state.runs = []; state.selected.clear(); }
    for (const r of res.runs || []) {
      r.data = r.data || {};
      state.runs.push(r);
      for (const m of r.data.metrics || []) state.keys.m.add(m.key);
      for (const p of r.data.params || []) state.keys.p.add(p.key);
      for (const t of r.data.tags || []) if (!t.key.startsWith("mlflow.")) state.keys.t.add(t.key);
    }
    state.token = res.next_page_token || null;
    more.classList.toggle("hidden", !state.token);
    count.textContent = `${state.runs.length}${state.token ? "+" : ""} runs · ${Math.round(performance.now() - t0)} ms`;
    renderTable();
    table.dataset.renderedAt = String(Math.round(performance.now())); // ms since navigation (benchmarks)
  }

  clear(view,
    h("div", { class: "crumbs" }, h("a", { href: "#/" }, "Experiments"), " / ", exps.map((e) => e.name).join(", ")),
    h("div", { class: "toolbar" }, h("h1", {}, exps.length === 1 ? exps[0].name : `${exps.length} experiments`), count),
    h("div", { class: "toolbar" }, filterForm),
    filterErr,
    h("div", { class: "toolbar" }, chooser, viewSel, compareBtn, delBtn, h("span", { class: "spacer" }), csvBtn),
    msg, h("div", { class: "table-wrap" }, table), more);
  await load(false);
}
