// Artifact browser: lazy tree over artifacts/list, preview (text/JSON/YAML/CSV/images/MLmodel), download of
// files (/api/flowml/runs/artifacts/file) and of folders or the whole run as a zip (.../zip, streamed).
import { auth, blob, get, parse, send } from "./api.js";
import { bytes, clear, downloadBlob, errorBox, h, toast } from "./format.js";

const TEXT = /\.(txt|log|json|ya?ml|csv|tsv|md|py|toml|cfg|ini|html|xml|sh|r|sql)$|(^|\/)(MLmodel|MLproject|requirements\.txt|conda\.yaml|python_env\.yaml)$/i;
const IMAGE = { png: "image/png", jpg: "image/jpeg", jpeg: "image/jpeg", gif: "image/gif", svg: "image/svg+xml", webp: "image/webp" };
const MAX_PREVIEW = 2 * 1024 * 1024;

function downloadPath(run, path) {
  return `/api/flowml/runs/artifacts/file?${new URLSearchParams({ run_id: run.info.run_id, path })}`;
}

/** Save ``url`` as ``name``. Errors are shown; without auth the browser streams the file straight to disk
 * (a plain link, after a first request proved it answers), with auth it goes through fetch (the token
 * must be sent, so the file passes through memory). */
async function download(url, name, onError) {
  try {
    const res = await send("GET", url);
    if (!res.ok) await parse(res); // throws the server's error
    if (!auth.header) {
      await res.body?.cancel();
      const a = h("a", { href: url, download: name, class: "hidden" });
      document.body.append(a); a.click(); a.remove();
    } else downloadBlob(await res.blob(), name);
    toast(`Downloading ${name}`);
  } catch (e) { onError(e); }
}

/** A folder ("" = the whole run) as a zip streamed by the server. */
function downloadZip(run, path, onError) {
  const q = new URLSearchParams({ run_id: run.info.run_id });
  if (path) q.set("path", path);
  return download(`/api/flowml/runs/artifacts/zip?${q}`, `${path ? path.split("/").pop() : run.info.run_id + "-artifacts"}.zip`, onError);
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
    const dl = h("button", { onclick: () => download(url, name, (e) => clear(preview, errorBox(e))) }, "Download");
    clear(preview, h("div", { class: "toolbar" }, h("strong", { class: "mono" }, file.path), h("span", { class: "muted" }, bytes(file.file_size)), dl));
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
          const zip = h("button", { class: "link small zip", title: `Download ${f.path} as a .zip`, "aria-label": `download folder ${f.path}`,
            onclick: (e) => { e.preventDefault(); e.stopPropagation(); downloadZip(run, f.path, showError); } }, "⤓ zip");
          const d = h("details", { ontoggle: () => { if (d.open && !loaded) { loaded = true; list(f.path, sub); } } }, h("summary", {}, h("span", { class: "dir" }, `${label}/`), zip), sub);
          return h("li", {}, d);
        }
        return h("li", {}, h("button", { class: "link", onclick: () => open(f) }, label), h("span", { class: "muted" }, " " + bytes(f.file_size)));
      }));
    } catch (e) { clear(ul, h("li", {}, errorBox(e))); }
  }
  const showError = (e) => clear(preview, errorBox(e));
  const all = h("button", { id: "download-all", title: "Download every artifact of this run as a .zip", onclick: () => downloadZip(run, "", showError) }, "Download all (.zip)");
  list("", tree);
  return h("div", { class: "artifacts" }, h("div", { class: "tree-wrap" }, h("div", { class: "toolbar" }, all), tree), preview);
}
