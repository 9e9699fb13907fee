// A consumer group: state, members and their assignments, total and per-partition lag; reset offsets
// (earliest, latest, timestamp, offset, shift-by) with a dry run first, only while the group is empty
// (the broker refuses otherwise, as Kafka does); delete.

import { api, seg } from "../api.js";
import { field, h, notice, replace, table } from "../dom.js";
import { can } from "../permissions.js";
import { errorView } from "../state.js";

export async function group([id]) {
  const g = await api("GET", `/v1/groups/${seg(id)}`, { query: { include_authorized_operations: true } });
  const members = g.members.map((m) => [
    m.member_id, m.client_kind, (m.topics || []).join(", ") || m.topic_pattern || "—",
    m.assignment.map((a) => `${a.topic}[${a.partition}]`).join(" "),
  ]);
  const offsets = g.offsets.map((o) => [o.topic, String(o.partition), o.offset, o.high_watermark ?? "—", o.lag ?? "—", o.metadata ?? ""]);
  const empty = g.state === "Empty" || g.state === "Dead";
  return h("section", {},
    h("h1", {}, id),
    h("div", { class: "cards" },
      h("div", { class: "card" }, h("div", { class: "card-title" }, "State"), h("div", { class: "card-value", id: "group-state" }, g.state)),
      h("div", { class: "card" }, h("div", { class: "card-title" }, "Total lag"), h("div", { class: "card-value", id: "group-lag" }, g.total_lag)),
      h("div", { class: "card" }, h("div", { class: "card-title" }, "Generation"), h("div", { class: "card-value" }, String(g.generation)))),
    h("h2", {}, "Members"),
    members.length ? table(["Member", "Client", "Subscription", "Assignment"], members, { id: "members" }) : h("p", { class: "muted" }, "No members."),
    h("h2", {}, "Committed offsets"),
    offsets.length ? table(["Topic", "Partition", "Offset", "High watermark", "Lag", "Metadata"], offsets, { id: "group-offsets" })
      : h("p", { class: "muted" }, "Nothing committed."),
    can(g, "READ") ? [
      h("h2", {}, "Reset offsets"),
      empty ? null : notice("info", "Offsets can be reset only while the group has no members (stop its consumers first)."),
      resetForm(id, g),
    ] : null,
    can(g, "DELETE") ? deleteForm(id) : null,
  );
}

function resetForm(id, g) {
  const topicNames = [...new Set(g.offsets.map((o) => o.topic).concat(g.members.flatMap((m) => m.topics || [])))];
  const topics = h("input", { name: "topics", value: topicNames.join(","), placeholder: "topic,topic" });
  const to = h("select", { name: "to" }, ["earliest", "latest", "timestamp", "offset", "shift_by"].map((s) => h("option", { value: s }, s.replace("_", "-"))));
  const value = h("input", { name: "value", placeholder: "timestamp ms, offset, or shift (may be negative)" });
  const status = h("div", { id: "reset-result" });
  const dryRun = h("button", { type: "submit", name: "dry_run", value: "1" }, "Dry run");
  const apply = h("button", { type: "submit", name: "apply", value: "1", class: "danger" }, "Reset");
  const form = h("form", { class: "panel", id: "reset-offsets" },
    field("Topics", topics), field("To", to), field("Value", value), dryRun, apply, status);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const isDry = event.submitter !== apply;
    const body = { topics: topics.value.split(",").map((s) => s.trim()).filter(Boolean), to: to.value, dry_run: isDry };
    if (["timestamp", "offset", "shift_by"].includes(to.value)) {
      if (!/^-?\d+$/.test(value.value.trim())) { replace(status, notice("error", "This reset needs a whole number in Value")); return; }
      body.value = Number(value.value.trim());
    }
    try {
      const answer = await api("POST", `/v1/groups/${seg(id)}/offsets/reset`, { body });
      const rows = answer.offsets.map((o) => [o.topic, String(o.partition), o.previous_offset ?? "—", o.offset]);
      replace(status, notice("info", isDry ? "Dry run: nothing changed" : "Offsets reset"),
        table(["Topic", "Partition", "Before", "After"], rows));
    } catch (err) {
      replace(status, errorView(err));
    }
  });
  return form;
}

function deleteForm(id) {
  const status = h("div", {});
  const button = h("button", { type: "button", class: "danger", id: "delete-group" }, "Delete group");
  button.addEventListener("click", async () => {
    if (!window.confirm(`Delete group ${id}?`)) return;
    try {
      await api("DELETE", `/v1/groups/${seg(id)}`);
      window.location.hash = "#/groups";
    } catch (err) {
      replace(status, errorView(err));
    }
  });
  return h("div", { class: "panel danger" }, button, status);
}
