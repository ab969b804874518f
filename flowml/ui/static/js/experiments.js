// Experiments: search, create, rename, delete/restore; pick several to open their runs together.
import { post } from "./api.js";
import { clear, errorBox, h, timeEl, toast } from "./format.js";

export async function experimentsPage(view, _args, query) {
  const state = { q: query.get("q") || "", deleted: query.get("view") === "deleted", token: null, rows: [] };
  const msg = h("div");
  const tbody = h("tbody");
  const more = h("button", { class: "hidden", onclick: () => load(true) }, "Load more");
  const selected = new Set();
  const openSel = h("button", { disabled: true, onclick: () => { location.hash = `#/experiments/${[...selected].join(",")}`; } }, "Open runs of selected");

  const search = h("input", { type: "search", placeholder: "Search experiments by name", value: state.q, "aria-label": "Search experiments" });
  let timer;
  search.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(() => { state.q = search.value; load(false); }, 250); });
  const viewSel = h("select", { "aria-label": "Lifecycle", onchange: () => { state.deleted = viewSel.value === "deleted"; load(false); } },
    h("option", { value: "active" }, "Active"), h("option", { value: "deleted", selected: state.deleted }, "Deleted"));

  const newName = h("input", { placeholder: "New experiment name", name: "new-experiment" });
  const create = h("form", { class: "inline", onsubmit: async (e) => {
    e.preventDefault();
    if (!newName.value.trim()) return;
    try {
      await post("experiments/create", { name: newName.value.trim() });
      toast(`Created experiment “${newName.value.trim()}”`);
      newName.value = "";
      load(false);
    } catch (err) { clear(msg, errorBox(err)); }
  } }, newName, h("button", { type: "submit", class: "primary" }, "Create"));

  async function act(path, body, done) {
    try { await post(path, body); toast(done); load(false); } catch (err) { clear(msg, errorBox(err)); }
  }

  function row(e) {
    const cb = h("input", { type: "checkbox", "aria-label": `select ${e.name}`, onchange: () => {
      cb.checked ? selected.add(e.experiment_id) : selected.delete(e.experiment_id);
      openSel.disabled = !selected.size;
    } });
    const nameCell = h("td", {}, h("a", { href: `#/experiments/${e.experiment_id}` }, e.name));
    const rename = h("button", { class: "link", onclick: () => {
      const input = h("input", { value: e.name, "aria-label": "New name" });
      const f = h("form", { class: "inline", onsubmit: (ev) => { ev.preventDefault(); act("experiments/update", { experiment_id: e.experiment_id, new_name: input.value }, "Renamed"); } },
        input, h("button", { type: "submit" }, "Save"), h("button", { type: "button", onclick: () => load(false) }, "Cancel"));
      clear(nameCell, f); input.focus();
    } }, "Rename");
    const lifecycle = e.lifecycle_stage === "deleted"
      ? h("button", { class: "link", onclick: () => act("experiments/restore", { experiment_id: e.experiment_id }, "Restored") }, "Restore")
      : h("button", { class: "link danger", onclick: () => { if (confirm(`Delete experiment “${e.name}”? It can be restored.`)) act("experiments/delete", { experiment_id: e.experiment_id }, "Deleted"); } }, "Delete");
    return h("tr", {}, h("td", {}, cb), h("td", { class: "mono muted" }, e.experiment_id), nameCell,
      h("td", {}, timeEl(e.creation_time)), h("td", {}, timeEl(e.last_update_time)), h("td", { class: "actions" }, rename, " ", lifecycle));
  }

  async function load(append) {
    clear(msg);
    if (!append) { state.token = null; state.rows = []; }
    const q = state.q.trim().replace(/'/g, "''");
    const body = { max_results: 100, order_by: ["last_update_time DESC"], view_type: state.deleted ? "DELETED_ONLY" : "ACTIVE_ONLY" };
    if (q) body.filter = `name ILIKE '%${q}%'`;
    if (append && state.token) body.page_token = state.token;
    try {
      const res = await post("experiments/search", body);
      state.rows.push(...(res.experiments || []));
      state.token = res.next_page_token || null;
      clear(tbody, state.rows.length ? state.rows.map(row) : h("tr", {}, h("td", { colspan: 6, class: "muted" }, "No experiments match.")));
      more.classList.toggle("hidden", !state.token);
    } catch (err) { clear(msg, errorBox(err)); }
  }

  clear(view,
    h("div", { class: "toolbar" }, h("h1", {}, "Experiments"), h("span", { class: "spacer" }), create),
    h("div", { class: "toolbar" }, search, viewSel, openSel),
    msg,
    h("table", { class: "grid", id: "experiments" },
      h("thead", {}, h("tr", {}, h("th", {}), h("th", {}, "ID"), h("th", {}, "Name"), h("th", {}, "Created"), h("th", {}, "Updated"), h("th", {}))),
      tbody),
    more);
  await load(false);
}
