// Consumer groups: state, assignor, generation and members of each.

import { api, seg } from "../api.js";
import { h, table } from "../dom.js";

export async function groups() {
  const answer = await api("GET", "/v1/groups");
  const rows = answer.groups.map((g) => [
    h("a", { href: `#/groups/${seg(g.group_id)}` }, g.group_id), g.state, g.protocol ?? "—",
    String(g.generation), String(g.members),
  ]);
  return h("section", {}, h("h1", {}, "Consumer groups"),
    rows.length ? table(["Group", "State", "Assignor", "Generation", "Members"], rows, { id: "groups" })
      : h("p", { class: "muted" }, "No consumer groups yet."));
}
