// Hash router + login. Every page renders into #app; any error becomes a message, never a blank page.
import { auth, ApiError, postWith, probe } from "./api.js";
import { clear, errorBox, h } from "./format.js";
import { experimentsPage } from "./experiments.js";
import { runsPage } from "./runs.js";
import { runPage } from "./run.js";
import { comparePage } from "./compare.js";
import { modelsPage, modelPage } from "./registry.js";

const root = document.getElementById("app");
let renderSeq = 0;

const routes = [
  [/^\/?$/, () => experimentsPage, "experiments"],
  [/^\/experiments\/([^/]+)$/, () => runsPage, "experiments"],
  [/^\/runs\/([^/]+)$/, () => runPage, "experiments"],
  [/^\/compare$/, () => comparePage, "experiments"],
  [/^\/models$/, () => modelsPage, "models"],
  [/^\/models\/(.+)$/, () => modelPage, "models"],
  [/^\/login$/, () => loginPage, ""],
];

function parseHash() {
  const raw = location.hash.replace(/^#/, "") || "/";
  const [path, query] = raw.split("?");
  return { path, query: new URLSearchParams(query || "") };
}

async function render() {
  const seq = ++renderSeq;
  const { path, query } = parseHash();
  for (const [re, page, nav] of routes) {
    const m = path.match(re);
    if (!m) continue;
    document.querySelectorAll("[data-nav]").forEach((a) => a.classList.toggle("active", a.dataset.nav === nav));
    const view = h("div", { class: "page" }, h("p", { class: "muted" }, "Loading…"));
    clear(root, view);
    try {
      await page()(view, m.slice(1).map(decodeURIComponent), query);
    } catch (err) {
      if (seq !== renderSeq) return;
      if (err instanceof ApiError && err.status === 401) return; // the login page takes over
      console.error(err);
      clear(view, errorBox(err));
    }
    return;
  }
  clear(root, h("div", { class: "page" }, errorBox(new Error(`No page at ${path}`)), h("a", { href: "#/" }, "Back to experiments")));
}

function showUser() {
  const el = document.getElementById("user");
  if (auth.header) {
    clear(el, h("span", { class: "muted" }, auth.user || "signed in"), " ",
      h("button", { class: "link", onclick: () => { auth.clear(); location.hash = "#/login"; } }, "Sign out"));
  } else clear(el);
}

let returnTo = "";
window.addEventListener("flowml:unauthenticated", () => {
  if (parseHash().path === "/login") return;
  returnTo = location.hash;
  auth.clear();
  location.hash = "#/login";
});

async function loginPage(view) {
  const msg = h("div", { id: "login-error" });
  // Not `required`: a pasted token alone signs in too (checked on submit instead).
  const user = h("input", { name: "username", autocomplete: "username", autofocus: true });
  const pass = h("input", { name: "password", type: "password", autocomplete: "current-password" });
  const token = h("input", { name: "token", placeholder: "or paste an API token", autocomplete: "off" });
  const form = h("form", { class: "card login", onsubmit: async (e) => {
    e.preventDefault();
    clear(msg);
    if (!token.value.trim() && !user.value.trim()) { clear(msg, errorBox(new Error("Enter a username and password, or an API token."))); return; }
    try {
      let header;
      if (token.value.trim()) {
        header = "Bearer " + token.value.trim();
        const me = await probe("users/current", header);
        auth.setUser((me.user && me.user.username) || "token");
      } else {
        const basic = "Basic " + btoa(unescape(encodeURIComponent(`${user.value}:${pass.value}`)));
        const me = await probe("users/current", basic);
        auth.setUser((me.user && me.user.username) || user.value);
        // Trade the password for a session token so the password is not kept in the browser.
        try {
          const t = await postWith("users/tokens", { name: "flowml-ui" }, basic);
          header = "Bearer " + t.token;
        } catch { header = basic; }
      }
      auth.set(header);
      showUser();
      location.hash = returnTo && returnTo !== "#/login" ? returnTo : "#/";
    } catch (err) {
      clear(msg, errorBox(err.status === 401 ? new Error("Wrong username, password or token.") : err));
    }
  } },
  h("h1", {}, "Sign in to flowml"),
  h("label", {}, "Username", user), h("label", {}, "Password", pass),
  h("label", {}, "API token", token),
  h("button", { type: "submit", class: "primary" }, "Sign in"), msg);
  clear(view, form);
}

window.addEventListener("hashchange", () => { showUser(); render(); });
showUser();
render();
