// Messages: choose partitions and a start (oldest, newest N, offset, timestamp), then scan with two
// separate budgets — results wanted and records scanned — and a contains-filter on key, value and
// headers. Counters update after every fetch; "Continue" goes on from where the scan stopped. Every
// input lives in the URL, so a reload or a shared link shows the same rows.

import { api, seg } from "../api.js";
import { field, h, notice, replace } from "../dom.js";
import { download, fromFetched, matches, show, toCsv, toNdjson } from "../records.js";
import { errorView, setQuery, settings } from "../state.js";
import { pruned } from "./topics.js";

const FETCH_MAX = 500;

export async function messages([name], query, ctx) {
  const info = await api("GET", `/v1/topics/${seg(name)}`);
  const q = (key, fallback) => query.get(key) ?? fallback;
  const inputs = {
    partitions: h("input", { name: "partitions", value: q("partitions", ""), placeholder: "all (or 0,2,5)" }),
    start: h("select", { name: "start" }, ["oldest", "newest", "offset", "timestamp"].map((s) => h("option", { value: s }, s))),
    at: h("input", { name: "at", value: q("at", ""), placeholder: "offset, count, or time (ms or ISO 8601)" }),
    maxResults: h("input", { name: "max_results", type: "number", min: "1", max: "10000", value: q("max_results", "100") }),
    maxScanned: h("input", { name: "max_scanned", type: "number", min: "1", max: "10000000", value: q("max_scanned", "10000") }),
    filter: h("input", { name: "filter", type: "search", value: q("filter", ""), placeholder: "contains…" }),
    inKey: h("input", { type: "checkbox", name: "in_key", checked: q("in", "key,value,headers").includes("key") }),
    inValue: h("input", { type: "checkbox", name: "in_value", checked: q("in", "key,value,headers").includes("value") }),
    inHeaders: h("input", { type: "checkbox", name: "in_headers", checked: q("in", "key,value,headers").includes("headers") }),
    view: h("select", { name: "view" }, ["json", "text", "hex"].map((s) => h("option", { value: s }, s))),
  };
  inputs.start.value = q("start", "newest");
  inputs.view.value = q("view", "json");
  if (!query.has("at") && inputs.start.value === "newest") inputs.at.value = "50";

  const counters = h("div", { class: "counters", id: "scan-counters" });
  const results = h("div", { id: "messages" });
  const actions = h("div", { class: "toolbar" });
  let scan = null;
  let cancelled = false;
  ctx.onCleanup(() => { cancelled = true; });

  const form = h("form", { class: "panel", id: "message-search" },
    h("div", { class: "grid" },
      field("Partitions", inputs.partitions), field("Start", inputs.start), field("At", inputs.at),
      field("Max results", inputs.maxResults), field("Max scanned", inputs.maxScanned),
      field("Contains", inputs.filter),
      h("fieldset", {}, h("legend", {}, "in"),
        h("label", {}, inputs.inKey, "key"), h("label", {}, inputs.inValue, "value"), h("label", {}, inputs.inHeaders, "headers")),
      field("View", inputs.view)),
    h("button", { type: "submit" }, "Search"));
  form.addEventListener("submit", (event) => { event.preventDefault(); begin(); });
  inputs.view.addEventListener("change", () => { saveState(); if (scan) renderRows(); });

  function places() {
    const set = new Set();
    if (inputs.inKey.checked) set.add("key");
    if (inputs.inValue.checked) set.add("value");
    if (inputs.inHeaders.checked) set.add("headers");
    return set;
  }

  function saveState() {
    const inList = [...places()].join(",");
    setQuery(pruned({
      partitions: inputs.partitions.value.trim(), start: inputs.start.value, at: inputs.at.value.trim(),
      max_results: inputs.maxResults.value, max_scanned: inputs.maxScanned.value,
      filter: inputs.filter.value, in: inList === "key,value,headers" ? "" : inList, view: inputs.view.value,
    }));
  }

  async function begin() {
    saveState();
    try {
      const chosen = choosePartitions(info, inputs.partitions.value);
      const cursors = await startOffsets(name, info, chosen, inputs.start.value, inputs.at.value.trim());
      scan = { cursors, rows: [], scanned: 0, matched: 0, startedAt: performance.now(), elapsed: 0, done: false };
      await run();
    } catch (err) {
      replace(results, errorView(err));
    }
  }

  async function run() {
    const maxResults = clampInt(inputs.maxResults.value, 1, 10_000, 100);
    const maxScanned = clampInt(inputs.maxScanned.value, 1, 10_000_000, 10_000);
    const needle = inputs.filter.value;
    const where = places();
    const budget = { results: maxResults, scanned: maxScanned };
    const started = performance.now();
    const before = scan.elapsed;
    let found = 0;
    let looked = 0;
    replace(actions);
    while (!cancelled && found < budget.results && looked < budget.scanned) {
      const open = scan.cursors.filter((c) => BigInt(c.next) < BigInt(c.end));
      if (open.length === 0) { scan.done = true; break; }
      for (const cursor of open) {
        if (found >= budget.results || looked >= budget.scanned || cancelled) break;
        const want = Math.min(FETCH_MAX, budget.scanned - looked);
        const answer = await api("GET", `/v1/topics/${seg(name)}/partitions/${cursor.partition}/records`, {
          query: { offset: cursor.next, max_records: want, max_wait_ms: 0, key_format: "binary", value_format: "binary", header_format: "binary" },
        });
        let progressed = false;
        for (const raw of answer.records) {
          if (BigInt(raw.offset) >= BigInt(cursor.end)) break;
          if (looked >= budget.scanned || found >= budget.results) break;
          looked += 1;
          scan.scanned += 1;
          cursor.next = String(BigInt(raw.offset) + 1n);
          progressed = true;
          const record = fromFetched(raw);
          if (matches(record, needle, where)) {
            found += 1;
            scan.matched += 1;
            scan.rows.push(record);
          }
        }
        if (!progressed) {
          // Nothing below the end (records deleted or compacted away): jump to what fetch says is next.
          const next = BigInt(answer.next_offset ?? cursor.end);
          cursor.next = String(next > BigInt(cursor.next) ? next : BigInt(cursor.end));
        }
        scan.elapsed = before + (performance.now() - started);
        renderCounters();
      }
    }
    if (scan.cursors.every((c) => BigInt(c.next) >= BigInt(c.end))) scan.done = true;
    scan.elapsed = before + (performance.now() - started);
    renderCounters();
    renderRows();
    renderActions();
  }

  function renderCounters() {
    replace(counters,
      h("span", { "data-counter": "scanned" }, `scanned ${scan.scanned}`),
      h("span", { "data-counter": "matched" }, `matched ${scan.matched}`),
      h("span", { "data-counter": "elapsed" }, `${(scan.elapsed / 1000).toFixed(2)} s`),
      h("span", { "data-counter": "state" }, scan.done ? "reached the end" : "stopped at a budget"));
  }

  function renderActions() {
    const buttons = [];
    if (!scan.done) buttons.push(h("button", { type: "button", id: "continue", onclick: () => run() }, "Continue"));
    if (settings.export_enabled && settings.messages_enabled) {
      buttons.push(
        h("button", { type: "button", id: "export-ndjson", onclick: () => download(`${name}.ndjson`, "application/x-ndjson", toNdjson(sorted())) }, "Export NDJSON"),
        h("button", { type: "button", id: "export-csv", onclick: () => download(`${name}.csv`, "text/csv", toCsv(sorted())) }, "Export CSV"));
    }
    replace(actions, buttons);
  }

  function sorted() {
    return [...scan.rows].sort((a, b) => a.partition - b.partition || (BigInt(a.offset) < BigInt(b.offset) ? -1 : 1));
  }

  function renderRows() {
    const view = inputs.view.value;
    const rows = sorted();
    if (rows.length === 0) { replace(results, notice("info", "No records matched.")); return; }
    const body = rows.map((r) => h("tr", { "data-offset": r.offset, "data-partition": String(r.partition) },
      h("td", {}, String(r.partition)), h("td", {}, r.offset), h("td", {}, new Date(r.timestamp).toISOString()),
      settings.messages_enabled ? [
        h("td", {}, h("pre", { class: "key" }, show(r.key, view))),
        h("td", {}, h("pre", { class: "value" }, show(r.value, view))),
        h("td", {}, h("pre", { class: "headers" }, r.headers.map((hd) => `${hd.key}: ${show(hd.value, "text")}`).join("\n"))),
      ] : []));
    const heads = ["Partition", "Offset", "Timestamp"].concat(settings.messages_enabled ? ["Key", "Value", "Headers"] : []);
    replace(results, h("table", { class: "records" }, h("thead", {}, h("tr", {}, heads.map((c) => h("th", {}, c)))), h("tbody", {}, body)));
  }

  if (query.has("start")) queueMicrotask(() => begin());
  return h("section", {},
    h("h1", {}, h("a", { href: `#/topics/${seg(name)}` }, name), " · messages"),
    settings.messages_enabled ? null : notice("info", "This broker shows offsets and timestamps only (--ui-messages-enabled false)."),
    form, counters, actions, results);
}

function clampInt(text, low, high, fallback) {
  const n = Number.parseInt(text, 10);
  return Number.isFinite(n) ? Math.min(high, Math.max(low, n)) : fallback;
}

function choosePartitions(info, text) {
  const all = info.partitions.map((p) => p.partition);
  if (!text.trim()) return all;
  const chosen = text.split(",").map((s) => s.trim()).filter(Boolean).map((s) => Number.parseInt(s, 10));
  for (const p of chosen) {
    if (!all.includes(p)) throw new Error(`partition ${p} does not exist (the topic has ${all.length})`);
  }
  return [...new Set(chosen)];
}

/** Where each chosen partition's scan starts, and where it ends (the high watermark at the start). */
async function startOffsets(name, info, chosen, start, at) {
  const cursors = [];
  for (const p of info.partitions.filter((x) => chosen.includes(x.partition))) {
    const low = BigInt(p.log_start_offset);
    const high = BigInt(p.high_watermark);
    let next = low;
    if (start === "newest") {
      const count = BigInt(Math.max(0, Number.parseInt(at || "50", 10) || 0));
      next = high - count > low ? high - count : low;
    } else if (start === "offset") {
      if (!/^\d+$/.test(at)) throw new Error("Start at an offset needs a whole number in At");
      const wanted = BigInt(at);
      next = wanted < low ? low : wanted > high ? high : wanted;
    } else if (start === "timestamp") {
      const ms = /^\d+$/.test(at) ? Number(at) : Date.parse(at);
      if (!Number.isFinite(ms)) throw new Error("Start at a time needs epoch milliseconds or an ISO 8601 time in At");
      const found = await api("GET", `/v1/topics/${seg(name)}/partitions/${p.partition}/offsets`, { query: { timestamp: Math.trunc(ms) } });
      next = found.offset === null ? high : BigInt(found.offset);
    }
    cursors.push({ partition: p.partition, next: String(next), end: String(high) });
  }
  return cursors;
}
