// Formatting for people, and a tiny DOM builder (no innerHTML with data: nothing to escape wrong).

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k === "value") el.value = v;
    else if (k === "style") el.style.cssText = v; // CSSOM: allowed by the strict CSP
    else if (k === "checked") el.checked = !!v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function clear(el, ...children) {
  el.replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
  return el;
}

export function duration(ms) {
  if (ms === null || ms === undefined || !isFinite(ms) || ms < 0) return "—";
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)}s`;
  const m = Math.floor(s / 60), rs = Math.round(s % 60);
  if (m < 60) return `${m}m ${rs}s`;
  const hr = Math.floor(m / 60), rm = m % 60;
  if (hr < 48) return `${hr}h ${rm}m`;
  return `${Math.floor(hr / 24)}d ${hr % 24}h`;
}

export function relative(ts, now = Date.now()) {
  if (!ts) return "—";
  const d = (now - Number(ts)) / 1000;
  const fut = d < 0, a = Math.abs(d);
  let t;
  if (a < 45) t = "just now";
  else if (a < 90) t = "1 minute";
  else if (a < 3600) t = `${Math.round(a / 60)} minutes`;
  else if (a < 5400) t = "1 hour";
  else if (a < 86400) t = `${Math.round(a / 3600)} hours`;
  else if (a < 172800) t = "1 day";
  else if (a < 30 * 86400) t = `${Math.round(a / 86400)} days`;
  else return absolute(ts);
  return t === "just now" ? t : fut ? `in ${t}` : `${t} ago`;
}

export function absolute(ts) {
  if (!ts) return "—";
  const d = new Date(Number(ts));
  const p = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

export function timeEl(ts) {
  return h("time", { title: absolute(ts), datetime: ts ? new Date(Number(ts)).toISOString() : "" }, relative(ts));
}

export function num(v) {
  if (v === null || v === undefined || v === "") return "";
  if (typeof v === "string") {
    if (["NaN", "Infinity", "-Infinity"].includes(v)) return v;
    const f = Number(v);
    if (v.trim() === "" || !isFinite(f)) return v;
    v = f;
  }
  if (Number.isInteger(v) && Math.abs(v) < 1e15) return v.toLocaleString("en-US");
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-4 || a >= 1e9)) return v.toExponential(4);
  return String(Number(v.toPrecision(6)));
}

export function bytes(n) {
  if (n === null || n === undefined) return "";
  const u = ["B", "KB", "MB", "GB", "TB"];
  let i = 0, x = Number(n);
  while (x >= 1024 && i < u.length - 1) { x /= 1024; i++; }
  return `${i ? x.toFixed(1) : x} ${u[i]}`;
}

export function tagsOf(list) {
  const o = {};
  for (const t of list || []) o[t.key] = t.value;
  return o;
}

export function shortId(id) { return id ? String(id).slice(0, 8) : ""; }

export function toast(message, kind = "info") {
  const box = document.getElementById("toasts");
  const el = h("div", { class: `toast ${kind}`, role: "status" }, message);
  box.append(el);
  setTimeout(() => el.remove(), 5000);
}

export function errorBox(err) {
  if (err && err.status === 403) {
    return h("div", { class: "error-box forbidden", role: "alert" },
      h("strong", {}, "Permission denied. "), err.message || "",
      h("p", { class: "muted" }, "Ask an admin or the owner of this resource for access."));
  }
  return h("div", { class: "error-box", role: "alert" },
    h("strong", {}, err && err.code ? `${err.code}: ` : "Error: "), (err && err.message) || String(err));
}

export function downloadBlob(blob, name) {
  const a = h("a", { href: URL.createObjectURL(blob), download: name });
  document.body.append(a);
  a.click();
  setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
}

export function qs(hashQuery) {
  return Object.fromEntries(new URLSearchParams(hashQuery || ""));
}
