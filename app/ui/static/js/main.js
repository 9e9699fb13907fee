// The console's shell: a router over the URL's fragment (#/topics/orders/messages?offset=5), so a
// reload or a shared link shows the same view with the same inputs.

import { api, ApiError } from "./api.js";
import { h, notice, replace } from "./dom.js";
import { errorView, location, settings } from "./state.js";
import { login } from "./views/login.js";
import { overview } from "./views/overview.js";
import { topics } from "./views/topics.js";
import { topic } from "./views/topic.js";
import { messages } from "./views/messages.js";
import { tail } from "./views/tail.js";
import { produce } from "./views/produce.js";
import { groups } from "./views/groups.js";
import { group } from "./views/group.js";
import { connector, connectors } from "./views/connectors.js";

const ROUTES = [
  [/^\/$/, overview, "overview"],
  [/^\/topics$/, topics, "topics"],
  [/^\/topics\/([^/]+)$/, topic, "topics"],
  [/^\/topics\/([^/]+)\/messages$/, messages, "topics"],
  [/^\/topics\/([^/]+)\/tail$/, tail, "topics"],
  [/^\/topics\/([^/]+)\/produce$/, produce, "topics"],
  [/^\/groups$/, groups, "groups"],
  [/^\/groups\/([^/]+)$/, group, "groups"],
  [/^\/connectors$/, connectors, "connectors"],
  [/^\/connectors\/([^/]+)$/, connector, "connectors"],
];

let cleanup = null;
let generation = 0;

async function render() {
  const mine = ++generation;
  if (cleanup) {
    try { cleanup(); } catch (err) { console.warn(err); }
    cleanup = null;
  }
  const view = document.getElementById("view");
  const { path, query } = location();
  for (const link of document.querySelectorAll("#nav a")) link.classList.remove("active");
  for (const [pattern, build, nav] of ROUTES) {
    const match = pattern.exec(path);
    if (!match) continue;
    document.querySelector(`#nav a[data-nav="${nav}"]`)?.classList.add("active");
    const params = match.slice(1).map(decodeURIComponent);
    replace(view, h("p", { class: "muted" }, "Loading…"));
    try {
      const ctx = { onCleanup: (fn) => { cleanup = fn; }, isCurrent: () => mine === generation };
      const node = await build(params, query, ctx);
      if (mine === generation) replace(view, node);
    } catch (err) {
      if (mine !== generation) return;
      if (err instanceof ApiError && err.status === 401) {
        replace(view, login(async () => { await whoami(); await render(); }, err.message));
      } else {
        replace(view, errorView(err));
      }
    }
    return;
  }
  replace(view, notice("error", `No page at ${path}`));
}

/** Shows who is signed in, with a sign-out button when the broker authenticates callers. */
async function whoami() {
  const slot = document.getElementById("who");
  if (!settings.auth_enabled) return;
  try {
    const me = await api("GET", "/v1/whoami");
    if (me.auth_method === "anonymous") {
      replace(slot);
      return;
    }
    const out = h("button", { type: "button", id: "sign-out", class: "link" }, "Sign out");
    out.addEventListener("click", async () => {
      await api("DELETE", "/v1/sessions").catch(() => null);
      await whoami();
      await render();
    });
    replace(slot, h("span", { id: "principal" }, me.principal), out);
  } catch {
    replace(slot);  // not signed in (401) or a broker without authentication
  }
}

async function start() {
  try {
    Object.assign(settings, await api("GET", "/ui/config.json"));
    document.getElementById("version").textContent = `v${settings.version}`;
    document.getElementById("nav-connectors").hidden = !settings.connect_enabled;
  } catch (err) {
    console.warn("console settings unavailable", err);
  }
  await whoami();
  window.addEventListener("hashchange", render);
  await render();
}

start();
