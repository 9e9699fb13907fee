// Records as the console shows them: fetched as bytes (base64), then shown as JSON, text or hex. The
// bytes are never interpreted as HTML.

const utf8 = new TextDecoder("utf-8");

/** base64 → Uint8Array (null stays null). */
export function decodeBase64(text) {
  if (text === null || text === undefined) return null;
  const raw = atob(text);
  const out = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i += 1) out[i] = raw.charCodeAt(i);
  return out;
}

/** A fetched record (binary formats) as {partition, offset, timestamp, key, value, headers} of bytes. */
export function fromFetched(record) {
  return {
    partition: record.partition,
    offset: String(record.offset),
    timestamp: record.timestamp,
    key: decodeBase64(record.key),
    value: decodeBase64(record.value),
    headers: (record.headers || []).map((hd) => ({ key: hd.key, value: decodeBase64(hd.value) })),
  };
}

/** The bytes as UTF-8 text (null for none). */
export function asText(bytes) {
  return bytes === null ? null : utf8.decode(bytes);
}

/** The bytes shown in a view: "json" (pretty when they are JSON), "text" or "hex". */
export function show(bytes, view) {
  if (bytes === null) return "null";
  if (view === "hex") return hexDump(bytes);
  const text = utf8.decode(bytes);
  if (view === "json") {
    try {
      return JSON.stringify(JSON.parse(text), null, 2);
    } catch {
      return text;
    }
  }
  return text;
}

function hexDump(bytes) {
  const lines = [];
  for (let i = 0; i < bytes.length; i += 16) {
    const chunk = Array.from(bytes.slice(i, i + 16));
    const hex = chunk.map((b) => b.toString(16).padStart(2, "0")).join(" ");
    const ascii = chunk.map((b) => (b >= 32 && b < 127 ? String.fromCharCode(b) : ".")).join("");
    lines.push(`${i.toString(16).padStart(8, "0")}  ${hex.padEnd(47)}  ${ascii}`);
  }
  return lines.join("\n");
}

/** Whether a record matches a contains-filter (case-insensitive) in the chosen places. */
export function matches(record, needle, places) {
  if (!needle) return true;
  const lower = needle.toLowerCase();
  const hit = (bytes) => bytes !== null && utf8.decode(bytes).toLowerCase().includes(lower);
  if (places.has("key") && hit(record.key)) return true;
  if (places.has("value") && hit(record.value)) return true;
  if (places.has("headers")) {
    for (const hd of record.headers) {
      if (hd.key.toLowerCase().includes(lower) || hit(hd.value)) return true;
    }
  }
  return false;
}

/** One row of an export: what the text view shows, offsets as strings. */
export function exportRow(record) {
  return {
    partition: record.partition,
    offset: record.offset,
    timestamp: record.timestamp,
    key: asText(record.key),
    value: asText(record.value),
    headers: Object.fromEntries(record.headers.map((hd) => [hd.key, asText(hd.value)])),
  };
}

/** The rows as NDJSON text. */
export function toNdjson(records) {
  return records.map((r) => JSON.stringify(exportRow(r))).join("\n") + (records.length ? "\n" : "");
}

/** The rows as CSV text (RFC 4180 quoting; headers as a JSON object). */
export function toCsv(records) {
  const quote = (v) => {
    const s = v === null || v === undefined ? "" : String(v);
    return /[",\r\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
  };
  const lines = ["partition,offset,timestamp,key,value,headers"];
  for (const r of records.map(exportRow)) {
    lines.push([r.partition, r.offset, r.timestamp, r.key, r.value, JSON.stringify(r.headers)].map(quote).join(","));
  }
  return lines.join("\r\n") + "\r\n";
}

/** Offers text as a file download. */
export function download(name, type, text) {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const link = document.createElement("a");
  link.href = url;
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
