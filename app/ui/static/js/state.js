// What every view shares: the console's settings and the view's inputs in the URL's fragment.

import { ApiError } from "./api.js";
import { notice } from "./dom.js";

/** The console's settings (/ui/config.json), filled in once at start. */
export const settings = { messages_enabled: true, export_enabled: true, auth_enabled: false, version: "" };

/** The current fragment as {path, query}. */
export function location() {
  const raw = window.location.hash.replace(/^#/, "") || "/";
  const [path, search = ""] = raw.split("?", 2);
  return { path, query: new URLSearchParams(search) };
}

/** Puts the view's inputs in the URL without re-rendering (the state survives a reload). */
export function setQuery(query) {
  const { path } = location();
  const search = new URLSearchParams(query).toString();
  history.replaceState(null, "", `#${path}${search ? `?${search}` : ""}`);
}

/** How a failed call is shown: the broker's problem detail and error_code. */
export function errorView(err) {
  if (err instanceof ApiError) {
    return notice("error", `${err.message} (HTTP ${err.status}, error_code ${err.errorCode ?? "?"})`);
  }
  return notice("error", String(err && err.message ? err.message : err));
}
