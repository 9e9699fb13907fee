// Topics: filtered and paged on the broker (name_contains, offset, limit), so 1,000 topics cost one
// small answer; create a topic.

import { api, seg } from "../api.js";
import { field, h, notice, replace, table } from "../dom.js";
import { can } from "../permissions.js";
import { errorView, setQuery } from "../state.js";

const PAGE = 50;

export async function topics(_params, query) {
  const state = { filter: query.get("filter") || "", page: Math.max(0, Number(query.get("page") || 0) | 0) };
  const list = h("div", { id: "topic-list" });
  const filter = h("input", { type: "search", name: "filter", placeholder: "Filter by name", value: state.filter });
  let timer = null;
  filter.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => { state.filter = filter.value; state.page = 0; load(); }, 200);
  });

  async function load() {
    setQuery(pruned({ filter: state.filter, page: state.page || "" }));
    try {
      const answer = await api("GET", "/v1/topics", {
        query: { name_contains: state.filter, offset: state.page * PAGE, limit: PAGE, stats: true },
      });
      const pages = Math.max(1, Math.ceil(answer.total / PAGE));
      const rows = answer.topics.map((t) => [
        h("a", { href: `#/topics/${seg(t.name)}` }, t.name),
        String(t.partition_count),
        String(t.replication_factor),
        t.records === null ? "—" : t.records,
      ]);
      replace(list,
        h("p", { class: "muted", id: "topic-count" }, `${answer.total} topic${answer.total === 1 ? "" : "s"}`),
        table(["Name", "Partitions", "Replication", "Records"], rows, { id: "topics" }),
        h("div", { class: "pager" },
          h("button", { type: "button", disabled: state.page === 0, onclick: () => { state.page -= 1; load(); } }, "Previous"),
          h("span", {}, `Page ${state.page + 1} of ${pages}`),
          h("button", { type: "button", disabled: state.page + 1 >= pages, onclick: () => { state.page += 1; load(); } }, "Next")),
      );
    } catch (err) {
      replace(list, errorView(err));
    }
  }

  await load();
  const cluster = await api("GET", "/v1/cluster", { query: { include_authorized_operations: true } });
  return h("section", {},
    h("h1", {}, "Topics"),
    h("div", { class: "toolbar" }, filter),
    list,
    can(cluster, "CREATE") ? createForm(load) : null,
  );
}

function createForm(reload) {
  const name = h("input", { name: "name", required: true, pattern: "[a-zA-Z0-9._-]+", maxlength: "249" });
  const partitions = h("input", { name: "partitions", type: "number", min: "1", value: "1" });
  const replication = h("input", { name: "replication_factor", type: "number", min: "1", value: "1" });
  const status = h("div", {});
  const form = h("form", { class: "panel", id: "create-topic" },
    h("h2", {}, "Create a topic"),
    field("Name", name), field("Partitions", partitions), field("Replication factor", replication),
    h("button", { type: "submit" }, "Create"), status);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await api("POST", "/v1/topics", {
        body: { name: name.value, partitions: Number(partitions.value), replication_factor: Number(replication.value) },
      });
      replace(status, notice("info", `Created ${name.value}`));
      form.reset();
      await reload();
    } catch (err) {
      replace(status, errorView(err));
    }
  });
  return form;
}

export function pruned(object) {
  return Object.fromEntries(Object.entries(object).filter(([, v]) => v !== "" && v !== null && v !== undefined));
}
