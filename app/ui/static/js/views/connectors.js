// Connectors (tidelog connect, Kafka Connect's REST API under /v1): every connector with its state
// and its tasks' states; one connector's config (PASSWORD settings come back as [hidden]), status with
// the failed tasks' traces, and pause / resume / restart.

import { api, seg } from "../api.js";
import { h, notice, replace, table } from "../dom.js";
import { errorView } from "../state.js";

export async function connectors() {
  const answer = await api("GET", "/v1/connectors", { query: { expand: ["status", "info"] } });
  const rows = Object.entries(answer).sort(([a], [b]) => a.localeCompare(b)).map(([name, c]) => {
    const status = c.status || {};
    const tasks = status.tasks || [];
    return [
      h("a", { href: `#/connectors/${seg(name)}` }, name),
      c.info ? c.info.type : "—",
      c.info ? c.info.config["connector.class"] : "—",
      h("span", { class: `state ${(status.connector || {}).state || ""}` }, (status.connector || {}).state || "—"),
      `${tasks.filter((t) => t.state === "RUNNING").length} running of ${tasks.length}`,
    ];
  });
  return h("section", {}, h("h1", {}, "Connectors"),
    rows.length ? table(["Name", "Type", "Class", "State", "Tasks"], rows, { id: "connectors" })
      : h("p", { class: "muted" }, "No connectors. Create one with `tidelog connect create` or POST /v1/connectors."));
}

export async function connector([name]) {
  const [info, status] = await Promise.all([
    api("GET", `/v1/connectors/${seg(name)}`),
    api("GET", `/v1/connectors/${seg(name)}/status`),
  ]);
  const result = h("div", { id: "connector-action" });
  const act = (label, method, path, query) => h("button", {
    type: "button", "data-action": label.toLowerCase(),
    onclick: async () => {
      try {
        await api(method, `/v1/connectors/${seg(name)}${path}`, { query });
        replace(result, notice("info", `${label}: requested`));
        setTimeout(() => window.dispatchEvent(new HashChangeEvent("hashchange")), 800);
      } catch (err) {
        replace(result, errorView(err));
      }
    },
  }, label);
  const tasks = (status.tasks || []).map((t) => [
    String(t.id), h("span", { class: `state ${t.state}` }, t.state), t.worker_id || "—",
    t.trace ? h("pre", { class: "trace" }, t.trace) : "",
  ]);
  const config = Object.entries(info.config).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => [k, String(v)]);
  return h("section", {},
    h("h1", {}, name),
    h("p", { class: "muted" }, `${info.type} · ${info.config["connector.class"]} · state `,
      h("span", { id: "connector-state" }, status.connector.state), status.connector.worker_id ? ` on ${status.connector.worker_id}` : ""),
    status.connector.trace ? h("pre", { class: "trace" }, status.connector.trace) : null,
    h("div", { class: "toolbar" },
      act("Pause", "PUT", "/pause"), act("Resume", "PUT", "/resume"),
      act("Restart", "POST", "/restart", { includeTasks: true, onlyFailed: false }),
      act("Restart failed", "POST", "/restart", { includeTasks: true, onlyFailed: true })),
    result,
    h("h2", {}, "Tasks"),
    tasks.length ? table(["Task", "State", "Worker", "Trace"], tasks, { id: "connector-tasks" }) : h("p", { class: "muted" }, "No tasks."),
    h("h2", {}, "Config"),
    table(["Setting", "Value"], config, { id: "connector-config" }));
}
