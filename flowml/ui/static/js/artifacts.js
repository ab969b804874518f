// Artifact browser: lazy tree over artifacts/list, preview (text/JSON/YAML/CSV/images/MLmodel), download.
import { blob, get } from "./api.js";
import { bytes, clear, downloadBlob, errorBox, h } from "./format.js";

const TEXT = /\.(txt|log|json|ya?ml|csv|tsv|md|py|toml|cfg|ini|html|xml|sh|r|sql)$|(^|\/)(MLmodel|MLproject|requirements\.txt|conda\.yaml|python_env\.yaml)$/i;
const IMAGE = { png: "image/png", jpg: "image/jpeg", jpeg: "image/jpeg", gif: "image/gif", svg: "image/svg+xml", webp: "image/webp" };
const MAX_PREVIEW = 2 * 1024 * 1024;

function downloadPath(run, path) {
  const uri = run.info.artifact_uri || "";
  if (!uri.startsWith("mlflow-artifacts:")) return null;
  let rest = uri.slice("mlflow-artifacts:".length);
  if (rest.startsWith("//")) rest = rest.slice(2).split("/").slice(1).join("/");
  rest = rest.replace(/^\/+/, "");
  return `/api/2.0/mlflow-artifacts/artifacts/${rest}/${path.split("/").map(encodeURIComponent).join("/")}`;
}

function csvTable(text) {
  const rows = text.split(/\r?\n/).filter(Boolean).slice(0, 200).map((l) => l.split(","));
  return h("table", { class: "grid small" }, h("thead", {}, h("tr", {}, rows[0].map((c) => h("th", {}, c)))),
    h("tbody", {}, rows.slice(1).map((r) => h("tr", {}, r.map((c) => h("td", {}, c))))));
}

export function artifactBrowser(run) {
  const tree = h("ul", { class: "tree", id: "artifact-tree" });
  const preview = h("div", { class: "preview", id: "artifact-preview" }, h("p", { class: "muted" }, "Select a file to preview it."));

  async function open(file) {
    const url = downloadPath(run, file.path);
    const name = file.path.split("/").pop();
    const dl = url ? h("button", { onclick: async () => { try { downloadBlob(await blob(url), name); } catch (e) { clear(preview, errorBox(e)); } } }, "Download") : null;
    clear(preview, h("div", { class: "toolbar" }, h("strong", { class: "mono" }, file.path), h("span", { class: "muted" }, bytes(file.file_size)), dl));
    if (!url) { preview.append(h("p", { class: "muted" }, "This run's artifacts are not served by the artifact proxy.")); return; }
    const ext = (name.split(".").pop() || "").toLowerCase();
    try {
      if (IMAGE[ext]) {
        const b = await blob(url);
        preview.append(h("img", { src: URL.createObjectURL(new Blob([b], { type: IMAGE[ext] })), alt: name, class: "artifact-img" }));
      } else if (TEXT.test(file.path) || (file.file_size || 0) < 64 * 1024) {
        if ((file.file_size || 0) > MAX_PREVIEW) { preview.append(h("p", { class: "muted" }, "Too large to preview; download it.")); return; }
        let text = await (await blob(url)).text();
        if (ext === "json") { try { text = JSON.stringify(JSON.parse(text), null, 2); } catch { /* show as is */ } }
        if (ext === "csv" && text.length) preview.append(csvTable(text));
        else preview.append(h("pre", { class: name === "MLmodel" ? "code mlmodel" : "code" }, text));
      } else preview.append(h("p", { class: "muted" }, "No preview for this file type."));
    } catch (e) { preview.append(errorBox(e)); }
  }

  async function list(path, ul) {
    try {
      const res = await get("artifacts/list", { run_id: run.info.run_id, path });
      const files = (res.files || []).sort((a, b) => (b.is_dir - a.is_dir) || a.path.localeCompare(b.path));
      if (!files.length && !path) { clear(ul, h("li", { class: "muted" }, "No artifacts.")); return; }
      clear(ul, files.map((f) => {
        const label = f.path.split("/").pop();
        if (f.is_dir) {
          const sub = h("ul");
          let loaded = false;
          const d = h("details", { ontoggle: () => { if (d.open && !loaded) { loaded = true; list(f.path, sub); } } }, h("summary", {}, `📁 ${label}`), sub);
          return h("li", {}, d);
        }
        return h("li", {}, h("button", { class: "link", onclick: () => open(f) }, label), h("span", { class: "muted" }, " " + bytes(f.file_size)));
      }));
    } catch (e) { clear(ul, h("li", {}, errorBox(e))); }
  }
  list("", tree);
  return h("div", { class: "artifacts" }, h("div", { class: "tree-wrap" }, tree), preview);
}
