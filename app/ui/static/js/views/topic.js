// A topic: each partition's offsets, size, leader, replicas and ISR; its configs (editable); the
// groups reading it with their lag; add partitions; delete.

import { api, seg } from "../api.js";
import { bytes, field, h, notice, replace, table } from "../dom.js";
import { can } from "../permissions.js";
import { errorView } from "../state.js";

export async function topic([name]) {
  const [info, logDirs, groupList] = await Promise.all([
    api("GET", `/v1/topics/${seg(name)}`, { query: { include_authorized_operations: true } }),
    // Needs CLUSTER DESCRIBE when the broker enforces ACLs: without it the sizes show as "—".
    api("GET", "/v1/log-dirs").catch(() => ({ log_dirs: [] })),
    api("GET", "/v1/groups"),
  ]);
  const sizes = new Map(logDirs.log_dirs.flatMap((d) => d.partitions)
    .filter((p) => p.topic === name).map((p) => [p.partition, p.size_bytes]));
  const partitions = info.partitions.map((p) => [
    String(p.partition), p.log_start_offset, p.high_watermark,
    String(BigInt(p.high_watermark) - BigInt(p.log_start_offset)),
    sizes.has(p.partition) ? bytes(sizes.get(p.partition)) : "—",
    p.leader === null ? "none" : String(p.leader), p.replicas.join(", "), p.isr.join(", "),
  ]);
  const readers = h("div", { id: "topic-groups" }, h("p", { class: "muted" }, "Loading groups…"));
  loadReaders(name, groupList.groups, readers);
  return h("section", {},
    h("h1", {}, name),
    h("p", { class: "muted" }, `id ${info.topic_id} · ${info.partition_count} partitions · replication ${info.replication_factor}`),
    h("div", { class: "toolbar" },
      can(info, "READ") ? h("a", { class: "button", href: `#/topics/${seg(name)}/messages`, id: "messages-link" }, "Messages") : null,
      can(info, "READ") ? h("a", { class: "button", href: `#/topics/${seg(name)}/tail`, id: "tail-link" }, "Live tail") : null,
      can(info, "WRITE") ? h("a", { class: "button", href: `#/topics/${seg(name)}/produce`, id: "produce-link" }, "Produce") : null),
    h("h2", {}, "Partitions"),
    table(["Partition", "Log start", "High watermark", "Records", "Size", "Leader", "Replicas", "ISR"], partitions, { id: "partitions" }),
    h("h2", {}, "Consumer groups"),
    readers,
    h("h2", {}, "Configs"),
    configsForm(name, info, can(info, "ALTER_CONFIGS")),
    can(info, "ALTER") || can(info, "DELETE") ? h("h2", {}, "Administration") : null,
    can(info, "ALTER") ? partitionsForm(name, info.partition_count) : null,
    can(info, "DELETE") ? deleteForm(name) : null,
  );
}

async function loadReaders(name, summaries, target) {
  try {
    const described = await Promise.all(summaries.map((g) => api("GET", `/v1/groups/${seg(g.group_id)}`)));
    const rows = [];
    for (const g of described) {
      const mine = g.offsets.filter((o) => o.topic === name);
      if (mine.length === 0) continue;
      const lag = mine.reduce((sum, o) => sum + BigInt(o.lag ?? 0), 0n);
      rows.push([h("a", { href: `#/groups/${seg(g.group_id)}` }, g.group_id), g.state, String(g.members.length), String(lag)]);
    }
    replace(target, rows.length ? table(["Group", "State", "Members", "Lag"], rows) : h("p", { class: "muted" }, "No group has committed offsets here."));
  } catch (err) {
    replace(target, errorView(err));
  }
}

function configsForm(name, info, editable) {
  const status = h("div", {});
  const inputs = new Map();
  const rows = Object.entries(info.configs).sort(([a], [b]) => a.localeCompare(b)).map(([key, value]) => {
    const input = h("input", { name: key, value: value === null ? "" : String(value), readonly: !editable });
    inputs.set(key, { input, before: value === null ? "" : String(value), type: typeof value });
    return [key, input, info.defaults.includes(key) ? "default" : "set on topic"];
  });
  const form = h("form", { class: "panel", id: "configs" }, table(["Config", "Value", "Source"], rows),
    editable ? h("button", { type: "submit" }, "Save changed configs") : null, status);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const changes = {};
    for (const [key, { input, before, type }] of inputs) {
      if (input.value === before) continue;
      changes[key] = input.value === "" ? null : type === "number" ? Number(input.value) : input.value;
    }
    if (Object.keys(changes).length === 0) { replace(status, notice("info", "Nothing changed")); return; }
    try {
      await api("PUT", `/v1/topics/${seg(name)}/configs`, { body: { configs: changes } });
      replace(status, notice("info", `Saved ${Object.keys(changes).join(", ")}`));
    } catch (err) {
      replace(status, errorView(err));
    }
  });
  return form;
}

function partitionsForm(name, count) {
  const input = h("input", { name: "partitions", type: "number", min: String(count + 1), value: String(count + 1) });
  const status = h("div", {});
  const form = h("form", { class: "panel", id: "add-partitions" }, field("Partition count", input),
    h("button", { type: "submit" }, "Add partitions"), status);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await api("PATCH", `/v1/topics/${seg(name)}`, { body: { partitions: Number(input.value) } });
      window.dispatchEvent(new HashChangeEvent("hashchange"));
    } catch (err) {
      replace(status, errorView(err));
    }
  });
  return form;
}

function deleteForm(name) {
  const confirmName = h("input", { name: "confirm", placeholder: `type ${name} to confirm` });
  const status = h("div", {});
  const form = h("form", { class: "panel danger", id: "delete-topic" }, field("Delete this topic", confirmName),
    h("button", { type: "submit", class: "danger" }, "Delete topic"), status);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (confirmName.value !== name) { replace(status, notice("error", "Type the topic's name to confirm")); return; }
    try {
      await api("DELETE", `/v1/topics/${seg(name)}`);
      window.location.hash = "#/topics";
    } catch (err) {
      replace(status, errorView(err));
    }
  });
  return form;
}
