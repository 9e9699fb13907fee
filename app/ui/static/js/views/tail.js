// Live tail over Server-Sent Events: new records as they arrive. The page keeps at most `keep` rows
// and says how many it dropped, so a fast topic cannot grow it without bound. Pause closes the stream
// and remembers its cursor (the event id); resume reconnects from it, so nothing is missed.

import { seg } from "../api.js";
import { field, h, replace } from "../dom.js";
import { setQuery, settings } from "../state.js";

const FIRST_OFFSET = /"offset"\s*:\s*(-?\d+)/;

export async function tail([name], query, ctx) {
  const keepInput = h("input", { name: "keep", type: "number", min: "10", max: "5000", value: query.get("keep") || "200" });
  const status = h("span", { id: "tail-status", class: "muted" }, "connecting…");
  const dropped = h("span", { id: "tail-dropped", class: "muted" }, "");
  const body = h("tbody", {});
  const pauseButton = h("button", { type: "button", id: "tail-pause" }, "Pause");
  let source = null;
  let lastEventId = null;
  let droppedCount = 0;
  let received = 0;

  const keep = () => Math.min(5000, Math.max(10, Number.parseInt(keepInput.value, 10) || 200));
  keepInput.addEventListener("change", () => { setQuery({ keep: String(keep()) }); trim(); });

  function connect() {
    const url = new URL(`/v1/topics/${seg(name)}/events`, window.location.origin);
    if (lastEventId) url.searchParams.set("last_event_id", lastEventId);
    source = new EventSource(url, { withCredentials: true });
    source.addEventListener("open", () => { status.textContent = "live"; });
    source.addEventListener("error", () => { status.textContent = "reconnecting…"; });
    source.addEventListener("record", (event) => {
      lastEventId = event.lastEventId || lastEventId;
      received += 1;
      // The record's own offset is the first "offset" field; parse it as text (offsets may pass 2^53).
      const offset = (FIRST_OFFSET.exec(event.data) || [])[1] ?? "?";
      const record = JSON.parse(event.data);
      body.prepend(row(record, offset));
      trim();
    });
  }

  function trim() {
    while (body.childElementCount > keep()) {
      body.lastElementChild.remove();
      droppedCount += 1;
    }
    dropped.textContent = `${received} received · showing ${body.childElementCount} · dropped ${droppedCount}`;
  }

  function row(record, offset) {
    const text = (v) => (v === null || v === undefined ? "null" : typeof v === "string" ? v : JSON.stringify(v));
    return h("tr", { "data-offset": offset, "data-partition": String(record.partition) },
      h("td", {}, String(record.partition)), h("td", {}, offset), h("td", {}, new Date(record.timestamp).toISOString()),
      settings.messages_enabled ? [
        h("td", {}, h("pre", { class: "key" }, text(record.key))),
        h("td", {}, h("pre", { class: "value" }, text(record.value))),
      ] : []);
  }

  pauseButton.addEventListener("click", () => {
    if (source) {
      source.close();
      source = null;
      pauseButton.textContent = "Resume";
      status.textContent = "paused";
    } else {
      connect();
      pauseButton.textContent = "Pause";
    }
  });

  connect();
  ctx.onCleanup(() => { if (source) source.close(); });
  const heads = ["Partition", "Offset", "Timestamp"].concat(settings.messages_enabled ? ["Key", "Value"] : []);
  return h("section", {},
    h("h1", {}, h("a", { href: `#/topics/${seg(name)}` }, name), " · live tail"),
    h("div", { class: "toolbar" }, pauseButton, field("Keep rows", keepInput), status, dropped),
    h("table", { class: "records", id: "tail" }, h("thead", {}, h("tr", {}, heads.map((c) => h("th", {}, c)))), body));
}
