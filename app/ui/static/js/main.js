// The console's shell: a router over the URL's fragment (#/topics/orders/messages?offset=5), so a
// reload or a shared link shows the same view with the same inputs.

import { api } from "./api.js";
import { h, notice, replace } from "./dom.js";
import { errorView, location, settings } from "./state.js";
import { overview } from "./views/overview.js";
import { topics } from "./views/topics.js";
import { topic } from "./views/topic.js";
import { messages } from "./views/messages.js";
import { tail } from "./views/tail.js";
import { produce } from "./views/produce.js";
import { groups } from "./views/groups.js";
import { group } from "./views/group.js";

const ROUTES = [
  [/^\/$/, overview, "overview"],
  [/^\/topics$/, topics, "topics"],
  [/^\/topics\/([^/]+)$/, topic, "topics"],
  [/^\/topics\/([^/]+)\/messages$/, messages, "topics"],
  [/^\/topics\/([^/]+)\/tail$/, tail, "topics"],
  [/^\/topics\/([^/]+)\/produce$/, produce, "topics"],
  [/^\/groups$/, groups, "groups"],
  [/^\/groups\/([^/]+)$/, group, "groups"],
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
      if (mine === generation) replace(view, errorView(err));
    }
    return;
  }
  replace(view, notice("error", `No page at ${path}`));
}

async function start() {
  try {
    Object.assign(settings, await api("GET", "/ui/config.json"));
    document.getElementById("version").textContent = `v${settings.version}`;
  } catch (err) {
    console.warn("console settings unavailable", err);
  }
  window.addEventListener("hashchange", render);
  await render();
}

start();
