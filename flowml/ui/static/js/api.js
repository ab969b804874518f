// The only place that talks HTTP. Credentials live in sessionStorage (a Bearer token after login).
const KEY = "flowml.auth";

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `HTTP ${status}`);
    this.status = status;
    this.code = (body && body.error_code) || "";
    this.body = body || {};
  }
}

export const auth = {
  get header() { return sessionStorage.getItem(KEY) || ""; },
  set(header) { sessionStorage.setItem(KEY, header); },
  clear() { sessionStorage.removeItem(KEY); sessionStorage.removeItem(KEY + ".user"); },
  get user() { return sessionStorage.getItem(KEY + ".user") || ""; },
  setUser(u) { sessionStorage.setItem(KEY + ".user", u); },
};

function url(path, query) {
  const base = path.startsWith("/") ? path : "/api/2.0/mlflow/" + path;
  const u = new URL(base, location.origin);
  for (const [k, v] of Object.entries(query || {})) {
    if (v === undefined || v === null || v === "") continue;
    if (Array.isArray(v)) v.forEach((x) => u.searchParams.append(k, x));
    else u.searchParams.set(k, v);
  }
  return u.pathname + u.search;
}

export async function send(method, path, { query, body, header } = {}) {
  const headers = { Accept: "application/json" };
  const a = header !== undefined ? header : auth.header;
  if (a) headers.Authorization = a;
  const init = { method, headers };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(url(path, query), init);
  } catch (e) {
    throw new ApiError(0, { error_code: "NETWORK", message: "The server did not answer: " + e.message });
  }
  return res;
}

/** The JSON body of a response; an ApiError for an error response. */
export async function parse(res) {
  const text = await res.text();
  let data = {};
  if (text) {
    try { data = JSON.parse(text); } catch { data = { message: text.slice(0, 500) }; }
  }
  if (!res.ok) {
    const err = new ApiError(res.status, data);
    if (res.status === 401) window.dispatchEvent(new CustomEvent("flowml:unauthenticated", { detail: err }));
    throw err;
  }
  return data;
}

export async function api(method, path, opts = {}) {
  return parse(await send(method, path, opts));
}
export const get = (path, query) => api("GET", path, { query });
export const post = (path, body) => api("POST", path, { body });
export const patch = (path, body) => api("PATCH", path, { body });
export const del = (path, body) => api("DELETE", path, { body });

/** Raw bytes (artifact previews/downloads go through fetch so auth headers are sent). */
export async function blob(path) {
  const res = await send("GET", path);
  if (!res.ok) await parse(res);
  return res.blob();
}

/** Try credentials without touching the stored ones. */
export async function probe(path, header) {
  return parse(await send("GET", path, { header }));
}
export async function postWith(path, body, header) {
  return parse(await send("POST", path, { body, header }));
}
