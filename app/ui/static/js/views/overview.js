// Overview: the brokers (alive or fenced, which one is the controller), version, catalog, disk, counts.

import { api } from "../api.js";
import { bytes, h, table } from "../dom.js";

export async function overview() {
  const [cluster, logDirs, topicList, groupList] = await Promise.all([
    api("GET", "/v1/cluster"),
    // Needs CLUSTER DESCRIBE when the broker enforces ACLs: without it the cards it fills are left out.
    api("GET", "/v1/log-dirs").catch(() => null),
    api("GET", "/v1/topics", { query: { limit: 1 } }),
    api("GET", "/v1/groups"),
  ]);
  const dir = logDirs ? logDirs.log_dirs[0] : null;
  const brokers = cluster.brokers.map((b) => [
    String(b.broker_id),
    b.url,
    h("span", { class: `state ${b.state}` }, b.state),
    b.broker_id === cluster.controller_id ? "controller" : "",
  ]);
  return h("section", { class: "overview" },
    h("h1", {}, "Overview"),
    h("div", { class: "cards" },
      card("Version", cluster.version),
      card("Brokers", `${cluster.brokers.filter((b) => b.state === "alive").length} alive of ${cluster.brokers.length}`),
      logDirs ? card("Catalog", logDirs.catalog) : null,
      card("Topics", String(topicList.total)),
      card("Groups", String(groupList.groups.length)),
      card("Under-replicated", String(cluster.under_replicated_partitions.length)),
      dir ? card(`Disk of broker ${logDirs.broker_id}`,
        `${bytes(dir.size_bytes)} in logs · ${bytes(dir.usable_bytes)} free of ${bytes(dir.total_bytes)}`) : null,
    ),
    h("h2", {}, "Brokers"),
    table(["Id", "URL", "State", "Role"], brokers, { id: "brokers" }),
  );
}

function card(title, value) {
  return h("div", { class: "card" }, h("div", { class: "card-title" }, title), h("div", { class: "card-value" }, value));
}
