// Produce one record: key, value (JSON or text), headers, partition; shows the offset it got.

import { api, seg } from "../api.js";
import { field, h, notice, replace } from "../dom.js";
import { can } from "../permissions.js";
import { errorView } from "../state.js";

export async function produce([name]) {
  const info = await api("GET", `/v1/topics/${seg(name)}`, { query: { include_authorized_operations: true } });
  if (!can(info, "WRITE")) {
    return h("section", {}, h("h1", {}, name), notice("info", "You may not produce to this topic."));
  }
  const key = h("input", { name: "key", placeholder: "no key" });
  const value = h("textarea", { name: "value", rows: "6", placeholder: '{"hello": "world"}' });
  const valueFormat = h("select", { name: "value_format" }, h("option", { value: "json" }, "JSON"), h("option", { value: "string" }, "text"));
  const headers = h("textarea", { name: "headers", rows: "3", placeholder: "one header per line: name=value" });
  const partition = h("select", { name: "partition" }, h("option", { value: "" }, "by key / sticky"),
    info.partitions.map((p) => h("option", { value: String(p.partition) }, String(p.partition))));
  const status = h("div", { id: "produce-result" });
  const form = h("form", { class: "panel", id: "produce" },
    field("Key", key), field("Value", value), field("Value format", valueFormat), field("Headers", headers),
    field("Partition", partition), h("button", { type: "submit" }, "Produce"), status);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    let parsedValue = value.value;
    if (valueFormat.value === "json") {
      try {
        parsedValue = JSON.parse(value.value);
      } catch (err) {
        replace(status, notice("error", `The value is not JSON: ${err.message}`));
        return;
      }
    }
    const record = { key: key.value === "" ? null : key.value, value: parsedValue };
    const lines = headers.value.split("\n").map((l) => l.trim()).filter(Boolean);
    if (lines.length) {
      record.headers = lines.map((line) => {
        const at = line.indexOf("=");
        return at < 0 ? { key: line, value: null } : { key: line.slice(0, at), value: line.slice(at + 1) };
      });
    }
    if (partition.value !== "") record.partition = Number(partition.value);
    try {
      const answer = await api("POST", `/v1/topics/${seg(name)}/records`, {
        body: { records: [record], value_format: valueFormat.value, key_format: "string" },
      });
      const result = answer.results[0];
      if (result.error_code) {
        replace(status, notice("error", `${result.message} (error_code ${result.error_code})`));
      } else {
        replace(status, notice("info", `Produced to partition ${result.partition} at offset ${result.offset}`),
          h("a", { href: `#/topics/${seg(name)}/messages?partitions=${result.partition}&start=offset&at=${result.offset}&max_results=1` }, "Show it"));
      }
    } catch (err) {
      replace(status, errorView(err));
    }
  });
  return h("section", {}, h("h1", {}, h("a", { href: `#/topics/${seg(name)}` }, name), " · produce"), form);
}
