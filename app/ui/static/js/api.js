// The console's only way to the broker: the public HTTP API, same origin, with the browser's
// credentials. Offsets may exceed 2^53, so every offset-like field is read as a string (BigInt in
// arithmetic), never as a JavaScript number.

const OFFSET_FIELDS = [
  "offset", "next_offset", "high_watermark", "log_start_offset", "log_end_offset", "lag", "total_lag",
  "records", "previous_offset", "base_offset", "last_offset", "low_watermark",
];
const OFFSET_PATTERN = new RegExp(`"(${OFFSET_FIELDS.join("|")})"\\s*:\\s*(-?\\d+)`, "g");

/** Parses JSON text with every offset-like integer field kept as a string. */
export function parseJson(text) {
  return JSON.parse(text.replace(OFFSET_PATTERN, '"$1":"$2"'));
}

/** An error answer of the broker: status, error_code and the problem's detail. */
export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
    this.errorCode = problem.error_code;
  }
}

/** Calls the API: api("GET", "/v1/topics", {query, body}) → the parsed JSON answer (or null). */
export async function api(method, path, { query, body, signal } = {}) {
  const url = new URL(path, window.location.origin);
  for (const [name, value] of Object.entries(query || {})) {
    if (value === undefined || value === null || value === "") continue;
    for (const v of Array.isArray(value) ? value : [value]) url.searchParams.append(name, String(v));
  }
  const init = { method, headers: { Accept: "application/json" }, credentials: "same-origin", signal };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = typeof body === "string" ? body : JSON.stringify(body);
  }
  const response = await fetch(url, init);
  const text = await response.text();
  const data = text ? safeParse(text) : null;
  if (!response.ok) {
    throw new ApiError(response.status, data && typeof data === "object" ? data : { detail: text });
  }
  return data;
}

function safeParse(text) {
  try {
    return parseJson(text);
  } catch {
    return { detail: text };
  }
}

/** Encodes a path segment (topic and group names may hold dots, dashes and underscores). */
export const seg = encodeURIComponent;
